r"""Trains a conditional WGAN on MNIST, writing sample grids and checkpoints.

    python -m cwgan.train --digits            # all ten digits
    python -m cwgan.train --digits=3,7        # only 3 and 7
    python -m cwgan.train --digits --max_minutes=15

The schedule is in training steps (one step: n_critic critic updates and a generator
update), not passes over the data, so the same flags train alike on any data size.
Re-running with the same --checkpoint_dir resumes where the last checkpoint left off;
--fresh moves that run aside (into <checkpoint_dir>/previous/) and starts over.
Ctrl-C (SIGINT) or SIGTERM stops after the step in progress and saves a checkpoint first.

Exit status: 0 done, 2 bad input (the message names it; nothing on disk is touched),
1 training diverged (non-finite losses; the last good checkpoint is kept) or a file could
not be written (e.g. a full disk; every file on disk stays whole), 130 / 143 stopped by
SIGINT / SIGTERM (saved; the same command resumes).
"""

import logging
import os
import signal
import sys

from absl import app, flags

from cwgan.model.networks import CRITIC_NORMS
from cwgan.model.wgan import OPTIMIZERS
from cwgan.training.checkpoints import list_states
from cwgan.training.distribute import STRATEGIES
from cwgan.training.run import TrainConfig, prepare
from cwgan.utils import cli

_DIGITS = flags.DEFINE_string(
    "digits", "all", "Digits to train on: comma-separated (e.g. 3,7), or a bare --digits "
    "(or 'all') for all ten.")
_STEPS = flags.DEFINE_integer(
    "steps", TrainConfig.steps,
    "Training steps in all; the learning rate decays to 0 there (with "
    "--max_minutes and --fit_to_time, sooner if they would not fit in the time). A step "
    "is n_critic critic updates and a generator update, one generator iteration (during "
    "a --n_critic_warmup warm-up, the generator update only every few steps). A multiple "
    "of --steps_per_epoch.", lower_bound=1)
_STEPS_PER_EPOCH = flags.DEFINE_integer(
    "steps_per_epoch", TrainConfig.steps_per_epoch,
    "Steps per Keras epoch: a progress bar, a line of "
    "metrics.jsonl and a checkpoint each, whatever the data's size.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", TrainConfig.batch_size,
    "Images per critic batch, over all replicas (each of R replicas "
    "takes batch_size/R).", lower_bound=1)
_N_CRITIC = flags.DEFINE_integer(
    "n_critic", TrainConfig.n_critic, "Critic updates per generator update.", lower_bound=1)
_N_CRITIC_WARMUP = flags.DEFINE_integer(
    "n_critic_warmup", TrainConfig.n_critic_warmup,
    "If not 0, the schedule of the WGAN paper's code: at least this "
    "many critic updates (100 there) before each of the first 25 generator iterations and "
    "every 500th. 0: always n_critic.", lower_bound=0)
_CLIP_VALUE = flags.DEFINE_float(
    "clip_value", TrainConfig.clip_value, "Critic weights are clipped to [-c, c] after every "
    "update. Larger than the paper's 0.01, which learns slowly within a CPU budget. "
    "Default: 0.05 with --critic_norm=batch, 0.1 otherwise; each beat its neighbours at "
    "equal steps (docs/recipe.md).")
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", TrainConfig.learning_rate,
    "Learning rate of both optimizers (default: RMSprop 5e-4 for "
    "clip, docs/recipe.md; Adam 1e-4 for gp). The WGAN paper used 5e-5.")
_LR_DECAY = flags.DEFINE_boolean(
    "lr_decay", TrainConfig.lr_decay,
    "Decay both learning rates linearly to 0 at --steps (set every "
    "step; docs/recipe.md). --nolr_decay keeps them constant.")
_LR_DECAY_FRACTION = flags.DEFINE_float(
    "lr_decay_fraction", TrainConfig.lr_decay_fraction,
    "With --lr_decay, the share of the run, at its end, over which the rates fall to 0; "
    "before it they stay constant. 1: from the first step.", lower_bound=0.0, upper_bound=1.0)
_CONSTRAINT = flags.DEFINE_enum(
    "constraint", TrainConfig.constraint, ["clip", "gp"],
    "Critic constraint: weight clipping (the WGAN "
    "paper) or a gradient penalty (WGAN-GP: Adam, lambda 10, no clipping).")
_LATENT_DIM = flags.DEFINE_integer("latent_dim", TrainConfig.latent_dim, "Noise vector length.",
                                   lower_bound=1)
_ARCHITECTURE = flags.DEFINE_enum("architecture", TrainConfig.architecture, ["dcgan", "mlp"],
                                  "Network family (cwgan/model/networks.py).")
