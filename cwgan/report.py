r"""Wasserstein estimate vs sample quality of a run: `python -m cwgan.report`.

    python -m cwgan.report --checkpoint_dir=checkpoints   # writes checkpoints/report.png

and, beside it, real_vs_generated.png (real images next to generated ones, per class).
See `cwgan/evaluation/report.py`. Prints the correlation figures as JSON.
"""

import json

from absl import app, flags

from cwgan.evaluation.report import report
from cwgan.utils import cli

_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", "checkpoints", "The run's directory.")
_SAMPLES_DIR = flags.DEFINE_string("samples_dir", None, "Grids (default: <dir>/samples).")
_OUT = flags.DEFINE_string("out", None, "PNG path (default: <checkpoint_dir>/report.png).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the real images come from "
                                "(default: as for python -m cwgan.evaluate: a folder run's "
                                "own, MNIST from Keras' loader).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    try:
        result = report(_CHECKPOINT_DIR.value, _OUT.value, _SAMPLES_DIR.value, _DATA_DIR.value)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e), exitcode=2) from None
    print(json.dumps(result, indent=2))


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); the `cwgan-report` console script."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
