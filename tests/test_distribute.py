"""Training under tf.distribute: MirroredStrategy equals one device; workers agree.

Logical CPU devices and multi-worker collectives must be set up before TensorFlow
initialises, which in the pytest process it has long done. So the distributed runs happen
in fresh Pythons: this file run as a script is the child (`python test_distribute.py
mirrored OUT`, or `worker OUT` with TF_CONFIG set), writing its results to OUT; the tests
check them.

The children compute on logical CPU devices only: GPUs are hidden from them (a GPU's
kernels would not match the one-CPU-device run's numbers, and two workers on one machine
must not share a GPU), and the mirrored run names its devices rather than taking
whatever `make_strategy("mirrored")` finds on the machine.
"""

import errno
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import types

import numpy as np
import pytest

import cwgan
from conftest import PYTHON, TEST_DATA, cpu_only_env, cpu_only_module
from cwgan.training.distribute import make_strategy, replica_batch_size

REPLICAS = 2
LATENT_DIM = 8
N_CRITIC = 2
BATCH_SIZE = 8  # global: 4 per replica
STEPS = 2  # per pass over the mirrored test's data
CLIP_VALUE = 0.05
# SGD, not the default RMSprop: RMSprop divides each update by the gradient's RMS, so a
# gradient twice too large (losses summed over replicas, not averaged) would move the
# weights almost exactly as the right one. SGD's steps are proportional to the gradient.
LEARNING_RATE = 0.05
TIMEOUT = 180  # seconds; a hung collective must fail the test, not stall the suite
PORT_ATTEMPTS = 3  # multi-worker runs, each with fresh ports, while a port was taken
# What a worker prints when its gRPC server cannot bind its port.
ADDRESS_IN_USE = ("Could not start gRPC server", "Address already in use",
                  "Failed to add port")


def _tiny_networks():
    """conftest's tiny networks, with the generator's batch norm synchronised.

    Per-replica batch statistics are a property of the network (Keras' default), not of
    the train step; synchronised ones make the generator compute on R replicas what it
    computes on one device, so that the two runs can be compared weight for weight.
    """
    import keras

    generator = cwgan.build_generator(LATENT_DIM, width=8, embedding_dim=4)
    config = generator.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "BatchNormalization":
            layer["config"]["synchronized"] = True
    return keras.Model.from_config(config), cwgan.build_critic(width=8)


def _tiny_model(strategy, seed, initial_weights=None):
    """The tiny model built and compiled (SGD, no XLA) under `strategy`."""
    import keras

    with strategy.scope():
        generator, critic = _tiny_networks()
        if initial_weights is not None:
            generator.set_weights(initial_weights[0])
            critic.set_weights(initial_weights[1])
        model = cwgan.ConditionalWGAN(generator, critic, latent_dim=LATENT_DIM,
                                      n_critic=N_CRITIC, clip_value=CLIP_VALUE, seed=seed)
        # No XLA on one device either: XLA draws other random numbers for the same seed.
        model.compile(g_optimizer=keras.optimizers.SGD(LEARNING_RATE),
                      c_optimizer=keras.optimizers.SGD(LEARNING_RATE), jit_compile=False)
    return model