_WIDTH = flags.DEFINE_integer("width", TrainConfig.width, "Network width.", lower_bound=1)
_CONDITIONING = flags.DEFINE_enum("conditioning", TrainConfig.conditioning,
                                  ["concat", "projection"], "How the label enters the critic.")
_UPSAMPLING = flags.DEFINE_enum(
    "upsampling", TrainConfig.upsampling, ["transpose", "resize"],
    "How the dcgan generator doubles its maps: transposed 4x4 convolutions, or a "
    "nearest-neighbour resize and a 3x3 convolution.")
_GENERATOR_CONDITIONING = flags.DEFINE_enum(
    "generator_conditioning", TrainConfig.generator_conditioning, ["input", "layers", "norm"],
    "How the label enters the dcgan generator: joined to the noise only, also as one-hot "
    "planes before every upsampling, or also as a class's own batch-norm scale and offset "
    "after every upsampling. Default for colour images: norm where the classes explain "
    "at least 0.75 of the spread of the images' mean colours, else layers (the class is "
    "mostly in the shape; each ahead at equal steps on such data); input for grey ones "
    "(docs/recipe.md, fifteenth round).")
_GENERATOR_OUTPUT = flags.DEFINE_enum(
    "generator_output", TrainConfig.generator_output, ["upsample", "conv"],
    "How the dcgan generator makes the image: its last upsampling (DCGAN's), or a 3x3 "
    "convolution of full-size maps after it (one set of weights for every pixel's "
    "channels). Default: conv, ahead at equal steps on grey and colour data "
    "(docs/recipe.md).")
_CRITIC_DEPTH = flags.DEFINE_integer(
    "critic_depth", TrainConfig.critic_depth,
    "Convolutions per resolution in the dcgan critic: 1 is DCGAN's; each "
    "more adds a 3x3 stride-1 convolution.", lower_bound=1)
_CRITIC_NORM = flags.DEFINE_enum(
    "critic_norm", TrainConfig.critic_norm, list(CRITIC_NORMS),
    "Normalisation after the dcgan critic's convolutions (after the first), without "
    "parameters: batch (real and fake batches then go through the critic separately, as "
    "in the WGAN paper's code), reference (real and fake in one pass, both normalised by "
    "the real half's statistics), layer (each sample's maps) or none. Default: batch for "
    "clip (docs/recipe.md, seventh round), none for gp.")
_MINIBATCH_STD = flags.DEFINE_integer(
    "minibatch_std", TrainConfig.minibatch_std,
    "If not 0, the group size of a minibatch standard deviation channel (ProGAN) before "
    "the dcgan critic's last convolution: the critic sees how varied each group of "
    "samples is. Divides --batch_size.", lower_bound=0)
_CRITIC_LR_RATIO = flags.DEFINE_float(
    "critic_lr_ratio", TrainConfig.critic_lr_ratio,
    "The critic's learning rate over the generator's (two time-scale rates; 1: the same).")
_OPTIMIZER = flags.DEFINE_enum(
    "optimizer", TrainConfig.optimizer, list(OPTIMIZERS),
    "The optimizer of both networks: rmsprop (the WGAN paper's) or adam (beta_1 0.5 with "
    "clipping, as in Lucic et al. 2018; the WGAN-GP paper's betas with gp). Default: "
    "rmsprop for clip, adam for gp.")
_BATCH_FAKES = flags.DEFINE_boolean(
    "batch_fakes", TrainConfig.batch_fakes,
    "Generate a step's n_critic fake batches in one generator call (the generator does "
    "not change during them) instead of one per critic update.")
_MIXED_BATCHES = flags.DEFINE_boolean(
    "mixed_batches", TrainConfig.mixed_batches,
    "With batch norm in the critic, score real and fake batches in one pass, so that "
    "the norm's statistics are of both (compare_gan's way) rather than of each alone.")
_EMA = flags.DEFINE_float(
    "ema", TrainConfig.ema,
    "Keep an exponential moving average of the generator's weights at this "
    "momentum (e.g. 0.999) and save, draw and evaluate it instead of the raw weights "
    "(0: off).")
_SEED = flags.DEFINE_integer("seed", TrainConfig.seed, "Random seed.", lower_bound=0)
_DATASET = flags.DEFINE_enum(
    "dataset", TrainConfig.dataset, ["mnist", "fashion_mnist", "cifar10"],
    "Data set through Keras' loader (mnist offline: the bundled 10k subset; cifar10 needs "
    "one download); with --data_dir of IDX files, which classes' names they have.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", TrainConfig.data_dir,
    "Your own data: a folder with one subfolder of PNG/JPEG images per "
    "class (docs/own-data.md), or a directory with IDX files or mnist.npz (default: "
    "--dataset through Keras' loader).")
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", TrainConfig.image_size,
    "Resize every image to this square size (default: the data's "
    "own; the conv networks take 16, 20, 24, 28, 32, 40, 48, 56, 64, ...).", lower_bound=4)
