r"""Sample quality of a trained generator: `python -m cwgan.evaluate` (see evaluate_lib).

    python -m cwgan.evaluate                          # the nearest checkpoints/
    python -m cwgan.evaluate --checkpoint_dir=run1 --n_per_class=500

Prints one JSON object: the generator's metrics beside real held-out digits' (the floor).
"""

import json

from absl import app, flags

from cwgan import cli
from cwgan.evaluate_lib import MIN_PER_CLASS, evaluate_checkpoint

_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None,
                                      "Checkpoint directory (default: nearest checkpoints/).")
_N_PER_CLASS = flags.DEFINE_integer("n_per_class", 500, "Samples per class.",
                                    lower_bound=MIN_PER_CLASS)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data directory (default: Keras' loader).")
_CLASSIFIER = flags.DEFINE_string("classifier", None, "The judge's .keras file.")
_SEED = flags.DEFINE_integer("seed", 0, "Noise seed.", lower_bound=0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    try:
        result = evaluate_checkpoint(_CHECKPOINT_DIR.value, _N_PER_CLASS.value,
                                     _DATA_DIR.value, _CLASSIFIER.value, _SEED.value)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e), exitcode=2) from None
    print(json.dumps(result, indent=2))


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); the `cwgan-evaluate` console script."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
