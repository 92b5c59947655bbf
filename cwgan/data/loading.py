"""Loading labelled images and turning them into the batches the WGAN trains on.

`load_data` returns an `ImageData`: the images (in memory, or the files they stream
from), their labels, class names and shape. Sources: `data_dir` if given (a folder of
class folders of PNG/JPEG images, see `cwgan.data.folder`; IDX files; or a Keras-style
`.npz`), else Keras' own loader for `dataset` (mnist, fashion_mnist, cifar10: the user's
cache or a download), else, for MNIST-like data when that fails, a local copy: the
bundled real subset (see `cwgan/data/bundled/README.md`) with one log line saying so.
`load_mnist` is the in-memory MNIST case as arrays scaled to [-1, 1] (the generator's
tanh range).

`make_dataset` groups `n_critic` real batches into one element, because one training step
of `ConditionalWGAN` is one generator iteration and each of its critic updates takes a
fresh real batch. `make_stream` is the same, endless and addressable by step, so that a
resumed run sees exactly the batches the interrupted one would have; `make_file_stream`
is the same again, reading and decoding the files in parallel as it goes, for data that
does not fit in memory.
"""

import contextlib
import dataclasses
import glob
import gzip
import hashlib
import logging
import os
import struct
import sys

import keras
import numpy as np

from cwgan.data import folder
from cwgan.utils.cache import cache_dir
from cwgan.utils.checks import check_int

logger = logging.getLogger("cwgan")

DATASETS = ("mnist", "fashion_mnist", "cifar10")
MNIST_LIKE = ("mnist", "fashion_mnist")
DATA_CACHES = ("auto", "memory", "none")
# data_cache="auto" keeps decoded images in memory when they take at most this share of
# the machine's memory, else streams them from disk.
MEMORY_SHARE = 0.25
SPLITS = ("train", "test")
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
}

BUNDLED_DIR = os.path.join(os.path.dirname(__file__), "bundled")
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
            "which is not a directory. Expected a folder with one subfolder of images per "
            "class, or a directory holding IDX files (train-images*idx3-ubyte[.gz] with "
            "the matching labels file) or mnist.npz."
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
        f"with the matching {prefix}-labels*idx1-ubyte[.gz], or {dataset}.npz, or one "
        "subfolder of PNG/JPEG images per class."
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
        reason = (str(e).splitlines() or [type(e).__name__])[0][:200]
    if dataset not in MNIST_LIKE:
        raise FileNotFoundError(
            f"keras.datasets.{dataset}.load_data() failed ({reason}): it downloads the data "
            "on first use, so it needs the internet once (then Keras' cache). Offline, "
            f"pass data_dir (--data_dir) a folder of class folders of images instead.")
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


def describe_classes(class_names, classes):
    """The classes (indices into `class_names`) for a message: by number for digits
    (`[3, 7]`), else by name (`['cat', 'dog']`)."""
    names = [class_names[c] for c in classes]
    return str(list(classes)) if names == [str(c) for c in classes] else str(names)


