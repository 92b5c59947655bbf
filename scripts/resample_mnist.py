r"""Writes a larger MNIST-like training set by resampling a smaller one, to check that a
run does not depend on the data's size (issue: "any machine, any data size").

    python scripts/resample_mnist.py --out=/tmp/mnist60k --size=60000

Online, `keras.datasets.mnist.load_data()` gives 60,000 training images; offline cwgan
has the bundled first 10,000. This draws `--size` of those with replacement (seeded), so
a run on the result sees as many images per pass as an online user, from the same
distribution, and writes them as IDX files that `--data_dir` reads. The test split is
copied as it is, so `python -m cwgan.evaluate --data_dir=OUT` judges against the same
real digits as without it.
"""

import os
import shutil

import numpy as np
from absl import app, flags

from cwgan.data.loading import BUNDLED_DIR, read_idx, write_idx

_OUT = flags.DEFINE_string("out", None, "Directory to write (created).", required=True)
_SIZE = flags.DEFINE_integer("size", 60000, "Training images to draw.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the draw.", lower_bound=0)


def main(argv):
    del argv
    images = read_idx(os.path.join(BUNDLED_DIR, "train-images-first10k-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(BUNDLED_DIR, "train-labels-first10k-idx1-ubyte.gz"))
    idx = np.random.default_rng(_SEED.value).integers(0, len(images), _SIZE.value)
    os.makedirs(_OUT.value, exist_ok=True)
    write_idx(os.path.join(_OUT.value, "train-images-idx3-ubyte.gz"), images[idx])
    write_idx(os.path.join(_OUT.value, "train-labels-idx1-ubyte.gz"), labels[idx])
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(os.path.join(BUNDLED_DIR, name), os.path.join(_OUT.value, name))
    print(f"{_OUT.value}: {_SIZE.value} training images drawn from {len(images)}, "
          f"{len(np.unique(idx))} distinct; the test split copied.")


if __name__ == "__main__":
    app.run(main)
