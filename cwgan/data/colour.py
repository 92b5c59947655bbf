"""How much of a data set's colour its classes explain: what the recipe's generator
conditioning is chosen by (`cwgan.training.run.with_data_defaults`)."""

import numpy as np

# A sample this large puts the share within about 0.02 of the whole data's.
SAMPLE = 2000


def class_colour_share(images, labels):
    """The share of the spread of the images' mean colours that lies between classes.

    Each image is reduced to its mean colour (one value per channel); the share is the
    between-class sum of squares over the total (eta squared, summed over channels). 1:
    the class sets an image's colour (the quality suite's coloured digits, a colour
    pair per class: 0.97; its coloured garments: 0.92); 0: colours are drawn whatever
    the class (its digits coloured per image: 0.00). How much ink or cloth a class's
    pictures hold moves the mean too (grey MNIST digits: 0.33). Images all of one mean
    colour give 0.

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


def sample_class_colour_share(data, sample=SAMPLE, seed=0):
    """`class_colour_share` of up to `sample` images of `data` (an `ImageData`) drawn
    with `seed`, so that the same data always give the same figure (streamed data are
    read from their files)."""
    n = len(data)
    indices = np.sort(np.random.default_rng(seed).permutation(n)[:sample])
    return class_colour_share(data.take(indices), np.asarray(data.labels)[indices])
