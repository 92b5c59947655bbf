"""Drawing a grid of samples, one row per class, into a PNG with matplotlib.

Uses matplotlib's object API with the Agg canvas (no pyplot), so drawing a grid during
training never touches a notebook's global figure state or backend.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cwgan.training.checkpoints import atomic_write

_PAD = 2  # pixels between tiles


def tile(images):
    """Tiles `(rows, cols, h, w)` (grey) or `(rows, cols, h, w, c)` images in [0, 1] into
    one `(H, W)` or `(H, W, c)` mosaic (white between tiles)."""
    rows, cols, h, w = images.shape[:4]
    mosaic = np.ones((rows * (h + _PAD) - _PAD, cols * (w + _PAD) - _PAD) + images.shape[4:],
                     np.float32)
    for r in range(rows):
        for c in range(cols):
            mosaic[r * (h + _PAD):r * (h + _PAD) + h, c * (w + _PAD):c * (w + _PAD) + w] = \
                images[r, c]
    return mosaic


def _squeeze_grey(images):
    """`(..., h, w, 1)` -> `(..., h, w)`; 2-d tiles and 3-channel tiles unchanged."""
    return images[..., 0] if images.ndim == 5 and images.shape[-1] == 1 else images


def grid_figure(images, row_labels, title=None):
    """A matplotlib `Figure` of `(rows, cols, h, w)` grey or `(rows, cols, h, w, 3)` colour
    images in [0, 1] with labelled rows."""
    images = _squeeze_grey(np.asarray(images))
    rows, cols, h = images.shape[:3]
    scale = 0.45 * max(h / 28, 1.0)  # inches per tile: 28 pixels, or more for big ones
    width = max(0.6, max(len(str(label)) for label in row_labels) * 0.08 + 0.3)
    fig = Figure(figsize=(scale * cols + width, scale * rows + (0.4 if title else 0.1)),
                 dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(tile(np.clip(images, 0.0, 1.0)), cmap="gray", vmin=0.0, vmax=1.0,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([r * (h + _PAD) + h / 2 for r in range(rows)])
    ax.set_yticklabels([str(label) for label in row_labels])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def save_grid(path, images, row_labels, title=None):
    """Writes the grid to `path` as a PNG, atomically."""
    fig = grid_figure(images, row_labels, title)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
