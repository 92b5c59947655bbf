"""cwgan: a conditional Wasserstein GAN (weight clipping, n_critic) on Keras 3.

The package's layout (docs/architecture.md): the commands at the top (`python -m
cwgan.train`, `.evaluate`, `.report`, `.interpolate`, `.export`, `.serve`, `.bench`,
`.bench_serve`, `.demo_data`: flags and `main` only), the work in folders: `data/`,
`model/`, `training/`, `sampling/`, `evaluation/`, `serving/`, `benchmarks/`, `utils/`.

Public API:
  - `load_data` (an `ImageData`: MNIST, Fashion-MNIST, CIFAR-10, or your own folder of
    class folders of images, in memory or streamed from disk), `load_mnist`,
    `make_dataset`, `make_stream`, `make_file_stream`: data in [-1, 1] and batches
    grouped for a train step (streams: endless, addressable by step, for exact
    resumption). `coloured_digits`, `write_image_folder`: a folder of images to try.
    `class_colour_share`: how much of the images' colour their classes explain (what
    picks the colour generator's conditioning).
  - `build_generator`, `build_critic`: the networks. `LabelPlanesConv2D`, `RowwiseDot`:
    the critic's two own layers (stock layers' functions, cheaper; see
    `cwgan.model.critic_layers`), and `MinibatchStdDev` (ProGAN's diversity channel,
    `build_critic(minibatch_std=N)`), for critics of your own.
  - `ClipConstraint`, `wasserstein_critic_loss`, `wasserstein_generator_loss`.
  - `ConditionalWGAN`: the `keras.Model` whose `train_step` is one generator iteration.
  - `SampleGrid`, `WGANCheckpoint`, `TerminateOnNonFinite`, `StopOnSignal`, `TimeLimit`,
    `FitToTime`, `LinearDecay`, `QualityEvaluation`, `BestGenerator`, `JsonlLogger`:
    training callbacks.
  - `sample`, `load_generator`: images of a chosen class from a trained generator
    (`PRETRAINED_DIR`: the MNIST one shipped with cwgan, used when none of yours is
    found; `PRETRAINED_COLOUR_DIR`: a second one, of coloured 32x32 digits).
  - `evaluate_checkpoint`: sample quality of a trained generator (`python -m
    cwgan.evaluate`, docs/evaluation.md).
  - `export_saved_model`: the generator as a TensorFlow SavedModel (`python -m
    cwgan.export`).
  - `class_morph`, `latent_walk`, `save_interpolation_grid`: interpolation grids
    (`python -m cwgan.interpolate`).
  - `make_strategy`: tf.distribute strategies for several GPUs or machines
    (docs/distributed.md).
  - `TrainConfig`, `build_model`, `train_model`: the run behind `python -m cwgan.train`
    (`TrainConfig`'s defaults are the command line's; `build_model(TrainConfig())` is
    the tuned CPU recipe).

The server, `python -m cwgan.serve` (docs/serve.md), is not imported here (it would bring
Starlette into every `import cwgan`): `cwgan.serving.app.make_app(checkpoint_dir)` is its
ASGI app, for uvicorn or any other ASGI server.

No public name is also a module's or a folder's name: `import cwgan.train` (what `python
-m cwgan.train` and the console script do) binds `cwgan.train` to the command's module,
which would shadow a function of that name.
"""

import os

# Quiet TensorFlow's C++ logs unless the user asked for them: 3 also hides the ERROR
# "failed call to cuInit" that every start prints on a machine without a GPU (any real
# failure still raises in Python). TF_CPP_MIN_LOG_LEVEL=0 shows everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from cwgan.data.colour import class_colour_share  # noqa: E402
from cwgan.data.demo import coloured_digits, write_image_folder  # noqa: E402
from cwgan.data.loading import (ImageData, load_data, load_mnist, make_dataset,  # noqa: E402
                                make_file_stream, make_stream)
from cwgan.evaluation.judge import evaluate_checkpoint  # noqa: E402
from cwgan.model.constraints import ClipConstraint  # noqa: E402
from cwgan.model.critic_layers import LabelPlanesConv2D, RowwiseDot  # noqa: E402
from cwgan.model.minibatch_std import MinibatchStdDev  # noqa: E402
from cwgan.model.losses import wasserstein_critic_loss, wasserstein_generator_loss  # noqa: E402
from cwgan.model.networks import (build_critic, build_generator, build_mlp_critic,  # noqa: E402
                                  build_mlp_generator, build_networks)
from cwgan.model.wgan import ConditionalWGAN  # noqa: E402
from cwgan.sampling.export import export_saved_model  # noqa: E402
from cwgan.sampling.interpolation import (class_morph, latent_walk,  # noqa: E402
                                          save_interpolation_grid)
from cwgan.sampling.sample import (PRETRAINED_COLOUR_DIR, PRETRAINED_DIR,  # noqa: E402
                                   load_generator, sample)
from cwgan.training.callbacks import (BestGenerator, FitToTime, JsonlLogger,  # noqa: E402
                                      LinearDecay, QualityEvaluation, SampleGrid,
                                      StopOnSignal, TerminateOnNonFinite, TimeLimit,
                                      WGANCheckpoint)
from cwgan.training.distribute import STRATEGIES, make_strategy  # noqa: E402
from cwgan.training.run import TrainConfig, build_model, train_model  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BestGenerator", "ClipConstraint", "ConditionalWGAN", "FitToTime", "ImageData",
    "JsonlLogger", "LabelPlanesConv2D",
    "LinearDecay", "MinibatchStdDev", "PRETRAINED_COLOUR_DIR", "PRETRAINED_DIR",
    "QualityEvaluation", "RowwiseDot",
    "STRATEGIES",
    "SampleGrid", "StopOnSignal", "TerminateOnNonFinite", "TimeLimit", "TrainConfig",
    "WGANCheckpoint", "build_critic", "build_generator", "build_mlp_critic",
    "build_mlp_generator", "build_model", "build_networks", "class_colour_share",
    "class_morph",
    "coloured_digits", "evaluate_checkpoint", "export_saved_model", "latent_walk",
    "load_data", "load_generator", "load_mnist", "make_dataset", "make_file_stream",
    "make_strategy", "make_stream", "sample", "save_interpolation_grid", "train_model",
    "wasserstein_critic_loss", "wasserstein_generator_loss", "write_image_folder",
]
