r"""Interpolation grids: `cwgan.class_morph`, `cwgan.latent_walk` (and the CLI).

Both return images in [0, 1] of shape `(n, steps, height, width)` for a grey generator
(MNIST: `(n, steps, 28, 28)`) or `(n, steps, height, width, 3)` for a colour one: one
row per noise vector, one column per step. Classes are given as `cwgan.sample` takes
them, by index or by name ("cat"). Row r starts from the noise `cwgan.sample(label, n,
seed)[r]` draws, so columns line up with samples of the same seed (up to float rounding:
the batches differ):

  - class morph: each row keeps its noise while the label embedding (and, in a generator
    with class-conditional batch norm, each class's scales and offsets) moves in a
    straight line from class a's vector to class b's (linear: the embedding is a learned
    point, not a Gaussian draw). Column 0 is `cwgan.sample(a, n, seed)` and the last column
    `cwgan.sample(b, n, seed)`.
  - latent walk: the class stays fixed while each row's noise moves along a great circle
    (spherical interpolation, slerp) to a second draw from the same seed's stream. Slerp
    keeps the norm near sqrt(latent_dim), where Gaussian noise lives; a straight line would
    pass through shorter vectors the generator rarely saw. Column 0 is
    `cwgan.sample(label, n, seed)`.

The morph runs the generator from its label embeddings onwards: it needs the layer named
`label_embedding` (a `keras.layers.Embedding`, as both `build_generator` and
`build_mlp_generator` make) and the other embeddings of the label (class-conditional
batch norm's) to be the label's only ways to the image.
"""

import os

import keras
import numpy as np

from cwgan.sampling.grids import save_grid
from cwgan.sampling.sample import (generate_unit, label_indices, load_generator, seeded_noise,
                                   unit_images)
from cwgan.utils.checks import check_int, check_seed

EMBEDDING_LAYER = "label_embedding"
MAX_STEPS = 32  # columns
MAX_ROWS = 32  # rows: at most 1,024 images, a grid about 15 inches wide


def split_at_embeddings(generator):
    """Splits a generator at its label embeddings.

    Args:
        generator: a functional generator `[noise, label] -> image` whose label enters
            only through the `keras.layers.Embedding` named "label_embedding" and, with
            class-conditional batch norm, that norm's embeddings (every other Embedding).

    Returns:
        `(embeddings, tail)`: the embedding layers, "label_embedding" first, and a
        `keras.Model` sharing the generator's layers that maps `[noise, *embedded]` to
        the image, so `tail([noise] + [e(label) for e in embeddings])` equals
        `generator([noise, label])`.

    Raises:
        ValueError: the generator has no such layer, or the label also reaches the image
            some other way.
    """
    layer = next((lyr for lyr in generator.layers if lyr.name == EMBEDDING_LAYER), None)
    if not isinstance(layer, keras.layers.Embedding):
        raise ValueError(
            f"Invalid value for argument `generator`. Received: generator={generator.name!r} "
            f"without a keras.layers.Embedding named {EMBEDDING_LAYER!r}. Expected a "
            "generator from cwgan.build_generator or cwgan.build_mlp_generator.")
    embeddings = [layer] + [lyr for lyr in generator.layers
                            if isinstance(lyr, keras.layers.Embedding) and lyr is not layer]
    try:
        tail = keras.Model([generator.inputs[0]] + [e.output for e in embeddings],
                           generator.output)
    except ValueError:
        raise ValueError(
            f"Invalid value for argument `generator`. Received: generator={generator.name!r}, "
            f"whose label reaches the image other than through {EMBEDDING_LAYER!r} (and "
            "class-conditional batch norm's embeddings). Expected the label embeddings to be "
            "the label's only paths.") from None
    return embeddings, tail


def morph_images(generator, noise, label_from, label_to, steps):
    """Images of each noise row as the label embedding moves from one class to another.

    Args:
        generator: as for `split_at_embeddings`.
        noise: float32 `(n, latent_dim)`, one row of the grid each.
        label_from: the class index at step 0.
        label_to: the class index at the last step.
        steps: columns, at least 2; step j is at t = j / (steps - 1).

    Returns:
        float32 `(n, steps, h, w)` (grey) or `(n, steps, h, w, 3)` (colour) in [0, 1];
        the first and last columns are the generator's images of `label_from` and
        `label_to` for the same noise.
    """
    embeddings, tail = split_at_embeddings(generator)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    n = len(noise)
    embedded = []
    for embedding in embeddings:
        ends = keras.ops.convert_to_numpy(embedding(np.array([label_from, label_to],
                                                             np.int32)))
        line = (1.0 - t) * ends[0].astype(np.float32) + t * ends[1].astype(np.float32)
        embedded.append(np.tile(line, (n, 1)).astype(ends.dtype))
    images = tail([np.repeat(noise, steps, axis=0)] + embedded, training=False)
    images = unit_images(images)
    return images.reshape((n, steps) + images.shape[1:])


