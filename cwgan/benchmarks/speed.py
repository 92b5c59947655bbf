r"""Measurements of the training step behind `python -m cwgan.bench`.

Prints one JSON object (and a short table) with, for one model and batch size, measured
back to back in this process (so ratios are fair on a noisy machine):

  - fast path: `ConditionalWGAN`'s compiled `train_step` as `fit` runs it (Keras'
    `train_function`, fed by `make_dataset`), vs the textbook loop (a tf.data batch per
    critic step, a Python loop over n_critic, the clip done by reading weights to the host
    and writing them back), vs the same step with the training set held as tensors on the
    device and each step's batch indices drawn in-graph, vs the fast path fed one cached
    batch (the cost of the input pipeline);
  - XLA on vs off, for both ways of feeding the step, and for the step with the
    `n_critic_warmup` schedule (its generator update inside a conditional); and what
    `--jit_compile=auto` chooses for these networks on this machine (`cwgan.training.xla`);
  - the critic's own layers (`cwgan.model.critic_layers`) vs the stock layers they replace
    (`build_stock_critic`: the same function and weights), XLA on and off (dcgan only);
  - the cost of the recipe's generator output (a 3x3 convolution of full-size maps makes
    the image) against DCGAN's (the last transposed convolution makes it), XLA on and
    off (dcgan only: "generator_output");
  - the cost of class-conditional batch norm in the generator (each class its own scale
    and offset: the recipe's for colour images) against the label at the noise only (the
    recipe's for grey ones, MNIST's here), XLA on and off (dcgan only:
    "generator_conditioning");
  - achieved GFLOP/s (see `step_flops`) vs this machine's float32 matmul peak;
  - seconds per generator iteration with 10k vs 60k training images and per batch size;
  - compile (first call) time apart from the steady state; peak resident memory.

Every time is the median over `--repeats` runs of `--iterations` generator iterations.
The variants compared in the first table are timed interleaved (one run of each in turn,
`--repeats` rounds), so a slow spell of the machine falls on all of them alike.
Also an op-level profile (TensorFlow profiler, XLA off so ops are visible) of the step:
the op types that take the most time.

The input pipeline on your own images (issue 13; on by default, `--nopipeline` skips it,
`--pipeline_only` runs only it), under the JSON key "folder_pipeline":

  - folders of `--pipeline_sizes` PNGs (default 10,000 and 60,000), written once into
    cwgan's cache (`cwgan.benchmarks.data`: Fashion-MNIST's real training images when Debian's
    dataset-fashion-mnist is installed, else coloured digits; "source", "folders",
    "build_seconds": seconds spent writing them in this run, 0 when cached);
  - the overhead of streaming from disk: the step (the model and batch above, XLA as
    the faster above, or as `--jit_compile=auto` chooses with `--pipeline_only`; "xla",
    "xla_from") fed by the largest folder's images decoded into memory
    (`load_data(data_cache="memory").stream`) vs streamed from its files
    (`data_cache="none"`), timed interleaved (`--pipeline_iterations` per turn after a
    tenth as many untimed, `--pipeline_repeats` rounds, the order reversed every other
    round; medians: "in_memory" and "from_disk" {"compile_seconds",
    "seconds_per_iteration"}); "overhead_fraction" is the median over rounds of
    (from_disk - in_memory) / in_memory, each round's in "overhead_fraction_rounds".
    The files are in the OS page cache (as after the folder's check pass, and in every
    pass over a folder that fits it);
  - the disk stream alone, no training ("stream_alone": "seconds_per_step",
    "steps_per_s", "images_per_s", and "headroom": how many times faster than the step
    consumes them; on a shared CPU the step and the pipeline compete for the cores);
  - peak memory as the folder grows: for each folder, in a fresh child Python with an
    empty cache (`bench_data.peak_memory`): its resident memory before loading
    ("baseline_mib"), its peak through `load_data` listing and checking the files and
    then streaming "steps" steps (one pass over the largest folder; "peak_mib"), and
    the peak's rise above the baseline ("rise_mib"; "rise_mib_load" by the end of
    `load_data`); streamed from disk ("streamed") and, for contrast, held in memory
    ("in_memory"): "by_images" {number of images: those figures},
    "peak_ratio_largest_vs_smallest", "difference_mib" (of the rises), and
    "bytes_per_extra_image" (that difference per image added: the file list's cost
    when streamed, the decoded images' too when held in memory).

Timings are not tests: nothing asserts a speed.
"""

