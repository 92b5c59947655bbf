"""Loading MNIST-like data and turning it into the batches the WGAN trains on.

`load_mnist` returns images scaled to [-1, 1] (the generator's tanh range) with integer
labels. Sources, in order: `data_dir` if given (IDX files or a Keras-style `.npz`), else
Keras' own loader (the user's cache or a download), else, when that fails, a bundled real
subset (see `cwgan/bundled_data/README.md`) with one log line saying so.

`make_dataset` groups `n_critic` real batches into one element, because one training step
of `ConditionalWGAN` is one generator iteration and each of its critic updates takes a
fresh real batch. `make_stream` is the same, endless and addressable by step, so that a
resumed run sees exactly the batches the interrupted one would have.
"""

import contextlib
import glob
import gzip
import hashlib
import logging
import os
import struct
import sys

import keras
import numpy as np

from cwgan.checks import check_int

logger = logging.getLogger("cwgan")

DATASETS = ("mnist", "fashion_mnist")
SPLITS = ("train", "test")
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}

BUNDLED_DIR = os.path.join(os.path.dirname(__file__), "bundled_data")
# Debian's dataset-fashion-mnist package installs the full set here.
SYSTEM_DIRS = {"fashion_mnist": "/usr/share/datasets/fashion-mnist"}
# File-name prefixes of the IDX files of each split (the official names).
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Reads one IDX file (optionally gzipped) into a numpy array of its stored shape."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"Cannot read IDX file {path}: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"Not an IDX file: {path} (expected a header 0x0000TTNN with a known type "
            f"TT, got {raw[:4].hex() or 'an empty file'})."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"Truncated IDX file {path}: the header announces {ndim} dimensions "
                         f"but the file has only {len(raw)} bytes.")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"Truncated or padded IDX file {path}: header says shape {dims} "
            f"({expected} bytes of data), file holds {len(raw) - header}."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def write_idx(path, array):
    """Writes a uint8 array (images `(N, H, W)` or labels `(N,)`) as an IDX file, gzipped
    if `path` ends in .gz; under a temporary name first, then renamed."""
    path = os.fspath(path)
    array = np.ascontiguousarray(array, np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path + ".tmp", "wb") as f:
        f.write(header + array.tobytes())
    os.replace(path + ".tmp", path)


def _find_idx_pair(data_dir, split):
    prefix = _IDX_PREFIX[split]
    images = sorted(glob.glob(os.path.join(data_dir, f"{prefix}-images*idx3-ubyte*")))
    for image_path in images:
        name = os.path.basename(image_path)
        label_name = name.replace("images", "labels", 1).replace("idx3", "idx1", 1)
        label_path = os.path.join(data_dir, label_name)
        if os.path.exists(label_path):
            return image_path, label_path
    return None


