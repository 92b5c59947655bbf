"""`cwgan.sample`: images of chosen classes from a trained generator.

cwgan ships two trained generators, each with its evaluation (`eval.json`) beside it:
  - `PRETRAINED_DIR`: the ten MNIST digits, 28x28 grey (`make pretrained`,
    docs/results.md), so that `cwgan.sample(label=7)` draws a 7 right after install;
  - `PRETRAINED_COLOUR_DIR`: `python -m cwgan.demo_data`'s coloured 32x32 digits (`make
    pretrained-colour`), to see what the recipe does on colour images:
    `cwgan.sample(label=7, checkpoint_dir=cwgan.PRETRAINED_COLOUR_DIR)`.
Your own generator always wins: `sample` uses the MNIST one only when no
`checkpoint_dir` is passed, `$CWGAN_CHECKPOINT_DIR` is unset and no `checkpoints/`
with a generator is found, and then warns that it does.
"""

import os
import warnings

import keras
import numpy as np

from cwgan.data.loading import CLASS_NAMES, IMAGE_SHAPE
from cwgan.training.checkpoints import (ENV_VAR, GENERATOR_CONFIG_FILE, GENERATOR_FILE,
                                        find_checkpoint_dir, read_json)
from cwgan.utils.checks import check_int, check_seed

MAX_SAMPLES = 100_000  # 100k images are 314 MB of float32; more is surely a mistake.
_CHUNK = 1024  # images generated per call, to bound peak memory.
_cache = {}
_PRETRAINED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
PRETRAINED_DIR = os.path.join(_PRETRAINED, "mnist")
PRETRAINED_COLOUR_DIR = os.path.join(_PRETRAINED, "coloured_digits")


def load_generator(checkpoint_dir=None):
    """Loads `(generator, info)` from a checkpoint directory (see `find_checkpoint_dir`).

    `info` is the dict of `generator.json` (latent_dim, classes, class_names,
    image_shape, ...; generators saved before cwgan recorded names and shapes get the
    digits' and 28x28x1). Loaded models are cached until the file changes.
    """
    directory = find_checkpoint_dir(checkpoint_dir)
    model_path = os.path.join(directory, GENERATOR_FILE)
    key = (os.path.abspath(model_path), os.stat(model_path).st_mtime_ns)
    if key not in _cache:
        _cache.clear()
        _cache[key] = read_generator(directory)
    return _cache[key]


def read_generator(directory):
    """Reads `(generator, info)` from `directory` as `load_generator` does, uncached (a
    server that reloads a newer generator keeps the old one until the new one is read).

    Raises:
        FileNotFoundError: `generator.json` is missing.
        ValueError: either file is unreadable or not a cwgan generator, saying which.
    """
    model_path = os.path.join(directory, GENERATOR_FILE)
    info_path = os.path.join(directory, GENERATOR_CONFIG_FILE)
    if not os.path.isfile(info_path):
        raise FileNotFoundError(
            f"{info_path} is missing: {GENERATOR_FILE} needs it beside it (it says which "
            "classes the generator was trained on). Re-save the checkpoint with cwgan.")
    info = _read_info(info_path)
    try:
        generator = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as e:  # zip, HDF5, JSON or deserialisation errors alike
        reason = (str(e).splitlines() or [""])[0][:200]
        raise ValueError(
            f"{model_path} is not a readable Keras model ({type(e).__name__}: "
            f"{reason}). Train again or point checkpoint_dir elsewhere.") from None
    _check_generator(generator, info, model_path)
    return generator, info


def own_or_pretrained(checkpoint_dir):
    """`checkpoint_dir` resolved as `find_checkpoint_dir` does, or, when nothing was asked
    for and nothing is found, `PRETRAINED_DIR` (with a warning saying so)."""
    if checkpoint_dir is not None or os.environ.get(ENV_VAR):
        return find_checkpoint_dir(checkpoint_dir)
    try:
        return find_checkpoint_dir()
    except FileNotFoundError as e:
        warnings.warn(f"{e} Using the generator shipped with cwgan ({PRETRAINED_DIR}) "
                      "instead; pass checkpoint_dir= to use another.", stacklevel=3)
        return PRETRAINED_DIR


