"""What a checkpoint directory holds, and writing and finding it safely.

A checkpoint directory holds:
  - `generator.keras`: the generator alone, stock Keras layers only, so it loads with
    `keras.saving.load_model` without cwgan;
  - `generator.json`: what sampling needs beside it (latent size, trained classes, data
    set, how far training got);
  - `cwgan.keras`: the whole `ConditionalWGAN` (both networks, both optimizers' state,
    the noise stream) for resuming training;
  - `train_config.json`: the options of the run that wrote it.

Every file is written under a temporary name, flushed to disk and renamed into place,
so a crash never leaves a half-written file under a real name.
"""

import json
import os
import tempfile

GENERATOR_FILE = "generator.keras"
GENERATOR_CONFIG_FILE = "generator.json"
MODEL_FILE = "cwgan.keras"
TRAIN_CONFIG_FILE = "train_config.json"
ENV_VAR = "CWGAN_CHECKPOINT_DIR"
DEFAULT_DIR_NAME = "checkpoints"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
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
    _fsync_dir(directory)


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


def save_checkpoint(model, directory, epoch, dataset="mnist"):
    """Saves `model` (a `ConditionalWGAN`) into `directory` after `epoch` epochs.

    The generator files are written first and `cwgan.keras` last, so a directory that
    has `cwgan.keras` always has a generator at least as recent.
    """
    os.makedirs(directory, exist_ok=True)
    atomic_write(os.path.join(directory, GENERATOR_FILE), model.generator.save)
    write_json(os.path.join(directory, GENERATOR_CONFIG_FILE), {
        "latent_dim": model.latent_dim,
        "classes": list(model.classes),
        "dataset": dataset,
        "epoch": int(epoch),
        "generator_iterations": int(model.generator_iterations.numpy()),
    })
    atomic_write(os.path.join(directory, MODEL_FILE), model.save)


def find_checkpoint_dir(checkpoint_dir=None):
    """Resolves where a trained generator lives.

    Order: the argument; else `$CWGAN_CHECKPOINT_DIR`; else the nearest `checkpoints/`
    holding a `generator.keras` in the current directory or its parents (so a notebook in
    `notebooks/` finds the project's).

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
    looked = []
    while True:
        candidate = os.path.join(here, DEFAULT_DIR_NAME)
        looked.append(candidate)
        if os.path.isfile(os.path.join(candidate, GENERATOR_FILE)):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    raise FileNotFoundError(
        f"No trained generator found: none of {looked} holds {GENERATOR_FILE}, and "
        f"${ENV_VAR} is not set. Train one with `python -m cwgan.train --digits`, or pass "
        "checkpoint_dir=.")
