"""Training under tf.distribute: MirroredStrategy equals one device; workers agree.

Logical CPU devices and multi-worker collectives must be set up before TensorFlow
initialises, which in the pytest process it has long done. So the distributed runs happen
in fresh Pythons: this file run as a script is the child (`python test_distribute.py
mirrored OUT`, or `worker OUT` with TF_CONFIG set), writing its results to OUT; the tests
check them.
"""

import json
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pytest

import cwgan
from conftest import PYTHON, TEST_DATA, subprocess_env
from cwgan.distribute import make_strategy, replica_batch_size

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

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * REPLICAS)
    import keras

    images, labels = cwgan.load_mnist(data_dir=TEST_DATA)
    n = STEPS * N_CRITIC * BATCH_SIZE
    images, labels = images[:n], labels[:n]
    keras.utils.set_random_seed(0)
    initial = tuple(network.get_weights() for network in _tiny_networks())
    one = _tiny_model(make_strategy("none"), 0, initial)
    one_history = one.fit(_steps(images, labels), epochs=2, verbose=0)
    strategy = make_strategy("mirrored")
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
    """Runs this file as one child per environment in `envs`, all at once."""
    _run_all([[PYTHON, os.path.abspath(__file__), role, str(out)]] * len(envs), envs, role)


def _run_all(commands, envs, what):
    """Runs `commands[i]` with `envs[i]`, all at once; fails with the stderr of any failure."""
    children = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
                for command, env in zip(commands, envs)]
    errors = []
    for child in children:
        try:
            _, stderr = child.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for c in children:
                c.kill()
            pytest.fail(f"{what} children still running after {TIMEOUT} s")
        if child.returncode:
            errors.append(stderr[-3000:])
    assert not errors, "\n\n".join(errors)


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
    _run_children(out, "mirrored", [subprocess_env()])
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


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_workers_finish_with_identical_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    envs = [dict(subprocess_env(), TF_CONFIG=json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}))
        for i in range(len(workers))]
    _run_children(tmp_path, "worker", envs)
    results = [_load(tmp_path / f"worker{i}.npz") for i in range(len(workers))]
    assert int(results[0]["num_replicas"]) == len(workers)
    assert results[0].keys() == results[1].keys()
    for name in results[0]:
        np.testing.assert_array_equal(results[1][name], results[0][name], err_msg=name)
        if name.startswith("critic_"):
            assert np.abs(results[0][name]).max() <= CLIP_VALUE + 1e-7, name
    histories = []
    for i in range(len(workers)):
        with open(tmp_path / f"history{i}.json") as f:
            histories.append(json.load(f))
    assert histories[0] == histories[1]
    assert set(histories[0]) == {"critic_loss", "generator_loss", "wasserstein_estimate"}


def test_the_cli_trains_on_two_workers_and_only_the_chief_writes(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    ckpt = tmp_path / "run"
    commands = [[PYTHON, "-m", "cwgan.train", "--digits=3,7", "--epochs=2",
                 "--steps_per_epoch=3", "--batch_size=4", "--n_critic=2", "--latent_dim=16",
                 "--width=8", f"--data_dir={TEST_DATA}", "--strategy=multi_worker",
                 "--max_minutes=10", f"--checkpoint_dir={ckpt if i == 0 else tmp_path / 'w1'}"]
                for i in range(2)]
    _run_all(commands, [dict(subprocess_env(), TF_CONFIG=json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}))
        for i in range(2)], "cwgan.train")
    info = json.loads((ckpt / "generator.json").read_text())
    assert (info["epoch"], info["generator_iterations"]) == (2, 6)
    assert (ckpt / "samples" / "grid_0002.png").is_file()
    assert not (tmp_path / "w1").exists()  # worker 1 wrote nothing


if __name__ == "__main__":
    {"mirrored": _child_mirrored, "worker": _child_worker}[sys.argv[1]](sys.argv[2])
