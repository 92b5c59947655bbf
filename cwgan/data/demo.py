"""Image folders made from MNIST, for trying, testing and measuring cwgan on your own data.

`coloured_digits` turns grey digits into colour images of another size: each class gets
its own ink and paper colours (with a little variation per image), so a generator must
learn colour as well as shape per class. `write_image_folder` writes labelled images as a
folder of class folders of PNGs, the layout `python -m cwgan.train --data_dir` reads.
`python -m cwgan.demo_data` writes such a folder (see `cwgan/demo_data.py`).
"""

import os
import shutil

import numpy as np

from cwgan.utils.checks import check_int


def class_colours(num_classes, seed=0):
    """`(ink, paper)`: float32 `(num_classes, 3)` RGB in [0, 1] each, ink and paper of a
    class far apart in brightness so that the digit stays legible."""
    rng = np.random.default_rng(seed)
    ink = rng.uniform(0.0, 1.0, (num_classes, 3))
    paper = rng.uniform(0.0, 1.0, (num_classes, 3))
    # Push the two apart: the lighter one up, the darker one down.
    light = ink.mean(1, keepdims=True) > paper.mean(1, keepdims=True)
    ink = np.where(light, 0.55 + 0.45 * ink, 0.45 * ink)
    paper = np.where(light, 0.45 * paper, 0.55 + 0.45 * paper)
    return ink.astype(np.float32), paper.astype(np.float32)


COLOURINGS = ("class", "image")


def coloured_digits(images, labels, size=32, seed=0, jitter=0.08, colours="class"):
    """Grey digits `(N, h, w)` uint8 -> colour `(N, size, size, 3)` uint8.

    With `colours="class"`, each class's ink and paper colours come from
    `class_colours(labels.max() + 1, seed)` and each image's are moved by up to `jitter`
    per channel: colour tells the class. With `colours="image"`, every image draws its
    own pair (as `class_colours` draws a class's), so the class is in the shape alone and
    a generator must learn a spread of colours for every class. The digit is centred on
    the larger canvas (28 -> 32: 2 pixels of paper each side), or cropped around its
    centre.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    size = check_int("size", size, minimum=1)
    if colours not in COLOURINGS:
        raise ValueError(f"Invalid value for argument `colours`. Received: colours="
                         f"{colours!r}. Expected one of {COLOURINGS}.")
    n, h, w = images.shape
    if colours == "class":
        ink, paper = class_colours(int(labels.max()) + 1, seed)
    else:  # one "class" of colours per image
        ink, paper = class_colours(n, seed)
        labels = np.arange(n)
    rng = np.random.default_rng(seed + 1)
    shift = lambda: rng.uniform(-jitter, jitter, (n, 1, 1, 3))  # noqa: E731
    ink_n = np.clip(ink[labels][:, None, None] + shift(), 0, 1)
    paper_n = np.clip(paper[labels][:, None, None] + shift(), 0, 1)
    canvas = np.zeros((n, size, size), np.float32)
    top, left = (size - h) // 2, (size - w) // 2
    src = images[:, max(-top, 0):max(-top, 0) + min(h, size),
                 max(-left, 0):max(-left, 0) + min(w, size)].astype(np.float32) / 255.0
    canvas[:, max(top, 0):max(top, 0) + src.shape[1],
           max(left, 0):max(left, 0) + src.shape[2]] = src
    alpha = canvas[..., None]
    return np.round(255.0 * (alpha * ink_n + (1.0 - alpha) * paper_n)).astype(np.uint8)


def write_image_folder(root, images, labels, class_names, image_format="png"):
    """Writes `images` (uint8 `(N, h, w)` or `(N, h, w, c)`) as `root/<class name>/NNNNN.png`
    (or .jpg with `image_format="jpeg"`), a folder `load_data(data_dir=root)` reads.

    The images are encoded and written in parallel (tf.data), into `root.tmp` first, then
    renamed: `root` is never half-written.

    Raises:
        FileExistsError: `root` exists (nothing is overwritten).
    """
    import tensorflow as tf

    root = os.fspath(root)
    if os.path.exists(root):
        raise FileExistsError(f"{root} exists; pass a new directory (nothing is overwritten).")
    if image_format not in ("png", "jpeg"):
        raise ValueError(f"Invalid value for argument `image_format`. Received: "
                         f"image_format={image_format!r}. Expected 'png' or 'jpeg'.")
    images = np.asarray(images, np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for name in class_names:
        os.makedirs(os.path.join(tmp, name))
    encode = tf.io.encode_png if image_format == "png" else tf.io.encode_jpeg
    suffix = ".png" if image_format == "png" else ".jpg"
    paths = [os.path.join(tmp, class_names[int(label)], f"{i:05d}{suffix}")
             for i, label in enumerate(labels)]

    def write(image, path):
        encoded = encode(image)
        with tf.control_dependencies([tf.io.write_file(path, encoded)]):
            return tf.size(encoded)

    dataset = tf.data.Dataset.from_tensor_slices((images, paths))
    for _ in dataset.map(write, num_parallel_calls=tf.data.AUTOTUNE).batch(1024):
        pass
    os.replace(tmp, root)
    return root