import collections
import glob
import tempfile

import functools
import os
import resource
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from cwgan.benchmarks import data as bench_data
from cwgan.data.loading import IMAGE_SHAPE, NUM_CLASSES, load_data, load_mnist, make_dataset
from cwgan.model.critic_layers import LabelPlanesConv2D
from cwgan.model.networks import build_networks, conv_plan, label_planes, normalise
from cwgan.model.wgan import WARMUP_ITERATIONS, ConditionalWGAN
from cwgan.training.run import TrainConfig, auto_jit_compile, with_data_defaults
from cwgan.training.xla import FastPath, sync, time_interleaved, time_stepper

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
    if isinstance(layer, LabelPlanesConv2D):
        # The image's channels only: the label's maps are computed once per call.
        _, h, w, _ = layer.output.shape
        return 2 * h * w * layer.kernel_size ** 2 * layer.channels * layer.filters
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


def recipe_network_options(architecture):
    """The network options the bench times: the recipe's as `TrainConfig` resolves them
    for `architecture` and MNIST's images (`critic_norm`, `generator_output`,
    `generator_conditioning`; the mlp has none of them)."""
    config = with_data_defaults(TrainConfig(architecture=architecture))
    return {"critic_norm": config.critic_norm, "generator_output": config.generator_output,
            "generator_conditioning": config.generator_conditioning}


