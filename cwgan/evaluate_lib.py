r"""Sample quality in numbers: `cwgan.evaluate_checkpoint` (and `python -m cwgan.evaluate`).

A small CNN classifier, trained by cwgan on data the generator never sees, judges samples:

  - data: the generator trains on the training split. The test split is cut in two
    halves by index: the classifier trains on the first (images 0..4999 of MNIST's
    10,000, the "classifier half"), and the second half ("held-out half") is seen by
    neither network. The held-out half gives the classifier's accuracy and the real-data floor of
    every metric.
  - `cond_acc`: the fraction of samples the classifier puts in the requested class, and
    the same per class.
  - `fd`: the Fréchet distance between Gaussian fits of the classifier's 128-d penultimate
    features of the samples and of the real training images (all classes), and
    `fd_per_class` / `fd_class_mean` within each class (collapse inside a class shows
    there, not in the overall figure).
  - `memorisation`: the share of samples whose nearest training image (pixel L2) is
    closer than `MEMORISATION_QUANTILE` of held-out real digits are to theirs: about that
    quantile for real data, higher for a generator that copies its training set.

Each metric is reported for the generator and for real held-out images (`real`), the floor
a perfect generator would reach with the same number of images.
"""

import os

import keras
import numpy as np

from cwgan.checkpoints import atomic_write, cache_dir, find_checkpoint_dir
from cwgan.checks import check_int, check_seed
from cwgan.data import NUM_CLASSES, load_mnist
from cwgan.sampling import load_generator

MEMORISATION_QUANTILE = 0.05

MIN_PER_CLASS = 20  # fewer samples make per-class covariances meaningless


def build_classifier():
    """A small CNN: 28x28x1 in [-1, 1] -> 10 class probabilities; layer "features" is 128-d."""
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dropout(0.25)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="classifier")


def _test_halves(dataset, data_dir):
    """The test split cut in two by index, `((x, y), (x_held, y_held))`, and its source."""
    images, labels, info = load_mnist(None, data_dir, dataset, split="test",
                                      return_info=True)
    half = len(images) // 2
    return ((images[:half], labels[:half]), (images[half:], labels[half:])), info["source"]


def train_classifier(path, halves, epochs=8, seed=0, verbose=0):
    """Trains the judge on the classifier half of the test split, saves it to `path`.

    `halves` is `((x, y), (x_held, y_held))`, the test split cut in two.
    Returns `(classifier, accuracy on the held-out half)`.
    """
    (x, y), (x_held, y_held) = halves
    keras.utils.set_random_seed(seed)
    model = build_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Light shifts make it robust to the small misplacements generators produce.
    augment = keras.Sequential([keras.layers.RandomTranslation(0.08, 0.08, fill_value=-1.0,
                                                               seed=seed)])
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(128)
    ds = ds.map(lambda a, b: (augment(a, training=True), b)).prefetch(2)
    model.fit(ds, epochs=epochs, verbose=verbose, shuffle=False)
    accuracy = float(model.evaluate(x_held, y_held, verbose=0)[1])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, model.save)
    return model, accuracy


def load_classifier(path, halves, seed=0):
    """Loads the judge from `path`, training and saving it first if it is not there.

    Returns `(classifier, accuracy on the held-out half of `halves`)`.
    """
    if not os.path.exists(path):
        return train_classifier(path, halves, seed=seed)
    model = keras.saving.load_model(path, safe_mode=True)
    _, (x_held, y_held) = halves
    accuracy = float(np.mean(np.argmax(model.predict(x_held, verbose=0), 1) == y_held))
    return model, accuracy