_DATA_CACHE = flags.DEFINE_enum(
    "data_cache", TrainConfig.data_cache, ["auto", "memory", "none"],
    "Image folders: decode every image once and keep them in memory, or stream them from "
    "disk as training reads them (memory stays flat whatever the folder's size); auto: "
    "memory when they take at most a quarter of this machine's memory.")
_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", TrainConfig.checkpoint_dir,
                                      "Checkpoint directory.")
_CHECKPOINT_EVERY = flags.DEFINE_integer(
    "checkpoint_every", TrainConfig.checkpoint_every,
    "Also save a checkpoint every N generator iterations, besides "
    "each epoch end (0: epoch ends only).", lower_bound=0)
_KEEP_CHECKPOINTS = flags.DEFINE_integer(
    "keep_checkpoints", TrainConfig.keep_checkpoints,
    "Full-model checkpoints kept in <checkpoint_dir>/resume/.",
    lower_bound=1)
_FRESH = flags.DEFINE_boolean(
    "fresh", TrainConfig.fresh, "Start over: move the run in --checkpoint_dir aside into "
    "<checkpoint_dir>/previous/<time>/ (nothing is deleted) instead of resuming it.")
_SAMPLES_DIR = flags.DEFINE_string(
    "samples_dir", TrainConfig.samples_dir,
    "Where grids go (default: <checkpoint_dir>/samples).")
_GRID_EVERY = flags.DEFINE_integer(
    "grid_every", TrainConfig.grid_every,
    "Draw a grid every N steps, a multiple of --steps_per_epoch "
    "(default: every epoch).", lower_bound=1)
_MAX_MINUTES = flags.DEFINE_float(
    "max_minutes", TrainConfig.max_minutes,
    "Stop cleanly after this much wall time, saving as at an epoch end.")
_FIT_TO_TIME = flags.DEFINE_boolean(
    "fit_to_time", TrainConfig.fit_to_time,
    "With --max_minutes: time the steps after the first epochs and, "
    "if --steps would not fit, end the schedule (the decay to 0) where the time ends; "
    "recorded in train_config.json for a resumed run. --nofit_to_time keeps --steps "
    "(the same schedule on every machine; the time limit may cut it).")
# TrainConfig.jit_compile ("auto", True or False) as the flag spells it.
_JIT_SPELLINGS = {"auto": "auto", True: "true", False: "false"}
_JIT_COMPILE = flags.DEFINE_enum(
    "jit_compile", _JIT_SPELLINGS[TrainConfig.jit_compile], list(_JIT_SPELLINGS.values()),
    "XLA-compile the train step. auto: time a few steps both ways on this machine and take "
    "the faster (cached per machine and model shape in ~/.cache/cwgan): XLA is faster on "
    "some CPUs and slower on others (docs/results.md). --jit_compile alone means true, "
    "--nojit_compile false.")
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every", TrainConfig.eval_every,
    "Evaluate sample quality every N steps (a multiple of "
    "--steps_per_epoch) into metrics.jsonl and the History (0: never; python -m "
    "cwgan.evaluate does it afterwards).", lower_bound=0)
_EVAL_N_PER_CLASS = flags.DEFINE_integer(
    "eval_n_per_class", TrainConfig.eval_n_per_class,
    "Samples per class for --eval_every.", lower_bound=20)
_TENSORBOARD = flags.DEFINE_boolean(
    "tensorboard", TrainConfig.tensorboard,
    "Also log losses, the Wasserstein estimate and the grids for "
    "TensorBoard into <checkpoint_dir>/tensorboard/ (view with `pip install tensorboard; "
    "tensorboard --logdir checkpoints/tensorboard`).")
_STRATEGY = flags.DEFINE_enum(
    "strategy", TrainConfig.strategy, list(STRATEGIES),
    "Devices to train on: none (one device), mirrored (every GPU of this machine), "
    "multi_worker (the machines in TF_CONFIG). --batch_size is the global batch; "
    "see docs/distributed.md.")
_MIXED_PRECISION = flags.DEFINE_boolean(
    "mixed_precision", TrainConfig.mixed_precision,
    "mixed_float16 compute with loss scaling (for GPUs); "
    "variables and the critic's scores stay float32.")


# Flags given bare (absl wants a value for these): a bare --digits means all ten; XLA's
# enum also takes the boolean spellings.
_BARE_FLAGS = {"digits": "--digits=all", "jit_compile": "--jit_compile=true",
               "nojit_compile": "--jit_compile=false"}


