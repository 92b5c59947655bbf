r"""The quality suite: trains recipes on several data sets at equal steps and seeds, then
prints one table of the evaluator's figures (docs/recipe.md, seventh round).

    python scripts/quality_suite.py                       # the default recipe, all data
    python scripts/quality_suite.py --steps=3000 --seeds=0,1 \
        --recipe=default: --recipe=ln:--critic_norm=layer --data=colour_class,fashion_rgb32
    python scripts/quality_suite.py --table_only          # the table of what has run
    python scripts/quality_suite.py --out=runs/suite24k --steps=24000 --curve_every=3000 \
        --data=colour_class                               # and figures along the run

A recipe is NAME:FLAGS, the flags of `python -m cwgan.train` that differ from its
defaults ("default:" is the defaults). Every run is `python -m cwgan.train` for exactly
--steps steps (--nofit_to_time: the same schedule, the decay to 0 included, on every
machine), then `python -m cwgan.evaluate`; each is one process at a time (two would share
the cores). Runs go to <out>/<recipe>/<data>_seed<N>/ (not by steps: give each --steps
its own --out); one that has its eval.json is not run again, so an interrupted suite
continues where it stopped, and the evaluator's classifiers stay cached
(~/.cache/cwgan): a rerun costs only training.

The data sets (written once into <out>/data/, from the bundled MNIST and Fashion-MNIST,
`apt-get install dataset-fashion-mnist`; those needing it are skipped without it):
  mnist          grey 28x28 digits (Keras' loader; offline the bundled 10,000)
  colour_class   32x32 RGB digits, ink and paper colours per class (`coloured_digits`)
  colour_image   the same digits, colours drawn per image: the class is in the shape only
  colour_mix50   half of the digits coloured per class, the other half per image
  colour_mix75   three quarters per class, a quarter per image (the two mixes' shares of
                 colour the classes explain: docs/recipe.md, fifteenth round)
  fashion        Fashion-MNIST, grey 28x28 (60,000 training images)
  fashion_rgb32  Fashion-MNIST as a folder of 32x32 RGB PNGs, colours per class
  fashion_rgb64  that folder, trained and judged at 64x64 (--image_size=64)

The table gives FD and within-class FD as multiples of the real floor's, precision,
recall, density and coverage as shares of the floor's (1 is as good as held-out real
images), the judge's class accuracy (acc) and, on colour images, its shape judge's
(shape: the class read from the shape alone, see `cwgan.evaluation.judge`), KID, and
two pixel measures as multiples of the floor's (1 is as real): TV, the roughness (above
1: speckle or a regular texture, below: blur), and tone, the spread of a class's images
in overall colour (below 1: every image of a class in the same colours). One row per
run and, with several seeds, their mean; "-" where an evaluation predates a measure.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
DATA = ("mnist", "colour_class", "colour_image", "colour_mix50", "colour_mix75", "fashion",
        "fashion_rgb32", "fashion_rgb64")
# The colour digit data sets: the probability that an image is coloured per class (else
# its colours are drawn for it alone).
PER_CLASS = {"colour_class": 1.0, "colour_image": 0.0, "colour_mix50": 0.5,
             "colour_mix75": 0.75}

_OUT = flags.DEFINE_string("out", "runs/suite", "Where runs, data and results go.")
_STEPS = flags.DEFINE_integer("steps", 3000, "Training steps of every run (a multiple of "
                              "500).", lower_bound=500)
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Seeds: every recipe and data set is run once "
                           "per seed.")
_DATA = flags.DEFINE_list("data", list(DATA), f"Data sets, of {list(DATA)}.")
_RECIPES = flags.DEFINE_multi_string("recipe", ["default:"], "NAME:FLAGS, e.g. "
                                     "'ln:--critic_norm=layer' (repeatable).")
_N_PER_CLASS = flags.DEFINE_integer("n_per_class", 500, "Samples per class to judge.",
                                    lower_bound=20)
_FOLDER_IMAGES = flags.DEFINE_integer("folder_images", 20_000, "Training images of each "
                                      "folder data set (the test split: all).",
                                      lower_bound=100)
_CURVE_EVERY = flags.DEFINE_integer(
    "curve_every", 0, "Also evaluate every N steps along each run (`--eval_every`, "
    "--curve_n_per_class samples a class; a multiple of 500) and print each run's figures "
    "against steps, as ratios to the floor's at that sample size. 0: only the end.",
    lower_bound=0)
_CURVE_N_PER_CLASS = flags.DEFINE_integer(
    "curve_n_per_class", 500, "Samples per class of the evaluations along a run. FD and "
    "the k-NN measures depend on the sample size (fewer samples: a larger floor FD, a "
    "higher recall; docs/recipe.md, tenth round), so the default is the evaluator's, "
    "which the table's other figures use.", lower_bound=20)
_TABLE_ONLY = flags.DEFINE_bool("table_only", False, "Print the table of the runs that have "
                                "an evaluation; train nothing.")


def _colour_folder(root, source, per_class, limit):
    """A train/ and test/ folder of 32x32 RGB images, each coloured per class with
    probability `per_class` (1: all of them, 0: none) and per image otherwise."""
    import shutil

    import cwgan

    if os.path.exists(root):
        return
    tmp = root + ".parts"
    shutil.rmtree(tmp, ignore_errors=True)
    for split in ("train", "test"):
        if source == "mnist":
            data = cwgan.load_data(split=split)
        else:
            data = cwgan.load_data("fashion_mnist", FASHION_DIR, split=split)
        n = min(limit, len(data)) if split == "train" else len(data)
        grey, labels = data.images[:n, ..., 0], data.labels[:n]
        # Class colours: the same draw for both splits. Image colours: the test split's
        # images draw their own.
        seed = 1 if split == "test" else 0
        chosen = np.random.default_rng(seed + 2).random(n) < per_class
        images = np.where(chosen[:, None, None, None],
                          cwgan.coloured_digits(grey, labels, 32, seed=0, colours="class"),
                          cwgan.coloured_digits(grey, labels, 32, seed=seed, colours="image"))
        cwgan.write_image_folder(os.path.join(tmp, split), images, labels, data.class_names)
        print(f"wrote {n} images into {tmp}/{split}", flush=True)
    os.replace(tmp, root)


def data_flags(name, out):
    """The `python -m cwgan.train` flags that train on data set `name` (writing its folder
    first if needed), or None when its source is missing here."""
    data = os.path.join(out, "data")
    if name == "mnist":
        return []
    if name.startswith("fashion") and not os.path.isdir(FASHION_DIR):
        return None
    if name == "fashion":
        return ["--dataset=fashion_mnist", f"--data_dir={FASHION_DIR}"]
    if name in PER_CLASS:
        root = os.path.join(data, name)
        _colour_folder(root, "mnist", PER_CLASS[name], _FOLDER_IMAGES.value)
        return [f"--data_dir={root}"]
    root = os.path.join(data, "fashion_rgb32")
    _colour_folder(root, "fashion", 1.0, _FOLDER_IMAGES.value)
    return [f"--data_dir={root}"] + (["--image_size=64"] if name == "fashion_rgb64" else [])


def run_one(directory, flags_, seed):
    """Trains and evaluates one run into `directory` unless it has its evaluation (an
    interrupted run resumes from its last checkpoint)."""
    result = os.path.join(directory, "eval.json")
    if os.path.exists(result):
        return
    os.makedirs(directory, exist_ok=True)
    train = [sys.executable, "-m", "cwgan.train", "--digits", f"--steps={_STEPS.value}",
             "--nofit_to_time", "--steps_per_epoch=500", "--checkpoint_every=0",
             "--grid_every=500", f"--seed={seed}", f"--checkpoint_dir={directory}"] + flags_
    if _CURVE_EVERY.value:
        train += [f"--eval_every={_CURVE_EVERY.value}",
                  f"--eval_n_per_class={_CURVE_N_PER_CLASS.value}"]
    start = time.monotonic()
    with open(os.path.join(directory, "train.log"), "w") as log:
        subprocess.run(train, stdout=log, stderr=subprocess.STDOUT, check=True)
    seconds = time.monotonic() - start
    evaluate = [sys.executable, "-m", "cwgan.evaluate", f"--checkpoint_dir={directory}",
                f"--n_per_class={_N_PER_CLASS.value}"]
    with open(os.path.join(directory, "eval.log"), "w") as log:
        found = subprocess.run(evaluate, stdout=subprocess.PIPE, stderr=log, check=True,
                               text=True).stdout
    report = json.loads(found) | {"train_seconds": seconds}
    if _CURVE_EVERY.value:
        # The floor at the curve's sample size (FD and the k-NN measures depend on it).
        evaluate[-1] = f"--n_per_class={_CURVE_N_PER_CLASS.value}"
        with open(os.path.join(directory, "eval.log"), "a") as log:
            found = subprocess.run(evaluate, stdout=subprocess.PIPE, stderr=log, check=True,
                                   text=True).stdout
        report["curve_floor"] = json.loads(found)["real"]
    tmp = result + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.replace(tmp, result)


# Each column's measure, and whether it is shown as a ratio to the floor's.
_MEASURES = {"FD": ("fd", True), "FDc": ("fd_class_mean", True), "P": ("precision", True),
             "R": ("recall", True), "D": ("density", True), "C": ("coverage", True),
             "acc": ("cond_acc", False), "shape": ("cond_acc_shape", False),
             "KID": ("kid", False), "TV": ("roughness", True),
             "tone": ("tone_spread", True)}
COLUMNS = tuple(_MEASURES)


def figures(report):
    """The table's figures of one evaluation (ratios to the real floor's where the column
    says so); None for a measure the evaluation does not have."""
    g, real = report["generator"], report["real"]
    out = {}
    for column, (key, ratio) in _MEASURES.items():
        value = g.get(key)
        out[column] = None if value is None else value / real[key] if ratio else value
    return out


def _fmt(column, value):
    """A table cell: a ratio to the floor with two decimals, else three; "-" for None."""
    if value is None:
        return "-"
    return f"{value:.2f}" if _MEASURES[column][1] else f"{value:.3f}"


def _mean(values):
    return None if None in values else float(np.mean(values))


def table(out, recipes, data, seeds):
    """The Markdown table of every run that has its evaluation."""
    lines = ["| recipe | data | seed | steps | " + " | ".join(COLUMNS) + " | s/step |",
             "|---" * (len(COLUMNS) + 5) + "|"]

    for name in recipes:
        for d in data:
            rows = []
            for seed in seeds:
                path = os.path.join(out, name, f"{d}_seed{seed}", "eval.json")
                if not os.path.exists(path):
                    continue
                report = json.load(open(path))
                rows.append(figures(report))
                per_step = report["train_seconds"] / report["generator_iterations"]
                lines.append(f"| {name} | {d} | {seed} | {report['generator_iterations']} | "
                             + " | ".join(_fmt(k, rows[-1][k]) for k in COLUMNS)
                             + f" | {per_step:.3f} |")
            if len(rows) > 1:
                lines.append(f"| {name} | {d} | mean | | " + " | ".join(
                    _fmt(k, _mean([r[k] for r in rows])) for k in COLUMNS) + " | |")
    return "\n".join(lines)


def curve_table(out, recipes, data, seeds):
    """The Markdown table of the evaluations along each run (`--curve_every`), one row per
    evaluation; empty when no run has them."""
    columns = ("FD", "FDc", "P", "R", "C", "acc", "shape", "TV", "tone")
    lines = ["| recipe | data | seed | steps | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 4) + "|"]
    for name in recipes:
        for d in data:
            for seed in seeds:
                directory = os.path.join(out, name, f"{d}_seed{seed}")
                path = os.path.join(directory, "eval.json")
                if not os.path.exists(path):
                    continue
                report = json.load(open(path))
                if "curve_floor" not in report:
                    continue
                with open(os.path.join(directory, "metrics.jsonl")) as f:
                    records = [json.loads(line) for line in f if '"fd"' in line]
                for record in records:
                    row = figures({"generator": record, "real": report["curve_floor"]})
                    lines.append(f"| {name} | {d} | {seed} | {record['generator_iterations']} | "
                                 + " | ".join(_fmt(k, row[k]) for k in columns) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    unknown = sorted(set(_DATA.value) - set(DATA))
    if unknown:
        raise app.UsageError(f"Unknown data sets {unknown}; expected some of {list(DATA)}.",
                             exitcode=2)
    if _STEPS.value % 500:
        raise app.UsageError(f"--steps={_STEPS.value} is not a multiple of 500.", exitcode=2)
    if _CURVE_EVERY.value % 500:
        raise app.UsageError(f"--curve_every={_CURVE_EVERY.value} is not a multiple of 500.",
                             exitcode=2)
    recipes = {}
    for recipe in _RECIPES.value:
        name, sep, flags_ = recipe.partition(":")
        if not sep or not name:
            raise app.UsageError(f"--recipe={recipe!r}: expected NAME:FLAGS, e.g. "
                                 "'default:' or 'ln:--critic_norm=layer'.", exitcode=2)
        recipes[name] = flags_.split()
    out = _OUT.value
    if not _TABLE_ONLY.value:
        for seed in _SEEDS.value:
            for d in _DATA.value:
                wanted = data_flags(d, out)
                if wanted is None:
                    print(f"skipped {d}: {FASHION_DIR} is missing", flush=True)
                    continue
                for name, flags_ in recipes.items():
                    directory = os.path.join(out, name, f"{d}_seed{seed}")
                    print(f"{time.strftime('%H:%M:%S')} {name} on {d}, seed {seed}",
                          flush=True)
                    try:
                        run_one(directory, wanted + flags_, seed)
                    except subprocess.CalledProcessError as e:
                        print(f"  failed ({e.returncode}): see {directory}/*.log", flush=True)
    print(table(out, list(recipes), _DATA.value, _SEEDS.value))
    curves = curve_table(out, list(recipes), _DATA.value, _SEEDS.value)
    if curves:
        print("\nAlong the runs (the floor at --curve_n_per_class samples a class):")
        print(curves)


if __name__ == "__main__":
    app.run(main)