def frechet_distance(a, b):
    """Fréchet distance between Gaussian fits of feature sets `a` (n, d) and `b` (m, d).

    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2), with the
    matrix square roots from symmetric eigendecompositions (no scipy needed).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b)
                 - 2 * np.sum(np.sqrt(np.clip(cross, 0, None))))


def nearest_distances(queries, reference, chunk=1024):
    """Pixel-space L2 distance from each query image to its nearest reference image."""
    q = queries.reshape(len(queries), -1).astype(np.float32)
    r = reference.reshape(len(reference), -1).astype(np.float32)
    r_sq = np.sum(r * r, 1)
    out = np.empty(len(q), np.float32)
    for start in range(0, len(q), chunk):
        block = q[start:start + chunk]
        d2 = np.sum(block * block, 1)[:, None] + r_sq[None, :] - 2 * block @ r.T
        out[start:start + chunk] = np.sqrt(np.clip(d2.min(1), 0, None))
    return out


class Judge:
    """The classifier and the real-data references, prepared once, for repeated evaluation.

    `real_images` says in words which real images each part uses (set by `make_judge`):
    the classifier's training half, the training images that FD and memorisation compare
    with, and the held-out images of the real-data floor.
    """

    def __init__(self, classifier, classifier_accuracy, train_images, train_labels,
                 held_images, held_labels, real_images=None):
        self.classifier = classifier
        self.real_images = real_images or {}
        self.classifier_accuracy = classifier_accuracy
        self._features = keras.Model(classifier.inputs,
                                     [classifier.get_layer("features").output,
                                      classifier.outputs[0]])
        self.train_images, self.train_labels = train_images, train_labels
        self.train_features, _ = self.features(train_images)
        held_nn = nearest_distances(held_images, train_images)
        self.memorisation_threshold = float(np.quantile(held_nn, MEMORISATION_QUANTILE))
        self.held_images, self.held_labels = held_images, held_labels
        self._floors = {}

    def features(self, images):
        feats, probs = self._features.predict(images, batch_size=500, verbose=0)
        return feats, probs

    def metrics(self, images, labels):
        """All metrics for `images` in [-1, 1] that were asked to be of class `labels`."""
        feats, probs = self.features(images)
        correct = np.argmax(probs, 1) == labels
        classes = sorted(set(labels.tolist()))
        train_mask = np.isin(self.train_labels, classes)
        fd_class = {str(c): frechet_distance(feats[labels == c],
                                             self.train_features[self.train_labels == c])
                    for c in classes}
        nn = nearest_distances(images, self.train_images[train_mask])
        return {
            "n": int(len(images)),
            "cond_acc": float(correct.mean()),
            "cond_acc_per_class": {str(c): float(correct[labels == c].mean()) for c in classes},
            "fd": frechet_distance(feats, self.train_features[train_mask]),
            "fd_per_class": fd_class,
            "fd_class_mean": float(np.mean(list(fd_class.values()))),
            "memorisation": float(np.mean(nn < self.memorisation_threshold)),
        }

    def real_floor(self, classes, n_per_class):
        """The metrics of up to `n_per_class` held-out real images per class (cached)."""
        key = (tuple(classes), n_per_class)
        if key not in self._floors:
            keep = np.concatenate([np.flatnonzero(self.held_labels == c)[:n_per_class]
                                   for c in classes])
            self._floors[key] = self.metrics(self.held_images[keep], self.held_labels[keep])
        return self._floors[key]


def make_judge(classes, dataset="mnist", data_dir=None, classifier_path=None, seed=0):
    """Builds a `Judge` for generators trained on `classes` of the training split."""
    classifier_path = classifier_path or default_classifier_path(dataset)
    # Read once: the classifier and the floor share it.
    halves, test = _test_halves(dataset, data_dir)
    classifier, accuracy = load_classifier(classifier_path, halves, seed)
    train_images, train_labels, train_info = load_mnist(classes, data_dir, dataset,
                                                        return_info=True)
    (classifier_images, _), (held_images, held_labels) = halves
    real_images = {
        "classifier": f"{len(classifier_images)} images: the first half of the test split "
                      f"({test}), by index",
        "reference": f"{train_info['images']} training images of classes {list(classes)} "
                     f"({train_info['source']}, sha256 {train_info['sha256'][:12]}): FD "
                     "and memorisation compare samples with these",
        "floor": f"the second half of the test split ({test}), {len(held_images)} images, "
                 "seen by neither network: the 'real' figures, up to n_per_class per class",
    }
    return Judge(classifier, accuracy, train_images, train_labels, held_images, held_labels,
                 real_images)


def default_classifier_path(dataset="mnist"):
    """Where the judge of `dataset` is cached: `<cache>/classifier_<dataset>.keras`, in
    `cwgan.checkpoints.cache_dir()`."""
    return os.path.join(cache_dir(), f"classifier_{dataset}.keras")


def generate(generator, classes, latent_dim, n_per_class, seed=0):
    """`n_per_class` images in [-1, 1] per class from seeded noise, and their labels."""
    labels = np.repeat(np.asarray(classes, np.int32), n_per_class)
    noise = np.random.default_rng(seed).standard_normal((len(labels), latent_dim))
    images = generator.predict([noise.astype(np.float32), labels], batch_size=500, verbose=0)
    return np.asarray(images, np.float32), labels


def evaluate_generator(generator, classes, latent_dim, judge, n_per_class=500, seed=0):
    """The metrics of a generator beside those of real held-out images (see module doc)."""
    n_per_class = check_int("n_per_class", n_per_class, minimum=MIN_PER_CLASS)
    images, labels = generate(generator, classes, latent_dim, n_per_class, seed)
    return {"generator": judge.metrics(images, labels),
            "real": judge.real_floor(classes, n_per_class),
            "classifier_accuracy": judge.classifier_accuracy,
            "n_per_class": n_per_class,
            "real_images": judge.real_images}


def evaluate_checkpoint(checkpoint_dir=None, n_per_class=500, data_dir=None,
                        classifier_path=None, seed=0):
    """Evaluates the generator in a checkpoint directory; returns the metrics as a dict.

    Args:
        checkpoint_dir: as for `cwgan.sample` (defaults to the nearest `checkpoints/`).
        n_per_class: samples per class, at least 20. Defaults to 500.
        data_dir: where the data is, as for `load_mnist`. Defaults to Keras' loader.
        classifier_path: the judge's `.keras` file; trained (a minute or two) and saved
            there if missing. Defaults to `default_classifier_path(dataset)`:
            `~/.cache/cwgan/classifier_<dataset>.keras`, or in `$CWGAN_CACHE_DIR`.
        seed: the noise seed. Defaults to 0.
    """
    n_per_class = check_int("n_per_class", n_per_class, minimum=MIN_PER_CLASS)
    seed = check_seed("seed", seed)
    directory = find_checkpoint_dir(checkpoint_dir)
    generator, info = load_generator(directory)
    judge = make_judge(info["classes"], info.get("dataset", "mnist"), data_dir,
                       classifier_path, seed)
    result = evaluate_generator(generator, info["classes"], info["latent_dim"], judge,
                                n_per_class, seed)
    result.update({"checkpoint_dir": os.path.abspath(directory), "epoch": info.get("epoch"),
                   "generator_iterations": info.get("generator_iterations")})
    return result
