r"""Writes a folder of coloured digits to try cwgan on "your own" images:
`python -m cwgan.demo_data` (see `cwgan/data/demo.py`).

    python -m cwgan.demo_data --out=coloured_digits     # 10,000 coloured 32x32 digits
    python -m cwgan.demo_data --out=coloured_digits --data_dir=../shared/data/mnist \
        --splits=train,test                             # train/ and test/ folders

With two splits, the folder holds train/ and test/ folders of class folders (the layout
cwgan reads as two splits: the evaluator's classifier then learns from the whole test
split); with one, the class folders themselves. Written under a temporary name, then
renamed: an interrupted run leaves no half-written folder.
"""

import os
import shutil

import numpy as np
from absl import app, flags

from cwgan.data.demo import coloured_digits, write_image_folder
from cwgan.data.loading import load_mnist
from cwgan.utils import cli

_OUT = flags.DEFINE_string("out", None, "The folder to write (must not exist).",
                           required=True)
_SIZE = flags.DEFINE_integer("size", 32, "Image size.", lower_bound=28)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "MNIST IDX directory (default: Keras' "
                                "loader, offline the bundled 10k subset).")
_SPLITS = flags.DEFINE_enum("splits", "train", ["train", "test", "train,test"],
                            "Which MNIST splits to colour.")
_LIMIT = flags.DEFINE_integer("limit", None, "Only the first N images of each split.",
                              lower_bound=1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    out = _OUT.value
    if os.path.exists(out):
        raise app.UsageError(f"--out={out} exists; pass a new directory (nothing is "
                             "overwritten).", exitcode=2)
    splits = _SPLITS.value.split(",")
    tmp = out + ".parts"
    shutil.rmtree(tmp, ignore_errors=True)
    for split in splits:
        try:
            images, labels = load_mnist(data_dir=_DATA_DIR.value, split=split)
        except (ValueError, OSError) as e:
            raise app.UsageError(str(e), exitcode=2) from None
        images = np.round((images[..., 0] + 1.0) * 127.5).astype(np.uint8)[:_LIMIT.value]
        labels = labels[:_LIMIT.value]
        target = os.path.join(tmp, split) if len(splits) > 1 else tmp
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        write_image_folder(target, coloured_digits(images, labels, _SIZE.value), labels,
                           [str(d) for d in range(10)])
        print(f"Wrote {len(images)} coloured {_SIZE.value}x{_SIZE.value} digits ({split}).")
    os.replace(tmp, out)
    print(f"Done: {out}")


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`)."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