def parse_digits(digits, num_classes=NUM_CLASSES):
    """Returns the sorted tuple of classes to train on; None means all `num_classes`.

    With `num_classes=None` (not known yet: the data is not loaded), any distinct
    non-negative integers are accepted and None stays None.
    """
    allowed = (f"in 0..{num_classes - 1}" if num_classes is not None else ">= 0")
    if digits is None:
        return None if num_classes is None else tuple(range(num_classes))
    if isinstance(digits, (str, bytes)) or not hasattr(digits, "__iter__"):
        raise ValueError(
            f"Invalid value for argument `digits`. Received: digits={digits!r}. "
            f"Expected None (all classes) or a list of distinct integers {allowed}."
        )
    digits = list(digits)
    bad = [d for d in digits if isinstance(d, bool) or not isinstance(d, (int, np.integer))
           or d < 0 or (num_classes is not None and d >= num_classes)]
    if bad or not digits or len(set(digits)) != len(digits):
        problem = ("it is empty" if not digits else f"{bad} not {allowed}" if bad
                   else "it repeats a digit")
        raise ValueError(
            f"Invalid value for argument `digits`. Received: digits={digits!r} ({problem}). "
            f"Expected None (all classes) or a list of distinct integers {allowed}."
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
    images, labels, info = _mnist_arrays(digits, data_dir, dataset, split)
    scaled = images.astype(np.float32)[..., None] / 127.5 - 1.0
    if return_info:
        return scaled, labels, info
    return scaled, labels


def _mnist_arrays(digits, data_dir, dataset, split):
    """`load_mnist`'s images as uint8 `(N, 28, 28)`, labels and info."""
    if dataset not in MNIST_LIKE:
        raise ValueError(
            f"Invalid value for argument `dataset`. Received: dataset={dataset!r}. "
            f"Expected one of {MNIST_LIKE} (IDX or npz files hold MNIST-like data; other "
            "data: a folder of class folders, or cwgan.load_data)."
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
    return images, labels, data_info(images, labels, source)


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


def _step_indices(num_images, batch_size, n_critic, seed, start_step):
    """Endless `tf.data.Dataset` of each step's image indices, from step `start_step`.

    Pass p over the data is shuffled by a permutation that depends only on `(seed, p)`,
    so step k is the same batch in every process, and skipping costs nothing.
    """
    import tensorflow as tf

    per_pass = steps_per_pass(num_images, batch_size, n_critic)
    step_size = batch_size * n_critic
    seed = check_int("seed", seed, minimum=0)
    start_step = check_int("start_step", start_step, minimum=0)

    def one_pass(p):
        order = tf.argsort(tf.random.stateless_uniform(
            [num_images], seed=tf.stack([tf.constant(seed, tf.int64), p])))
        steps = tf.reshape(order[:per_pass * step_size], (per_pass, step_size))
        return tf.data.Dataset.from_tensor_slices(steps)

    first_pass, offset = divmod(start_step, per_pass)
    return tf.data.Dataset.range(first_pass, 2**62).flat_map(one_pass).skip(offset)


def to_unit_range(images):
    """uint8 pixels (numpy or TF) -> float32 in [-1, 1]; float images pass unchanged."""
    import tensorflow as tf

    if images.dtype in (np.uint8, tf.uint8):
        return tf.cast(images, tf.float32) / 127.5 - 1.0
    return tf.cast(images, tf.float32)


def make_stream(images, labels, batch_size=64, n_critic=5, seed=0, start_step=0):
    """An endless `tf.data.Dataset` of training steps, starting at step `start_step`.

    Elements are as in `make_dataset` (images float32 in [-1, 1]; `images` may be given
    as float32 in [-1, 1] or as uint8 pixels). Pass p over the data is shuffled by a
    permutation that depends only on `(seed, p)`, so step k is the same batch in every
    process: a run resumed at generator iteration k continues with the batches it would
    have seen. Skipping to `start_step` costs nothing (indices are skipped before any
    image is read).
    """
    import tensorflow as tf

    ds = _step_indices(len(images), batch_size, n_critic, seed, start_step)
    images, labels = tf.constant(images), tf.constant(labels)
    ds = ds.map(lambda idx: (to_unit_range(tf.gather(images, idx)), tf.gather(labels, idx)))
    return ds.prefetch(tf.data.AUTOTUNE)


def resize_pixels(images, size):
    """TF op: uint8 images `(h, w, c)` or `(N, h, w, c)` -> uint8 at `size` x `size`
    (antialiased bilinear, rounded). Pixels stay uint8, so that `to_unit_range` scales
    resized images as any other (it passes float images unchanged)."""
    import tensorflow as tf

    images = tf.image.resize(images, (size, size), antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 255.0)), tf.uint8)


def read_pixels(path, image_shape, resize=False):
    """TF op: one image file -> uint8 `image_shape` (resized if asked)."""
    import tensorflow as tf

    image = folder.decode(tf.io.read_file(path), image_shape[-1])
    if resize:
        image = resize_pixels(image, image_shape[0])
    return tf.ensure_shape(image, image_shape)


def read_image(path, image_shape, resize=False):
    """TF op: one image file -> float32 `image_shape` in [-1, 1] (resized if asked)."""
    return to_unit_range(read_pixels(path, image_shape, resize))