def _read_info(path):
    try:
        info = read_json(path)
        latent_dim, classes = info["latent_dim"], info["classes"]
        check_int("latent_dim", latent_dim, minimum=1)
        info.setdefault("class_names", list(CLASS_NAMES.get(info.get("dataset"),
                                                            CLASS_NAMES["mnist"])))
        info.setdefault("image_shape", list(IMAGE_SHAPE))
        names = info["class_names"]
        if not classes or not all(isinstance(c, int) and 0 <= c < len(names)
                                  for c in classes):
            raise ValueError(f"classes={classes!r} with {len(names)} class names")
        if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise ValueError(f"class_names={names!r}")
        info["image_shape"] = tuple(check_int("image_shape", d, minimum=1)
                                    for d in info["image_shape"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a cwgan generator description ({type(e).__name__}: "
                         f"{e}); expected JSON with latent_dim and classes.") from None
    return info


def _check_generator(generator, info, path):
    """Refuses a model that is not a `[noise, label] -> image` generator of the shapes
    `generator.json` describes."""
    inputs = getattr(generator, "inputs", None) or []
    shapes = [tuple(x.shape) for x in inputs]
    output = tuple(getattr(generator, "output_shape", ()) or ())
    expected = (None,) + tuple(info["image_shape"])
    if shapes != [(None, info["latent_dim"]), (None,)] or output != expected:
        raise ValueError(
            f"{path} is not a cwgan generator for latent_dim={info['latent_dim']}: it takes "
            f"inputs of shapes {shapes} and returns {output}; expected [(None, "
            f"{info['latent_dim']}), (None,)] -> {expected}.")


def label_indices(label, class_names):
    """`label` (an index, a class name, or a list of either) as a list of indices.

    Raises:
        ValueError: an unknown name or an index outside the classes, naming it and
            what is allowed.
    """
    single = not isinstance(label, (list, tuple, np.ndarray))
    values = [label] if single else list(np.asarray(label).tolist()) if isinstance(
        label, np.ndarray) else list(label)
    out = []
    for value in values:
        if isinstance(value, str):
            if value not in class_names:
                raise ValueError(
                    f"Invalid value for argument `label`. Received: label={label!r}; "
                    f"{value!r} is not a class name. Expected one of {list(class_names)} "
                    f"or an index in 0..{len(class_names) - 1}.")
            out.append(class_names.index(value))
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            out.append(check_int("label", int(value), minimum=0,
                                 maximum=len(class_names) - 1))
        else:
            raise ValueError(
                f"Invalid value for argument `label`. Received: label={label!r}. Expected "
                f"a class index in 0..{len(class_names) - 1}, a class name, or a non-empty "
                "1-D list of them.")
    return out


def checked_labels(label, n, classes, class_names):
    """`label` and `n` as `sample` takes them, checked, as an int32 array of class indices
    (one per image); a ValueError names the bad argument and what is allowed."""
    if isinstance(label, (list, tuple, np.ndarray)):
        if np.ndim(label) != 1 or len(label) == 0:
            raise ValueError(
                f"Invalid value for argument `label`. Received: label={label!r}. Expected "
                f"a class index in 0..{len(class_names) - 1}, a class name, or a non-empty "
                "1-D list of them.")
        labels = np.asarray(label_indices(label, class_names))
        if n != 1:
            raise ValueError(
                f"Invalid value for argument `n`. Received: n={n!r} with a list of labels. "
                "A list gives one image per entry; pass n=1 (the default).")
        if labels.size > MAX_SAMPLES:
            raise ValueError(f"Too many labels: {labels.size}; at most {MAX_SAMPLES}.")
    else:
        index = label_indices(label, class_names)[0]
        n = check_int("n", n, minimum=1, maximum=MAX_SAMPLES)
        labels = np.full((n,), index)
    bad = sorted({int(v) for v in labels} - set(classes))
    if bad:
        # Digits by their numbers; named classes by their names.
        named = lambda cs: [class_names[c] if class_names[c] != str(c) else c  # noqa: E731
                            for c in cs]
        raise ValueError(
            f"Invalid value for argument `label`. Received: label={label!r}; the model was "
            f"trained on classes {named(classes)} only, so {named(bad)} cannot be "
            "generated.")
    return labels.astype(np.int32)


def sample(label=7, n=1, seed=None, checkpoint_dir=None):
    """Generates images of a chosen class from a trained generator.

    Example:

    >>> sevens = cwgan.sample(label=7, n=4, seed=0)
    >>> sevens.shape, sevens.dtype
    ((4, 28, 28), dtype('float32'))
    >>> cats = cwgan.sample(label="cat", n=4, checkpoint_dir="runs/pets")  # RGB, 32x32
    >>> cats.shape
    (4, 32, 32, 3)

    Args:
        label: a class index or a class name (e.g. "cat": the folder's name the class
            came from), or a list of them (one image per entry). Must be a class the model
            was trained on. Defaults to 7.
        n: how many images of `label` (only with a single label). Defaults to 1.
        seed: the noise seed: same seed, same images. Defaults to None (fresh noise).
        checkpoint_dir: the directory `python -m cwgan.train` wrote. Defaults to
            `$CWGAN_CHECKPOINT_DIR`, else the nearest `checkpoints/` in the current
            directory or its parents, else (with a warning) the generator shipped with
            cwgan, `cwgan.PRETRAINED_DIR`; pass that to ask for it explicitly, or
            `cwgan.PRETRAINED_COLOUR_DIR` for the coloured digits.

    Returns:
        float32 numpy array of shape `(n, height, width)` for grey images (MNIST: `(n, 28,
        28)`) or `(n, height, width, 3)` for colour ones (`len(label)` instead of `n` for a
        list), values in [0, 1] (0 is black).

    Raises:
        ValueError: an unknown class name, an index outside the classes or not trained
            on, n < 1, a bad seed.
        FileNotFoundError: no trained generator in the `checkpoint_dir` passed (or in
            `$CWGAN_CHECKPOINT_DIR`).
    """
    seed = check_seed("seed", seed)
    generator, info = load_generator(own_or_pretrained(checkpoint_dir))
    labels = checked_labels(label, n, info["classes"], list(info["class_names"]))
    return generate_unit(generator, seeded_noise(seed, len(labels), info["latent_dim"]), labels)


def seeded_noise(seed, n, latent_dim):
    """The noise `cwgan.sample` draws for `seed`: `(n, latent_dim)` float32, standard
    normal, from `np.random.default_rng(seed)` (None: fresh noise).

    The first `k` rows do not depend on `n`, so image i of a call is image i of any longer
    call with the same seed; the server, the interpolation grids and the load test draw
    their noise here, so that the same seed gives the same images everywhere.
    """
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


def generate_unit(generator, noise, labels):
    """Generator output for `noise` and `labels`, in chunks, as images in [0, 1]: `(n, h,
    w)` for one channel, `(n, h, w, 3)` for three (the shape `cwgan.sample` returns)."""
    return np.concatenate([
        unit_images(generator([noise[start:start + _CHUNK], labels[start:start + _CHUNK]],
                              training=False))
        for start in range(0, len(labels), _CHUNK)])


def unit_images(images):
    """Generator output `(n, h, w, c)` in [-1, 1] as `cwgan.sample` returns images: `(n, h,
    w)` for one channel, `(n, h, w, 3)` for three, in [0, 1]."""
    images = np.asarray(images, np.float32)
    if images.shape[-1] == 1:
        images = images[..., 0]
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0)