def _steps(images, labels):
    """The data as a dataset of training steps, in order."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(
        N_CRITIC * BATCH_SIZE, drop_remainder=True)


def _replica_major(array):
    """Reorders each step so that replica r gets what one device gives its rows r.

    One device splits a step's `N_CRITIC * BATCH_SIZE` images into N_CRITIC consecutive
    batches; under a strategy each replica receives a contiguous 1/R of the step and
    splits that into N_CRITIC batches. Both are fine on shuffled data; for a weight-for-
    weight comparison the mirrored run gets the same images in replica-major order.
    """
    shape = array.shape
    per_replica = BATCH_SIZE // REPLICAS
    steps = array.reshape((-1, N_CRITIC, REPLICAS, per_replica) + shape[1:])
    return steps.swapaxes(1, 2).reshape(shape)


def _child_mirrored(out):
    """One device vs MirroredStrategy over two logical CPUs, from the same weights; then
    the one-device model saved and resumed under the strategy."""
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")  # also on CUDA_VISIBLE_DEVICES-blind stacks
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * REPLICAS)
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(cpus) == REPLICAS, cpus
    import keras

    images, labels = cwgan.load_mnist(data_dir=TEST_DATA)
    n = STEPS * N_CRITIC * BATCH_SIZE
    images, labels = images[:n], labels[:n]
    keras.utils.set_random_seed(0)
    initial = tuple(network.get_weights() for network in _tiny_networks())
    one = _tiny_model(make_strategy("none"), 0, initial)
    one_history = one.fit(_steps(images, labels), epochs=2, verbose=0)
    strategy = make_strategy("mirrored", devices=cpus)
    mirrored = _tiny_model(strategy, 0, initial)
    mirrored_steps = _steps(_replica_major(images), _replica_major(labels))
    mirrored_history = mirrored.fit(mirrored_steps, epochs=2, verbose=0)

    arrays = {"num_replicas": strategy.num_replicas_in_sync}
    for name, model in (("one", one), ("mirrored", mirrored)):
        for network in ("generator", "critic"):
            for i, w in enumerate(getattr(model, network).get_weights()):
                arrays[f"{name}_{network}_{i}"] = w
    for i, variable in enumerate(mirrored.critic.trainable_variables):
        for r, copy in enumerate(strategy.experimental_local_results(variable.value)):
            arrays[f"copy{r}_critic_{i}"] = copy.numpy()

    path = os.path.join(out, "one.keras")
    one.save(path)
    with strategy.scope():
        resumed = keras.saving.load_model(path)
    arrays["resumed_copies"] = len(strategy.experimental_local_results(
        resumed.critic.trainable_variables[0].value))
    arrays["resumed_iterations_before"] = int(resumed.generator_iterations.numpy())
    resumed.fit(mirrored_steps, epochs=1, verbose=0)
    arrays["resumed_iterations_after"] = int(resumed.generator_iterations.numpy())

    try:
        with strategy.scope():
            cwgan.ConditionalWGAN(*_tiny_networks(), latent_dim=LATENT_DIM,
                                  n_critic=N_CRITIC, n_critic_warmup=4)
        arrays["warmup_error"] = ""
    except ValueError as e:
        arrays["warmup_error"] = str(e)

    np.savez(os.path.join(out, "mirrored.npz"), **arrays)
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump({"one": one_history.history, "mirrored": mirrored_history.history}, f)


def _child_worker(out):
    """One worker of a MultiWorkerMirroredStrategy run (its task comes from TF_CONFIG)."""
    import keras
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")  # two workers on one machine: CPU only
    strategy = make_strategy("multi_worker")  # first: before TensorFlow runs an op
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    images, labels = cwgan.load_mnist(data_dir=TEST_DATA)
    # Each worker starts from its own random weights and seed, and gets its own half of
    # every batch: they can only end equal if the strategy syncs the initial values
    # (from worker 0) and every update.
    keras.utils.set_random_seed(index)
    model = _tiny_model(strategy, seed=index)
    history = model.fit(cwgan.make_dataset(images, labels, BATCH_SIZE, N_CRITIC, seed=0),
                        steps_per_epoch=3, epochs=1, verbose=0)
    arrays = {"num_replicas": strategy.num_replicas_in_sync}
    for network in ("generator", "critic"):
        for i, w in enumerate(getattr(model, network).get_weights()):
            arrays[f"{network}_{i}"] = w
    np.savez(os.path.join(out, f"worker{index}.npz"), **arrays)
    with open(os.path.join(out, f"history{index}.json"), "w") as f:
        json.dump(history.history, f)


def _run_children(out, role, envs):
    """Runs this file as one child per environment in `envs`, all at once; fails with the
    stderr of any that fails."""
    errors = _run_all([[PYTHON, os.path.abspath(__file__), role, str(out)]] * len(envs),
                      envs, out, f"the {role} children")
    assert not errors, "\n\n".join(errors)


def _run_all(commands, envs, cwd, what):
    """Runs `commands[i]` with `envs[i]` in `cwd`, all at once; returns the stderr of each
    that failed (empty when all succeeded). When one fails the others are stopped (a
    worker waits for its peers forever); after TIMEOUT seconds the test fails."""
    logs = [tempfile.TemporaryFile(mode="w+") for _ in commands]
    children = [subprocess.Popen(command, env=env, cwd=str(cwd), stdout=subprocess.DEVNULL,
                                 stderr=log, text=True)
                for command, env, log in zip(commands, envs, logs)]
    deadline = time.monotonic() + TIMEOUT
    try:
        while any(c.poll() is None for c in children):
            if any(c.poll() for c in children):  # one failed: do not wait for the rest
                break
            if time.monotonic() > deadline:
                pytest.fail(f"{what} still running after {TIMEOUT} s")
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
    errors = []
    for child, log in zip(children, logs):
        log.seek(0)
        if child.returncode > 0:  # failed by itself, not killed above
            errors.append(log.read()[-3000:])
        log.close()
    if not errors and any(c.returncode for c in children):
        errors.append("children killed (a signal) before they finished")
    return errors


def _ephemeral_ports():
    """The OS's range of ports it hands out to clients and to bind(port 0)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(v) for v in f.read().split())
        return range(low, high + 1)
    except (OSError, ValueError):
        return range(49152, 65536)  # IANA's dynamic range: the default of macOS, Windows


