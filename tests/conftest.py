"""Shared fixtures: tiny real data shipped in tests/data, tiny models, a trained checkpoint."""

import atexit
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Tests read nothing outside their own temporary directories: not the user's Keras config
# and dataset cache ($KERAS_HOME, else ~/.keras: keras.json could change the backend or
# the float type), nor cwgan's cache ($CWGAN_CACHE_DIR, else ~/.cache/cwgan: the judge
# classifier, the XLA choice), nor the user's $CWGAN_CHECKPOINT_DIR. Set before Keras is
# imported; children inherit them (subprocess_env copies os.environ), and a child that
# imports this file keeps its parent's directory.
if "CWGAN_TESTS_TMP" not in os.environ:
    os.environ["CWGAN_TESTS_TMP"] = tempfile.mkdtemp(prefix="cwgan-tests-")
    atexit.register(shutil.rmtree, os.environ["CWGAN_TESTS_TMP"], ignore_errors=True)
os.environ["KERAS_HOME"] = os.path.join(os.environ["CWGAN_TESTS_TMP"], "keras")
os.environ["CWGAN_CACHE_DIR"] = os.path.join(os.environ["CWGAN_TESTS_TMP"], "cache")
os.environ.pop("CWGAN_CHECKPOINT_DIR", None)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import cwgan  # noqa: E402


def _split_cpu():
    """CWGAN_TEST_LOGICAL_CPUS=N (opt-in): the CPU split into N logical devices.

    `CWGAN_TEST_LOGICAL_CPUS=2 python -m pytest tests` runs the suite with a second
    device beside /cpu:0, to check that no test (and no code under test) assumes a single
    device. It must happen before TensorFlow initialises its devices, so here, at import.
    Children started with `subprocess_env()` do not inherit it: they set up their own
    devices.
    """
    value = os.environ.get("CWGAN_TEST_LOGICAL_CPUS", "")
    if not value:
        return
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"CWGAN_TEST_LOGICAL_CPUS={value!r}: expected a positive integer.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * int(value))
    except RuntimeError as e:
        raise RuntimeError(f"CWGAN_TEST_LOGICAL_CPUS={value}: TensorFlow initialised its "
                           f"devices before tests/conftest.py could split the CPU ({e}).")


_split_cpu()

TEST_DATA = os.path.join(os.path.dirname(__file__), "data")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def data():
    """The first 200 MNIST training images (all ten classes), in [-1, 1]."""
    return cwgan.load_mnist(data_dir=TEST_DATA)


def tiny_model(n_critic=2, clip_value=0.01, classes=None, latent_dim=8, seed=0,
               jit_compile=False, n_critic_warmup=0):
    """A small ConditionalWGAN; without XLA by default (compiles faster; XLA, the default
    of compile(), is tested explicitly in test_model.py)."""
    keras.utils.set_random_seed(seed)
    model = cwgan.ConditionalWGAN(
        generator=cwgan.build_generator(latent_dim, width=8, embedding_dim=4),
        critic=cwgan.build_critic(width=8),
        latent_dim=latent_dim, classes=classes, n_critic=n_critic,
        clip_value=clip_value, seed=seed, n_critic_warmup=n_critic_warmup)
    model.compile(jit_compile=jit_compile)
    return model


@pytest.fixture(scope="session")
def checkpoint_37(tmp_path_factory):
    """A checkpoint directory of a generator trained briefly on digits 3 and 7."""
    directory = tmp_path_factory.mktemp("ckpt37") / "checkpoints"
    cwgan.train_model(cwgan.TrainConfig(
        digits=(3, 7), steps=2, steps_per_epoch=2, batch_size=4, n_critic=2, jit_compile=False,
        latent_dim=16, data_dir=TEST_DATA, checkpoint_dir=str(directory), verbose=0))
    return directory


@pytest.fixture(scope="session")
def coloured_test_digits():
    """`(images, labels)`: the 200 test digits coloured per class as `python -m
    cwgan.demo_data` colours them (`cwgan.coloured_digits`), uint8 `(200, 32, 32, 3)`."""
    images, labels = cwgan.load_mnist(data_dir=TEST_DATA)
    grey = np.round((images[..., 0] + 1.0) * 127.5).astype(np.uint8)
    return cwgan.coloured_digits(grey, labels), labels


@pytest.fixture(scope="session")
def colour_folder(tmp_path_factory, coloured_test_digits):
    """A folder of class folders of 32x32 RGB PNGs: `coloured_test_digits`, class folders
    named "0".."9"."""
    images, labels = coloured_test_digits
    return cwgan.write_image_folder(tmp_path_factory.mktemp("colour") / "digits", images,
                                    labels, [str(d) for d in range(10)])


@pytest.fixture(scope="session")
def colour_checkpoint(tmp_path_factory, colour_folder):
    """A checkpoint directory of a generator trained briefly on `colour_folder`."""
    directory = tmp_path_factory.mktemp("ckpt_colour") / "checkpoints"
    cwgan.train_model(cwgan.TrainConfig(
        steps=2, steps_per_epoch=2, batch_size=4, n_critic=2, jit_compile=False,
        latent_dim=16, width=8, data_dir=str(colour_folder), checkpoint_dir=str(directory),
        verbose=0))
    return directory


def class_norm_embeddings(generator):
    """How many label embeddings `generator` has besides the one joined to the noise:
    class-conditional batch norm's scales and offsets (0 without it)."""
    return sum(isinstance(layer, keras.layers.Embedding) for layer in generator.layers) - 1


def subprocess_env():
    """Environment for child Pythons: the repo importable, TF quiet, no checkpoint dir,
    the test session's cache directories (set above)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("CWGAN_CHECKPOINT_DIR", None)
    env.pop("CWGAN_TEST_LOGICAL_CPUS", None)  # a child sets up its own devices
    return env


PYTHON = sys.executable

# Run first in a child Python: hides every GPU (CUDA, ROCm, Metal...) from TensorFlow
# before it initialises, so the child computes on the CPU on every machine.
HIDE_GPUS = "import tensorflow as tf; tf.config.set_visible_devices([], 'GPU')"


def cpu_only_env(env=None):
    """`env` (default `subprocess_env()`) with the GPUs hidden from CUDA and ROCm."""
    return dict(subprocess_env() if env is None else env, CUDA_VISIBLE_DEVICES="-1",
                HIP_VISIBLE_DEVICES="-1")


def cpu_only_module(module, *args):
    """The command `python -m module args...` with every GPU hidden (see HIDE_GPUS)."""
    return [PYTHON, "-c", f"{HIDE_GPUS}; import runpy; "
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)", *args]


@pytest.fixture(scope="session", autouse=True)
def _bounded_checkpoint_search(tmp_path_factory):
    """The search for a default `checkpoints/` (find_checkpoint_dir) never leaves pytest's
    temporary directories, in the tests and in their children: a stray
    /tmp/checkpoints/generator.keras is not found."""
    old = os.environ.get("CWGAN_CEILING_DIRS")
    os.environ["CWGAN_CEILING_DIRS"] = str(tmp_path_factory.getbasetemp())
    yield
    if old is None:
        os.environ.pop("CWGAN_CEILING_DIRS", None)
    else:
        os.environ["CWGAN_CEILING_DIRS"] = old




@contextlib.contextmanager
def serving(app):
    """Serves the ASGI `app` with uvicorn in a thread on 127.0.0.1, on a free port;
    yields its base URL and stops it (after the requests in flight) on exit."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
