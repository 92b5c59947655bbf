"""Shared fixtures: tiny real data shipped in tests/data, tiny models, a trained checkpoint."""

import gzip
import os
import struct
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

import cwgan  # noqa: E402

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
    cwgan.train(cwgan.TrainConfig(
        digits=(3, 7), epochs=1, steps_per_epoch=2, batch_size=4, n_critic=2,
        latent_dim=16, data_dir=TEST_DATA, checkpoint_dir=str(directory), verbose=0))
    return directory


def subprocess_env():
    """Environment for child Pythons: the repo importable, TF quiet, no checkpoint dir."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("CWGAN_CHECKPOINT_DIR", None)
    return env


PYTHON = sys.executable


def write_idx(path, array, magic):
    """Writes `array` as a gzipped IDX file (magic 0x803 images, 0x801 labels)."""
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape)
                + array.tobytes())