def slerp(start, end, steps):
    """Spherical interpolation from each row of `start` to the same row of `end`.

    Args:
        start: `(n, d)` vectors at step 0.
        end: `(n, d)` vectors at the last step.
        steps: points per row, at least 2, evenly spaced in angle.

    Returns:
        float32 `(n, steps, d)`; `[:, 0]` is `start` and `[:, -1]` is `end`, exactly.
        Rows whose two vectors are (anti)parallel fall back to a straight line.
    """
    a, b = np.asarray(start, np.float64), np.asarray(end, np.float64)
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    theta = np.arccos(np.clip(cos, -1.0, 1.0))[:, None, None]
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    sin = np.sin(theta)
    curved = sin > 1e-6
    safe_sin = np.where(curved, sin, 1.0)
    w_a = np.where(curved, np.sin((1.0 - t) * theta) / safe_sin, 1.0 - t)
    w_b = np.where(curved, np.sin(t * theta) / safe_sin, t)
    return (w_a * a[:, None] + w_b * b[:, None]).astype(np.float32)


def walk_images(generator, start, end, label, steps):
    """Images of one class along slerp paths from `start` to `end` noise, row by row.

    Args:
        generator: a generator `[noise, label] -> image` in [-1, 1].
        start: float32 `(n, latent_dim)` noise at step 0.
        end: float32 `(n, latent_dim)` noise at the last step.
        label: the class index of every image.
        steps: columns, at least 2.

    Returns:
        float32 `(n, steps, h, w)` (grey) or `(n, steps, h, w, 3)` (colour) in [0, 1].
    """
    noise = slerp(start, end, steps)
    n = len(noise)
    labels = np.full((n * steps,), label, np.int32)
    images = generate_unit(generator, noise.reshape(n * steps, -1), labels)
    return images.reshape(n, steps, *images.shape[1:])


def class_index(name, value, info):
    """`value` (a class index or name) as the index of a class the generator was trained
    on; `info` is `load_generator`'s.

    Raises:
        ValueError: anything else, naming argument `name` and the classes trained on (by
            number for digits, else by name).
    """
    classes, class_names = list(info["classes"]), list(info["class_names"])
    index = None
    if not isinstance(value, (list, tuple, np.ndarray)):
        try:
            index, = label_indices(value, class_names)
        except ValueError:
            pass
    if index not in classes:
        names = [class_names[c] for c in classes]
        digits = names == [str(c) for c in classes]
        trained = f"{classes}" if digits else f"{names} (or their indices {classes})"
        raise ValueError(
            f"Invalid value for argument `{name}`. Received: {name}={value!r}. Expected one "
            f"of the classes the generator was trained on: {trained}.")
    return index


def _checked_grid_args(steps, n, seed, checkpoint_dir):
    """Checks the arguments both grids share; returns them with `(generator, info)`."""
    steps = check_int("steps", steps, minimum=2, maximum=MAX_STEPS)
    n = check_int("n", n, minimum=1, maximum=MAX_ROWS)
    seed = check_seed("seed", seed)
    return steps, n, seed, *load_generator(checkpoint_dir)


