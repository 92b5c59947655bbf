r"""The generator as a TensorFlow SavedModel: `cwgan.export_saved_model` (and the CLI).

The export serves one signature, `serving_default` (also callable as `loaded.serve`):

    images = loaded.signatures["serving_default"](label=labels, noise=noise)["images"]

  - `label`: int32 `(N,)`, classes the generator was trained on;
  - `noise`: float32 `(N, latent_dim)`, z ~ N(0, I);
  - `images`: float32 in [0, 1] (0 is black), `(N, height, width)` for a grey generator
    (MNIST: `(N, 28, 28)`) and `(N, height, width, 3)` for a colour one: what
    `cwgan.sample` returns for the same noise, `clip((generator(noise, label) + 1) / 2,
    0, 1)`.

A label the generator was not trained on, or label and noise of different lengths, fail
with `tf.errors.InvalidArgumentError`. Loading needs TensorFlow only (`tf.saved_model.load`),
neither Keras nor cwgan.

Beside the SavedModel, `assets.extra/cwgan_export.json` says what was exported (latent
size, classes, their names, image shape, data set, training progress, the signature); a
server that takes class names maps them to labels with its `class_names` (label i is
`class_names[i]`). Its presence also marks the directory as a cwgan export:
`export_saved_model` replaces a previous export, or an empty directory, and refuses any
other existing path.

The export is written into a temporary directory beside `export_dir`, flushed to disk and
renamed into place, so `export_dir` never holds a half-written model. Replacing a previous
export takes two renames (old aside, new in); only a crash between the two leaves
`export_dir` missing, with the old export beside it as `.<name>.*.tmp.old`.
"""

import os
import shutil
import tempfile

import keras
import tensorflow as tf

from cwgan.sampling.sample import load_generator
from cwgan.training.checkpoints import find_checkpoint_dir, fsync_path, write_json

SIGNATURE_KEY = "serving_default"
OUTPUT_KEY = "images"
EXPORT_INFO_FILE = os.path.join("assets.extra", "cwgan_export.json")


def _output_shape(generator):
    """The served images' shape after N: `(h, w)` for one channel, `(h, w, 3)` for three."""
    shape = tuple(generator.outputs[0].shape[1:])
    return shape[:2] if shape[-1] == 1 else shape


def _serving_function(generator, classes, class_names):
    """The exported computation: `(label, noise) -> {"images": (N,) + _output_shape}` in
    [0, 1].

    Args:
        generator: a generator as `build_generator` makes, `[noise, label] -> [-1, 1]`.
        classes: the labels it was trained on; any other label fails an assertion.
        class_names: every class's name, for that assertion's message.

    Returns:
        A function of two tensors, `label` int32 `(N,)` and `noise` float32
        `(N, latent_dim)`, returning a dict with one entry, `images`.
    """
    grey = len(_output_shape(generator)) == 2
    names = [class_names[c] for c in classes]
    # Digits by their numbers; named classes by their names too.
    trained = f"{list(classes)}" + ("" if names == [str(c) for c in classes]
                                    else f", named {names}")

    def serve(label, noise):
        known = tf.reduce_any(tf.equal(label[:, None], tf.constant(classes, tf.int32)), 1)
        checks = [
            tf.debugging.assert_equal(
                tf.reduce_all(known), True,
                message=f"`label` holds a class the generator was not trained on "
                        f"(trained classes: {trained})."),
            tf.debugging.assert_equal(
                tf.shape(label)[0], tf.shape(noise)[0],
                message="`label` and `noise` must have the same length N."),
        ]
        with tf.control_dependencies(checks):
            images = tf.cast(generator([noise, label], training=False), tf.float32)
        if grey:
            images = images[..., 0]
        return {OUTPUT_KEY: tf.clip_by_value((images + 1.0) / 2.0, 0.0, 1.0)}
    return serve


def _write_export(directory, generator, info, checkpoint_dir):
    """Writes the SavedModel and its `cwgan_export.json` into `directory`."""
    latent_dim = info["latent_dim"]
    archive = keras.export.ExportArchive()
    archive.track(generator)
    serve = _serving_function(generator, info["classes"], info["class_names"])
    archive.add_endpoint("serve", serve,
                         input_signature=[tf.TensorSpec([None], tf.int32, name="label"),
                                          tf.TensorSpec([None, latent_dim], tf.float32,
                                                        name="noise")])
    archive.write_out(directory, verbose=False)  # "serve" is also "serving_default"
    os.makedirs(os.path.join(directory, os.path.dirname(EXPORT_INFO_FILE)), exist_ok=True)
    shape = ", ".join(str(d) for d in _output_shape(generator))
    write_json(os.path.join(directory, EXPORT_INFO_FILE), {
        "signature": SIGNATURE_KEY,
        "inputs": {"label": "int32 (N,)", "noise": f"float32 (N, {latent_dim})"},
        "outputs": {OUTPUT_KEY: f"float32 (N, {shape}) in [0, 1]"},
        "latent_dim": latent_dim,
        "classes": list(info["classes"]),
        "class_names": list(info["class_names"]),
        "image_shape": list(info["image_shape"]),
        "dataset": info.get("dataset", "mnist"),
        "epoch": info.get("epoch"),
        "generator_iterations": info.get("generator_iterations"),
        "checkpoint_dir": os.path.abspath(checkpoint_dir),
    })