def make_file_stream(paths, labels, image_shape, batch_size=64, n_critic=5, seed=0,
                     start_step=0, resize=False):
    """`make_stream` for images in files: the same steps (the same batches, in the same
    order), each file read and decoded when its step comes, in parallel, a few steps
    ahead (prefetch), so memory holds a few steps' images whatever the data's size.

    Args:
        paths: one image file per image (PNG or JPEG).
        labels: int labels, one per path.
        image_shape: `(height, width, channels)` of the images as trained.
        resize: resize each image to `image_shape` (else they must all have it).
    """
    import tensorflow as tf

    step_size = batch_size * n_critic
    ds = _step_indices(len(paths), batch_size, n_critic, seed, start_step)
    paths, labels = tf.constant(list(paths)), tf.constant(labels)
    image_shape = tuple(image_shape)
    ds = ds.flat_map(tf.data.Dataset.from_tensor_slices)  # one index per element
    ds = ds.map(lambda i: (read_image(tf.gather(paths, i), image_shape, resize),
                           tf.gather(labels, i)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(step_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Labelled training images and what a run needs to know about them.

    Either `images` holds every image in memory (uint8), or `paths` names the file of
    each, streamed from disk as training goes (`stream`).

    Attributes:
        labels: int32 `(N,)`, values indexing `class_names`.
        class_names: every class's name (label i is `class_names[i]`), also of classes
            not kept (`load_data(classes=...)`), so labels keep their meaning.
        image_shape: `(height, width, channels)` as trained (after any resize).
        info: `{"source", "images", "sha256"}` (see `data_info`), plus `"image_size"`
            when resized: the data's identity, recorded with a run.
        images: uint8 `(N,) + image_shape`, or None when streamed.
        paths: one file per image when streamed (else None).
        resize: whether streamed files are resized to `image_shape` when read.
        dataset: "mnist", "fashion_mnist", "cifar10", or "folder" for a folder of images.
    """

    labels: np.ndarray
    class_names: tuple
    image_shape: tuple
    info: dict
    images: object = None
    paths: object = None
    resize: bool = False
    dataset: str = "mnist"

    def __len__(self):
        return len(self.labels)

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def in_memory(self):
        return self.images is not None

    def stream(self, batch_size=64, n_critic=5, seed=0, start_step=0):
        """The training steps from `start_step` on (see `make_stream`): the same steps
        whether the images are in memory or streamed from their files."""
        if self.in_memory:
            return make_stream(self.images, self.labels, batch_size, n_critic, seed,
                               start_step)
        return make_file_stream(self.paths, self.labels, self.image_shape, batch_size,
                                n_critic, seed, start_step, self.resize)

    def take(self, indices):
        """float32 images `(len(indices),) + image_shape` in [-1, 1] (read from their
        files when streamed)."""
        indices = np.asarray(indices, np.int64)
        if self.in_memory:
            return np.asarray(to_unit_range(self.images[indices]))
        return np.asarray(_decode_files([self.paths[i] for i in indices], self.image_shape,
                                        self.resize, unit_range=True))


def _decode_files(paths, image_shape, resize, unit_range=False):
    """Every file decoded (in parallel, in order) into one array: float32 in [-1, 1] with
    `unit_range`, else uint8."""
    import tensorflow as tf

    read = read_image if unit_range else read_pixels
    out = np.empty((len(paths),) + tuple(image_shape),
                   np.float32 if unit_range else np.uint8)
    ds = tf.data.Dataset.from_tensor_slices(list(paths) or [""])
    ds = ds.take(len(paths)).map(lambda p: read(p, image_shape, resize),
                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    for i, image in enumerate(ds.batch(256).prefetch(2)):
        out[i * 256:i * 256 + len(image)] = image.numpy()
    return out


def resize_images(images, size):
    """uint8 `(N, h, w, c)` -> uint8 `(N, size, size, c)` (`resize_pixels`, 1,024 at a
    time)."""
    out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
    for start in range(0, len(images), 1024):
        out[start:start + 1024] = resize_pixels(images[start:start + 1024], size).numpy()
    return out


def _memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30  # unknown: assume a small machine


def _keep_in_memory(data_cache, num_images, image_shape):
    if data_cache not in DATA_CACHES:
        raise ValueError(f"Invalid value for argument `data_cache`. Received: data_cache="
                         f"{data_cache!r}. Expected one of {DATA_CACHES}.")
    if data_cache != "auto":
        return data_cache == "memory"
    return num_images * int(np.prod(image_shape)) <= MEMORY_SHARE * _memory_bytes()


def _check_image_size(image_size):
    if image_size is not None:
        return check_int("image_size", image_size, minimum=4)
    return None


def load_data(dataset="mnist", data_dir=None, classes=None, split="train", image_size=None,
              data_cache="auto"):
    """Loads labelled images for training a conditional GAN: an `ImageData`.

    Example:

    >>> data = cwgan.load_data(data_dir="my_images")   # my_images/cat/*.png, dog/...
    >>> data.class_names, data.image_shape, len(data)
    (('cat', 'dog'), (32, 32, 3), 2000)

    Args:
        dataset: `"mnist"`, `"fashion_mnist"` or `"cifar10"` (Keras' loaders); with a
            `data_dir` of IDX/npz files, names the data's classes.
        data_dir: a folder with one subfolder of PNG/JPEG images per class (see
            `cwgan.data.folder`), or IDX files / an `.npz` as for `load_mnist`.
        classes: class indices to keep, e.g. `[3, 7]`. Defaults to all.
        split: `"train"` or `"test"`.
        image_size: resize every image to `image_size` x `image_size`. Defaults to the
            data's own size.
        data_cache: `"memory"` (decode every image once and keep them), `"none"` (stream
            image files from disk as training reads them: memory stays flat whatever the
            folder's size) or `"auto"` (memory when the decoded images take at most a
            quarter of the machine's memory). In-memory sources (IDX, npz, Keras) are
            always in memory.

    Raises:
        ValueError, FileNotFoundError: bad or missing data, with the file or folder named.
    """
    if dataset not in DATASETS:
        raise ValueError(f"Invalid value for argument `dataset`. Received: dataset="
                         f"{dataset!r}. Expected one of {DATASETS}.")
    if split not in SPLITS:
        raise ValueError(f"Invalid value for argument `split`. Received: split={split!r}. "
                         f"Expected one of {SPLITS}.")
    image_size = _check_image_size(image_size)
    if data_dir is not None and folder.is_image_folder(os.fspath(data_dir)):
        return _load_folder(os.fspath(data_dir), classes, split, image_size, data_cache)
    if data_dir is not None or dataset in MNIST_LIKE:
        images, labels, info = _mnist_arrays(classes, data_dir, dataset, split)
        class_names = CLASS_NAMES.get(dataset, CLASS_NAMES["mnist"])
    else:
        images, labels, source = _load_default(split, dataset)
        images = np.asarray(images)
        labels = np.asarray(labels).reshape(-1).astype(np.int32)
        class_names = CLASS_NAMES[dataset]
        keep = np.isin(labels, parse_digits(classes, len(class_names)))
        images, labels = images[keep], labels[keep]
        info = data_info(images, labels, source)
    if images.ndim == 3:
        images = images[..., None]
    if image_size is not None and images.shape[1:3] != (image_size, image_size):
        images = resize_images(images, image_size)
        info = info | {"image_size": image_size}
    return ImageData(labels, tuple(class_names), tuple(images.shape[1:]), info, images,
                     dataset=dataset)


def _load_folder(root, classes, split, image_size, data_cache):
    scanned = folder.scan_folder(root, split, resized=image_size is not None,
                                 cache_dir=cache_dir())
    keep = np.isin(scanned.labels, parse_digits(classes, len(scanned.class_names)))
    paths = tuple(p for p, k in zip(scanned.paths, keep) if k)
    labels = scanned.labels[keep]
    channels = scanned.image_shape[-1]
    shape = ((image_size, image_size, channels) if image_size is not None
             else scanned.image_shape)
    info = {"source": root + ("" if split == "train" else f" ({split})"),
            "images": len(paths), "sha256": scanned.sha256}
    if classes is not None:  # a subset: its own identity
        info["sha256"] = hashlib.sha256(
            (scanned.sha256 + str(sorted(set(labels.tolist())))).encode()).hexdigest()
    if image_size is not None:
        info["image_size"] = image_size
    resize = image_size is not None
    if _keep_in_memory(data_cache, len(paths), shape):
        images = _decode_files(paths, shape, resize)
        return ImageData(labels, scanned.class_names, shape, info, images, dataset="folder")
    logger.info("Streaming %d images from %s (data_cache=%s).", len(paths), root, data_cache)
    return ImageData(labels, scanned.class_names, shape, info, paths=paths, resize=resize,
                     dataset="folder")