def build_stock_critic(num_classes=NUM_CLASSES, width=TrainConfig.width,
                       conditioning=TrainConfig.conditioning, image_shape=IMAGE_SHAPE,
                       norm=None):
    """The dcgan critic (depth 1) from stock layers, as cwgan built it before
    `cwgan.model.critic_layers`: one-hot label planes concatenated to the image, `Dot(axes=1)`
    for the projection. The same function and weights as `build_critic`'s; the baseline
    that the critic's own layers are timed against. `norm` defaults to the recipe's."""
    norm = norm or recipe_network_options("dcgan")["critic_norm"]
    _, doublings = conv_plan(image_shape)
    image = keras.Input(shape=image_shape, name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    x = keras.layers.Concatenate()([image, label_planes(label, num_classes, image_shape[:2])])
    for i in range(doublings):
        x = keras.layers.Conv2D(width * 2 ** i, 4, strides=2, padding="same")(x)
        x = keras.layers.LeakyReLU(0.2)(normalise(x, norm) if i else x)
    x = keras.layers.Flatten()(x)
    score = keras.layers.Dense(1, dtype="float32")(x)
    if conditioning == "projection":
        embedded = keras.layers.Embedding(num_classes, x.shape[-1])(label)
        projected = keras.layers.Dot(axes=1, dtype="float32")([embedded, x])
        score = keras.layers.Add(dtype="float32")([score, projected])
    return keras.Model([image, label], score, name="critic")


def build_bench_model(width, n_critic, jit_compile, seed=0,
                      architecture=TrainConfig.architecture,
                      conditioning=TrainConfig.conditioning, n_critic_warmup=0,
                      image_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, stock_critic=False,
                      generator_output=None, generator_conditioning=None):
    """A fresh compiled model (the recipe's networks by default, for MNIST's shape) with
    RMSprop; with `stock_critic`, the dcgan critic from stock layers instead; with
    `generator_output` or `generator_conditioning`, that instead of the recipe's."""
    keras.utils.set_random_seed(seed)
    options = recipe_network_options(architecture)
    if generator_output is not None:
        options["generator_output"] = generator_output
    if generator_conditioning is not None:
        options["generator_conditioning"] = generator_conditioning
    generator, critic = build_networks(architecture, 100, width, conditioning,
                                       num_classes=num_classes, image_shape=image_shape,
                                       **options)
    if stock_critic:
        critic = build_stock_critic(num_classes, width, conditioning, image_shape,
                                    options["critic_norm"])
    model = ConditionalWGAN(generator, critic, n_critic=n_critic, seed=seed,
                            n_critic_warmup=n_critic_warmup, num_classes=num_classes)
    model.compile(jit_compile=jit_compile)
    return model


class InGraphSampler:
    """The same step with the training set held as tensors on the device and each step's
    `n_critic * batch_size` indices drawn in-graph (uniformly, with replacement): no
    tf.data at all, the whole iteration is one compiled call."""

    def __init__(self, model, images, labels, batch_size, jit_compile):
        self.model = model
        images, labels = tf.constant(images), tf.constant(labels)
        count, size = images.shape[0], batch_size * model.n_critic
        seed = keras.random.SeedGenerator(0)

        @tf.function(jit_compile=jit_compile)
        def step():
            idx = keras.random.randint((size,), 0, count, seed=seed)
            return model.train_step((tf.gather(images, idx), tf.gather(labels, idx)))

        self.step = step

    def iteration(self):
        self.step()


def time_fast_path(model, dataset, iterations, repeats):
    """(first-call seconds, median seconds per generator iteration) of Keras' step."""
    return time_interleaved({"fast": FastPath(model, dataset)}, iterations, repeats)["fast"]


# oneDNN's (formerly MKL's) kernels and TensorFlow's fusions, by what they compute. Keys
# are op types with any `_MklNative`/`_Mkl`/`_` prefix removed (see `canonical_op_type`).
_FUSED_OP_TYPES = {
    "Conv2DWithBias": "Conv2D",  # Conv2D + BiasAdd
    "Conv2DBackpropFilterWithBias": "Conv2DBackpropFilter",  # + the BiasAddGrad
    "PadWithConv2D": "Conv2D",  # Pad + Conv2D
    "PadWithFusedConv2D": "Conv2D",  # Pad + Conv2D + BiasAdd (+ activation)
    "FusedConv2D": "Conv2D",  # Conv2D + BiasAdd (+ activation, ...)
    "FusedConv3D": "Conv3D",
    "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
    "FusedMatMul": "MatMul",  # MatMul + BiasAdd (+ activation)
    "FusedBatchMatMulV2": "BatchMatMulV2",
    "FusedBatchNormEx": "FusedBatchNormV3",  # + side input and activation
    "FusedBatchNormGradEx": "FusedBatchNormGradV3",
}
_ONEDNN_PREFIXES = ("_MklNative", "_Mkl")  # longest first


def canonical_op_type(op_type):
    """TensorFlow's canonical name for an op type as the profiler records it.

    The same model runs different kernels on different machines: with oneDNN (Intel and
    AMD x86 CPUs, on by default on Linux unless `TF_ENABLE_ONEDNN_OPTS=0`) TensorFlow
    rewrites ops into `_MklNative<Op>` or `_Mkl<Op>`, and its graph optimiser fuses an op
    with the bias add or activation after it (`_FusedConv2D`, oneDNN's
    `_MklFusedConv2D`, `Conv2DWithBias`...). So that profiles compare across machines,
    each is reported under the op it computes:

      - `_MklNative<Op>`, `_Mkl<Op>` -> `<Op>`, e.g. `_MklMatMul` -> `MatMul`,
        `_MklNativeFusedBatchNormV3` -> `FusedBatchNormV3` (a canonical op; "Fused" is
        part of its name);
      - then a fusion -> its main op: `Conv2DWithBias`, `FusedConv2D`, `PadWithConv2D`,
        `PadWithFusedConv2D` -> `Conv2D`; `Conv2DBackpropFilterWithBias` ->
        `Conv2DBackpropFilter` (the weight gradient, with the bias gradient folded in);
        `FusedMatMul` -> `MatMul`; `FusedBatchMatMulV2` -> `BatchMatMulV2`;
        `FusedConv3D` -> `Conv3D`; `FusedDepthwiseConv2dNative` ->
        `DepthwiseConv2dNative`; `FusedBatchNormEx` -> `FusedBatchNormV3`;
        `FusedBatchNormGradEx` -> `FusedBatchNormGradV3`; the same for the `_Fused<Op>`
        of TensorFlow's own (non-oneDNN) CPU and GPU fusions.

    Any other type is returned with only the oneDNN prefix removed (`_MklSwish` ->
    `Swish`), or unchanged.
    """
    for prefix in _ONEDNN_PREFIXES:
        if op_type.startswith(prefix) and len(op_type) > len(prefix):
            op_type = op_type[len(prefix):]
            break
    else:
        if not op_type.startswith("_Fused"):
            return op_type
        op_type = op_type[1:]
    return _FUSED_OP_TYPES.get(op_type, op_type)


def profile_ops(model, dataset, iterations, top=8):
    """The op types taking the most time in `iterations` steps (TensorFlow profiler).

    Sums the durations of the kernels the profiler records on the host (events named
    "<op name>:<op type>") by op type, under TensorFlow's canonical name for it
    (`canonical_op_type`: oneDNN's `_MklNativeConv2DBackpropFilterWithBias` counts as
    `Conv2DBackpropFilter`), so profiles of different machines compare. Use a model
    compiled without XLA: XLA fuses the step into clusters the profiler cannot see into.
    Returns `[(type, share)]`, largest first, shares of the total kernel time.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    stepper = FastPath(model, dataset)
    time_stepper(stepper, 1)
    logdir = tempfile.mkdtemp(prefix="cwgan_profile_")
    tf.profiler.experimental.start(logdir)
    try:
        time_stepper(stepper, iterations)
    finally:
        tf.profiler.experimental.stop()
    by_type = collections.Counter()
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            for line in plane.lines:
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if ":" in name and "/" in name:  # a kernel, not a framework event
                        by_type[canonical_op_type(name.rsplit(":", 1)[1])] += (
                            event.duration_ps)
    total = sum(by_type.values()) or 1
    return [(op, ps / total) for op, ps in by_type.most_common(top)]


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
        self.generator_step(*next(self.batches))


def time_textbook(loop, iterations, repeats):
    start = time.perf_counter()
    loop.iteration()
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            loop.iteration()
        sync(loop.model)
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
    if size == 60000 and bench_data.fashion_installed():
        images, labels = load_mnist(data_dir=bench_data.FASHION_DIR, dataset="fashion_mnist")
        return images, labels, "fashion_mnist (dataset-fashion-mnist, 60k)"
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(images_10k), size)
    return images_10k[idx], labels_10k[idx], f"synthetic ({size} resampled MNIST images)"


def time_rounds(steppers, iterations, repeats, warmup):
    """Like `time_interleaved`, with `warmup` untimed iterations before each timed turn
    and the order of the turns reversed every other round.

    A stepper fed by tf.data fills its prefetch buffers while the others run, so without
    a warm-up its turn would begin with ready batches; after it, the turn is timed in the
    pipeline's steady state. Returns `{name: (first-call seconds, [seconds per iteration
    in each round])}`, so that steppers can be compared round by round.
    """
    compile_s = {name: time_stepper(stepper, 1) for name, stepper in steppers.items()}
    times = {name: [] for name in steppers}
    for round_ in range(repeats):
        for name in (list(steppers) if round_ % 2 == 0 else list(steppers)[::-1]):
            time_stepper(steppers[name], warmup)
            times[name].append(time_stepper(steppers[name], iterations))
    return {name: (compile_s[name], times[name]) for name in steppers}


def time_stream(dataset, iterations, repeats, warmup):
    """Median seconds per element of iterating `dataset` alone (no training), after
    `warmup` elements each round."""
    iterator = iter(dataset)
    times = []
    for _ in range(repeats):
        for _ in range(warmup):
            next(iterator)
        start = time.perf_counter()
        for _ in range(iterations):
            next(iterator)  # eager: returns when the element is ready
        times.append((time.perf_counter() - start) / iterations)
    return statistics.median(times)


def measure_folder_pipeline(folders, batch_size=TrainConfig.batch_size,
                            n_critic=TrainConfig.n_critic, width=TrainConfig.width,
                            jit_compile=False, iterations=50, repeats=5,
                            architecture=TrainConfig.architecture,
                            conditioning=TrainConfig.conditioning, memory_steps=None):
    """The input pipeline on image folders: its overhead on the train step, its speed
    alone, and its peak memory as the folder grows.

    Args:
        folders: folders of class folders of images (`cwgan.data.folder`), smallest first;
            the last (largest) is the one timed.
        jit_compile: XLA for the models timed.
        iterations, repeats: timed generator iterations per round, rounds (medians);
            each turn is preceded by `iterations // 10` untimed ones (`time_rounds`).
        memory_steps: training steps streamed by each memory probe. Defaults to one
            pass over the largest folder and 2 more steps (into the second pass).

    Returns:
        A dict: see the module docstring ("folder_pipeline").
    """
    folders = [os.fspath(f) for f in folders]
    in_memory = load_data(data_dir=folders[-1], data_cache="memory")
    on_disk = load_data(data_dir=folders[-1], data_cache="none")
    make = functools.partial(build_bench_model, width, n_critic, jit_compile,
                             architecture=architecture, conditioning=conditioning,
                             image_shape=on_disk.image_shape, num_classes=on_disk.num_classes)
    warmup = max(1, iterations // 10)
    timed = time_rounds({"in_memory": FastPath(make(), in_memory.stream(batch_size, n_critic)),
                         "from_disk": FastPath(make(), on_disk.stream(batch_size, n_critic))},
                        iterations, repeats, warmup)
    del in_memory
    memory_s, disk_s = (statistics.median(timed[fed][1]) for fed in ("in_memory", "from_disk"))
    # Round by round (the two turns of a round are minutes apart at most): a slow spell
    # of the machine that spans a round cancels out.
    overheads = [d / m - 1 for m, d in zip(timed["in_memory"][1], timed["from_disk"][1])]
    step_images = batch_size * n_critic
    stream_s = time_stream(on_disk.stream(batch_size, n_critic), iterations, repeats, warmup)
    steps = memory_steps or len(on_disk) // step_images + 2
    peaks = {}
    for mode, data_cache in (("streamed", "none"), ("in_memory", "memory")):
        probes = [bench_data.peak_memory(f, data_cache, batch_size, n_critic, steps)
                  for f in folders]
        small, large = probes[0], probes[-1]
        difference = large["rise_mib"] - small["rise_mib"]
        extra_images = large["images"] - small["images"]
        peaks[mode] = {
            "by_images": {str(p["images"]): p for p in probes},
            "peak_ratio_largest_vs_smallest": large["peak_mib"] / small["peak_mib"],
            "difference_mib": difference,
            "bytes_per_extra_image": difference * 2**20 / extra_images if extra_images else None}
    return {
        "folder": folders[-1], "images": len(on_disk), "image_shape": list(on_disk.image_shape),
        "batch_size": batch_size, "n_critic": n_critic, "xla": "on" if jit_compile else "off",
        "iterations": iterations, "repeats": repeats, "warmup_iterations": warmup,
        "in_memory": {"compile_seconds": timed["in_memory"][0],
                      "seconds_per_iteration": memory_s},
        "from_disk": {"compile_seconds": timed["from_disk"][0],
                      "seconds_per_iteration": disk_s},
        "overhead_fraction": statistics.median(overheads),
        "overhead_fraction_rounds": overheads,
        "stream_alone": {"seconds_per_step": stream_s, "steps_per_s": 1 / stream_s,
                         "images_per_s": step_images / stream_s,
                         "headroom": memory_s / stream_s},
        "peak_memory": {"steps": steps, **peaks},
    }


def run_pipeline_bench(sizes=(10000, 60000), source="auto", batch_size=TrainConfig.batch_size,
                       n_critic=TrainConfig.n_critic, width=TrainConfig.width, iterations=50,
                       repeats=5, architecture=TrainConfig.architecture,
                       conditioning=TrainConfig.conditioning, jit_compile=None):
    """Builds (once) a folder of PNGs per size in `sizes` (`cwgan.benchmarks.data`) and
    measures the input pipeline on them (`measure_folder_pipeline`).

    `jit_compile=None` takes what `--jit_compile=auto` chooses for this model on this
    machine (measured or cached); `run_bench` passes the faster of its own timings.
    """
    sizes = sorted(set(sizes))
    source = bench_data.resolve_source(source, sizes[-1])
    folders, build_seconds = {}, 0.0
    for size in sizes:
        folders[str(size)], seconds = bench_data.bench_folder(size, source)
        build_seconds += seconds
    xla_from = "given"
    if jit_compile is None:
        jit_compile, _ = auto_jit_compile(
            TrainConfig(batch_size=batch_size, n_critic=n_critic, width=width,
                        architecture=architecture, conditioning=conditioning),
            load_data(data_dir=folders[str(sizes[-1])], data_cache="none"))
        xla_from = "--jit_compile=auto"
    result = measure_folder_pipeline(list(folders.values()), batch_size, n_critic, width,
                                     jit_compile, iterations, repeats, architecture,
                                     conditioning)
    return {"source": source, "folders": folders, "build_seconds": build_seconds,
            "xla_from": xla_from, **result}


def _ratios(timed, first, second, keys):
    """For XLA off and on: the seconds per iteration of steppers `first` and `second`
    and the first over the second, under the three `keys`."""
    ratios = {}
    for mode in ("off", "on"):
        a = timed[f"{first}_xla_{mode}"]["seconds_per_iteration"]
        b = timed[f"{second}_xla_{mode}"]["seconds_per_iteration"]
        ratios[mode] = dict(zip(keys, (a, b, a / b)))
    return ratios


def run_bench(batch_size=TrainConfig.batch_size, n_critic=TrainConfig.n_critic,
              width=TrainConfig.width, iterations=8, repeats=3,
              batch_sizes=(32, 64, 128, 256), data_dir=None, large_size=60000,
              matmul_n=2048, architecture=TrainConfig.architecture,
              conditioning=TrainConfig.conditioning, pipeline=True,
              pipeline_sizes=(10000, 60000), pipeline_source="auto", pipeline_iterations=50,
              pipeline_repeats=5):
    """Runs every measurement and returns the result dict (see the module docstring);
    with `pipeline`, the input pipeline on image folders too (`run_pipeline_bench`)."""
    images, labels = load_mnist(data_dir=data_dir)
    make = functools.partial(build_bench_model, architecture=architecture,
                             conditioning=conditioning)

    result = {"config": {"batch_size": batch_size, "n_critic": n_critic, "width": width,
                         "architecture": architecture, "conditioning": conditioning,
                         **recipe_network_options(architecture),
                         "iterations": iterations, "repeats": repeats,
                         "train_images": len(images), "pipeline": pipeline,
                         "cpu_count": os.cpu_count(),
                         "gpus": len(tf.config.list_physical_devices("GPU")),
                         "tensorflow": tf.__version__, "keras": keras.__version__}}
    per_iteration_images = batch_size * n_critic
    dataset = make_dataset(images, labels, batch_size, n_critic, seed=0)

    def rates(seconds):
        return {"seconds_per_iteration": seconds, "generator_iterations_per_s": 1 / seconds,
                "critic_images_per_s": per_iteration_images / seconds}

    steppers = {}
    for jit in (False, True):
        steppers[f"fast_xla_{'on' if jit else 'off'}"] = FastPath(
            make(width, n_critic, jit), dataset)
        steppers[f"in_graph_xla_{'on' if jit else 'off'}"] = InGraphSampler(
            make(width, n_critic, jit), images, labels, batch_size, jit)
    # The fast path fed one batch over and over: what it costs without any input pipeline.
    steppers["cached_batch_xla_on"] = FastPath(
        make(width, n_critic, True), tf.data.Dataset.from_tensors(next(iter(dataset))))
    # The warm-up schedule past its first 25 iterations: every step updates the generator,
    # but through a conditional (whether it is due is known only inside the step).
    for jit in (False, True):
        warm = make(width, n_critic, jit, n_critic_warmup=100)
        warm.g_optimizer.iterations.assign(WARMUP_ITERATIONS + 5)
        steppers[f"warmup_xla_{'on' if jit else 'off'}"] = FastPath(warm, dataset)
    if architecture == "dcgan":
        for jit in (False, True):
            steppers[f"stock_critic_xla_{'on' if jit else 'off'}"] = FastPath(
                make(width, n_critic, jit, stock_critic=True), dataset)
            steppers[f"upsample_output_xla_{'on' if jit else 'off'}"] = FastPath(
                make(width, n_critic, jit, generator_output="upsample"), dataset)
            steppers[f"norm_conditioning_xla_{'on' if jit else 'off'}"] = FastPath(
                make(width, n_critic, jit, generator_conditioning="norm"), dataset)
    textbook_model = make(width, n_critic, False)
    steppers["textbook"] = TextbookLoop(textbook_model, images, labels, batch_size)
    timed = {name: {"compile_seconds": c, **rates(t)}
             for name, (c, t) in time_interleaved(steppers, iterations, repeats).items()}
    xla = {False: timed["fast_xla_off"], True: timed["fast_xla_on"]}
    fastest = min((False, True), key=lambda j: xla[j]["seconds_per_iteration"])
    result["xla"] = {"off": xla[False], "on": xla[True],
                     "speedup_on_vs_off": xla[False]["seconds_per_iteration"]
                     / xla[True]["seconds_per_iteration"], "faster": "on" if fastest else "off"}
    fast = xla[fastest]
    in_graph = timed[f"in_graph_xla_{'on' if fastest else 'off'}"]
    result["in_graph_sampling"] = {
        "off": timed["in_graph_xla_off"], "on": timed["in_graph_xla_on"],
        "speedup_vs_tf_data": fast["seconds_per_iteration"] / in_graph["seconds_per_iteration"]}
    result["warmup_schedule"] = {
        "off": timed["warmup_xla_off"], "on": timed["warmup_xla_on"],
        "slowdown_xla_off": timed["warmup_xla_off"]["seconds_per_iteration"]
        / xla[False]["seconds_per_iteration"],
        "slowdown_xla_on": timed["warmup_xla_on"]["seconds_per_iteration"]
        / xla[True]["seconds_per_iteration"]}
    if architecture == "dcgan":
        result["critic_layers"] = _ratios(
            timed, "stock_critic", "fast", ("stock_seconds_per_iteration",
                                            "seconds_per_iteration", "speedup_vs_stock"))
        result["generator_output"] = {
            "recipe": result["config"]["generator_output"],
            **_ratios(timed, "fast", "upsample_output", (
                "seconds_per_iteration", "upsample_seconds_per_iteration",
                "cost_vs_upsample"))}
        # Against the fast path: on MNIST's grey images the recipe's label is at the input.
        result["generator_conditioning"] = _ratios(
            timed, "norm_conditioning", "fast", (
                "norm_seconds_per_iteration", "input_seconds_per_iteration",
                "cost_norm_vs_input"))
    textbook = timed["textbook"]
    result["fast_path"] = fast
    result["textbook_loop"] = textbook
    result["speedup_fast_vs_textbook"] = (textbook["seconds_per_iteration"]
                                          / fast["seconds_per_iteration"])
    result["profile_top_ops_xla_off"] = dict(profile_ops(
        make(width, n_critic, False), dataset, iterations))

    cached = timed["cached_batch_xla_on"]["seconds_per_iteration"]
    result["input_pipeline"] = {
        "seconds_per_iteration_cached_batch": cached,
        "overhead_fraction": xla[True]["seconds_per_iteration"] / cached - 1}

    # What the CLI's --jit_compile=auto chooses for these networks and batch (from the
    # same cache, so a bench run also settles it for later training runs).
    auto, record = auto_jit_compile(TrainConfig(
        batch_size=batch_size, n_critic=n_critic, width=width, architecture=architecture,
        conditioning=conditioning))
    result["xla"]["auto"] = {"chose": "on" if auto else "off",
                             "measured": record["measured"],
                             "seconds_xla_on": record["seconds_xla_on"],
                             "seconds_xla_off": record["seconds_xla_off"],
                             "agrees_with_interleaved": auto == fastest}

    model = make(width, n_critic, fastest)
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
    if pipeline:  # after peak_rss_mib: it holds the largest folder's images in memory
        result["folder_pipeline"] = run_pipeline_bench(
            pipeline_sizes, pipeline_source, batch_size, n_critic, width,
            pipeline_iterations, pipeline_repeats, architecture, conditioning,
            jit_compile=fastest) | {"xla_from": "the faster of XLA on and off above"}
    return result


def table(result):
    """The result as a few lines of text: the step's figures (unless the run measured
    only the input pipeline), then the input pipeline's (when measured)."""
    lines = _step_lines(result) if "fast_path" in result else []
    if "folder_pipeline" in result:
        lines += pipeline_lines(result["folder_pipeline"])
    return "\n".join(lines)