def class_morph(label_from, label_to, steps=8, n=4, seed=0, checkpoint_dir=None):
    """A class-morph grid: same noise per row, label embedding moving between two classes.

    Example:

    >>> grid = cwgan.class_morph(3, 7, steps=8, n=4, seed=0)
    >>> grid.shape
    (4, 8, 28, 28)
    >>> np.allclose(grid[:, 0], cwgan.sample(label=3, n=4, seed=0), atol=1e-5)
    True
    >>> cwgan.class_morph("cat", "dog", checkpoint_dir="runs/pets").shape  # RGB, 32x32
    (4, 8, 32, 32, 3)

    Args:
        label_from: the class of the first column, by index or name; one the generator
            was trained on.
        label_to: the class of the last column, likewise, and not `label_from`.
        steps: columns, 2..32. Defaults to 8.
        n: rows (noise vectors), 1..32. Defaults to 4.
        seed: the noise seed, as for `cwgan.sample`; None for fresh noise. Defaults to 0.
        checkpoint_dir: as for `cwgan.sample`. Defaults to `$CWGAN_CHECKPOINT_DIR`, else
            the nearest `checkpoints/`.

    Returns:
        float32 in [0, 1], `(n, steps, height, width)` for grey images or `(n, steps,
        height, width, 3)` for colour ones. Row r uses the noise of `cwgan.sample(label,
        n, seed)[r]`: column 0 equals `cwgan.sample(label_from, n, seed)` and the last
        column `cwgan.sample(label_to, n, seed)`.

    Raises:
        ValueError: a class unknown or not trained on, the same class twice, or steps, n
            or seed out of range.
        FileNotFoundError: no trained generator where looked.
    """
    steps, n, seed, generator, info = _checked_grid_args(steps, n, seed, checkpoint_dir)
    index_from = class_index("label_from", label_from, info)
    index_to = class_index("label_to", label_to, info)
    if index_to == index_from:
        raise ValueError(
            f"Invalid value for argument `label_to`. Received: label_to={label_to!r}. "
            f"Expected a class other than label_from={label_from!r}.")
    noise = seeded_noise(seed, n, info["latent_dim"])
    return morph_images(generator, noise, index_from, index_to, steps)


def latent_walk(label, steps=8, n=4, seed=0, checkpoint_dir=None):
    """A latent-walk grid for one class: each row slerps between two noise vectors.

    Example:

    >>> grid = cwgan.latent_walk(7, steps=8, n=4, seed=0)
    >>> grid.shape
    (4, 8, 28, 28)
    >>> cwgan.latent_walk("cat", checkpoint_dir="runs/pets").shape  # RGB, 32x32
    (4, 8, 32, 32, 3)

    Args:
        label: the class of every image, by index or name; one the generator was
            trained on.
        steps: columns, 2..32. Defaults to 8.
        n: rows (walks), 1..32. Defaults to 4.
        seed: the noise seed; None for fresh noise. Defaults to 0.
        checkpoint_dir: as for `cwgan.sample`. Defaults to `$CWGAN_CHECKPOINT_DIR`, else
            the nearest `checkpoints/`.

    Returns:
        float32 in [0, 1], `(n, steps, height, width)` for grey images or `(n, steps,
        height, width, 3)` for colour ones. Column 0 equals `cwgan.sample(label, n,
        seed)`; each row ends at a second draw from the same seed's stream.

    Raises:
        ValueError: a class unknown or not trained on, or steps, n or seed out of range.
        FileNotFoundError: no trained generator where looked.
    """
    steps, n, seed, generator, info = _checked_grid_args(steps, n, seed, checkpoint_dir)
    index = class_index("label", label, info)
    start, end = np.split(seeded_noise(seed, 2 * n, info["latent_dim"]), 2)  # start: sample's
    return walk_images(generator, start, end, index, steps)


def save_interpolation_grid(path, images, title=None, row_labels=None):
    """Writes a `class_morph` or `latent_walk` array as a PNG, atomically.

    Example:

    >>> cwgan.save_interpolation_grid("morph.png", cwgan.class_morph(3, 7), "3 to 7")
    >>> walks = np.concatenate([cwgan.latent_walk(c, n=1) for c in ("cat", "dog")])
    >>> cwgan.save_interpolation_grid("walks.png", walks, row_labels=["cat", "dog"])

    Args:
        path: the PNG file; its directory is created if missing.
        images: `(rows, steps, h, w)` grey or `(rows, steps, h, w, 3)` colour images in
            [0, 1].
        title: a title above the grid. Defaults to None (no title).
        row_labels: one label per row. Defaults to 0..rows-1, the index of the sample
            whose noise each row starts from (rows of one `class_morph` or `latent_walk`
            are noise vectors; name their classes in `title`).
    """
    images = np.asarray(images)
    if not (images.ndim == 4 or images.ndim == 5 and images.shape[-1] == 3):
        raise ValueError(
            f"Invalid value for argument `images`. Received: images of shape "
            f"{images.shape}. Expected (rows, steps, height, width) or (rows, steps, "
            "height, width, 3), as class_morph and latent_walk return.")
    row_labels = range(len(images)) if row_labels is None else list(row_labels)
    if len(row_labels) != len(images):
        raise ValueError(
            f"Invalid value for argument `row_labels`. Received: {len(row_labels)} "
            f"labels for {len(images)} rows. Expected one label per row.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_grid(path, images, row_labels, title)