def _binds(port):
    """Whether `port` is free on every interface (a worker's gRPC server binds them all),
    IPv4 and, where the machine has it, IPv6."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("0.0.0.0", port))
    except OSError:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::", port))
    except OSError as e:
        return e.errno not in (errno.EADDRINUSE, errno.EACCES)  # else: no IPv6 here
    return True


def _free_ports(n):
    """`n` distinct ports that bind now, from 20000-65535 outside the OS's ephemeral range.

    A port of the ephemeral range (what binding port 0 gives) can be handed to any
    process's outgoing connection between our check and the worker binding it; outside
    that range only a process choosing that very number can take it (and below 20000 are
    most registered services). Drawn with SystemRandom (tests seed Python's `random`,
    which would give concurrent test runs the same ports); `_run_cluster` retries with new
    ports when a worker could not bind its port anyway.
    """
    ephemeral = _ephemeral_ports()
    candidates = [p for p in range(20000, 65536) if p not in ephemeral] or range(1024, 65536)
    rng, ports = random.SystemRandom(), []
    while len(ports) < n:
        port = rng.choice(candidates)
        if port not in ports and _binds(port):
            ports.append(port)
    return ports


def _run_cluster(start, what, workers=2):
    """Runs a multi-worker cluster on this machine; returns the attempt that succeeded.

    `start(addresses, attempt)` returns `(commands, envs, cwd)` for one run with workers
    at `addresses`; it is called again with fresh ports (up to PORT_ATTEMPTS times) when a
    worker fails because its port was taken meanwhile.
    """
    port_errors = []
    for attempt in range(PORT_ATTEMPTS):
        addresses = [f"127.0.0.1:{port}" for port in _free_ports(workers)]
        commands, envs, cwd = start(addresses, attempt)
        errors = _run_all(commands, envs, cwd, what)
        if not errors:
            return attempt
        if not any(marker in e for e in errors for marker in ADDRESS_IN_USE):
            pytest.fail(f"{what} failed:\n\n" + "\n\n".join(errors))
        port_errors.append(f"attempt {attempt + 1}, {addresses}:\n" + "\n".join(errors))
    pytest.fail(f"{what}: a worker could not bind its port in {PORT_ATTEMPTS} attempts, "
                "each with fresh free ports (something else keeps taking them):\n\n"
                + "\n\n".join(port_errors))


def _tf_config(addresses, index):
    return json.dumps({"cluster": {"worker": addresses},
                       "task": {"type": "worker", "index": index}})


def _load(path):
    with np.load(path) as f:
        return dict(f)


def test_make_strategy_rejects_an_unknown_name():
    with pytest.raises(ValueError, match=r"Invalid value for argument `strategy`\. "
                                         r"Received: strategy='tpu'\. Expected one of"):
        make_strategy("tpu")


def test_make_strategy_none_is_one_device():
    assert make_strategy("none").num_replicas_in_sync == 1


def test_replica_batch_size_splits_the_global_batch_evenly():
    four = types.SimpleNamespace(num_replicas_in_sync=4)  # all the function reads
    assert replica_batch_size(64, four) == 16
    with pytest.raises(ValueError, match=r"batch_size=30 with 4 replicas\. Expected a "
                                         r"multiple of 4"):
        replica_batch_size(30, four)


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory):
    """The output directory of one `_child_mirrored` run."""
    out = tmp_path_factory.mktemp("mirrored")
    _run_children(out, "mirrored", [cpu_only_env()])
    return out


def test_mirrored_on_two_devices_trains_as_one_device_on_the_global_batch(mirrored_run):
    arrays = _load(mirrored_run / "mirrored.npz")
    assert int(arrays["num_replicas"]) == REPLICAS
    names = [k[len("one_"):] for k in arrays if k.startswith("one_")]
    assert any(n.startswith("generator_") for n in names)
    assert any(n.startswith("critic_") for n in names)
    for name in names:
        np.testing.assert_allclose(arrays[f"mirrored_{name}"], arrays[f"one_{name}"],
                                   rtol=1e-4, atol=1e-6, err_msg=name)
    # The logged losses are global means, not a replica's share of them.
    with open(mirrored_run / "history.json") as f:
        history = json.load(f)
    assert set(history["mirrored"]) == {"critic_loss", "generator_loss",
                                        "wasserstein_estimate"}
    for key, values in history["one"].items():
        np.testing.assert_allclose(history["mirrored"][key], values, rtol=1e-3, atol=1e-7,
                                   err_msg=key)


def test_mirrored_clips_every_replicas_copy_of_the_critic(mirrored_run):
    arrays = _load(mirrored_run / "mirrored.npz")
    names = [k[len("one_"):] for k in arrays if k.startswith("one_critic_")]
    for name in names:
        copies = [arrays[f"copy{r}_{name}"] for r in range(REPLICAS)]
        for copy in copies:
            assert np.abs(copy).max() <= CLIP_VALUE + 1e-7, name
            np.testing.assert_array_equal(copy, copies[0], err_msg=name)
    # The clip was active: the updates pushed weights onto the faces of the box.
    assert any(np.isclose(np.abs(arrays[f"copy1_{name}"]), CLIP_VALUE).any()
               for name in names)


def test_a_saved_model_resumes_under_mirrored_strategy(mirrored_run):
    arrays = _load(mirrored_run / "mirrored.npz")
    assert int(arrays["resumed_copies"]) == REPLICAS
    assert int(arrays["resumed_iterations_before"]) == 2 * STEPS
    assert int(arrays["resumed_iterations_after"]) == 3 * STEPS


def test_the_warmup_schedule_is_refused_on_several_replicas(mirrored_run):
    error = str(_load(mirrored_run / "mirrored.npz")["warmup_error"])
    assert "n_critic_warmup=4 cannot run on 2 replicas" in error


def test_multi_worker_mirrored_workers_finish_with_identical_weights(tmp_path):
    workers = range(2)

    def start(addresses, attempt):
        out = tmp_path / f"attempt{attempt}"
        out.mkdir()
        command = [PYTHON, os.path.abspath(__file__), "worker", str(out)]
        return ([command] * len(workers),
                [dict(cpu_only_env(), TF_CONFIG=_tf_config(addresses, i)) for i in workers],
                out)

    out = tmp_path / f"attempt{_run_cluster(start, 'the worker children', len(workers))}"
    results = [_load(out / f"worker{i}.npz") for i in workers]
    assert int(results[0]["num_replicas"]) == len(workers)
    assert results[0].keys() == results[1].keys()
    for name in results[0]:
        np.testing.assert_array_equal(results[1][name], results[0][name], err_msg=name)
        if name.startswith("critic_"):
            assert np.abs(results[0][name]).max() <= CLIP_VALUE + 1e-7, name
    histories = []
    for i in workers:
        with open(out / f"history{i}.json") as f:
            histories.append(json.load(f))
    assert histories[0] == histories[1]
    assert set(histories[0]) == {"critic_loss", "generator_loss", "wasserstein_estimate"}


def test_the_cli_trains_on_two_workers_and_only_the_chief_writes(tmp_path):
    def start(addresses, attempt):
        out = tmp_path / f"attempt{attempt}"
        out.mkdir()
        commands = [cpu_only_module(
            "cwgan.train", "--digits=3,7", "--steps=6", "--steps_per_epoch=3",
            "--batch_size=4", "--n_critic=2", "--latent_dim=16", "--width=8",
            f"--data_dir={TEST_DATA}", "--strategy=multi_worker", "--max_minutes=10",
            f"--checkpoint_dir={out / 'run' if i == 0 else out / 'w1'}") for i in range(2)]
        return (commands, [dict(cpu_only_env(), TF_CONFIG=_tf_config(addresses, i))
                           for i in range(2)], out)

    out = tmp_path / f"attempt{_run_cluster(start, 'cwgan.train on two workers')}"
    ckpt = out / "run"
    info = json.loads((ckpt / "generator.json").read_text())
    assert (info["epoch"], info["generator_iterations"]) == (2, 6)
    assert (ckpt / "samples" / "grid_0002.png").is_file()
    assert not (out / "w1").exists()  # worker 1 wrote nothing


if __name__ == "__main__":
    {"mirrored": _child_mirrored, "worker": _child_worker}[sys.argv[1]](sys.argv[2])
