r"""Sample quality of a trained generator: `python -m cwgan.evaluate` (see
cwgan/evaluation/judge.py).

    python -m cwgan.evaluate                          # the nearest checkpoints/
    python -m cwgan.evaluate --checkpoint_dir=run1 --n_per_class=500
    python -m cwgan.evaluate --validate               # the measures on disturbed real digits
    python -m cwgan.evaluate --validate --validate_out=docs/evaluator_validation
    python -m cwgan.evaluate --validate --data_dir=my_images --n_per_class=50

Prints one JSON object: the generator's metrics beside real held-out images' (the floor).
A run on a folder of your images (or cifar10, or resized) is judged on its own data, which
its train_config.json names; MNIST runs on Keras' MNIST as always; --data_dir overrides.
With --validate, no generator: a Markdown table of every measure on real floor images (of
--dataset, or the --data_dir folder) disturbed in steps (speckle, blur, broken strokes,
swapped labels, a dropped class, repeated images;
`cwgan.evaluation.validation.validate`), the floor itself at strength 0; with
--validate_out=PREFIX also PREFIX.md (the table) and PREFIX.png (a figure of it).
"""

import json
import os

from absl import app, flags

from cwgan.data.loading import DATASETS
from cwgan.evaluation.judge import MIN_PER_CLASS, evaluate_checkpoint, make_judge
from cwgan.evaluation.report import draw_validation
from cwgan.evaluation.validation import format_table, validate
from cwgan.training.checkpoints import atomic_write
from cwgan.utils import cli

_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None,
                                      "Checkpoint directory (default: nearest checkpoints/).")
_N_PER_CLASS = flags.DEFINE_integer("n_per_class", 500, "Samples per class.",
                                    lower_bound=MIN_PER_CLASS)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data directory: a folder of class "
                                "folders, or IDX/npz files (default: a folder, cifar10 or "
                                "resized run's own, from its train_config.json; MNIST: "
                                "Keras' loader).")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "The generator's image size (default: "
                                   "the run's, else the generator's; with --validate, the "
                                   "data's own).", lower_bound=4)
_DATASET = flags.DEFINE_enum("dataset", "mnist", list(DATASETS),
                             "With --validate: Keras' data set (a --data_dir folder needs "
                             "none). A generator's evaluation reads its own.")
_CLASSIFIER = flags.DEFINE_string("classifier", None, "The judge's .keras file.")
_SEED = flags.DEFINE_integer("seed", 0, "Noise seed.", lower_bound=0)
_VALIDATE = flags.DEFINE_bool("validate", False,
                              "Instead of a generator, measure real floor images disturbed "
                              "in steps and print a table (all classes).")
_CAS = flags.DEFINE_bool(
    "cas", False, "Also the classification accuracy score: a classifier trained on the "
    "samples, tested on held-out real images, against the same trained on real ones "
    "(about a minute more; tested on the floor images).")
_VALIDATE_OUT = flags.DEFINE_string(
    "validate_out", None, "With --validate, also write the table to PREFIX.md and a "
    "figure of it to PREFIX.png (e.g. docs/evaluator_validation).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    try:
        if _VALIDATE.value:
            judge = make_judge(None, _DATASET.value, _DATA_DIR.value, _CLASSIFIER.value,
                               image_size=_IMAGE_SIZE.value)
            classes = tuple(range(judge.num_classes))
            rows = validate(judge, classes, _N_PER_CLASS.value, seed=_SEED.value)
            header = "\n".join(
                [f"`python -m cwgan.evaluate --validate --n_per_class={_N_PER_CLASS.value}`; "
                 f"classifier accuracy {judge.classifier_accuracy:.4f}. Real images:", ""]
                + [f"- {part}: {text}" for part, text in judge.real_images.items()])
            table = format_table(rows)
            print(header)
            print(table)
            if _VALIDATE_OUT.value:
                prefix = _VALIDATE_OUT.value
                os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)

                def write(tmp):
                    with open(tmp, "w") as f:
                        f.write(f"{header}\n\n{table}\n")
                atomic_write(prefix + ".md", write)
                draw_validation(rows, prefix + ".png",
                                f"The evaluator's measures on disturbed real images "
                                f"({_N_PER_CLASS.value} per class)")
            return
        result = evaluate_checkpoint(_CHECKPOINT_DIR.value, _N_PER_CLASS.value,
                                     _DATA_DIR.value, _CLASSIFIER.value, _SEED.value,
                                     cas=_CAS.value, image_size=_IMAGE_SIZE.value)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e), exitcode=2) from None
    print(json.dumps(result, indent=2))


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); the `cwgan-evaluate` console script."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
