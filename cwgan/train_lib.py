"""`train(config)`: the training run behind `python -m cwgan.train`, without flags."""

import dataclasses
import logging
import os
from typing import Optional, Tuple

import keras

from cwgan.callbacks import (JsonlLogger, QualityEvaluation, SampleGrid, TimeLimit,
                             WGANCheckpoint)
from cwgan.checkpoints import (MODEL_FILE, GENERATOR_CONFIG_FILE, TRAIN_CONFIG_FILE,
                               read_json, write_json)
from cwgan.checks import check_int, check_positive_float, check_seed
from cwgan.data import CLASS_NAMES, DATASETS, load_mnist, make_dataset, parse_digits
from cwgan.evaluate_lib import MIN_PER_CLASS, make_judge
from cwgan.model import CONSTRAINTS, GP_LEARNING_RATE, ConditionalWGAN
from cwgan.networks import ARCHITECTURES, CONDITIONINGS, build_networks

logger = logging.getLogger("cwgan")

METRICS_FILE = "metrics.jsonl"
# The CPU recipe (docs/recipe.md): with a conv critic and generator of width 32 and
# projection conditioning, RMSprop at 5e-4 beat the paper's 5e-5 by far within 15 minutes
# on 2 cores. `ConditionalWGAN.compile()` keeps the paper's 5e-5.
RECIPE_LEARNING_RATE = 5e-4


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Options of a training run; `python -m cwgan.train --help` documents each.

    The defaults are the CPU recipe of docs/recipe.md (still the paper's algorithm:
    weight clipping at 0.01, n_critic 5, RMSprop), tuned for quality within 15 minutes.
    """

    digits: Optional[Tuple[int, ...]] = None
    epochs: int = 200
    steps_per_epoch: Optional[int] = None
    batch_size: int = 64
    n_critic: int = 5
    clip_value: float = 0.01
    learning_rate: Optional[float] = None  # RECIPE_LEARNING_RATE (clip), 1e-4 (gp)
    constraint: str = "clip"
    latent_dim: int = 100
    architecture: str = "dcgan"
    width: Optional[int] = 32
    conditioning: str = "projection"
    seed: int = 0
    dataset: str = "mnist"
    data_dir: Optional[str] = None
    checkpoint_dir: str = "checkpoints"
    samples_dir: Optional[str] = None
    grid_every: int = 1
    max_minutes: Optional[float] = None
    jit_compile: bool = True
    mixed_precision: bool = False
    eval_every: int = 0
    eval_n_per_class: int = 200
    verbose: int = 1

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("digits", parse_digits(self.digits))
        set_("epochs", check_int("epochs", self.epochs, minimum=1))
        if self.steps_per_epoch is not None:
            set_("steps_per_epoch", check_int("steps_per_epoch", self.steps_per_epoch, 1))
        set_("batch_size", check_int("batch_size", self.batch_size, minimum=1))
        set_("n_critic", check_int("n_critic", self.n_critic, minimum=1))
        set_("clip_value", check_positive_float("clip_value", self.clip_value))
        if self.constraint not in CONSTRAINTS:
            raise ValueError(f"Invalid value for argument `constraint`. Received: constraint="
                             f"{self.constraint!r}. Expected one of {CONSTRAINTS}.")
        default_lr = GP_LEARNING_RATE if self.constraint == "gp" else RECIPE_LEARNING_RATE
        set_("learning_rate", check_positive_float(
            "learning_rate", default_lr if self.learning_rate is None else self.learning_rate))
        set_("latent_dim", check_int("latent_dim", self.latent_dim, minimum=1))
        set_("seed", check_seed("seed", self.seed))
        set_("grid_every", check_int("grid_every", self.grid_every, minimum=1))
        set_("eval_every", check_int("eval_every", self.eval_every, minimum=0))
        set_("eval_n_per_class", check_int("eval_n_per_class", self.eval_n_per_class,
                                           minimum=MIN_PER_CLASS))
        if self.max_minutes is not None:
            set_("max_minutes", check_positive_float("max_minutes", self.max_minutes))
        if self.dataset not in DATASETS:
            raise ValueError(f"Invalid value for argument `dataset`. Received: dataset="
                             f"{self.dataset!r}. Expected one of {DATASETS}.")
        if self.width is not None:
            set_("width", check_int("width", self.width, minimum=1))
        for name, choices in (("architecture", ARCHITECTURES),
                              ("conditioning", CONDITIONINGS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"Invalid value for argument `{name}`. Received: {name}="
                                 f"{getattr(self, name)!r}. Expected one of {choices}.")

    @property
    def grid_dir(self):
        return self.samples_dir or os.path.join(self.checkpoint_dir, "samples")

    def to_json(self):
        return dataclasses.asdict(self) | {"digits": list(self.digits)}


# Options that shape the model: a checkpoint made with others cannot be resumed.
MODEL_OPTIONS = ("digits", "latent_dim", "n_critic", "clip_value", "architecture", "width",
                 "conditioning", "dataset", "constraint")


def build_model(config=None):
    """A compiled `ConditionalWGAN` as `config` (a `TrainConfig`) says; default: the recipe.

    Example:

    ```python
    config = cwgan.TrainConfig()          # the CPU recipe of docs/recipe.md
    model = cwgan.build_model(config)
    ```
    """
    config = config or TrainConfig()
    # The dtype policy only matters while layers are built; saved layers keep theirs.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if config.mixed_precision else "float32")
    try:
        generator, critic = build_networks(config.architecture, config.latent_dim,
                                           config.width, config.conditioning)
        model = ConditionalWGAN(generator, critic, latent_dim=config.latent_dim,
                                classes=config.digits, n_critic=config.n_critic,
                                clip_value=config.clip_value, seed=config.seed,
                                constraint=config.constraint)
    finally:
        keras.config.set_dtype_policy(previous)
    model.compile(
        g_optimizer=model.default_optimizer(config.learning_rate),
        c_optimizer=model.default_optimizer(config.learning_rate),
        jit_compile=bool(config.jit_compile))
    return model


def _check_resumable(config):
    """Raises unless the run in `checkpoint_dir` (if any) was made with the same model options."""
    saved_path = os.path.join(config.checkpoint_dir, TRAIN_CONFIG_FILE)
    if not os.path.exists(saved_path):
        return
    saved = read_json(saved_path)
    ours = config.to_json()
    diff = [f"{k}: saved {saved.get(k)!r}, asked {ours[k]!r}"
            for k in MODEL_OPTIONS if saved.get(k) != ours[k]]
    if diff:
        raise ValueError(
            f"{config.checkpoint_dir} holds a run made with other options ({'; '.join(diff)}). "
            "Pass another checkpoint_dir, or move that run away to start over.")


def _resume_or_build(config):
    """Loads the model in `checkpoint_dir` if there is one, else builds a new one."""
    path = os.path.join(config.checkpoint_dir, MODEL_FILE)
    if not os.path.exists(path):
        return build_model(config), 0
    model = keras.saving.load_model(path, safe_mode=True)
    epoch = read_json(os.path.join(config.checkpoint_dir, GENERATOR_CONFIG_FILE))["epoch"]
    logger.info("Resuming from %s: epoch %d, generator iteration %d.", path, epoch,
                int(model.generator_iterations.numpy()))
    return model, epoch


def train(config):
    """Trains a `ConditionalWGAN` as `config` says, writing grids and checkpoints.

    Resumes from `config.checkpoint_dir` when it holds a model trained with the same
    options. Returns `(model, history)`.
    """
    keras.utils.set_random_seed(config.seed)
    images, labels = load_mnist(config.digits, config.data_dir, config.dataset)
    dataset = make_dataset(images, labels, config.batch_size, config.n_critic, config.seed)
    if config.steps_per_epoch is not None:
        dataset = dataset.repeat()
    os.makedirs(config.checkpoint_dir, exist_ok=True)
    _check_resumable(config)
    write_json(os.path.join(config.checkpoint_dir, TRAIN_CONFIG_FILE), config.to_json())
    model, initial_epoch = _resume_or_build(config)
    callbacks = [
        SampleGrid(config.grid_dir, every_n_epochs=config.grid_every, seed=config.seed,
                   class_names=CLASS_NAMES[config.dataset]),
        WGANCheckpoint(config.checkpoint_dir, dataset=config.dataset),
    ]
    if config.eval_every:
        judge = make_judge(config.digits, config.dataset, config.data_dir, seed=config.seed)
        logger.info("Quality judge: classifier accuracy %.4f on held-out real digits.",
                    judge.classifier_accuracy)
        callbacks.append(QualityEvaluation(judge, config.eval_every, config.eval_n_per_class,
                                           config.seed))
    callbacks.append(JsonlLogger(os.path.join(config.checkpoint_dir, METRICS_FILE)))
    if config.max_minutes is not None:
        callbacks.append(TimeLimit(config.max_minutes))
    if initial_epoch >= config.epochs:
        logger.info("%s already holds %d epochs (asked for %d); nothing to do.",
                    config.checkpoint_dir, initial_epoch, config.epochs)
    logger.info("Training on %d images of classes %s; %s generator iterations per epoch.",
                len(images), list(config.digits),
                config.steps_per_epoch or len(images) // (config.batch_size * config.n_critic))
    history = model.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch,
                        steps_per_epoch=config.steps_per_epoch, callbacks=callbacks,
                        shuffle=False, verbose=config.verbose)
    return model, history
