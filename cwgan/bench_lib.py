r"""Measurements of the training step behind `python -m cwgan.bench`.

Prints one JSON object (and a short table) with, for one model and batch size, measured
back to back in this process (so ratios are fair on a noisy machine):

  - fast path: `ConditionalWGAN`'s compiled `train_step` as `fit` runs it (Keras'
    `train_function`), vs the textbook loop (a tf.data batch per critic step, a Python
    loop over n_critic, the clip done by reading weights to the host and writing them
    back), vs the fast path fed one cached batch (the cost of the input pipeline);
  - XLA on vs off;
  - achieved GFLOP/s (see `step_flops`) vs this machine's float32 matmul peak;
  - seconds per generator iteration with 10k vs 60k training images and per batch size;
  - compile (first call) time apart from the steady state; peak resident memory.

Every time is the median over `--repeats` runs of `--iterations` generator iterations.
Timings are not tests: nothing here asserts a speed.
"""

import functools
import os
import resource
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from cwgan.data import load_mnist, make_dataset
from cwgan.model import ConditionalWGAN
from cwgan.networks import build_networks

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def layer_flops(layer):
    """Forward multiply-adds x 2 of one layer for one sample; 0 for cheap layers."""
    if isinstance(layer, keras.layers.Dense):
        return 2 * layer.input.shape[-1] * layer.units
    if isinstance(layer, keras.layers.Conv2DTranspose):
        _, h, w, c_in = layer.input.shape
        kh, kw = layer.kernel_size
        return 2 * h * w * kh * kw * c_in * layer.filters
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, _ = layer.output.shape
        kh, kw = layer.kernel_size
        return 2 * h * w * kh * kw * layer.input.shape[-1] * layer.filters
    return 0


def network_flops(network):
    return sum(layer_flops(layer) for layer in network.layers)


def step_flops(model, batch_size):
    """Floating-point operations of one generator iteration, counted from layer shapes.

    Only dense and convolution layers count (2 per multiply-add; normalisation, activations
    and the optimizer are a few percent). A backward pass costs twice its forward pass
    (gradients for inputs and for weights) except where only input gradients are needed.
    Per critic update: the generator forward on B fakes, the critic forward and backward on
    2B images (real and fake). Per generator update: generator forward and backward on B,
    critic forward and input-gradient pass on B.
    """
    g, c = network_flops(model.generator), network_flops(model.critic)
    critic_update = g * batch_size + 3 * c * 2 * batch_size
    generator_update = 3 * g * batch_size + 2 * c * batch_size
    return model.n_critic * critic_update + generator_update


def build_model(width, n_critic, jit_compile, seed=0, architecture="dcgan",
                conditioning="projection"):
    """A fresh compiled model (the recipe's networks by default) with RMSprop."""
    keras.utils.set_random_seed(seed)
    generator, critic = build_networks(architecture, 100, width, conditioning)
    model = ConditionalWGAN(generator, critic, n_critic=n_critic, seed=seed)
    model.compile(jit_compile=jit_compile)
    return model


def _sync(model):
    model.generator_iterations.numpy()  # waits for the step to finish


def time_fast_path(model, dataset, iterations, repeats):
    """(first-call seconds, median seconds per generator iteration) of Keras' step."""
    iterator = iter(dataset.repeat())
    model.make_train_function()
    start = time.perf_counter()
    model.train_function(iterator)
    _sync(model)
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            model.train_function(iterator)
        _sync(model)
        times.append((time.perf_counter() - start) / iterations)
    return compile_s, statistics.median(times)