def _load_dir(data_dir, split, dataset):
    """Reads a split from a directory of IDX files or a Keras-style `<dataset>.npz`."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"Invalid value for argument `data_dir`. Received: data_dir={data_dir!r}, "
            "which is not a directory. Expected a directory holding IDX files "
            "(train-images*idx3-ubyte[.gz] with the matching labels file) or mnist.npz."
        )
    pair = _find_idx_pair(data_dir, split)
    if pair is not None:
        images, labels = read_idx(pair[0]), read_idx(pair[1])
        return images, labels, pair[0]
    for npz in (os.path.join(data_dir, f"{dataset}.npz"), os.path.join(data_dir, "mnist.npz")):
        if os.path.exists(npz):
            with np.load(npz, allow_pickle=False) as f:
                key = "train" if split == "train" else "test"
                if f"x_{key}" not in f or f"y_{key}" not in f:
                    raise ValueError(f"{npz} has no arrays x_{key} and y_{key}.")
                return f[f"x_{key}"], f[f"y_{key}"], npz
    prefix = _IDX_PREFIX[split]
    raise FileNotFoundError(
        f"No {split} data in data_dir={data_dir!r}: expected {prefix}-images*idx3-ubyte[.gz] "
        f"with the matching {prefix}-labels*idx1-ubyte[.gz], or {dataset}.npz."
    )


def _load_default(split, dataset):
    """Keras' loader first (user's cache or download); then local copies, with a log line."""
    loader = getattr(keras.datasets, dataset)
    try:
        # Keras prints its download progress to stdout; keep stdout for our results.
        with contextlib.redirect_stdout(sys.stderr):
            train, test = loader.load_data()
        images, labels = train if split == "train" else test
        return images, labels, f"keras.datasets.{dataset}"
    except Exception as e:  # Keras raises a bare Exception on a failed download.
        reason = str(e).splitlines()[0][:200]
    local = [SYSTEM_DIRS[dataset]] if dataset in SYSTEM_DIRS else [BUNDLED_DIR]
    for directory in local:
        if os.path.isdir(directory) and _find_idx_pair(directory, split):
            images, labels, source = _load_dir(directory, split, dataset)
            logger.warning(
                "keras.datasets.%s.load_data() failed (%s); using the local copy %s "
                "(%d images).", dataset, reason, source, len(images))
            return images, labels, source
    hint = " (apt-get install dataset-fashion-mnist)" if dataset == "fashion_mnist" else ""
    raise FileNotFoundError(
        f"keras.datasets.{dataset}.load_data() failed ({reason}) and no local copy was "
        f"found in {local}{hint}. Pass data_dir= a directory of IDX files."
    )


def parse_digits(digits):
    """Returns the sorted tuple of classes to train on; None means all ten."""
    if digits is None:
        return tuple(range(NUM_CLASSES))
    if isinstance(digits, (str, bytes)) or not hasattr(digits, "__iter__"):
        raise ValueError(
            f"Invalid value for argument `digits`. Received: digits={digits!r}. "
            "Expected None (all ten) or a list of distinct integers in 0..9."
        )
    digits = list(digits)
    bad = [d for d in digits if isinstance(d, bool) or not isinstance(d, (int, np.integer))
           or not 0 <= d < NUM_CLASSES]
    if bad or not digits or len(set(digits)) != len(digits):
        problem = ("it is empty" if not digits else f"{bad} not in 0..9" if bad
                   else "it repeats a digit")
        raise ValueError(
            f"Invalid value for argument `digits`. Received: digits={digits!r} ({problem}). "
            "Expected None (all ten) or a list of distinct integers in 0..9."
        )
    return tuple(sorted(int(d) for d in digits))


def load_mnist(digits=None, data_dir=None, dataset="mnist", split="train",
               return_info=False):
    """Loads MNIST (or Fashion-MNIST) for training a conditional GAN.

    Example:

    >>> images, labels = cwgan.load_mnist(digits=[3, 7])
    >>> images.shape, images.min(), images.max()
    ((2102, 28, 28, 1), -1.0, 1.0)

    Args:
        digits: classes to keep, e.g. `[3, 7]`. Defaults to `None`, all ten.
        data_dir: a directory holding IDX files (`train-images*idx3-ubyte[.gz]` and the
            matching labels file; `t10k-*` for the test split) or `mnist.npz`. Defaults to
            `None`: Keras' loader, falling back to a bundled real subset offline.
        dataset: `"mnist"` or `"fashion_mnist"`.
        split: `"train"` or `"test"`.
        return_info: also return a dict saying which data this is (see below). Defaults
            to False.

    Returns:
        `(images, labels)`: float32 images of shape `(N, 28, 28, 1)` in [-1, 1] and int32
        labels of shape `(N,)`, in the order of the source. With `return_info`,
        `(images, labels, info)`: `info` is `{"source": where they came from (e.g.
        "keras.datasets.mnist" or a file path), "images": N, "sha256": a hash of the
        pixels and labels returned}`, so that a run can tell the bundled 10,000 images
        from Keras' 60,000 (see `data_info`).
    """
    if dataset not in DATASETS:
        raise ValueError(
            f"Invalid value for argument `dataset`. Received: dataset={dataset!r}. "
            f"Expected one of {DATASETS}."
        )
    if split not in SPLITS:
        raise ValueError(
            f"Invalid value for argument `split`. Received: split={split!r}. "
            f"Expected one of {SPLITS}."
        )
    classes = parse_digits(digits)
    if data_dir is not None:
        images, labels, source = _load_dir(os.fspath(data_dir), split, dataset)
    else:
        images, labels, source = _load_default(split, dataset)
    images, labels = _validate(np.asarray(images), np.asarray(labels), source)
    keep = np.isin(labels, classes)
    missing = sorted(set(classes) - set(np.unique(labels[keep]).tolist()))
    if missing:
        raise ValueError(f"{source} has no images of the requested class(es) {missing}.")
    images, labels = images[keep], labels[keep].astype(np.int32)
    scaled = images.astype(np.float32)[..., None] / 127.5 - 1.0
    if return_info:
        return scaled, labels, data_info(images, labels, source)
    return scaled, labels


def data_info(images, labels, source):
    """`{"source", "images", "sha256"}` of uint8 `images` and their `labels`.

    The hash covers every pixel and label in order: the same data from another place
    (a copy of the same files) has the same hash; another subset or order does not.
    """
    digest = hashlib.sha256(np.ascontiguousarray(images, np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, "<i4").tobytes())
    return {"source": str(source), "images": int(len(images)), "sha256": digest.hexdigest()}


def _validate(images, labels, source):
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE[:2]:
        raise ValueError(f"{source}: expected images of shape (N, 28, 28), got {images.shape}.")
    if images.dtype != np.uint8:
        raise ValueError(f"{source}: expected uint8 pixels in 0..255, got dtype {images.dtype}.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"{source}: {len(images)} images but labels of shape {labels.shape}; "
            "expected one label per image.")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(
            f"{source}: labels must lie in 0..9, found {labels.min()}..{labels.max()}.")
    return images, labels


def make_dataset(images, labels, batch_size=64, n_critic=5, seed=None):
    """A shuffled `tf.data.Dataset` of training steps: one pass over the data, reshuffled
    at each iteration over it (each of Keras' epochs, or each pass under `.repeat()`).

    Each element is `(images, labels)` holding `n_critic` fresh real batches stacked:
    shapes `(n_critic * batch_size, 28, 28, 1)` and `(n_critic * batch_size,)`. One element
    feeds one `ConditionalWGAN.train_step` (one generator iteration). The remainder is
    dropped so every step has the same shape and the step is traced once.
    """
    import tensorflow as tf

    steps_per_pass(len(images), batch_size, n_critic)  # raises if one step does not fit
    step_size = batch_size * n_critic
    # Shuffle indices and gather each step's images in one op: cheaper than shuffling and
    # batching 28x28 elements one by one (python -m cwgan.bench measures the pipeline).
    images, labels = tf.constant(images), tf.constant(labels)
    ds = tf.data.Dataset.range(len(images))
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(step_size, drop_remainder=True)
    ds = ds.map(lambda idx: (tf.gather(images, idx), tf.gather(labels, idx)))
    return ds.prefetch(tf.data.AUTOTUNE)


def steps_per_pass(num_images, batch_size, n_critic):
    """Training steps in one pass over `num_images` (the remainder is dropped).

    Raises:
        ValueError: when one step (`batch_size * n_critic` images) needs more images than
            there are.
    """
    step_size = batch_size * n_critic
    if step_size > num_images:
        raise ValueError(
            f"Invalid value for argument `batch_size`. Received: batch_size={batch_size} "
            f"with n_critic={n_critic}: one generator iteration needs {step_size} images, "
            f"the data has {num_images}. Expected batch_size * n_critic <= {num_images}."
        )
    return num_images // step_size


def make_stream(images, labels, batch_size=64, n_critic=5, seed=0, start_step=0):
    """An endless `tf.data.Dataset` of training steps, starting at step `start_step`.

    Elements are as in `make_dataset`. Pass p over the data is shuffled by a permutation
    that depends only on `(seed, p)`, so step k is the same batch in every process: a run
    resumed at generator iteration k continues with the batches it would have seen.
    Skipping to `start_step` costs nothing (indices are skipped before any image is read).
    """
    import tensorflow as tf

    per_pass = steps_per_pass(len(images), batch_size, n_critic)
    step_size = batch_size * n_critic
    seed = check_int("seed", seed, minimum=0)
    start_step = check_int("start_step", start_step, minimum=0)
    num_images = len(images)
    images, labels = tf.constant(images), tf.constant(labels)

    def one_pass(p):
        order = tf.argsort(tf.random.stateless_uniform(
            [num_images], seed=tf.stack([tf.constant(seed, tf.int64), p])))
        steps = tf.reshape(order[:per_pass * step_size], (per_pass, step_size))
        return tf.data.Dataset.from_tensor_slices(steps)

    first_pass, offset = divmod(start_step, per_pass)
    ds = tf.data.Dataset.range(first_pass, 2**62).flat_map(one_pass).skip(offset)
    ds = ds.map(lambda idx: (tf.gather(images, idx), tf.gather(labels, idx)))
    return ds.prefetch(tf.data.AUTOTUNE)
