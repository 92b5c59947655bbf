"""Reading a folder of labelled images: one subfolder per class (Keras'
`image_dataset_from_directory` convention), PNG or JPEG files inside.

    my_data/
      cat/    0001.png 0002.jpg ...
      dog/    ...

`scan_folder` lists the files and checks them all before training starts: every file
is decoded once (in parallel, through tf.data, without keeping the pixels), so a
corrupt image, a non-image file, a size or channel count unlike the others, an empty
class folder or a single class is refused with an error naming the file or folder.
Refused, not skipped: a run on silently fewer images would not be the run asked for.
The check's result (shape, content hash) is cached under the files' names, sizes and
modification times, so a resumed run does not decode everything again.

Splits: a `train/` and a `test/` folder of class folders are used as they are;
otherwise each file belongs to the test split when a hash of its path within its class
folder says so (`TEST_SHARE`, about 1 in 10): the split of a file never changes when
files are added, and the held-out part judges the generator (`cwgan.evaluate`).
"""

import dataclasses
import hashlib
import json
import logging
import os

import numpy as np

logger = logging.getLogger("cwgan")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SPLIT_DIRS = ("train", "test")
TEST_SHARE = 10  # one file in TEST_SHARE (by a hash of its name) is held out
# Channel counts as decoded -> as trained: an alpha channel is dropped.
_CHANNELS = {1: 1, 2: 1, 3: 3, 4: 3}
CACHE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Folder:
    """The checked files of one split of a class folder.

    Attributes:
        root: the folder holding the class folders.
        class_names: the class folders' names, sorted; label i is `class_names[i]`.
        paths: every image file, class by class, each class's files sorted.
        labels: int32 label of each file.
        image_shape: `(height, width, channels)` of every image as stored (alpha
            dropped: 1 or 3 channels).
        sha256: a hash of every image's decoded pixels and label, in order: the data's
            identity, whatever the file names or formats.
    """

    root: str
    class_names: tuple
    paths: tuple
    labels: np.ndarray
    image_shape: tuple
    sha256: str


def is_image_folder(path):
    """True when `path` is a directory with at least one subfolder and no IDX/npz data."""
    if not os.path.isdir(path):
        return False
    names = os.listdir(path)
    if any(n.endswith((".npz", "idx3-ubyte", "idx3-ubyte.gz")) for n in names):
        return False
    return any(os.path.isdir(os.path.join(path, n)) and not n.startswith(".") for n in names)


def _subdirs(path):
    return sorted(n for n in os.listdir(path)
                  if not n.startswith(".") and os.path.isdir(os.path.join(path, n)))


def _in_test_split(relative_path):
    digest = hashlib.sha256(relative_path.replace(os.sep, "/").encode()).digest()
    return int.from_bytes(digest[:4], "big") % TEST_SHARE == 0


def list_files(root, split="train"):
    """`(class_names, paths, labels)` of `split` in `root`; raises on a bad layout.

    Raises:
        FileNotFoundError: `root` is not a directory.
        ValueError: no class folders, a single class, an empty class folder, or a file
            that is not a PNG or JPEG inside a class folder (named).
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"Invalid value for argument `data_dir`. Received: data_dir={root!r}, which is "
            "not a directory. Expected a folder with one subfolder of images per class.")
    subdirs = _subdirs(root)
    presplit = set(SPLIT_DIRS) <= set(subdirs)
    base = os.path.join(root, split) if presplit else root
    class_names = tuple(_subdirs(base))
    layout = ("one subfolder of PNG/JPEG images per class (e.g. data/cat/*.png, "
              "data/dog/*.png), optionally inside train/ and test/")
    if len(class_names) < 2:
        found = f"only the class folder {class_names[0]!r}" if class_names else \
            "no class folders"
        raise ValueError(f"{base} holds {found}; a conditional GAN needs at least 2 "
                         f"classes. Expected {layout}.")
    paths, labels, not_images = [], [], []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(base, name)
        found = []
        for directory, dirs, files in os.walk(class_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                if f.startswith("."):
                    continue  # .DS_Store and the like
                path = os.path.join(directory, f)
                if not f.lower().endswith(IMAGE_EXTENSIONS):
                    not_images.append(path)
                elif presplit or _in_test_split(os.path.relpath(path, class_dir)) == (
                        split == "test"):
                    found.append(path)
        if not found and not not_images:
            what = "no images" if presplit or split == "train" else \
                "no images held out for testing (too few images?)"
            raise ValueError(f"Class folder {class_dir} has {what}. Expected PNG or JPEG "
                             f"files ({', '.join(IMAGE_EXTENSIONS)}) in every class folder.")
        paths += found
        labels += [label] * len(found)
    if not_images:
        shown = ", ".join(not_images[:5]) + (f" and {len(not_images) - 5} more"
                                             if len(not_images) > 5 else "")
        raise ValueError(f"Not image files in {base}: {shown}. Expected only PNG or JPEG "
                         f"files ({', '.join(IMAGE_EXTENSIONS)}) in the class folders; "
                         "move the others out.")
    return class_names, tuple(paths), np.asarray(labels, np.int32)


def decode(contents, channels):
    """TF op: encoded PNG/JPEG bytes -> uint8 `(h, w, channels)` (alpha dropped)."""
    import tensorflow as tf

    image = tf.io.decode_image(contents, channels=channels, expand_animations=False)
    image.set_shape((None, None, channels))
    return image


def _fingerprint(paths):
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def decode_any(contents):
    """TF op: encoded bytes -> uint8 `(h, w, c)` with the file's own channel count."""
    import tensorflow as tf

    return tf.io.decode_image(contents, channels=0, expand_animations=False)


