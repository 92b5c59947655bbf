"""Whether to XLA-compile the train step here: what `jit_compile="auto"` decides.

XLA's gain is a property of the machine and the model, not of cwgan: it made the recipe's
step faster on one 2-core CPU and slower on another (docs/results.md). So "auto"
measures: it builds two throwaway copies of the model, one per setting, runs each once
to compile it, then times `steps` steps of each in turn for `rounds` rounds (compile
time excluded; interleaved so that a slow spell of the machine hits both) and keeps the
faster median. The step's cost does not depend on the pixel values, so the
timing feeds random images of the run's shapes and touches neither the data nor the
run's own model.

The choice is cached per machine and model shape (a JSON file in
`cwgan.utils.cache.cache_dir()`, e.g. ~/.cache/cwgan), so only the first run of
a shape on a machine pays for the measuring; see `machine_fingerprint` for what "machine"
covers. The timing helpers (`FastPath`, `time_interleaved`) also serve `cwgan.bench`.
"""

import hashlib
import json
import logging
import os
import platform
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from cwgan.model.wgan import WARMUP_ITERATIONS
from cwgan.training.checkpoints import read_json, write_json
from cwgan.utils.cache import cache_dir

logger = logging.getLogger("cwgan")

CACHE_FILE = "xla_choice.json"
# Part of the cache key: raised when cwgan changes what a step computes, so that choices
# measured on the old step are measured again (2: the critic's own layers, which cut the
# critic's cost and moved the balance between XLA on and off).
STEP_VERSION = 2
JIT_CHOICES = ("auto", True, False)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_fingerprint():
    """What makes XLA's gain differ between machines: the CPU, the core count, the
    accelerators, the TensorFlow and Keras versions, and oneDNN's switch."""
    gpus = [tf.config.experimental.get_device_details(d).get("device_name", d.name)
            for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": _cpu_model(), "arch": platform.machine(), "cores": os.cpu_count(),
            "gpus": gpus, "tensorflow": tf.__version__, "keras": keras.__version__,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")}


def _key(shape):
    text = json.dumps({"machine": machine_fingerprint(), "model": shape,
                       "step_version": STEP_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sync(model):
    """Waits for the model's dispatched steps to finish."""
    model.generator_iterations.numpy()


class FastPath:
    """Keras' compiled step (`model.train_function`) fed by a dataset, as `fit` runs it."""

    def __init__(self, model, dataset):
        self.model = model
        self.iterator = iter(dataset.repeat())
        model.make_train_function()

    def iteration(self):
        self.model.train_function(self.iterator)


def time_stepper(stepper, iterations):
    """Seconds per iteration of `stepper` (anything with `.iteration()` and `.model`)."""
    start = time.perf_counter()
    for _ in range(iterations):
        stepper.iteration()
    sync(stepper.model)
    return (time.perf_counter() - start) / iterations


def time_interleaved(steppers, iterations, repeats):
    """{name: (first-call seconds, median seconds per iteration)}, timed in turn.

    The first call of each stepper (tracing and compiling) is timed apart. Then each round
    times `iterations` iterations of every stepper, one after the other, so drift in the
    machine's speed affects them all; medians over `repeats` rounds.
    """
    compile_s, times = {}, {name: [] for name in steppers}
    for name, stepper in steppers.items():
        compile_s[name] = time_stepper(stepper, 1)
    for _ in range(repeats):
        for name, stepper in steppers.items():
            times[name].append(time_stepper(stepper, iterations))
    return {name: (compile_s[name], statistics.median(times[name])) for name in steppers}


def choose_jit_compile(make_model, shape, batch_size, classes, steps=10, rounds=3,
                       use_cache=True):
    """True if the XLA-compiled train step is the faster here, measured or cached.

    Args:
        make_model: `make_model(jit_compile)` returns a new compiled `ConditionalWGAN`
            of the run's shapes (its weights are thrown away).
        shape: a JSON-able dict of everything that shapes the step (networks, batch,
            n_critic, ...): the cache key, with `machine_fingerprint()`.
        batch_size: images per critic batch.
        classes: the labels trained on.
        steps, rounds: timed steps per round, rounds; the medians are compared.
        use_cache: read and write the cache. Defaults to True.

    Returns:
        `(jit_compile, record)`, the record holding both timings (seconds per step),
        whether they were measured now or cached, and the cache file.
    """
    path = os.path.join(cache_dir(), CACHE_FILE)
    key = _key(shape)
    cache = {}
    if use_cache and os.path.exists(path):
        try:
            cache = read_json(path)
        except (OSError, ValueError) as e:
            logger.warning("Ignoring the unreadable XLA cache %s (%s).", path, e)
    if key in cache:
        return cache[key]["jit_compile"], dict(cache[key], measured="cached", cache=path)
    models = {jit: make_model(jit) for jit in (False, True)}
    n_critic = models[False].n_critic
    rng = np.random.default_rng(0)
    count = n_critic * batch_size
    element = (rng.uniform(-1, 1, (count,) + tuple(models[False].generator.output.shape[1:]))
               .astype(np.float32),
               rng.choice(np.asarray(classes, np.int32), count))
    dataset = tf.data.Dataset.from_tensors(element)
    for model in models.values():
        if model.n_critic_warmup:
            # Past the warm-up's first iterations: the step with its conditional generator
            # update, as nearly all of a run's steps are.
            model.g_optimizer.iterations.assign(WARMUP_ITERATIONS + 5)
    timed = {name: seconds for name, (_, seconds) in time_interleaved(
        {"off": FastPath(models[False], dataset), "on": FastPath(models[True], dataset)},
        steps, rounds).items()}
    record = {"jit_compile": timed["on"] < timed["off"], "seconds_xla_on": timed["on"],
              "seconds_xla_off": timed["off"], "measured_at": time.strftime("%Y-%m-%d %H:%M"),
              "shape": shape}
    if use_cache:
        try:
            os.makedirs(cache_dir(), exist_ok=True)
            write_json(path, {**cache, key: record})
        except OSError as e:
            logger.warning("Could not cache the XLA choice in %s (%s).", path, e)
    return record["jit_compile"], dict(record, measured="now", cache=path)


def describe(record):
    """One line: the choice and both timings, e.g. for the training log."""
    return (f"XLA {'on' if record['jit_compile'] else 'off'} (jit_compile=auto: "
            f"{record['seconds_xla_on']:.4f} s/step with XLA, {record['seconds_xla_off']:.4f} "
            f"without, {'measured now' if record['measured'] == 'now' else 'cached'} "
            f"in {record['cache']})")
