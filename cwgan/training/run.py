"""`train(config)`: the training run behind `python -m cwgan.train`, without flags.

`prepare(config)` does everything that can fail because of the user's input (data,
checkpoint directory, a run made with other options) before anything is written;
`Run.fit()` then trains. `train(config)` is both.
"""

import dataclasses
import glob
import json
import logging
import os
from typing import Optional, Tuple

import keras
import tensorflow as tf

from cwgan.data.colour import sample_class_colour_share
from cwgan.data.loading import (CLASS_NAMES, DATA_CACHES, DATASETS, IMAGE_SHAPE, describe_classes,
                                load_data, parse_digits, steps_per_pass)
from cwgan.evaluation.judge import MIN_PER_CLASS, make_judge
from cwgan.model.networks import (ARCHITECTURES, CONDITIONINGS, CRITIC_NORMS,
                                  GENERATOR_CONDITIONINGS, GENERATOR_OUTPUTS, UPSAMPLINGS,
                                  build_networks)
from cwgan.model.wgan import (CONSTRAINTS, GP_LEARNING_RATE, OPTIMIZERS, WARMUP_REPLICATED,
                              ConditionalWGAN, paper_optimizer)
from cwgan.training.callbacks import (BestGenerator, FitToTime, JsonlLogger, LinearDecay,
                                      QualityEvaluation, SampleGrid, StopOnSignal,
                                      TerminateOnNonFinite, TimeLimit, WGANCheckpoint)
from cwgan.training.checkpoints import (TRAIN_CONFIG_FILE, atomic_write, check_writable,
                                        load_latest_state, move_aside, read_json, write_json)
from cwgan.training.distribute import STRATEGIES, make_strategy, replica_batch_size
from cwgan.training.xla import JIT_CHOICES, choose_jit_compile, describe
from cwgan.utils.checks import (check_fraction, check_int, check_momentum, check_multiple,
                                check_positive_float, check_seed, check_warmup)

logger = logging.getLogger("cwgan")