def pipeline_lines(p):
    """`table`'s lines for `result["folder_pipeline"]`."""
    h, w, c = p["image_shape"]
    rounds = p["overhead_fraction_rounds"]
    lines = [
        f"input pipeline on {p['images']} PNGs ({p['source']}, {h}x{w}x{c}), batch "
        f"{p['batch_size']} x n_critic {p['n_critic']}, XLA {p['xla']} "
        f"({p['xla_from']}):",
        f"  s/iter fed from memory {p['in_memory']['seconds_per_iteration']:.4f}, "
        f"streamed from disk {p['from_disk']['seconds_per_iteration']:.4f}: overhead "
        f"{100 * p['overhead_fraction']:.1f}% (median of {len(rounds)} rounds, "
        f"{100 * min(rounds):.1f}% to {100 * max(rounds):.1f}%; issue 13's target: under "
        "10%)",
        f"  disk stream alone: {p['stream_alone']['steps_per_s']:.1f} steps/s "
        f"({p['stream_alone']['images_per_s']:.0f} images/s), "
        f"{p['stream_alone']['headroom']:.1f}x what the step consumes",
    ]
    for mode, what in (("streamed", "streamed from disk"), ("in_memory", "held in memory")):
        m = p["peak_memory"][mode]
        line = f"  peak RSS, {p['peak_memory']['steps']} steps {what}: " + ", ".join(
            f"{n} images {v['peak_mib']:.0f} MiB (+{v['rise_mib']:.0f}, listing+check "
            f"+{v['rise_mib_load']:.0f})" for n, v in m["by_images"].items())
        line += f"; largest vs smallest {m['peak_ratio_largest_vs_smallest']:.3f}x"
        if m["bytes_per_extra_image"] is not None:
            line += (f", {m['difference_mib']:+.1f} MiB: "
                     f"{m['bytes_per_extra_image']:.0f} bytes per extra image")
        lines.append(line)
    return lines