class TextbookLoop:
    """A generator iteration as tutorials write it, for comparison.

    One tf.data batch per critic step, a Python loop over n_critic calling a compiled
    critic step, and the clip done on the host: every critic weight read out, clipped
    with numpy and written back. The critic and generator updates are the model's own,
    so the arithmetic matches the fast path.
    """

    def __init__(self, model, images, labels, batch_size):
        self.model = model
        self.clip_value = model.clip_value
        for variable in model.critic.trainable_variables:
            variable.constraint = None  # clipped by hand below instead
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images))
        self.batches = iter(ds.repeat().batch(batch_size, drop_remainder=True).prefetch(2))
        self.critic_step = tf.function(model._critic_step)
        self.generator_step = tf.function(model._generator_step)

    def iteration(self):
        for _ in range(self.model.n_critic):
            real, labels = next(self.batches)
            self.critic_step(real, labels)
            for variable in self.model.critic.trainable_variables:
                variable.assign(np.clip(variable.numpy(), -self.clip_value, self.clip_value))
        _, labels = next(self.batches)
        self.generator_step(labels)


def time_textbook(loop, iterations, repeats):
    start = time.perf_counter()
    loop.iteration()
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            loop.iteration()
        _sync(loop.model)
        times.append((time.perf_counter() - start) / iterations)
    return compile_s, statistics.median(times)


def matmul_peak_gflops(n, repeats):
    """Median float32 GFLOP/s of an n x n matmul, compiled, on this machine."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    reps = max(1, int(2e10 // (2 * n ** 3)))  # about 20 GFLOP per timing
    times = []
    for _ in range(max(3, repeats)):
        start = time.perf_counter()
        for _ in range(reps):
            out = matmul(a, b)
        out.numpy()
        times.append((time.perf_counter() - start) / reps)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def large_training_set(size, images_10k, labels_10k):
    """`size` images: full Fashion-MNIST when installed (Debian's package), else synthetic."""
    if size == 60000 and os.path.isdir(FASHION_DIR):
        images, labels = load_mnist(data_dir=FASHION_DIR, dataset="fashion_mnist")
        return images, labels, "fashion_mnist (dataset-fashion-mnist, 60k)"
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(images_10k), size)
    return images_10k[idx], labels_10k[idx], f"synthetic ({size} resampled MNIST images)"