METRICS_FILE = "metrics.jsonl"
BEST_DIR = "best"
# The CPU recipe (docs/recipe.md): with a conv critic and generator of width 32 and
# projection conditioning, RMSprop at 5e-4 learned far faster than the paper's 5e-5 within
# the 15-minute budget. `ConditionalWGAN.compile()` keeps the paper's 5e-5.
RECIPE_LEARNING_RATE = 5e-4
# The recipe's clips, for a critic without batch norm and with it (see `TrainConfig`).
CLIP, BATCH_NORM_CLIP = 0.1, 0.05


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Options of a training run; `python -m cwgan.train --help` documents each.

    The defaults are the CPU recipe of docs/recipe.md (still the paper's algorithm:
    weight clipping after every critic update, n_critic 5, RMSprop), tuned for quality
    within 15 minutes: batch normalisation in the critic (as in the paper's own code),
    clip 0.05 with it rather than the paper's 0.01, and a linear learning-rate decay.
    `ConditionalWGAN` itself keeps the paper's 0.01.

    The schedule counts training steps (a step: n_critic critic updates, then a generator
    update, so one generator iteration), never passes over the data, so the same options
    train the same way on 2,000, 10,000 or 60,000 images: `steps` in all, Keras epochs of
    `steps_per_epoch` steps (the progress bar, a line of metrics, a checkpoint), a grid
    every `grid_every` steps, an evaluation every `eval_every` steps, and the learning
    rate falling to 0 at `steps` (over their last `lr_decay_fraction`). (With
    `n_critic_warmup`, a warm-up generator iteration spans several steps.) With
    `max_minutes` and `fit_to_time`, the run measures its step time and, if `steps` would
    not fit, ends the schedule (the decay to 0 included) where the time ends
    (`cwgan.FitToTime`); `train_config.json` records that end as `fitted_steps`, and a
    resumed run with the same options keeps it.
    """

    digits: Optional[Tuple[int, ...]] = None
    # More steps were the one change that helped (docs/recipe.md, fourth round). With
    # max_minutes and fit_to_time, a machine too slow for all of them ends the schedule
    # where its time ends; a fast one finishes early, never differently.
    steps: int = 25_000
    steps_per_epoch: int = 100
    batch_size: int = 32  # beat 64 and 16 within the budget (docs/recipe.md, second round)
    n_critic: int = 5
    n_critic_warmup: int = 0
    # Larger than the paper's 0.01, which learns slowly within the budget. None: 0.05 for
    # the batch-norm critic, where it kept grey digits varied in long runs (docs/recipe.md,
    # seventh round); 0.1 for a critic without (it beat 0.05 and 0.2 there, sixth round).
    clip_value: Optional[float] = None
    learning_rate: Optional[float] = None  # RECIPE_LEARNING_RATE (clip), 1e-4 (gp)
    lr_decay: bool = True  # raised quality at the paper's clip (docs/recipe.md, third round)
    # The share of the run, at its end, that the decay spans. A shorter one was ahead on
    # some data and behind on other at 15 minutes' steps (docs/recipe.md, eleventh round).
    lr_decay_fraction: float = 1.0
    constraint: str = "clip"
    latent_dim: int = 100
    architecture: str = "dcgan"
    width: Optional[int] = 32
    conditioning: str = "projection"
    upsampling: str = "transpose"
    # None: as the data's images say (`with_data_defaults`). Colour images with the dcgan
    # networks: "norm" where the classes mostly set the colour (each class its own
    # batch-norm scale and offset), "layers" elsewhere (label planes), split at
    # `CLASS_COLOUR_SHARE` (docs/recipe.md, fourteenth and fifteenth rounds). Else "input"
    # (the others not ahead on grey data; the mlp has no maps).
    generator_conditioning: Optional[str] = None
    # None: "conv" for the dcgan networks (a full-size convolution makes the image: ahead
    # at equal steps on grey and colour data, docs/recipe.md, seventh round); the mlp has
    # no maps, so "upsample", which it ignores.
    generator_output: Optional[str] = None
    critic_depth: int = 1
    # Batch norm in the clipped critic (the WGAN paper's code has it) beat none, layer
    # norm and a minibatch-std channel at equal steps on colour and grey data; on grey
    # digits trained long it needs the smaller clip (docs/recipe.md, seventh round).
    # None: "batch" for clip; "none" for gp (a gradient penalty is of one sample's score,
    # which batch norm ties to its batch) and for the mlp, which has no maps to normalise.
    critic_norm: Optional[str] = None
    minibatch_std: int = 0
    critic_lr_ratio: float = 1.0
    optimizer: Optional[str] = None  # rmsprop for clip (the paper's), adam for gp
    batch_fakes: bool = False
    mixed_batches: bool = False
    ema: float = 0.0
    seed: int = 0
    dataset: str = "mnist"
    data_dir: Optional[str] = None
    image_size: Optional[int] = None  # the data's own
    data_cache: str = "auto"
    checkpoint_dir: str = "checkpoints"
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    fresh: bool = False
    samples_dir: Optional[str] = None
    grid_every: Optional[int] = None  # steps_per_epoch: a grid at every epoch end
    max_minutes: Optional[float] = None
    fit_to_time: bool = True
    # XLA is faster on some CPUs, slower on others (docs/results.md): "auto" measures
    # (cwgan/training/xla.py); True / False force it.
    jit_compile: object = "auto"
    mixed_precision: bool = False
    tensorboard: bool = False
    strategy: str = "none"
    eval_every: int = 0
    eval_n_per_class: int = 200
    verbose: int = 1

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        # All classes (None) until the data says how many there are (`prepare`).
        set_("digits", parse_digits(self.digits, None))
        set_("steps_per_epoch", check_int("steps_per_epoch", self.steps_per_epoch, 1))
        set_("steps", check_multiple("steps", self.steps, "steps_per_epoch",
                                     self.steps_per_epoch))
        set_("batch_size", check_int("batch_size", self.batch_size, minimum=1))
        set_("n_critic", check_int("n_critic", self.n_critic, minimum=1))
        set_("n_critic_warmup", check_warmup(self.n_critic_warmup, self.n_critic))
        if (not isinstance(self.jit_compile, (str, bool))
                or self.jit_compile not in JIT_CHOICES):
            raise ValueError(f"Invalid value for argument `jit_compile`. Received: "
                             f"jit_compile={self.jit_compile!r}. Expected one of "
                             f"{JIT_CHOICES}.")
        if self.constraint not in CONSTRAINTS:
            raise ValueError(f"Invalid value for argument `constraint`. Received: constraint="
                             f"{self.constraint!r}. Expected one of {CONSTRAINTS}.")
        default_lr = GP_LEARNING_RATE if self.constraint == "gp" else RECIPE_LEARNING_RATE
        set_("learning_rate", check_positive_float(
            "learning_rate", default_lr if self.learning_rate is None else self.learning_rate))
        set_("latent_dim", check_int("latent_dim", self.latent_dim, minimum=1))
        set_("ema", check_momentum("ema", self.ema))
        set_("seed", check_seed("seed", self.seed))
        set_("grid_every", check_multiple(
            "grid_every", self.steps_per_epoch if self.grid_every is None else self.grid_every,
            "steps_per_epoch", self.steps_per_epoch))
        set_("checkpoint_every", check_int("checkpoint_every", self.checkpoint_every, 0))
        set_("keep_checkpoints", check_int("keep_checkpoints", self.keep_checkpoints, 1))
        if not isinstance(self.checkpoint_dir, (str, os.PathLike)) or not str(
                self.checkpoint_dir):
            raise ValueError(f"Invalid value for argument `checkpoint_dir`. Received: "
                             f"checkpoint_dir={self.checkpoint_dir!r}. Expected a path.")
        set_("checkpoint_dir", os.fspath(self.checkpoint_dir))
        set_("eval_every", check_multiple("eval_every", self.eval_every, "steps_per_epoch",
                                          self.steps_per_epoch, allow_zero=True))
        set_("eval_n_per_class", check_int("eval_n_per_class", self.eval_n_per_class,
                                           minimum=MIN_PER_CLASS))
        if self.max_minutes is not None:
            set_("max_minutes", check_positive_float("max_minutes", self.max_minutes))
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Invalid value for argument `strategy`. Received: strategy="
                             f"{self.strategy!r}. Expected one of {STRATEGIES}.")
        if self.dataset not in DATASETS:
            raise ValueError(f"Invalid value for argument `dataset`. Received: dataset="
                             f"{self.dataset!r}. Expected one of {DATASETS}.")
        if self.data_cache not in DATA_CACHES:
            raise ValueError(f"Invalid value for argument `data_cache`. Received: "
                             f"data_cache={self.data_cache!r}. Expected one of {DATA_CACHES}.")
        if self.image_size is not None:
            set_("image_size", check_int("image_size", self.image_size, minimum=4))
        if self.width is not None:
            set_("width", check_int("width", self.width, minimum=1))
        set_("critic_depth", check_int("critic_depth", self.critic_depth, minimum=1))
        if self.critic_norm is None:
            set_("critic_norm", "none" if self.constraint == "gp" or self.architecture == "mlp"
                 else "batch")
        if self.generator_output is None:
            set_("generator_output", "upsample" if self.architecture == "mlp" else "conv")
        if self.clip_value is None:
            set_("clip_value", BATCH_NORM_CLIP if self.critic_norm == "batch" else CLIP)
        set_("clip_value", check_positive_float("clip_value", self.clip_value))
        if self.constraint == "gp" and self.critic_norm in ("batch", "reference"):
            raise ValueError("Invalid value for argument `critic_norm`. Received: critic_norm="
                             f"{self.critic_norm!r} with constraint='gp'. The gradient "
                             "penalty is of each sample's own score, which batch norm makes "
                             "depend on its batch: expected 'none' or 'layer' with 'gp'.")
        set_("critic_lr_ratio", check_positive_float("critic_lr_ratio", self.critic_lr_ratio))
        set_("lr_decay_fraction", check_fraction("lr_decay_fraction", self.lr_decay_fraction))
        if self.optimizer is None:
            set_("optimizer", paper_optimizer(self.constraint))
        set_("minibatch_std", check_int("minibatch_std", self.minibatch_std, minimum=0))
        if self.minibatch_std == 1 or (self.minibatch_std and
                                       self.batch_size % self.minibatch_std):
            raise ValueError(f"Invalid value for argument `minibatch_std`. Received: "
                             f"minibatch_std={self.minibatch_std} with batch_size="
                             f"{self.batch_size}. Expected 0 (off) or a group size of at "
                             "least 2 that divides batch_size.")
        for name, choices in (("architecture", ARCHITECTURES),
                              ("conditioning", CONDITIONINGS), ("upsampling", UPSAMPLINGS),
                              # None: left to the data (`with_data_defaults`)
                              ("generator_conditioning", GENERATOR_CONDITIONINGS + (None,)),
                              ("generator_output", GENERATOR_OUTPUTS),
                              ("critic_norm", CRITIC_NORMS), ("optimizer", OPTIMIZERS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"Invalid value for argument `{name}`. Received: {name}="
                                 f"{getattr(self, name)!r}. Expected one of {choices}.")

    @property
    def epochs(self):
        """Keras epochs in the run: `steps / steps_per_epoch`."""
        return self.steps // self.steps_per_epoch

    @property
    def grid_dir(self):
        return self.samples_dir or os.path.join(self.checkpoint_dir, "samples")

    @property
    def tensorboard_dir(self):
        return os.path.join(self.checkpoint_dir, "tensorboard") if self.tensorboard else None

    def to_json(self):
        digits = None if self.digits is None else list(self.digits)
        return dataclasses.asdict(self) | {"digits": digits}


# Options that shape the model: a checkpoint made with others cannot be resumed.
MODEL_OPTIONS = ("digits", "latent_dim", "n_critic", "n_critic_warmup", "clip_value",
                 "architecture", "width", "conditioning", "upsampling", "ema", "dataset",
                 "constraint", "image_size", "generator_conditioning", "critic_depth",
                 "critic_norm", "minibatch_std", "batch_fakes", "mixed_batches",
                 "generator_output")
# What a model option was before cwgan had it, for runs saved then.
OPTIONS_BEFORE = {"upsampling": "transpose", "ema": 0.0, "image_size": None,
                  "generator_conditioning": "input", "critic_depth": 1, "critic_norm": "none",
                  "minibatch_std": 0, "batch_fakes": False, "mixed_batches": False,
                  "generator_output": "upsample"}


# Options that shape the train step's cost: with the machine, the key of the XLA choice.
STEP_SHAPE_OPTIONS = ("architecture", "width", "conditioning", "upsampling", "latent_dim",
                      "batch_size", "n_critic", "n_critic_warmup", "constraint",
                      "mixed_precision", "ema", "generator_conditioning", "critic_depth",
                      "critic_norm", "minibatch_std", "batch_fakes", "mixed_batches",
                      "generator_output")


def _data_shape(config, data):
    """`(image_shape, class_names)` of `data` (an `ImageData`), or for None of
    `config.dataset` in Keras (MNIST-like: 28x28x1; cifar10: 32x32x3)."""
    if data is not None:
        return tuple(data.image_shape), tuple(data.class_names)
    shape = (32, 32, 3) if config.dataset == "cifar10" else IMAGE_SHAPE
    if config.image_size:
        shape = (config.image_size, config.image_size, shape[-1])
    return shape, CLASS_NAMES[config.dataset]


# Colour images whose classes explain at least this share of the spread of their mean
# colours get a batch-norm scale and offset per class in the generator, others label
# planes: between the highest share where label planes were ahead and the lowest where
# the scale per class was (docs/recipe.md, fifteenth round, has the shares and runs).
CLASS_COLOUR_SHARE = 0.75


def with_data_defaults(config, data=None):
    """`config` with the options that it leaves to the data (None) set for `data` (an
    `ImageData`; None: `config.dataset`'s images, unread): `generator_conditioning`
    "input" for grey images or the mlp; for colour images with the dcgan networks
    "norm" when their classes explain at least `CLASS_COLOUR_SHARE` of the spread of the
    images' mean colours (`cwgan.data.colour`), else "layers" (the class is in the
    shape: label planes before every upsampling); "norm" without images to measure
    (see `TrainConfig`)."""
    if config.generator_conditioning is not None:
        return config
    if _data_shape(config, data)[0][-1] != 3 or config.architecture != "dcgan":
        choice = "input"
    elif data is None:
        choice = "norm"
    else:
        share = sample_class_colour_share(data)
        choice = "norm" if share >= CLASS_COLOUR_SHARE else "layers"
        logger.info("Classes explain %.2f of the spread of the images' mean colours (%s %.2f): "
                    "generator conditioning %r.", share, ">=" if choice == "norm" else "<",
                    CLASS_COLOUR_SHARE, choice)
    return dataclasses.replace(config, generator_conditioning=choice)


def _new_model(config, jit_compile, data=None):
    """A new compiled `ConditionalWGAN` as `config` says (its data defaults already
    resolved, `with_data_defaults`), shaped for `data`, with this XLA setting."""
    image_shape, class_names = _data_shape(config, data)
    # The dtype policy only matters while layers are built; saved layers keep theirs.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if config.mixed_precision else "float32")
    try:
        generator, critic = build_networks(config.architecture, config.latent_dim,
                                           config.width, config.conditioning,
                                           num_classes=len(class_names),
                                           upsampling=config.upsampling,
                                           image_shape=image_shape,
                                           generator_conditioning=config.generator_conditioning,
                                           generator_output=config.generator_output,
                                           critic_depth=config.critic_depth,
                                           critic_norm=config.critic_norm,
                                           minibatch_std=config.minibatch_std)
        model = ConditionalWGAN(generator, critic, latent_dim=config.latent_dim,
                                classes=config.digits, n_critic=config.n_critic,
                                n_critic_warmup=config.n_critic_warmup,
                                clip_value=config.clip_value, seed=config.seed,
                                constraint=config.constraint, ema=config.ema,
                                batch_fakes=config.batch_fakes,
                                mixed_batches=config.mixed_batches,
                                num_classes=len(class_names), class_names=class_names)
    finally:
        keras.config.set_dtype_policy(previous)
    model.compile(g_optimizer=model.default_optimizer(config.learning_rate, config.optimizer),
                  c_optimizer=model.default_optimizer(
                      config.learning_rate * config.critic_lr_ratio, config.optimizer),
                  jit_compile=jit_compile)
    return model


def resolve_jit_compile(config, data=None):
    """`config.jit_compile` as a bool; "auto" times the step both ways (see `cwgan.training.xla`)
    on random images of `data`'s shape.

    Under a strategy with several replicas it is False: XLA cannot compile a step whose
    variables live on several devices. The decision and both timings are logged.
    """
    if tf.distribute.get_strategy().num_replicas_in_sync > 1:
        return False
    if config.jit_compile != "auto":
        return config.jit_compile
    jit, record = auto_jit_compile(config, data)
    logger.info("%s.", describe(record))
    return jit


def auto_jit_compile(config, data=None):
    """`(jit_compile, record)`: what "auto" chooses for `config`'s step on `data`'s shape
    on this machine, measured or cached (`cwgan.training.xla.choose_jit_compile`)."""
    image_shape, class_names = _data_shape(config, data)
    config = with_data_defaults(config, data)
    shape = {k: v for k, v in config.to_json().items() if k in STEP_SHAPE_OPTIONS}
    if (image_shape, len(class_names)) != (IMAGE_SHAPE, 10):  # MNIST's keys stay as they were
        shape |= {"image_shape": list(image_shape), "num_classes": len(class_names)}
    classes = config.digits or tuple(range(len(class_names)))
    return choose_jit_compile(lambda j: _new_model(config, j, data), shape,
                              config.batch_size, classes)


def build_model(config=None, data=None):
    """A compiled `ConditionalWGAN` as `config` (a `TrainConfig`) says; default: the recipe.

    Its networks are shaped for `data` (an `ImageData`: its image shape and classes);
    default: `config.dataset`'s (MNIST: 28x28x1, ten digits). Its weights are drawn
    after `keras.utils.set_random_seed(config.seed)`, so the same config gives the same
    model. `jit_compile="auto"` (the default) first decides XLA by timing the step (see
    `cwgan.training.xla`; cached per machine and shape).

    Example:

    ```python
    config = cwgan.TrainConfig()          # the CPU recipe of docs/recipe.md
    model = cwgan.build_model(config)
    ```
    """
    config = config or TrainConfig()
    image_shape, class_names = _data_shape(config, data)
    config = with_data_defaults(config, data)
    if config.digits is None:
        config = dataclasses.replace(config, digits=tuple(range(len(class_names))))
    jit_compile = resolve_jit_compile(config, data)
    keras.utils.set_random_seed(config.seed)  # after the timing's throwaway models
    return _new_model(config, jit_compile, data)


def _refuse_other_options(directory, what, diff):
    """Raises naming each option in `diff` that differs from the run in `directory`."""
    if diff:
        raise ValueError(
            f"{directory} holds a {what} made with other options ({'; '.join(diff)}). Pass "
            "the saved values to continue it (e.g. after a default changed), another "
            "checkpoint_dir, or --fresh to move that run aside and start over.")


def _describe_data(info):
    return f"{info['images']} images from {info['source']} (sha256 {info['sha256'][:12]})"


def _check_resumable(config, data):
    """Raises unless the run in `checkpoint_dir` (if any) was made with the same model
    options and the same data (`data`: `ImageData.info`; the same images from another
    place are the same data)."""
    saved_path = os.path.join(config.checkpoint_dir, TRAIN_CONFIG_FILE)
    if not os.path.exists(saved_path):
        return
    try:
        saved = read_json(saved_path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{saved_path} is unreadable ({e}). Pass --fresh to move that run "
                         "aside and start over.") from None
    ours = config.to_json()
    saved = OPTIONS_BEFORE | saved
    diff = [f"{k}: saved {saved.get(k)!r}, asked {ours[k]!r}"
            for k in MODEL_OPTIONS if saved.get(k) != ours[k]]
    theirs = saved.get("data")  # absent in runs made before cwgan recorded it
    if theirs and (theirs.get("sha256"), theirs.get("images")) != (data["sha256"],
                                                                    data["images"]):
        diff.append(f"data: saved {_describe_data(theirs)}, asked {_describe_data(data)}")
    _refuse_other_options(config.checkpoint_dir, "run", diff)


def _check_loaded(model, config, directory):
    """Refuses a saved model whose shape differs from what `config` asks for."""
    found = {"latent_dim": model.latent_dim, "digits": tuple(model.classes),
             "n_critic": model.n_critic, "n_critic_warmup": model.n_critic_warmup,
             "optimizer": type(getattr(model.c_optimizer, "inner_optimizer",
                                       model.c_optimizer)).__name__.lower()}
    _refuse_other_options(directory, "model", [
        f"{k}: saved {v!r}, asked {getattr(config, k)!r}" for k, v in found.items()
        if v != getattr(config, k)])


def _trim_metrics(path, iteration):
    """Drops JSONL records past `iteration` (written after the checkpoint resumed from)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    kept = [line for line in lines
            if json.loads(line).get("generator_iterations", 0) <= iteration]
    if len(kept) != len(lines):
        def write(tmp):
            with open(tmp, "w") as f:
                f.writelines(kept)
        atomic_write(path, write)


@dataclasses.dataclass
class Run:
    """A prepared training run: the model (new or resumed) and everything `fit` needs.

    `fit()` trains; `interrupted` is then the signal (SIGINT or SIGTERM) that stopped it
    early, if one did (the run saved its state first; see `cwgan.StopOnSignal`).
    """

    config: TrainConfig
    model: ConditionalWGAN
    data: object  # an ImageData
    callbacks: list
    start_step: int

    def _stream(self, start_step):
        c = self.config
        return self.data.stream(c.batch_size, c.n_critic, c.seed, start_step)

    @property
    def interrupted(self):
        """The signal number that stopped `fit()` early, or None."""
        return next((c.received for c in self.callbacks if isinstance(c, StopOnSignal)),
                    None)

    def fit(self):
        """Trains to `config.steps` steps; returns `(model, history)`.

        A run resumed in the middle of an epoch first finishes that epoch (a `fit` of the
        remaining steps), so the data order, the epoch boundaries and the iteration count
        are exactly those of an uninterrupted run.
        """
        c, model = self.config, self.model
        epoch, done = divmod(self.start_step, c.steps_per_epoch)
        kwargs = dict(callbacks=self.callbacks, shuffle=False, verbose=c.verbose)
        first = None
        if done and epoch < c.epochs:
            first = model.fit(self._stream(self.start_step), epochs=epoch + 1,
                              initial_epoch=epoch,
                              steps_per_epoch=c.steps_per_epoch - done, **kwargs)
            epoch += 1
            if model.stop_training:
                return model, first
        if epoch >= c.epochs:
            logger.info("%s already holds %d steps (asked for %d); nothing to do.",
                        c.checkpoint_dir, self.start_step, c.steps)
        history = model.fit(self._stream(epoch * c.steps_per_epoch), epochs=c.epochs,
                            initial_epoch=epoch, steps_per_epoch=c.steps_per_epoch,
                            **kwargs)
        if first is not None:
            history.epoch = first.epoch + history.epoch
            history.history = {k: first.history.get(k, []) + v
                               for k, v in history.history.items()}
        return model, history


def prepare(config):
    """Checks `config` against the data and the checkpoint directory, then builds the run.

    Loads the data, checks the directories are writable, moves an old run aside if
    `config.fresh`, refuses a run made with other model options or other data, and loads
    the newest readable checkpoint (or builds a new model) under `config.strategy`'s
    scope. Nothing is written before every check has passed; with several workers, only
    the chief writes.

    Raises:
        ValueError, FileNotFoundError: for bad data, an unusable checkpoint directory, or
            a checkpoint made with other options or data; the message names the value.
    """
    # First: multi-worker set-up must happen before TensorFlow runs any op.
    strategy = make_strategy(config.strategy)
    replica_batch_size(config.batch_size, strategy)  # raises unless it divides evenly
    # The model refuses this too, but only once built: after --fresh has moved a run aside.
    if config.n_critic_warmup and strategy.num_replicas_in_sync > 1:
        raise ValueError(WARMUP_REPLICATED.format(
            warmup=config.n_critic_warmup, replicas=strategy.num_replicas_in_sync))
    chief = strategy.extended.should_checkpoint
    data = load_data(config.dataset, config.data_dir, config.digits,
                     image_size=config.image_size, data_cache=config.data_cache)
    config = dataclasses.replace(with_data_defaults(config, data),
                                 digits=parse_digits(config.digits, data.num_classes))
    steps_per_pass(len(data), config.batch_size, config.n_critic)  # raises if too few
    if chief:
        check_writable(config.checkpoint_dir, "checkpoint_dir")
        check_writable(config.grid_dir, "samples_dir")
    if config.fresh and chief:
        outside = os.path.relpath(os.path.abspath(config.grid_dir),
                                  os.path.abspath(config.checkpoint_dir)).startswith("..")
        grids = sorted(glob.glob(os.path.join(config.grid_dir, "grid_*.png"))) if outside \
            else []
        moved = move_aside(config.checkpoint_dir, grids)
        if moved:
            logger.info("--fresh: moved the previous run to %s.", moved)
    _check_resumable(config, data.info)
    fitted = _fitted(config)
    requested = config
    if fitted:
        config = dataclasses.replace(config, steps=fitted[0])
    with strategy.scope():
        model = load_latest_state(config.checkpoint_dir, clean=chief)
        resumed = model is not None
        if resumed:
            _check_loaded(model, config, config.checkpoint_dir)
            model.jit_compile = resolve_jit_compile(config, data)
        else:
            model = build_model(config, data)
    start = int(model.train_steps.numpy())
    iteration = int(model.generator_iterations.numpy())
    if resumed:
        model.g_optimizer.learning_rate = config.learning_rate
        model.c_optimizer.learning_rate = config.learning_rate * config.critic_lr_ratio
        logger.info("Resuming from %s at generator iteration %d.", config.checkpoint_dir,
                    iteration)
    metrics_path = os.path.join(config.checkpoint_dir, METRICS_FILE)
    if chief:
        write_json(os.path.join(config.checkpoint_dir, TRAIN_CONFIG_FILE),
                   requested.to_json() | {"data": data.info}
                   | ({"fitted_steps": fitted[0], "fitted_start": fitted[1] and
                       list(fitted[1])} if fitted else {}))
        _trim_metrics(metrics_path, iteration)
    logger.info("Training on %s, classes %s: %d steps%s, %d per epoch.",
                _describe_data(data.info), describe_classes(data.class_names, config.digits),
                config.steps,
                f" (fitted to {config.max_minutes:g} minutes earlier in this run)"
                if fitted else "", config.steps_per_epoch)
    callbacks = _callbacks(config, metrics_path, chief, fitted, data=data)
    return Run(config, model, data, callbacks, start)


def _fitted(config):
    """`(steps, start)`: the end an earlier process of this run fitted to the same time
    limit (`FitToTime`) and where its learning-rate line starts (`LinearDecay`'s
    `start`, or None), if `train_config.json` records one for the same options; else
    None."""
    path = os.path.join(config.checkpoint_dir, TRAIN_CONFIG_FILE)
    if not (config.fit_to_time and config.max_minutes and os.path.exists(path)):
        return None
    saved = read_json(path)
    same = all(saved.get(k) == v for k, v in config.to_json().items()
               if k in ("steps", "steps_per_epoch", "max_minutes", "batch_size"))
    fitted, start = saved.get("fitted_steps"), saved.get("fitted_start")
    if not (same and isinstance(fitted, int) and 0 < fitted <= config.steps):
        return None
    return fitted, tuple(start) if isinstance(start, list) and len(start) == 2 else None


def _record_fit(config):
    """`FitToTime`'s `on_fit`: records the fitted end in `train_config.json`."""
    path = os.path.join(config.checkpoint_dir, TRAIN_CONFIG_FILE)

    def record(steps, seconds_per_step, start):
        write_json(path, read_json(path) | {"fitted_steps": int(steps),
                                            "fitted_start": start and list(start),
                                            "fitted_seconds_per_step": seconds_per_step})
    return record


def _callbacks(config, metrics_path, chief=True, fitted=None, data=None):
    """The run's callbacks; files are written by the chief only (all of them on one machine).

    Every worker runs the guard, the evaluation (its `predict` needs every worker) and
    the time limit (which stops all workers after the same step). Unless an earlier
    process `fitted` the run (`_fitted`: its end and rate line are kept), with a time
    limit, `fit_to_time` and one machine, also `FitToTime`.
    """
    every = lambda steps: steps // config.steps_per_epoch  # noqa: E731 (steps -> epochs)
    # First: nothing after it may save a diverged model. Then a SIGINT / SIGTERM stops
    # the run after the step in progress, and the epoch-end callbacks save it.
    callbacks = [TerminateOnNonFinite(), StopOnSignal()]
    if chief:
        callbacks += [
            SampleGrid(config.grid_dir, every_n_epochs=every(config.grid_every),
                       seed=config.seed,
                       tensorboard_dir=config.tensorboard_dir),
            WGANCheckpoint(config.checkpoint_dir, keep=config.keep_checkpoints,
                           every_n_steps=config.checkpoint_every or None,
                           dataset=data.dataset if data else config.dataset),
        ]
    if config.eval_every:
        judge = make_judge(config.digits, data.dataset if data else config.dataset,
                           config.data_dir, seed=config.seed, image_size=config.image_size)
        logger.info("Quality judge: classifier accuracy %.4f on held-out real digits.",
                    judge.classifier_accuracy)
        callbacks.append(QualityEvaluation(judge, every(config.eval_every),
                                           config.eval_n_per_class, config.seed))
        if chief:  # the best generator by FD, beside the newest
            callbacks.append(BestGenerator(os.path.join(config.checkpoint_dir, BEST_DIR),
                                           dataset=data.dataset if data else config.dataset))
    decay = (LinearDecay(config.learning_rate, config.steps,
                         config.learning_rate * config.critic_lr_ratio,
                         start=fitted and fitted[1], fraction=config.lr_decay_fraction)
             if config.lr_decay else None)
    if decay is not None:  # before the loggers: it adds the rate to the epoch's logs
        callbacks.append(decay)
    if chief:
        callbacks.append(JsonlLogger(metrics_path))
    if config.tensorboard and chief:
        # Scalars per epoch and every 10 iterations; Keras' step is model.optimizer's
        # iterations, which are the generator iterations (ConditionalWGAN.compile).
        callbacks.append(keras.callbacks.TensorBoard(config.tensorboard_dir, update_freq=10,
                                                     write_graph=False))
    if config.max_minutes is not None:
        # Several machines would each measure their own time and could stop apart.
        if not fitted and config.fit_to_time and config.strategy != "multi_worker":
            callbacks.append(FitToTime(config.max_minutes, config.steps,
                                       config.steps_per_epoch, decay,
                                       _record_fit(config) if chief else None))
        else:
            callbacks.append(TimeLimit(config.max_minutes))
    return callbacks


def train_model(config):
    """Trains a `ConditionalWGAN` as `config` (a `TrainConfig`) says, writing grids and
    checkpoints; the run behind `python -m cwgan.train`.

    Resumes from the newest readable checkpoint in `config.checkpoint_dir` when it holds
    a run made with the same model options and data (`config.fresh` moves such a run
    aside instead). Returns `(model, history)`.

    Raises:
        ValueError, FileNotFoundError: see `prepare`.
        FloatingPointError: when the losses become NaN or infinite; the last good
            checkpoint and grid are kept.
    """
    return prepare(config).fit()
