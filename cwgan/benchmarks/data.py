r"""Image folders for the input-pipeline part of `python -m cwgan.bench`, and its memory
probe.

`bench_folder(size, source)` writes `size` training images as PNGs, once, into
`cache_dir()/bench/<source>_<size>/` (e.g. ~/.cache/cwgan/bench/fashion_mnist_60000):

    train/<class>/00000.png ...   the `size` images the bench streams
    test/<class>/...              size // 6 held-out images (Fashion-MNIST's 60k:10k)

Sources: `"fashion_mnist"`, `size` of Fashion-MNIST's 60,000 real 28x28 grey training
images (Debian's dataset-fashion-mnist package, /usr/share/datasets/fashion-mnist);
`"coloured_digits"`, cwgan's bundled 10,000 MNIST digits, repeated as needed and
coloured per image (`cwgan.coloured_digits`: 32x32 RGB, any size); `"auto"`,
Fashion-MNIST when it is installed and holds enough images, else coloured digits. The
classes are taken in turn, so every folder holds every class and a smaller folder's
images are the first of a larger one's (the 10,000 are a subset of the 60,000). The
files are encoded and written in parallel (tf.data) into `<folder>.tmp`, renamed when
complete: an interrupted build leaves no half folder, and the next run starts it again.

`peak_memory(folder, ...)` measures, in a fresh child Python (so that no peak is shared
with the bench or another measurement), how far the resident memory rises above its
baseline (TensorFlow imported and running) while `load_data` lists and checks the folder
(with an empty cache, so the check pass runs) and then while `steps` training steps
stream from it.
"""

import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from cwgan.data.demo import coloured_digits, write_image_folder
from cwgan.data.loading import BUNDLED_DIR, CLASS_NAMES, SYSTEM_DIRS, load_mnist
from cwgan.utils.cache import cache_dir
from cwgan.utils.checks import check_int

SOURCES = ("auto", "fashion_mnist", "coloured_digits")
FASHION_DIR = SYSTEM_DIRS["fashion_mnist"]  # Debian's dataset-fashion-mnist
FASHION_TRAIN_IMAGES = 60000
BENCH_SUBDIR = "bench"


def fashion_installed():
    """True when Debian's dataset-fashion-mnist files are in `FASHION_DIR`."""
    return bool(glob.glob(os.path.join(FASHION_DIR, "train-images*idx3-ubyte*")))


def resolve_source(source, largest):
    """The source `"auto"` stands for, for folders of up to `largest` images; raises
    when `source` cannot provide them."""
    if source not in SOURCES:
        raise ValueError(f"Invalid value for argument `source`. Received: source={source!r}. "
                         f"Expected one of {SOURCES}.")
    if source == "auto":
        return ("fashion_mnist" if fashion_installed() and largest <= FASHION_TRAIN_IMAGES
                else "coloured_digits")
    if source == "fashion_mnist":
        if not fashion_installed():
            raise FileNotFoundError(
                f"Fashion-MNIST is not installed in {FASHION_DIR} (apt-get install "
                "dataset-fashion-mnist), or use source 'coloured_digits'.")
        if largest > FASHION_TRAIN_IMAGES:
            raise ValueError(
                f"Fashion-MNIST has {FASHION_TRAIN_IMAGES} training images; a folder of "
                f"{largest} needs source 'coloured_digits'.")
    return source


def class_balanced_order(labels):
    """Indices of `labels` taking each class in turn (the first image of every class,
    then the second...), in their order within a class: any first k hold every class
    (k >= the number of classes), in about equal numbers."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), np.int64)
    for label in np.unique(labels):
        where = labels == label
        rank[where] = np.arange(np.count_nonzero(where))
    return np.lexsort((np.arange(len(labels)), rank))


def source_images(source, split, count):
    """`(images, labels, class_names)`: `count` uint8 images `(count, h, w, c)` of `split`
    from `source` ("fashion_mnist" or "coloured_digits", see the module docstring), the
    classes taken in turn (`class_balanced_order`), so a smaller folder's images are the
    first of a larger one's."""
    if source == "fashion_mnist":
        images, labels = load_mnist(data_dir=FASHION_DIR, dataset="fashion_mnist",
                                    split=split)
    else:
        images, labels = load_mnist(data_dir=BUNDLED_DIR, split=split)
    # Repeated when count exceeds the source (coloured digits: each copy coloured anew).
    index = class_balanced_order(labels)[np.arange(count) % len(labels)]
    images, labels = images[index], labels[index]
    grey = np.round((images[..., 0] + 1.0) * 127.5).astype(np.uint8)
    if source == "coloured_digits":
        return coloured_digits(grey, labels), labels, CLASS_NAMES["mnist"]
    return grey[..., None], labels, CLASS_NAMES["fashion_mnist"]


