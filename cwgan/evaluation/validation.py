"""Validating the judge's measures: real floor images disturbed in controlled steps
(speckle, blur, broken strokes, swapped labels, a dropped class, repeated images),
measured as a generator's samples would be (`python -m cwgan.evaluate --validate`). A
measure worth tuning against moves monotonically with the strength; docs/evaluation.md
says what each disturbance shows.
"""

import numpy as np

# Each strength list starts at 0, the floor itself.
DISTURBANCES = {
    "speckle": (0.0, 0.02, 0.05, 0.1),  # share of pixels set to black or white at random
    "blur": (0.0, 0.5, 1.0, 1.5),  # Gaussian blur, sigma in pixels
    "broken_strokes": (0, 2, 4, 8),  # 3x3 holes cut into each image's strokes
    "label_swap": (0.0, 0.1, 0.25, 0.5),  # share of labels shuffled among themselves
    "class_drop": (0.0, 0.33, 0.67, 1.0),  # share of the first class's images replaced
    #                                        by other classes' (labels kept)
    "repeat": (0.0, 0.25, 0.5, 0.9),  # share of each class's images replaced by one of them
}

VALIDATION_COLUMNS = ("cond_acc", "fd", "fd_class_mean", "precision", "recall", "density",
                      "coverage", "kid", "memorisation", "roughness", "tone_spread")


def _background(images):
    """Each image's background colour: its median per channel, `(n, channels)` (MNIST's
    digits: black, -1)."""
    return np.median(images.reshape(len(images), -1, images.shape[-1]), axis=1).astype(
        images.dtype)


def _gaussian_blur(images, sigma):
    """Images in [-1, 1] `(n, h, w, channels)` blurred by a separable Gaussian, channel by
    channel; outside each image its background colour (`_background`)."""
    if sigma <= 0:
        return images
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    n, height, width, channels = images.shape
    x = np.empty((n, height + 2 * radius, width + 2 * radius, channels), np.float32)
    x[:] = ((_background(images) + 1) / 2)[:, None, None, :]
    x[:, radius:radius + height, radius:radius + width] = (images + 1) / 2
    x = sum(t * x[:, i:i + height] for i, t in enumerate(taps))  # rows
    x = sum(t * x[:, :, i:i + width] for i, t in enumerate(taps))  # then columns
    return (x * 2 - 1).astype(np.float32)


def disturb(images, labels, kind, strength, classes, seed=0):
    """Real images in [-1, 1] and their labels, disturbed by `kind` at `strength`.

    Args:
        images: `(n, height, width, channels)` float images in [-1, 1], grey (1 channel)
            or colour (3).
        labels: (n,) int labels (the requested class of each image).
        kind: one of `DISTURBANCES`: "speckle" (pixels set to black or white),
            "blur", "broken_strokes" (3x3 holes of background colour cut where an
            image differs from its background, its median colour, by more than half
            the range in some channel: MNIST's strokes), "label_swap" (right images,
            wrong classes), "class_drop" (the first of `classes` produced as other
            classes), "repeat" (each class collapsed onto one of its images).
        strength: its strength, on the scale of `DISTURBANCES[kind]`; 0 changes nothing.
        classes: the classes present.
        seed: seeds the disturbance. Defaults to 0.

    Returns:
        `(images, labels)`, new arrays.
    """
    if kind not in DISTURBANCES:
        raise ValueError(f"Invalid value for argument `kind`. Received: kind={kind!r}. "
                         f"Expected one of {tuple(DISTURBANCES)}.")
    rng = np.random.default_rng(seed)
    images, labels = np.array(images, np.float32), np.array(labels)
    n = len(images)
    if kind == "speckle":  # a pixel's channels alike: black or white
        mask = rng.random(images.shape[:-1] + (1,)) < strength
        images[mask[..., 0]] = rng.choice(np.float32([-1, 1]), int(mask.sum()))[:, None]
    elif kind == "blur":
        images = _gaussian_blur(images, strength)
    elif kind == "broken_strokes":
        height, width = images.shape[1:3]
        background = _background(images)
        for i in range(n):
            ys, xs = np.nonzero(np.abs(images[i] - background[i]).max(-1) > 1)
            if len(ys) == 0:
                continue
            for j in rng.choice(len(ys), min(int(strength), len(ys)), replace=False):
                y, x = max(ys[j] - 1, 0), max(xs[j] - 1, 0)
                images[i, y:min(y + 3, height), x:min(x + 3, width)] = background[i]
    elif kind == "label_swap":
        # Shuffled among themselves, so every class keeps its count (as a generator's
        # requested labels do); with C classes about (C - 1) / C of them change.
        swap = np.flatnonzero(rng.random(n) < strength)
        labels[swap] = labels[rng.permutation(swap)]
    elif kind == "class_drop":
        dropped = np.flatnonzero(labels == classes[0])
        others = np.flatnonzero(labels != classes[0])
        replaced = dropped[:int(round(strength * len(dropped)))]
        images[replaced] = images[rng.choice(others, len(replaced))]
    elif kind == "repeat":
        for c in classes:
            idx = np.flatnonzero(labels == c)
            images[idx[:int(round(strength * len(idx)))]] = images[idx[0]]
    return images, labels


def validate(judge, classes, n_per_class=500, disturbances=None, seed=0):
    """Measures disturbed real images: does each metric move with the disturbance?

    The floor images (`judge.floor_images`) are disturbed by each kind at each strength
    (`disturb`) and measured as a generator's samples would be; strength 0 is the real
    floor. A measure worth tuning against moves monotonically with the strength.

    Args:
        judge: a `cwgan.evaluation.judge.Judge` (see `make_judge`).
        classes: the classes to use; at least two (labels are swapped between them).
        n_per_class: floor images per class (as far as there are). Defaults to 500.
        disturbances: `{kind: strengths}`. Defaults to `DISTURBANCES`.
        seed: seeds the disturbances. Defaults to 0.

    Returns:
        A list of rows `{"disturbance", "strength", **judge.metrics(...)}`; the
        floor, once, as disturbance "none".
    """
    classes = sorted(classes)
    if len(classes) < 2:
        raise ValueError(f"Invalid value for argument `classes`. Received: "
                         f"classes={classes}. Expected at least two classes.")
    disturbances = DISTURBANCES if disturbances is None else disturbances
    images, labels = judge.floor_images(classes, n_per_class)
    rows = [{"disturbance": "none", "strength": 0, **judge.real_floor(classes, n_per_class)}]
    for kind, strengths in disturbances.items():
        for strength in strengths:
            if strength == 0:
                continue
            rows.append({"disturbance": kind, "strength": strength,
                         **judge.metrics(*disturb(images, labels, kind, strength, classes,
                                                  seed))})
    return rows


def format_table(rows, columns=VALIDATION_COLUMNS):
    """`validate`'s rows as a Markdown table, one row per disturbance and strength."""
    def cell(value):
        return "-" if value is None else f"{value:.4g}"

    lines = ["| disturbance | strength | " + " | ".join(columns) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in columns) + " |"]
    lines += [f"| {row['disturbance']} | {row['strength']:g} | "
              + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