def _check_all(paths, labels, resized):
    """Decodes every file once (in parallel, in order): `(image_shape, sha256)`.

    Raises naming the first file that does not decode, or whose size (unless
    `resized`: then `image_shape` is `(None, None, channels)`) or channel count differs
    from the first file's.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(list(paths))
    ds = ds.map(lambda p: decode_any(tf.io.read_file(p)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(64)
    digest = hashlib.sha256()
    shape = first = None
    iterator = iter(ds)
    for i, path in enumerate(paths):
        try:
            image = next(iterator).numpy()
        except tf.errors.OpError as e:
            reason = (e.message or type(e).__name__).splitlines()[0][:200]
            raise ValueError(f"Cannot decode image {path} ({reason}). Expected a readable "
                             "PNG or JPEG; replace or remove the file.") from None
        h, w, c = image.shape
        found = (None, None, _CHANNELS[c]) if resized else (h, w, _CHANNELS[c])
        if shape is None:
            shape, first = found, path
        elif found[2] != shape[2]:
            raise ValueError(
                f"Images with different channel counts: {first} has {shape[2]}, {path} "
                f"has {found[2]}. Expected all grey (1 channel) or all colour (3).")
        elif found != shape:
            raise ValueError(
                f"Images of different sizes: {first} is {shape[0]}x{shape[1]}, {path} is "
                f"{h}x{w}. Expected one size for all, or pass image_size (--image_size) "
                "to resize every image to it.")
        digest.update(np.ascontiguousarray(image[..., :shape[2]]).tobytes())
        digest.update(int(labels[i]).to_bytes(4, "little"))
    return shape, digest.hexdigest()


def scan_folder(root, split="train", resized=False, cache_dir=None):
    """Lists and checks the images of `split` in `root`; returns a `Folder`.

    Every file is decoded once (or its earlier check is read from `cache_dir`, keyed by
    the files' paths, sizes and modification times). With `resized`, images may differ in
    size (they will be resized), and `image_shape` is `(None, None, channels)`.

    Raises:
        FileNotFoundError, ValueError: see `list_files`; also a file that does not decode
            (named), and images of different sizes (unless `resized`) or channel counts.
    """
    class_names, paths, labels = list_files(root, split)
    key = _fingerprint(paths) + ("-resized" if resized else "")
    cache_path = os.path.join(cache_dir, "folders", key + ".json") if cache_dir else None
    cached = None
    if cache_path and os.path.exists(cache_path):
        try:
            with open(cache_path) as f:
                cached = json.load(f)
        except (OSError, ValueError):
            cached = None
    if cached:
        shape, sha = tuple(cached["image_shape"]), cached["sha256"]
    else:
        logger.info("Checking %d images in %s (once; the result is cached).", len(paths),
                    os.path.join(root, split) if os.path.isdir(os.path.join(root, split))
                    else root)
        shape, sha = _check_all(paths, labels, resized)
        if cache_path:
            from cwgan.training.checkpoints import write_json
            os.makedirs(os.path.dirname(cache_path), exist_ok=True)
            write_json(cache_path, {"image_shape": list(shape), "sha256": sha})
    return Folder(os.fspath(root), class_names, paths, labels, tuple(shape), sha)