def write_split_folder(root, splits, class_names):
    """Writes `splits` (`{split: (uint8 images (N, h, w, c), labels)}`) as
    `root/<split>/<class name>/NNNNN.png` (`cwgan.write_image_folder` per split), into
    `root.tmp` first, then renamed."""
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for split, (images, labels) in splits.items():
        write_image_folder(os.path.join(tmp, split), images, labels, class_names)
    os.replace(tmp, root)


def bench_folder(size, source="auto"):
    """The folder of `size` training PNGs from `source` (see the module docstring),
    written on first use: `(path, seconds spent writing it now, 0 when cached)`."""
    size = check_int("size", size, minimum=1)
    source = resolve_source(source, size)
    root = os.path.join(cache_dir(), BENCH_SUBDIR, f"{source}_{size}")
    if os.path.isdir(root):
        return root, 0.0
    start = time.perf_counter()
    train, labels, class_names = source_images(source, "train", size)
    test, test_labels, _ = source_images(source, "test", max(size // 6, len(class_names)))
    os.makedirs(os.path.dirname(root), exist_ok=True)
    write_split_folder(root, {"train": (train, labels), "test": (test, test_labels)},
                       class_names)
    return root, time.perf_counter() - start


def _status_mib(field):
    """`VmRSS` or `VmHWM` (peak) of this process in MiB, from /proc/self/status; where
    there is none (not Linux), the peak from getrusage for both."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20 if sys.platform == "darwin" else 1 << 10)


def _reset_peak():
    """Resets this process's VmHWM to its current RSS (Linux >= 4.0); False where not."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child(folder, data_cache, batch_size, n_critic, steps):
    """Runs in the child: prints one JSON line of MiB figures."""
    import tensorflow as tf

    from cwgan.data.loading import load_data

    # TensorFlow's runtime and tf.data's thread pools up before the baseline.
    for _ in tf.data.Dataset.range(4).map(lambda x: x + 1, num_parallel_calls=2).prefetch(1):
        pass
    baseline = _status_mib("VmRSS")
    reset = _reset_peak()
    data = load_data(data_dir=folder, data_cache=data_cache)
    peak_load = _status_mib("VmHWM")
    iterator = iter(data.stream(batch_size, n_critic))
    for _ in range(steps):
        next(iterator)
    peak = _status_mib("VmHWM")
    print(json.dumps({"images": len(data), "in_memory": data.in_memory,
                      "baseline_mib": baseline, "peak_mib": peak,
                      "rise_mib_load": peak_load - baseline, "rise_mib": peak - baseline,
                      "peak_reset": reset}))


def peak_memory(folder, data_cache="none", batch_size=32, n_critic=5, steps=100):
    """Peak resident-memory growth of loading `folder` and streaming `steps` training
    steps from it, measured in a fresh child Python with an empty cwgan cache.

    Returns:
        `{"images", "in_memory", "baseline_mib": resident MiB before loading (TensorFlow
        and cwgan imported), "peak_mib": the peak resident MiB through loading and
        streaming, "rise_mib": the peak's rise above the baseline, "rise_mib_load": its
        rise while `load_data` listed and checked the files (and, in memory, decoded
        them), "peak_reset": whether the peak could be reset at the baseline (Linux);
        else it includes the imports' own peak}`.
    """
    import cwgan

    repo = os.path.dirname(os.path.dirname(os.path.abspath(cwgan.__file__)))
    args = json.dumps([os.fspath(folder), data_cache, batch_size, n_critic, steps])
    code = f"import json; from cwgan.benchmarks.data import _child; _child(*json.loads({args!r}))"
    with tempfile.TemporaryDirectory(prefix="cwgan_bench_cache_") as cache:
        env = dict(os.environ, CWGAN_CACHE_DIR=cache, TF_CPP_MIN_LOG_LEVEL="3",
                   PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"The memory probe of {folder} failed (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
