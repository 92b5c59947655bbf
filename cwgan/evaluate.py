r"""Sample quality of a trained generator: `python -m cwgan.evaluate` (see evaluate_lib).

    python -m cwgan.evaluate                          # the nearest checkpoints/
    python -m cwgan.evaluate --checkpoint_dir=run1 --n_per_class=500
    python -m cwgan.evaluate --validate               # the measures on disturbed real digits

Prints one JSON object: the generator's metrics beside real held-out digits' (the floor).
With --validate, no generator: a Markdown table of every measure on real floor digits
disturbed in steps (speckle, blur, broken strokes, swapped labels, a dropped class,
repeated images; `evaluate_lib.validate`), the floor itself at strength 0.
"""

import json

from absl import app, flags

from cwgan import cli
from cwgan.data import NUM_CLASSES
from cwgan.evaluate_lib import (DEFAULT_FLOOR, FLOORS, MIN_PER_CLASS, evaluate_checkpoint,
                                format_table, make_judge, validate)

_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None,
                                      "Checkpoint directory (default: nearest checkpoints/).")
_N_PER_CLASS = flags.DEFINE_integer("n_per_class", 500, "Samples per class.",
                                    lower_bound=MIN_PER_CLASS)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data directory (default: Keras' loader).")
_CLASSIFIER = flags.DEFINE_string("classifier", None, "The judge's .keras file.")
_SEED = flags.DEFINE_integer("seed", 0, "Noise seed.", lower_bound=0)
_FLOOR = flags.DEFINE_enum("floor", DEFAULT_FLOOR, FLOORS,
                           "Reference and real floor: 'training' cuts the training images "
                           "in two (same population); 'test' takes the floor from the test "
                           "split's held-out half.")
_VALIDATE = flags.DEFINE_bool("validate", False,
                              "Instead of a generator, measure real floor digits disturbed "
                              "in steps and print a table (all ten classes).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    try:
        if _VALIDATE.value:
            classes = tuple(range(NUM_CLASSES))
            judge = make_judge(classes, data_dir=_DATA_DIR.value,
                               classifier_path=_CLASSIFIER.value, floor=_FLOOR.value)
            rows = validate(judge, classes, _N_PER_CLASS.value, seed=_SEED.value)
            print(f"n_per_class={_N_PER_CLASS.value}, floor={_FLOOR.value}")
            print(format_table(rows))
            return
        result = evaluate_checkpoint(_CHECKPOINT_DIR.value, _N_PER_CLASS.value,
                                     _DATA_DIR.value, _CLASSIFIER.value, _SEED.value,
                                     _FLOOR.value)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e), exitcode=2) from None
    print(json.dumps(result, indent=2))


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); the `cwgan-evaluate` console script."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
