"""What a checkpoint directory holds, and writing and finding it safely.

A checkpoint directory holds:
  - `generator.keras`: the latest generator alone, stock Keras layers only, so it loads
    with `keras.saving.load_model` without cwgan;
  - `generator.json`: what sampling needs beside it (latent size, trained classes, data
    set, how far training got);
  - `best/`: with `--eval_every`, the generator files of the best evaluation so far (by
    FD; `cwgan.BestGenerator`), so `cwgan.sample(checkpoint_dir="checkpoints/best")`;
  - `resume/ckpt-NNNNNNNN.keras`: the whole `ConditionalWGAN` after generator iteration
    N (both networks, both optimizers' state, the noise stream), the last few kept, for
    resuming training; a file that does not load is skipped for the one before it;
  - `train_config.json`: the options of the run that wrote it;
  - `previous/<time>/`: runs moved aside by `--fresh`.

Every file is written under a temporary name, flushed to disk and renamed into place,
so a crash never leaves a half-written file under a real name.
"""

import glob
import json
import logging
import os
import re
import shutil
import tempfile
import time

import keras
import numpy as np

logger = logging.getLogger("cwgan")

GENERATOR_FILE = "generator.keras"
GENERATOR_CONFIG_FILE = "generator.json"
RESUME_DIR = "resume"
PREVIOUS_DIR = "previous"
README_FILE = "README.md"
TRAIN_CONFIG_FILE = "train_config.json"
ENV_VAR = "CWGAN_CHECKPOINT_DIR"
DEFAULT_DIR_NAME = "checkpoints"


_STATE_PATTERN = re.compile(r"^ckpt-(\d{8,})\.keras$")
_TMP_PATTERN = ".*.tmp*"  # what atomic_write's temporary files look like


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_path(path):
    """Flushes a file or a directory (its entries, e.g. after a rename) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Calls `write(tmp_path)`, fsyncs the result and renames it to `path`.

    The temporary file is in the same directory (so the rename is atomic) and keeps the
    final extension (Keras insists on `.keras`). On failure it is removed and `path` is
    left as it was.
    """
    directory, name = os.path.split(os.path.abspath(path))
    suffix = os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{suffix}", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_path(directory)


def write_json(path, obj):
    """Writes `obj` as indented JSON, atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
    atomic_write(path, write)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def state_path(directory, iteration):
    """Where the full model after generator iteration `iteration` is saved."""
    return os.path.join(directory, RESUME_DIR, f"ckpt-{int(iteration):08d}.keras")


def list_states(directory):
    """`[(iteration, path)]` of the saved full models in `directory`, newest first."""
    found = []
    for path in glob.glob(os.path.join(directory, RESUME_DIR, "ckpt-*.keras")):
        match = _STATE_PATTERN.match(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def all_finite(model):
    """True when every variable of the model's generator and critic is finite."""
    return all(np.isfinite(np.asarray(v)).all()
               for network in (model.generator, model.critic) for v in network.variables)


def save_checkpoint(model, directory, epoch, dataset="mnist", keep=3):
    """Saves `model` (a `ConditionalWGAN`) into `directory`; `epoch` epochs are complete.

    Writes `resume/ckpt-<iteration>.keras` (the full state), then the generator files,
    then deletes all but the newest `keep` full states. Each write is atomic, so a crash
    at any point leaves every file on disk whole.

    Raises:
        FloatingPointError: when a weight is NaN or infinite; nothing is written, so the
            last good checkpoint stays the newest.
    """
    if not all_finite(model):
        raise FloatingPointError(
            f"Not saving a checkpoint into {directory}: the model has non-finite weights "
            "(training diverged). The last good checkpoint is kept.")
    iteration = int(model.generator_iterations.numpy())
    os.makedirs(os.path.join(directory, RESUME_DIR), exist_ok=True)
    atomic_write(state_path(directory, iteration), model.save)
    save_generator(model, directory, epoch, dataset)
    for _, old in list_states(directory)[keep:]:
        os.remove(old)


def save_generator(model, directory, epoch, dataset="mnist", extra=None):
    """Writes `generator.keras` and `generator.json` (what sampling needs, and `extra`)
    of `model` (a `ConditionalWGAN`) into `directory`, atomically."""
    os.makedirs(directory, exist_ok=True)
    with model.averaged_generator() as generator:  # the average, if it keeps one
        atomic_write(os.path.join(directory, GENERATOR_FILE), generator.save)
    write_json(os.path.join(directory, GENERATOR_CONFIG_FILE), {
        "latent_dim": model.latent_dim,
        "classes": list(model.classes),
        "class_names": list(model.class_names),
        "image_shape": list(model.image_shape),
        "dataset": dataset,
        "epoch": int(epoch),
        "generator_iterations": int(model.generator_iterations.numpy()),
        **(extra or {}),
    })