def _fsync_tree(directory):
    """Flushes every file and directory under `directory` (itself included) to disk."""
    for root, _, files in os.walk(directory):
        for name in files:
            fsync_path(os.path.join(root, name))
        fsync_path(root)


def _is_previous_export(path):
    return os.path.isfile(os.path.join(path, EXPORT_INFO_FILE))


def _check_target(export_dir):
    """Refuses an `export_dir` that exists and is neither empty nor a previous export."""
    if not os.path.lexists(export_dir):
        return
    if not os.path.isdir(export_dir) or os.path.islink(export_dir):
        raise FileExistsError(
            f"Invalid value for argument `export_dir`. Received: export_dir={export_dir!r}, "
            "which exists and is not a directory (or is a symlink). Expected a new "
            "directory, an empty one or a previous cwgan export.")
    if os.listdir(export_dir) and not _is_previous_export(export_dir):
        raise FileExistsError(
            f"Invalid value for argument `export_dir`. Received: export_dir={export_dir!r}, "
            f"which is not empty and not a previous cwgan export (no {EXPORT_INFO_FILE}). "
            "Expected a new directory, an empty one or a previous cwgan export; choose "
            "another path or remove it.")


def _move_into_place(tmp, export_dir):
    """Renames `tmp` to `export_dir`, setting aside and then deleting what was there."""
    _check_target(export_dir)  # again: something may have appeared there meanwhile
    old = None
    if os.path.isdir(export_dir) and os.listdir(export_dir):
        old = f"{tmp}.old"
        os.rename(export_dir, old)
    try:
        os.replace(tmp, export_dir)  # also replaces an empty directory
    except BaseException:
        if old is not None:
            os.rename(old, export_dir)
        raise
    if old is not None:
        shutil.rmtree(old)
    fsync_path(os.path.dirname(export_dir))


def export_saved_model(export_dir, checkpoint_dir=None):
    """Writes a trained generator as a TensorFlow SavedModel for serving.

    The SavedModel's `serving_default` signature maps `label` int32 `(N,)` and `noise`
    float32 `(N, latent_dim)` to `images` float32 in [0, 1] of the shape `cwgan.sample`
    returns: `(N, height, width)` for grey images (MNIST: `(N, 28, 28)`), `(N, height,
    width, 3)` for colour ones; the same images `cwgan.sample` gives for the same noise.
    It loads with `tf.saved_model.load` alone (no Keras, no cwgan). Its
    `assets.extra/cwgan_export.json` names the classes (`class_names`, label i is
    `class_names[i]`) and the image shape. See the module docstring for the files
    written and when an existing `export_dir` is replaced.

    Example:

    >>> path = cwgan.export_saved_model("exported", checkpoint_dir="checkpoints")
    >>> serve = tf.saved_model.load(path).signatures["serving_default"]
    >>> noise = np.random.default_rng(0).standard_normal((2, 100)).astype("float32")
    >>> serve(label=tf.constant([3, 7]), noise=tf.constant(noise))["images"].shape
    TensorShape([2, 28, 28])
    >>> info = json.load(open(os.path.join(path, "assets.extra", "cwgan_export.json")))
    >>> info["class_names"][3], info["image_shape"]
    ('3', [28, 28, 1])

    Args:
        export_dir: where the SavedModel goes: a new directory, an empty one, or a
            previous export (replaced). Parent directories are created.
        checkpoint_dir: as for `cwgan.sample`. Defaults to `$CWGAN_CHECKPOINT_DIR`, else
            the nearest `checkpoints/`.

    Returns:
        The absolute path of the export.

    Raises:
        ValueError: `export_dir` is not a path.
        FileExistsError: `export_dir` exists and is neither empty nor a previous export.
        FileNotFoundError: no trained generator where looked.
    """
    if not isinstance(export_dir, (str, os.PathLike)) or not os.fspath(export_dir):
        raise ValueError(f"Invalid value for argument `export_dir`. Received: "
                         f"export_dir={export_dir!r}. Expected a directory path.")
    export_dir = os.path.abspath(os.fspath(export_dir))
    _check_target(export_dir)
    checkpoint_dir = find_checkpoint_dir(checkpoint_dir)
    generator, info = load_generator(checkpoint_dir)
    parent, name = os.path.split(export_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
    try:
        _write_export(tmp, generator, info, checkpoint_dir)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700; give the usual mode
        _fsync_tree(tmp)
        _move_into_place(tmp, export_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return export_dir