def _step_lines(result):
    f, t = result["fast_path"], result["textbook_loop"]
    lines = [
        f"{'':28s}{'s/iter':>10s}{'iter/s':>9s}{'critic img/s':>14s}",
        f"{'fast path (XLA ' + result['xla']['faster'] + ')':28s}"
        f"{f['seconds_per_iteration']:10.4f}{f['generator_iterations_per_s']:9.2f}"
        f"{f['critic_images_per_s']:14.0f}",
        f"{'textbook loop':28s}{t['seconds_per_iteration']:10.4f}"
        f"{t['generator_iterations_per_s']:9.2f}{t['critic_images_per_s']:14.0f}",
        f"{'in-graph batch indices':28s}"
        f"{result['in_graph_sampling'][result['xla']['faster']]['seconds_per_iteration']:10.4f}",
        f"fast vs textbook: {result['speedup_fast_vs_textbook']:.2f}x; "
        f"XLA on vs off: {result['xla']['speedup_on_vs_off']:.2f}x (--jit_compile=auto "
        f"chose {result['xla']['auto']['chose']}, {result['xla']['auto']['measured']}); "
        f"in-graph indices vs "
        f"tf.data: {result['in_graph_sampling']['speedup_vs_tf_data']:.2f}x; "
        f"input pipeline overhead: {100 * result['input_pipeline']['overhead_fraction']:.1f}%",
        *([f"the critic's own layers vs stock layers (the same function): "
           f"{result['critic_layers']['off']['speedup_vs_stock']:.2f}x with XLA off, "
           f"{result['critic_layers']['on']['speedup_vs_stock']:.2f}x on"]
          if "critic_layers" in result else []),
        *([f"the recipe's generator output ({result['generator_output']['recipe']}) vs the "
           f"last transposed convolution: "
           f"{result['generator_output']['off']['cost_vs_upsample']:.2f}x the time with "
           f"XLA off, {result['generator_output']['on']['cost_vs_upsample']:.2f}x on"]
          if "generator_output" in result else []),
        *([f"class-conditional batch norm in the generator (colour images' recipe) vs the "
           f"label at the input only (grey images'): "
           f"{result['generator_conditioning']['off']['cost_norm_vs_input']:.2f}x the time "
           f"with XLA off, {result['generator_conditioning']['on']['cost_norm_vs_input']:.2f}x "
           "on"]
          if "generator_conditioning" in result else []),
        f"--n_critic_warmup's conditional step vs the plain one: "
        f"{result['warmup_schedule']['slowdown_xla_on']:.2f}x the time with XLA, "
        f"{result['warmup_schedule']['slowdown_xla_off']:.2f}x without",
        "top op types (XLA off): " + ", ".join(
            f"{op} {100 * share:.0f}%" for op, share in result["profile_top_ops_xla_off"].items()),
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
    return lines