def load_latest_state(directory, clean=True):
    """Loads the newest full model in `directory` that loads, or returns None if none saved.

    A file that fails to load (truncated, corrupt, or whose iteration count disagrees
    with its name) is skipped with a warning naming it, and the one before it is tried.
    With `clean`, leftover temporary files of an interrupted write are removed.

    Raises:
        ValueError: when states exist but none of them loads.
    """
    if clean:
        for leftover in glob.glob(os.path.join(directory, RESUME_DIR, _TMP_PATTERN)):
            os.remove(leftover)
    states = list_states(directory)
    for iteration, path in states:
        try:
            model = keras.saving.load_model(path, safe_mode=True)
            found = int(model.generator_iterations.numpy())
            if found != iteration:
                raise ValueError(f"it holds generator iteration {found}")
        except Exception as e:  # Any failure to load means: do not resume from this file.
            reason = (str(e).splitlines() or [""])[0][:200]
            logger.warning("Checkpoint %s is unreadable (%s: %s); trying the previous one.",
                           path, type(e).__name__, reason)
            continue
        return model
    if states:
        raise ValueError(
            f"None of the {len(states)} checkpoints in {os.path.join(directory, RESUME_DIR)} "
            "loads (see the warnings above). Pass --fresh to move that run aside and start "
            "over.")
    return None


def check_writable(directory, name="checkpoint_dir"):
    """Creates `directory` if needed and checks a file can be written there.

    Raises:
        ValueError: naming the argument, the directory and the OS's reason.
    """
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=directory)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise ValueError(
            f"Invalid value for argument `{name}`. Received: {name}={directory!r}. Expected "
            f"a directory cwgan can write to ({e.strerror or e}).") from None


def move_aside(directory, extra_files=()):
    """Moves a previous run out of `directory` into `directory/previous/<time>/`.

    Everything in `directory` moves except its README and earlier moved-aside runs;
    `extra_files` (e.g. grids kept elsewhere) move into the same folder. Returns the
    folder, or None when there was nothing to move. Nothing is deleted.
    """
    names = [n for n in sorted(os.listdir(directory)) if n not in (README_FILE, PREVIOUS_DIR)]
    if not names and not extra_files:
        return None
    base = target = os.path.join(directory, PREVIOUS_DIR, time.strftime("%Y%m%d-%H%M%S"))
    suffix = 1
    while os.path.exists(target):
        suffix += 1
        target = f"{base}.{suffix}"
    os.makedirs(target)
    for name in names:
        shutil.move(os.path.join(directory, name), os.path.join(target, name))
    for path in extra_files:
        os.makedirs(os.path.join(target, "samples"), exist_ok=True)
        shutil.move(path, os.path.join(target, "samples", os.path.basename(path)))
    return target


def find_checkpoint_dir(checkpoint_dir=None):
    """Resolves where a trained generator lives.

    Order: the argument; else `$CWGAN_CHECKPOINT_DIR`; else the nearest `checkpoints/`
    holding a `generator.keras` in the current directory or its parents (so a notebook in
    `notebooks/` finds the project's).

    The search up the parents stops below any directory listed in `$CWGAN_CEILING_DIRS`
    (absolute paths separated by `os.pathsep`, like git's `GIT_CEILING_DIRECTORIES`): it
    never moves up into a listed directory, so neither it nor its parents are searched;
    the current directory itself always is. As with git, an entry bounds only searches
    that start below it. Relative and empty entries are ignored.
    E.g. with `CWGAN_CEILING_DIRS=/home/me`, a session in `/home/me/project/notebooks`
    looks in `notebooks/checkpoints` and `project/checkpoints` only, not in
    `/home/me/checkpoints` nor `/checkpoints`. Tests set it to keep the search inside
    their temporary directories.

    Raises:
        FileNotFoundError: naming the places looked at, when none holds a generator.
    """
    if checkpoint_dir is None:
        checkpoint_dir = os.environ.get(ENV_VAR) or None
    if checkpoint_dir is not None:
        checkpoint_dir = os.fspath(checkpoint_dir)
        if not os.path.isfile(os.path.join(checkpoint_dir, GENERATOR_FILE)):
            raise FileNotFoundError(
                f"No trained generator in checkpoint_dir={checkpoint_dir!r}: expected "
                f"{GENERATOR_FILE} and {GENERATOR_CONFIG_FILE} there. Train one with "
                "`python -m cwgan.train --digits` or pass the directory it wrote.")
        return checkpoint_dir
    here = os.getcwd()
    ceilings = {os.path.realpath(d)
                for d in os.environ.get("CWGAN_CEILING_DIRS", "").split(os.pathsep)
                if d and os.path.isabs(d)}
    looked = []
    while True:
        candidate = os.path.join(here, DEFAULT_DIR_NAME)
        looked.append(candidate)
        if os.path.isfile(os.path.join(candidate, GENERATOR_FILE)):
            return candidate
        parent = os.path.dirname(here)
        if parent == here or os.path.realpath(parent) in ceilings:
            break
        here = parent
    stop = " ($CWGAN_CEILING_DIRS stopped the search)" if ceilings and parent != here else ""
    raise FileNotFoundError(
        f"No trained generator found: none of {looked} holds {GENERATOR_FILE}{stop}, and "
        f"${ENV_VAR} is not set. Train one with `python -m cwgan.train --digits`, or pass "
        "checkpoint_dir=.")