def _expand_bare_flags(argv):
    """Gives `--digits`, `--jit_compile` and `--nojit_compile` their implied values."""
    out = list(argv)
    for i, arg in enumerate(out):
        name = arg.lstrip("-")
        if arg.startswith("-") and name in _BARE_FLAGS:
            nxt = out[i + 1] if i + 1 < len(out) else None
            if name != "digits" or nxt is None or nxt.startswith("-"):
                out[i] = _BARE_FLAGS[name]
    return out


def parse_digits_flag(value):
    """'all' -> None; '3,7' -> [3, 7]. Raises app.UsageError naming the flag."""
    value = value.strip()
    if value.lower() == "all":
        return None
    try:
        digits = [int(part) for part in value.split(",")]
    except ValueError:
        raise app.UsageError(
            f"--digits={value!r}: expected comma-separated class numbers (digits 0..9 for "
            "MNIST, e.g. --digits=3,7) or a bare --digits for all classes.",
            exitcode=2) from None
    return digits


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    logging.getLogger("cwgan").setLevel(logging.INFO)
    try:
        config = TrainConfig(
            digits=parse_digits_flag(_DIGITS.value), steps=_STEPS.value,
            steps_per_epoch=_STEPS_PER_EPOCH.value, batch_size=_BATCH_SIZE.value,
            n_critic=_N_CRITIC.value, n_critic_warmup=_N_CRITIC_WARMUP.value,
            clip_value=_CLIP_VALUE.value,
            learning_rate=_LEARNING_RATE.value, lr_decay=_LR_DECAY.value,
            lr_decay_fraction=_LR_DECAY_FRACTION.value,
            latent_dim=_LATENT_DIM.value,
            architecture=_ARCHITECTURE.value, width=_WIDTH.value,
            upsampling=_UPSAMPLING.value, ema=_EMA.value,
            generator_conditioning=_GENERATOR_CONDITIONING.value,
            generator_output=_GENERATOR_OUTPUT.value, critic_depth=_CRITIC_DEPTH.value,
            critic_norm=_CRITIC_NORM.value,
            minibatch_std=_MINIBATCH_STD.value, critic_lr_ratio=_CRITIC_LR_RATIO.value,
            optimizer=_OPTIMIZER.value,
            batch_fakes=_BATCH_FAKES.value, mixed_batches=_MIXED_BATCHES.value,
            conditioning=_CONDITIONING.value, constraint=_CONSTRAINT.value,
            seed=_SEED.value, dataset=_DATASET.value, data_dir=_DATA_DIR.value,
            image_size=_IMAGE_SIZE.value, data_cache=_DATA_CACHE.value,
            checkpoint_dir=_CHECKPOINT_DIR.value, checkpoint_every=_CHECKPOINT_EVERY.value,
            keep_checkpoints=_KEEP_CHECKPOINTS.value, fresh=_FRESH.value,
            samples_dir=_SAMPLES_DIR.value, grid_every=_GRID_EVERY.value,
            max_minutes=_MAX_MINUTES.value, fit_to_time=_FIT_TO_TIME.value,
            jit_compile={v: k for k, v in _JIT_SPELLINGS.items()}[_JIT_COMPILE.value],
            mixed_precision=_MIXED_PRECISION.value, tensorboard=_TENSORBOARD.value,
            eval_every=_EVAL_EVERY.value, eval_n_per_class=_EVAL_N_PER_CLASS.value,
            strategy=_STRATEGY.value)
    except ValueError as e:
        # "argument `x`" in the library's messages is flag --x here.
        raise app.UsageError(str(e).replace("argument `", "flag `--"), exitcode=2) from None
    try:
        run = prepare(config)  # every check of the input, before anything is written
    except (ValueError, OSError) as e:
        raise app.UsageError(str(e).replace("argument `", "flag `--"), exitcode=2) from None
    try:
        model, _ = run.fit()
    except FloatingPointError as e:
        sys.stderr.write(f"FATAL {e}\n")
        sys.exit(1)
    except OSError as e:  # e.g. a full disk while saving
        sys.stderr.write(f"FATAL Could not write into {config.checkpoint_dir}: {e}. Every file "
                         "there is whole (each is written to a temporary name, then renamed); "
                         "re-run the same command to resume from the newest checkpoint.\n")
        sys.exit(1)
    if run.interrupted is not None:
        states = list_states(config.checkpoint_dir)
        saved = (f"saved {os.path.relpath(states[0][1])}" if states
                 else "checkpoints are written by worker 0")
        sys.stderr.write(
            f"Interrupted ({signal.Signals(run.interrupted).name}) at generator iteration "
            f"{int(model.generator_iterations.numpy())}; {saved}; run the same command to "
            "resume.\n")
        sys.exit(128 + run.interrupted)


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); exits with the status above."""
    cli.run(main, argv=_expand_bare_flags(sys.argv if argv is None else argv))


if __name__ == "__main__":
    run()
