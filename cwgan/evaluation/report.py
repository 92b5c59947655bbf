r"""Does the Wasserstein estimate track sample quality? (behind `python -m cwgan.report`)

Reads a run's `metrics.jsonl` (written by `python -m cwgan.train`; quality figures need
`--eval_every`), draws the critic's Wasserstein estimate and the quality metrics against
generator iterations in one PNG beside the latest sample grid, and prints how strongly the
estimate and the Fréchet distance move together (Pearson and Spearman correlation over the
evaluated epochs). The WGAN paper's claim is a positive correlation: the estimate falls as
samples improve. Beside it, `real_vs_generated.png`: real digits next to the generator's,
class by class, for the eye to judge what the numbers say.
"""

import glob
import json
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread

from cwgan.evaluation.judge import (checkpoint_data, generate, load_real_images,
                                    real_per_class_limit, split_indices)
from cwgan.sampling.sample import load_generator
from cwgan.training.checkpoints import GENERATOR_FILE, atomic_write


def read_jsonl(path):
    """The records of a JSONL file, skipping a torn last line (a run killed mid-write)."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def _ranks(x):
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    return ranks


def correlation(records, a="wasserstein_estimate", b="fd"):
    """Pearson and Spearman correlation of `a` and `b` over records holding both."""
    pairs = [(r[a], r[b]) for r in records if a in r and b in r]
    result = {"x": a, "y": b, "n_points": len(pairs), "pearson": None, "spearman": None}
    if len(pairs) >= 3:
        x, y = np.array(pairs, np.float64).T
        if x.std() > 0 and y.std() > 0:
            result["pearson"] = float(np.corrcoef(x, y)[0, 1])
            result["spearman"] = float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])
    return result


def draw_report(records, grid_path, out_path, title=""):
    """Writes the report PNG: estimate and metrics vs iterations, and the latest grid."""
    fig = Figure(figsize=(13, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, width_ratios=[1.2, 1.2, 1])
    it = [r["generator_iterations"] for r in records]
    estimate = [r["wasserstein_estimate"] for r in records]
    axes[0].plot(it, estimate, color="tab:blue")
    if min(estimate) > 0:
        axes[0].set_yscale("log")
    axes[0].set_xlabel("generator iterations")
    axes[0].set_ylabel("Wasserstein estimate (epoch mean)")
    axes[0].set_title("critic's estimate")
    evaluated = [r for r in records if "fd" in r]
    if evaluated:
        eit = [r["generator_iterations"] for r in evaluated]
        axes[1].plot(eit, [r["fd"] for r in evaluated], "o-", color="tab:red", label="FD")
        axes[1].plot(eit, [r["fd_class_mean"] for r in evaluated], "s--", color="tab:orange",
                     label="FD within class (mean)")
        axes[1].set_yscale("log")
        axes[1].set_ylabel("Fréchet distance (classifier features)")
        twin = axes[1].twinx()
        twin.plot(eit, [r["cond_acc"] for r in evaluated], "^-", color="tab:green",
                  label="cond_acc")
        for name, color in (("precision", "tab:purple"), ("recall", "tab:brown")):
            if all(r.get(name) is not None for r in evaluated):
                twin.plot(eit, [r[name] for r in evaluated], ".:", color=color, label=name)
        twin.set_ylim(0, 1)
        twin.set_ylabel("cond_acc, precision, recall")
        lines = axes[1].get_legend_handles_labels()
        lines2 = twin.get_legend_handles_labels()
        axes[1].legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="center right")
    else:
        axes[1].text(0.5, 0.5, "no quality figures\n(train with --eval_every)",
                     ha="center", va="center", transform=axes[1].transAxes)
    axes[1].set_xlabel("generator iterations")
    axes[1].set_title("sample quality")
    if grid_path:
        axes[2].imshow(imread(grid_path))
        axes[2].set_title(os.path.basename(grid_path), fontsize=9)
    axes[2].axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png"))


# The measures `draw_validation` plots, and whether each grows (+1) or falls (-1) as samples
# get worse, so that every panel reads "worse is up" after the sign flip.
VALIDATION_MEASURES = (("fd", 1), ("fd_class_mean", 1), ("kid", 1), ("precision", -1),
                       ("recall", -1), ("coverage", -1), ("cond_acc", -1))


def draw_validation(rows, out_path, title=""):
    """Writes a PNG of `cwgan.evaluation.validation.validate`'s rows: one panel per
    disturbance, each measure against the strength, as the share of its range over the
    whole table that it moved from the floor (0 at the floor, 1 at its worst value
    anywhere in the table), so measures of different scales share an axis and a flat line
    is a blind measure."""
    floor = next(r for r in rows if r["disturbance"] == "none")
    kinds = list(dict.fromkeys(r["disturbance"] for r in rows if r is not floor))
    fig = Figure(figsize=(4 * min(3, len(kinds)), 3.2 * -(-len(kinds) // 3)), dpi=100,
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(-(-len(kinds) // 3), min(3, len(kinds)))).ravel()
    for name, sign in VALIDATION_MEASURES:
        worst = max((sign * (r[name] - floor[name]) for r in rows if r[name] is not None),
                    default=0)
        for ax, kind in zip(axes, kinds):
            points = [(0, floor[name])] + [(r["strength"], r[name]) for r in rows
                                           if r["disturbance"] == kind]
            if worst <= 0 or any(v is None for _, v in points):
                continue
            ax.plot([s for s, _ in points], [sign * (v - floor[name]) / worst
                                             for _, v in points], "o-", label=name)
    for ax, kind in zip(axes, kinds):
        ax.set_title(kind.replace("_", " "))
        ax.set_xlabel("strength (0: the real floor)")
        ax.set_ylabel("moved towards worst (share)")
        ax.axhline(0, color="grey", lw=0.5)
    for ax in axes[len(kinds):]:
        ax.axis("off")
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png"))


def draw_real_vs_generated(real, generated, classes, out_path, title=""):
    """Writes a PNG with a row per class: real images on the left, generated on the right.

    Args:
        real: `(len(classes), n, height, width)` grey or `(len(classes), n, height, width,
            3)` colour images in [-1, 1].
        generated: the same shape, the generator's images of the same classes.
        classes: the row labels (class numbers or names).
        out_path: the PNG's path (written whole or not at all).
        title: a line above the figure.
    """
    real, generated = np.asarray(real), np.asarray(generated)
    if (real.shape != generated.shape or real.ndim not in (4, 5) or len(real) != len(classes)
            or (real.ndim == 5 and real.shape[-1] not in (1, 3))):
        raise ValueError(f"Invalid shapes: real {real.shape}, generated {generated.shape} "
                         f"for {len(classes)} classes. Expected both (classes, n, height, "
                         "width) or (classes, n, height, width, channels).")
    if real.ndim == 5 and real.shape[-1] == 1:
        real, generated = real[..., 0], generated[..., 0]
    rows, n, h, w = real.shape[:4]
    channels = real.shape[4:]  # () for grey, (3,) for colour
    gap = np.ones((rows, h, w // 2) + channels)  # white between the two halves

    def strip(images):  # (rows, n, h, w[, c]) -> (rows, h, n * w[, c])
        return np.swapaxes(images, 1, 2).reshape((rows, h, n * w) + channels)

    canvas = np.concatenate([strip((real + 1) / 2), gap, strip((generated + 1) / 2)], 2)
    canvas = np.clip(canvas.reshape((rows * h, -1) + channels), 0, 1)
    scale = 0.45 * max(h / 28, 1.0) / h  # inches per pixel: 28 pixels, or more, in 0.45
    fig = Figure(figsize=(canvas.shape[1] * scale + 0.6, rows * h * scale + 0.6), dpi=100,
                 layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([(i + 0.5) * h for i in range(rows)], [str(c) for c in classes])
    ax.set_xticks([n * w / 2, n * w + w / 2 + n * w / 2], ["real", "generated"])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png"))


def real_vs_generated(checkpoint_dir, out_path=None, data_dir=None, n=10, seed=0):
    """Draws `<checkpoint_dir>/real_vs_generated.png` (or `out_path`) for the generator in
    `checkpoint_dir`: `n` real images of each class (the evaluator's floor images, which
    its reference never holds; fewer if a class has fewer) beside as many samples from
    seeded noise, rows labelled by class (number for digits, else name). The real images
    are the run's own (`data_dir`, default: as `cwgan.evaluation.judge.checkpoint_data` finds
    them); only those shown are read. Returns the path."""
    generator, info = load_generator(checkpoint_dir)
    classes = list(info["classes"])
    dataset, data_dir, image_size = checkpoint_data(checkpoint_dir, info, data_dir)
    data = load_real_images(dataset, data_dir, classes, "train", image_size)
    if tuple(data.image_shape) != tuple(info["image_shape"]):
        raise ValueError(f"The generator in {checkpoint_dir} makes images of shape "
                         f"{tuple(info['image_shape'])}, data_dir={data_dir!r} holds "
                         f"{tuple(data.image_shape)}. Expected the data it was trained on.")
    limit = real_per_class_limit(data.image_shape, data.num_classes)  # as the evaluator
    _, floor = split_indices(data.labels, limit=limit)
    per_class = [floor[data.labels[floor] == c][:n] for c in classes]
    shown = min(len(x) for x in per_class)  # as many of each class as the scarcest has
    names = [data.class_names[c] for c in classes]
    if shown == 0:
        empty = next(name for name, x in zip(names, per_class) if not len(x))
        raise ValueError(f"No real images of class {empty} to show beside the generator's "
                         f"(data_dir={data_dir!r}).")
    real = data.take(np.concatenate([x[:shown] for x in per_class]))
    real = real.reshape((len(classes), shown) + real.shape[1:])
    fake, _ = generate(generator, classes, info["latent_dim"], shown, seed)
    fake = fake.reshape(real.shape)
    out_path = out_path or os.path.join(checkpoint_dir, "real_vs_generated.png")
    draw_real_vs_generated(real, fake, names, out_path,
                           f"{checkpoint_dir}: generator iteration "
                           f"{info.get('generator_iterations')}, noise seed {seed}")
    return out_path


def report(checkpoint_dir, out_path=None, samples_dir=None, data_dir=None):
    """Draws `<checkpoint_dir>/report.png` (or `out_path`), and beside it
    `real_vs_generated.png` when the directory holds a generator; returns the correlation
    dict, with `real_vs_generated` (the path, or None)."""
    metrics_path = os.path.join(checkpoint_dir, "metrics.jsonl")
    if not os.path.isfile(metrics_path):
        raise FileNotFoundError(
            f"No metrics.jsonl in checkpoint_dir={checkpoint_dir!r}: train with "
            "`python -m cwgan.train` first (add --eval_every=N for quality figures).")
    records = read_jsonl(metrics_path)
    if not records:
        raise ValueError(f"{metrics_path} holds no complete record yet.")
    grids = sorted(glob.glob(os.path.join(samples_dir or os.path.join(checkpoint_dir,
                                                                      "samples"), "grid_*.png")))
    corr = correlation(records)
    title = (f"{checkpoint_dir}: corr(Wasserstein estimate, FD) over {corr['n_points']} "
             f"evaluations: Pearson {corr['pearson']:.3f}, Spearman {corr['spearman']:.3f}"
             if corr["pearson"] is not None else str(checkpoint_dir))
    out_path = out_path or os.path.join(checkpoint_dir, "report.png")
    draw_report(records, grids[-1] if grids else None, out_path, title)
    beside = None
    if os.path.isfile(os.path.join(checkpoint_dir, GENERATOR_FILE)):
        beside = real_vs_generated(checkpoint_dir, os.path.join(
            os.path.dirname(os.path.abspath(out_path)), "real_vs_generated.png"), data_dir)
    return {"report": out_path, "real_vs_generated": beside, **corr}
