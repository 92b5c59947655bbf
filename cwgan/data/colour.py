"""How much of a data set's colour its classes explain: what the recipe's generator
conditioning is chosen by (`cwgan.training.run.with_data_defaults`)."""

import numpy as np

# Images measured: a fixed sample bounds the cost on large or streamed data, and a fixed
# seed gives the same data the same figure (and so the same choice) every time.
SAMPLE = 2000


def class_colour_share(images, labels):
    """The share of the spread of the images' mean colours that lies between classes.

    Each image is reduced to its mean colour (one value per channel); the share is the
    between-class sum of squares over the total (eta squared, summed over channels).
    Near 1 where the class sets an image's colour, near 0 where colours are drawn
    whatever the class; how much ink or cloth a class's pictures hold moves the mean
    too. Images all of one mean colour give 0. The quality suite's data sets' shares:
    docs/recipe.md, fourteenth and fifteenth rounds.

    Args:
        images: `(N, h, w, channels)`, any numeric range.
        labels: `(N,)` integer classes.
    """
    images = np.asarray(images, np.float64)
    labels = np.asarray(labels)
    if images.ndim != 4 or labels.shape != images.shape[:1]:
        raise ValueError(f"Expected images (N, h, w, channels) and labels (N,); received "
                         f"shapes {images.shape} and {labels.shape}.")
    means = images.mean(axis=(1, 2))
    centred = means - means.mean(axis=0)
    total = float(np.sum(centred ** 2))
    if total == 0.0:
        return 0.0
    between = sum(np.sum(labels == k) * float(np.sum(centred[labels == k].mean(axis=0) ** 2))
                  for k in np.unique(labels))
    return between / total


def sample_class_colour_share(data):
    """`class_colour_share` of up to `SAMPLE` images of `data` (an `ImageData`), always
    the same ones (streamed data are read from their files)."""
    indices = np.sort(np.random.default_rng(0).permutation(len(data))[:SAMPLE])
    return class_colour_share(data.take(indices), np.asarray(data.labels)[indices])