def run_bench(batch_size=64, n_critic=5, width=32, iterations=8, repeats=3,
              batch_sizes=(32, 64, 128, 256), data_dir=None, large_size=60000,
              matmul_n=2048, architecture="dcgan", conditioning="projection"):
    """Runs every measurement and returns the result dict (see the module docstring)."""
    images, labels = load_mnist(data_dir=data_dir)
    make = functools.partial(build_model, architecture=architecture,
                             conditioning=conditioning)

    result = {"config": {"batch_size": batch_size, "n_critic": n_critic, "width": width,
                         "architecture": architecture, "conditioning": conditioning,
                         "iterations": iterations, "repeats": repeats,
                         "train_images": len(images), "cpu_count": os.cpu_count(),
                         "gpus": len(tf.config.list_physical_devices("GPU")),
                         "tensorflow": tf.__version__, "keras": keras.__version__}}
    per_iteration_images = batch_size * n_critic
    dataset = make_dataset(images, labels, batch_size, n_critic, seed=0)

    def rates(seconds):
        return {"seconds_per_iteration": seconds, "generator_iterations_per_s": 1 / seconds,
                "critic_images_per_s": per_iteration_images / seconds}

    xla = {}
    for jit in (False, True):
        model = make(width, n_critic, jit)
        compile_s, seconds = time_fast_path(model, dataset, iterations, repeats)
        xla[jit] = {"compile_seconds": compile_s, **rates(seconds)}
    fastest = min((False, True), key=lambda j: xla[j]["seconds_per_iteration"])
    result["xla"] = {"off": xla[False], "on": xla[True],
                     "speedup_on_vs_off": xla[False]["seconds_per_iteration"]
                     / xla[True]["seconds_per_iteration"], "faster": "on" if fastest else "off"}
    fast = xla[fastest]

    textbook_model = make(width, n_critic, False)
    compile_s, seconds = time_textbook(
        TextbookLoop(textbook_model, images, labels, batch_size), iterations, repeats)
    textbook = {"compile_seconds": compile_s, **rates(seconds)}
    result["fast_path"] = fast
    result["textbook_loop"] = textbook
    result["speedup_fast_vs_textbook"] = (textbook["seconds_per_iteration"]
                                          / fast["seconds_per_iteration"])

    cached = tf.data.Dataset.from_tensors(next(iter(dataset)))
    model = make(width, n_critic, fastest)
    _, seconds = time_fast_path(model, cached, iterations, repeats)
    result["input_pipeline"] = {
        "seconds_per_iteration_cached_batch": seconds,
        "overhead_fraction": fast["seconds_per_iteration"] / seconds - 1}

    flops = step_flops(model, batch_size)
    peak = matmul_peak_gflops(matmul_n, repeats)
    achieved = flops / fast["seconds_per_iteration"] / 1e9
    result["flops"] = {"per_generator_iteration": flops, "achieved_gflops": achieved,
                       "matmul_peak_gflops": peak, "utilisation": achieved / peak,
                       "matmul_n": matmul_n}

    big_images, big_labels, source = large_training_set(large_size, images, labels)
    model = make(width, n_critic, fastest)
    _, seconds_big = time_fast_path(
        model, make_dataset(big_images, big_labels, batch_size, n_critic, seed=0),
        iterations, repeats)
    result["dataset_scaling"] = {
        "small_images": len(images), "large_images": len(big_images), "large_source": source,
        "seconds_per_iteration_small": fast["seconds_per_iteration"],
        "seconds_per_iteration_large": seconds_big,
        "ratio_large_vs_small": seconds_big / fast["seconds_per_iteration"]}

    scaling = {}
    for size in batch_sizes:
        if size * n_critic > len(images):
            continue
        model = make(width, n_critic, fastest)
        _, seconds = time_fast_path(model, make_dataset(images, labels, size, n_critic, 0),
                                    iterations, repeats)
        scaling[str(size)] = {"seconds_per_iteration": seconds,
                              "critic_images_per_s": size * n_critic / seconds}
    result["batch_scaling"] = scaling
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def table(result):
    f, t = result["fast_path"], result["textbook_loop"]
    lines = [
        f"{'':28s}{'s/iter':>10s}{'iter/s':>9s}{'critic img/s':>14s}",
        f"{'fast path (XLA ' + result['xla']['faster'] + ')':28s}"
        f"{f['seconds_per_iteration']:10.4f}{f['generator_iterations_per_s']:9.2f}"
        f"{f['critic_images_per_s']:14.0f}",
        f"{'textbook loop':28s}{t['seconds_per_iteration']:10.4f}"
        f"{t['generator_iterations_per_s']:9.2f}{t['critic_images_per_s']:14.0f}",
        f"fast vs textbook: {result['speedup_fast_vs_textbook']:.2f}x; "
        f"XLA on vs off: {result['xla']['speedup_on_vs_off']:.2f}x; "
        f"input pipeline overhead: {100 * result['input_pipeline']['overhead_fraction']:.1f}%",
        f"achieved {result['flops']['achieved_gflops']:.1f} GFLOP/s of a "
        f"{result['flops']['matmul_peak_gflops']:.1f} GFLOP/s matmul peak: "
        f"{100 * result['flops']['utilisation']:.0f}% utilisation",
        f"{result['dataset_scaling']['large_images']} vs "
        f"{result['dataset_scaling']['small_images']} images: "
        f"{result['dataset_scaling']['ratio_large_vs_small']:.3f}x time per iteration",
        "batch size -> s/iter: " + ", ".join(
            f"{b}: {v['seconds_per_iteration']:.3f}" for b, v in result["batch_scaling"].items()),
        f"peak RSS {result['peak_rss_mib']:.0f} MiB",
    ]
    return "\n".join(lines)
