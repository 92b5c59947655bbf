"""cwgan: a conditional Wasserstein GAN (weight clipping, n_critic) on Keras 3.

Public API:
  - `load_mnist`, `make_dataset`, `make_stream`: data in [-1, 1] and batches grouped for
    a train step (`make_stream`: endless, addressable by step, for exact resumption).
  - `build_generator`, `build_critic`: the networks.
  - `ClipConstraint`, `wasserstein_critic_loss`, `wasserstein_generator_loss`.
  - `ConditionalWGAN`: the `keras.Model` whose `train_step` is one generator iteration.
  - `SampleGrid`, `WGANCheckpoint`, `TerminateOnNonFinite`, `TimeLimit`, `LinearDecay`,
    `QualityEvaluation`, `JsonlLogger`: training callbacks.
  - `sample`, `load_generator`: images of a chosen class from a trained generator.
  - `evaluate`: sample quality of a trained generator (see `cwgan.evaluate`).
  - `export_saved_model`: the generator as a TensorFlow SavedModel (see `cwgan.export`).
  - `class_morph`, `latent_walk`, `save_interpolation_grid`: interpolation grids (see
    `cwgan.interpolate`).
  - `make_strategy`: tf.distribute strategies for several GPUs or machines
    (docs/distributed.md).
  - `TrainConfig`, `build_model`, `train`: the run behind `python -m cwgan.train`
    (`build_model(TrainConfig())` is the tuned CPU recipe).
"""

import os

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cwgan.callbacks import (JsonlLogger, LinearDecay, QualityEvaluation,  # noqa: E402
                             SampleGrid, TerminateOnNonFinite, TimeLimit, WGANCheckpoint)
from cwgan.constraints import ClipConstraint  # noqa: E402
from cwgan.data import load_mnist, make_dataset, make_stream  # noqa: E402
from cwgan.distribute import STRATEGIES, make_strategy  # noqa: E402
from cwgan.losses import wasserstein_critic_loss, wasserstein_generator_loss  # noqa: E402
from cwgan.model import ConditionalWGAN  # noqa: E402
from cwgan.networks import (build_critic, build_generator, build_mlp_critic,  # noqa: E402
                            build_mlp_generator, build_networks)
from cwgan.sampling import load_generator, sample  # noqa: E402
from cwgan.evaluate_lib import evaluate  # noqa: E402
from cwgan.export_lib import export_saved_model  # noqa: E402
from cwgan.interpolate_lib import class_morph, latent_walk, save_interpolation_grid  # noqa: E402
from cwgan.train_lib import TrainConfig, build_model, train  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ClipConstraint", "ConditionalWGAN", "JsonlLogger", "LinearDecay", "QualityEvaluation",
    "STRATEGIES",
    "SampleGrid", "TerminateOnNonFinite", "TimeLimit", "TrainConfig", "WGANCheckpoint",
    "build_critic", "build_generator", "build_mlp_critic", "build_mlp_generator",
    "build_model", "build_networks", "class_morph", "evaluate", "export_saved_model",
    "latent_walk", "load_generator", "load_mnist", "make_dataset", "make_strategy",
    "make_stream", "sample", "save_interpolation_grid", "train", "wasserstein_critic_loss",
    "wasserstein_generator_loss",
]
