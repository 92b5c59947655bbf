r"""Sample quality in numbers: `cwgan.evaluate_checkpoint` (and `python -m cwgan.evaluate`).

A CNN classifier, trained by cwgan on real images the generator never sees, judges samples:

  - data: the generator trains on the training split. The classifier trains on the whole
    test split (10,000 MNIST digits, both of its writer populations), with shifts, small
    rotations and zooms. The training images of each class are cut in two by a fixed
    seeded permutation (`split_training`): one part is the reference that samples are
    compared with, the other the floor: real images of the generator's own population,
    unseen by the classifier and the reference, measured exactly as samples are (`real`
    in the result: what a perfect generator would reach with as many images).
    `classifier_accuracy` is the classifier's accuracy on all floor images.
    `real_images` in the result says which images each part is.
  - features: each image's activations at three depths of the classifier, spatially
    averaged after each convolution block ("block1": strokes and texture, 32-d;
    "block2": parts, 64-d) and the penultimate dense layer ("features": class shape,
    256-d). Each layer is scaled to the same total variance on the reference (so a
    layer weighs by what it sees, not by its width), a dimension's variance 1 on
    average. Speckle and broken strokes move the first; wrong shapes the last.
  - `cond_acc`: the fraction of samples the classifier puts in the requested class, and
    the same per class.
  - `fd`: the Fréchet distance between Gaussian fits of the features of the samples and
    of the reference (all classes), and `fd_per_class` / `fd_class_mean` within each
    class (collapse inside a class shows there, not in the overall figure).
  - `precision` / `recall` (Kynkäänniemi et al. 2019, k=3) and `density` / `coverage`
    (Naeem et al. 2020, k=5) in the same feature space: fidelity (are samples where real
    images are?) apart from diversity (is every kind of real image produced?). `kid`,
    `kid_std`: the kernel distance (Binkowski et al. 2018), unbiased at small sample
    sizes, mean and spread over 100 subsets of up to 1,000. These compare with a
    reference sample of the same size and classes (fixed, `REFERENCE_SEED`), since
    they depend on sample size; see `cwgan.metrics`. None where a set is too small.
  - `memorisation`: the share of samples whose nearest reference image (pixel L2) is
    closer than `MEMORISATION_QUANTILE` of floor images are to theirs: about that
    quantile for real data, higher for a generator that copies its training set.
  - `cas` (with `cas=True`): a classifier trained on samples only, tested on the floor
    images, against the same trained on as many reference images.
"""

import os

import keras
import numpy as np

from cwgan.checkpoints import atomic_write, cache_dir, find_checkpoint_dir
from cwgan.checks import check_int, check_seed
from cwgan.data import NUM_CLASSES, load_mnist
from cwgan.metrics import (density_coverage, frechet_distance, kernel_inception_distance,
                           knn_radii, nearest_distances, precision_recall)
from cwgan.sampling import load_generator

MEMORISATION_QUANTILE = 0.05

MIN_PER_CLASS = 20  # fewer samples make per-class covariances meaningless

PRECISION_RECALL_K = 3  # Kynkäänniemi et al. 2019
DENSITY_COVERAGE_K = 5  # Naeem et al. 2020
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Binkowski et al. 2018
REFERENCE_SEED = 0  # which reference images the sample-based measures compare with
SPLIT_SEED = 0  # how the training images are cut into reference and floor

# In the cached classifier's file name: a judge built another way is never loaded.
# 1: a 2-layer CNN on half the test split (until issue 12); 2: `build_classifier`.
JUDGE_VERSION = 2
FEATURE_LAYERS = ("block1", "block2", "features")
CLASSIFIER_EPOCHS = 20


def _first_per_class(labels, classes, n):
    """Indices of the first `n` items of each of `classes` in `labels` (as far as there are)."""
    return np.concatenate([np.flatnonzero(labels == c)[:n] for c in classes])


def _new_classifier(seed, steps):
    """`build_classifier()`, seeded and compiled (Adam 2e-3 with a cosine decay over
    `steps`, cross-entropy, accuracy)."""
    keras.utils.set_random_seed(seed)
    model = build_classifier()
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, max(int(steps), 1))
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _conv_block(x, filters, name):
    """Two 3x3 convolutions with batch norm and ReLU; the last ReLU is named `name`.

    Batch norm's running statistics follow at momentum 0.9 (Keras: 0.99), so that a
    classifier trained for a few dozen steps (CAS on few samples) is judged with them
    settled.
    """
    for i in range(2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU(name=name if i else None)(x)
    return x


def build_classifier():
    """A CNN: 28x28x1 in [-1, 1] -> 10 class probabilities.

    Two blocks of two 3x3 convolutions (32, then 64 channels; batch norm, ReLU, 2x2 max
    pooling), then a 256-unit dense layer. `FEATURE_LAYERS` name the layers whose
    activations the measures use: the blocks' last ReLUs and the dense layer.
    """
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.MaxPooling2D()(_conv_block(inputs, 32, "block1"))
    x = keras.layers.MaxPooling2D()(_conv_block(x, 64, "block2"))
    x = keras.layers.Dropout(0.3)(keras.layers.Flatten()(x))
    x = keras.layers.Dense(256, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="classifier")


def train_classifier(path, images, labels, epochs=CLASSIFIER_EPOCHS, seed=0, verbose=0):
    """Trains the judge on `images` / `labels` (the test split), saves it to `path`.

    Augmented with shifts of up to 10%, rotations of up to 11 degrees and zooms of up to
    10%, so that it judges a digit's shape, not its exact placement. Returns the model.
    """
    import tensorflow as tf
    batch_size = 128
    model = _new_classifier(seed, epochs * -(-len(images) // batch_size))
    fill = {"fill_mode": "constant", "fill_value": -1.0, "seed": seed}
    augment = keras.Sequential([keras.layers.RandomRotation(0.03, **fill),
                                keras.layers.RandomZoom(0.1, **fill),
                                keras.layers.RandomTranslation(0.1, 0.1, **fill)])
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.shuffle(len(images), seed=seed).batch(batch_size)
    ds = ds.map(lambda a, b: (augment(a, training=True), b)).prefetch(2)
    model.fit(ds, epochs=epochs, verbose=verbose, shuffle=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, model.save)
    return model


def load_classifier(path, images, labels, seed=0):
    """Loads the judge from `path`, training it on `images` / `labels` and saving it
    first if it is not there."""
    if not os.path.exists(path):
        return train_classifier(path, images, labels, seed=seed)
    return keras.saving.load_model(path, safe_mode=True)


class Judge:
    """The classifier and the real-data references, prepared once, for repeated evaluation.

    `train_images` / `train_labels` are the reference that samples are compared with, and
    `held_images` / `held_labels` the floor: real images measured as samples are (see
    `make_judge`). `real_images` says in words which real images each part uses: the
    classifier's training data, the reference, and the floor.
    """

    def __init__(self, classifier, train_images, train_labels, held_images, held_labels,
                 real_images=None):
        self.classifier = classifier
        self.real_images = real_images or {}
        outputs = [classifier.get_layer(name).output for name in FEATURE_LAYERS]
        pooled = [keras.layers.GlobalAveragePooling2D()(x) if len(x.shape) == 4 else x
                  for x in outputs]
        self._features = keras.Model(classifier.inputs, pooled + [classifier.outputs[0]])
        self.train_images, self.train_labels = train_images, train_labels
        layers = self._layer_features(train_images)[0]
        # Every layer the same total variance on the reference, D / L for D dimensions in
        # L layers: no layer weighs by its width, and a dimension's variance is 1 on
        # average, the scale KID's kernel (x.y / D + 1)^3 is made for.
        share = sum(f.shape[1] for f in layers) / len(layers)
        self._scales = [np.sqrt(share / max(float(np.var(f, 0).sum()), 1e-12))
                        for f in layers]
        self.train_features = self._scaled(layers)
        held_nn = nearest_distances(held_images, train_images)
        self.memorisation_threshold = float(np.quantile(held_nn, MEMORISATION_QUANTILE))
        self.held_images, self.held_labels = held_images, held_labels
        _, held_probs = self.features(held_images)
        self.classifier_accuracy = float(np.mean(np.argmax(held_probs, 1) == held_labels))
        # Reference images per class in a fixed random order: the first n of a class are
        # the reference sample that n samples of that class are compared with.
        rng = np.random.default_rng(REFERENCE_SEED)
        self._reference_order = {int(c): rng.permutation(np.flatnonzero(train_labels == c))
                                 for c in np.unique(train_labels)}
        self._floors = {}
        self._reference_samples = {}

    def _layer_features(self, images):
        *layers, probs = self._features.predict(images, batch_size=500, verbose=0)
        return [np.asarray(f, np.float64) for f in layers], probs

    def features(self, images):
        """`(features, probabilities)` of `images`: `FEATURE_LAYERS`' activations side by
        side, each layer scaled to the same total variance on the reference."""
        layers, probs = self._layer_features(images)
        return self._scaled(layers), probs

    def _scaled(self, layers):
        return np.concatenate([f * s for f, s in zip(layers, self._scales)], 1)

    def _reference_sample(self, labels):
        """Reference features with as many of each class as `labels` has (as far as there
        are), and their k-NN radii for precision / recall and density / coverage (cached)."""
        classes, counts = np.unique(labels, return_counts=True)
        key = tuple(zip(classes.tolist(), counts.tolist()))
        if key not in self._reference_samples:
            keep = np.concatenate([self._reference_order.get(int(c), np.array([], int))[:n]
                                   for c, n in key])
            feats = self.train_features[keep]
            radii = {k: knn_radii(feats, k) if len(feats) > k else None
                     for k in (PRECISION_RECALL_K, DENSITY_COVERAGE_K)}
            self._reference_samples[key] = feats, radii
        return self._reference_samples[key]

    def _sample_measures(self, feats, labels):
        """precision, recall, density, coverage, kid, kid_std against a reference sample of
        the same size and classes; None where a set is too small for the measure."""
        reference, radii = self._reference_sample(labels)
        out = dict.fromkeys(("precision", "recall", "density", "coverage", "kid",
                             "kid_std"))
        if radii[PRECISION_RECALL_K] is not None and len(feats) > PRECISION_RECALL_K:
            out["precision"], out["recall"] = precision_recall(
                reference, feats, PRECISION_RECALL_K, radii[PRECISION_RECALL_K])
        if radii[DENSITY_COVERAGE_K] is not None:
            out["density"], out["coverage"] = density_coverage(
                reference, feats, DENSITY_COVERAGE_K, radii[DENSITY_COVERAGE_K])
        if len(reference) >= 2:
            out["kid"], out["kid_std"] = kernel_inception_distance(
                reference, feats, KID_SUBSETS, KID_SUBSET_SIZE, seed=REFERENCE_SEED)
        return out

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
        result = {
            "n": int(len(images)),
            "cond_acc": float(correct.mean()),
            "cond_acc_per_class": {str(c): float(correct[labels == c].mean()) for c in classes},
            "fd": frechet_distance(feats, self.train_features[train_mask]),
            "fd_per_class": fd_class,
            "fd_class_mean": float(np.mean(list(fd_class.values()))),
            "memorisation": float(np.mean(nn < self.memorisation_threshold)),
        }
        result.update(self._sample_measures(feats, labels))
        return result

    def floor_images(self, classes, n_per_class):
        """Up to `n_per_class` floor images per class of `classes`, and their labels."""
        keep = _first_per_class(self.held_labels, classes, n_per_class)
        return self.held_images[keep], self.held_labels[keep]

    def real_floor(self, classes, n_per_class):
        """The metrics of up to `n_per_class` floor images per class (cached)."""
        key = (tuple(classes), n_per_class)
        if key not in self._floors:
            self._floors[key] = self.metrics(*self.floor_images(classes, n_per_class))
        return self._floors[key]


def split_training(images, labels, seed=None):
    """Cuts the training images of each class in two by a fixed random permutation.

    Returns `((reference_images, reference_labels), (floor_images, floor_labels))`: of
    each class, the first half (rounded up) of a permutation seeded by `(seed, class)` is
    the reference, the rest the floor, each in the source's order. The cut of a class does
    not depend on which other classes are loaded. `seed` defaults to `SPLIT_SEED`.
    """
    seed = SPLIT_SEED if seed is None else seed
    reference, floor = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = np.random.default_rng([seed, int(c)]).permutation(len(idx))
        half = (len(idx) + 1) // 2
        reference.append(idx[np.sort(perm[:half])])
        floor.append(idx[np.sort(perm[half:])])
    reference, floor = np.sort(np.concatenate(reference)), np.sort(np.concatenate(floor))
    return (images[reference], labels[reference]), (images[floor], labels[floor])


def _test_split(dataset, data_dir):
    """`(images, labels, source)` of the test split: the classifier's training data."""
    images, labels, info = load_mnist(None, data_dir, dataset, split="test",
                                      return_info=True)
    return images, labels, info["source"]


def make_judge(classes, dataset="mnist", data_dir=None, classifier_path=None, seed=0):
    """Builds a `Judge` for generators trained on `classes` of the training split.

    The classifier is trained on the test split (or loaded from its cache); the training
    images of `classes` are cut in two (`split_training`): the reference, and the floor
    (the same population as the generator's data, unseen by the classifier and the
    reference).

    Args:
        classes: the generator's classes.
        dataset: `"mnist"` or `"fashion_mnist"`. Defaults to `"mnist"`.
        data_dir: as for `load_mnist`. Defaults to Keras' loader.
        classifier_path: the judge's `.keras` file. Defaults to `default_classifier_path`.
        seed: the classifier's training seed. Defaults to 0.
    """
    classifier_path = classifier_path or default_classifier_path(dataset)
    test_images, test_labels, test_source = _test_split(dataset, data_dir)
    classifier = load_classifier(classifier_path, test_images, test_labels, seed)
    train_images, train_labels, train_info = load_mnist(classes, data_dir, dataset,
                                                        return_info=True)
    (ref_images, ref_labels), (held_images, held_labels) = split_training(train_images,
                                                                          train_labels)
    training = (f"training images of classes {list(classes)} ({train_info['source']}, "
                f"sha256 {train_info['sha256'][:12]})")
    real_images = {
        "classifier": f"all {len(test_images)} images of the test split ({test_source}); "
                      "its accuracy is measured on the floor",
        "reference": f"{len(ref_images)} of the {train_info['images']} {training}: of "
                     f"each class, the first half of a permutation seeded by "
                     f"({SPLIT_SEED}, class); FD, KID, precision / recall, density / "
                     "coverage and memorisation compare samples with these",
        "floor": f"the other {len(held_images)} of the {train_info['images']} {training}, "
                 "seen by neither the classifier nor the reference (the same population "
                 "as the generator's training data): the 'real' figures, up to "
                 "n_per_class per class; CAS is tested on all of them",
    }
    return Judge(classifier, ref_images, ref_labels, held_images, held_labels, real_images)


def default_classifier_path(dataset="mnist"):
    """Where the judge of `dataset` is cached: `<cache>/classifier_<dataset>_v<N>.keras`
    (N: `JUDGE_VERSION`), in `cwgan.checkpoints.cache_dir()`."""
    return os.path.join(cache_dir(), f"classifier_{dataset}_v{JUDGE_VERSION}.keras")


def generate(generator, classes, latent_dim, n_per_class, seed=0):
    """`n_per_class` images in [-1, 1] per class from seeded noise, and their labels."""
    labels = np.repeat(np.asarray(classes, np.int32), n_per_class)
    noise = np.random.default_rng(seed).standard_normal((len(labels), latent_dim))
    images = generator.predict([noise.astype(np.float32), labels], batch_size=500, verbose=0)
    return np.asarray(images, np.float32), labels


def classification_accuracy_score(images, labels, test_images, test_labels, epochs=5,
                                  seed=0):
    """CAS (Ravuri & Vinyals 2019; "GAN-train", Shmelkov et al. 2018): the accuracy on
    real `test_images` of a classifier (`build_classifier`) trained only on `images`.

    Samples that are realistic and diverse enough to teach a classifier score near what
    the same number of real images scores; in [0, 1]. Seeded, so two calls with the same
    data give the same score.
    """
    batch_size = 128
    model = _new_classifier(seed, epochs * -(-len(images) // batch_size))
    model.fit(images, labels, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    return float(model.evaluate(test_images, test_labels, verbose=0)[1])


def evaluate_generator(generator, classes, latent_dim, judge, n_per_class=500, seed=0,
                       cas=False):
    """The metrics of a generator beside those of the real floor images (see module doc).

    With `cas`, also the classification accuracy score (`classification_accuracy_score`,
    tested on all the judge's floor images): `generator.cas` of a classifier trained on
    the samples, `real.cas` of the same trained on as many reference images per class,
    and `cas_ratio`, the first over the second (about a minute more).
    """
    n_per_class = check_int("n_per_class", n_per_class, minimum=MIN_PER_CLASS)
    images, labels = generate(generator, classes, latent_dim, n_per_class, seed)
    result = {"generator": judge.metrics(images, labels),
              "real": dict(judge.real_floor(classes, n_per_class)),  # a copy: cached
              "classifier_accuracy": judge.classifier_accuracy,
              "n_per_class": n_per_class,
              "real_images": judge.real_images}
    if cas:
        keep = np.isin(judge.held_labels, classes)
        test = (judge.held_images[keep], judge.held_labels[keep])
        real = _first_per_class(judge.train_labels, classes, n_per_class)
        result["generator"]["cas"] = classification_accuracy_score(images, labels, *test,
                                                                   seed=seed)
        result["real"]["cas"] = classification_accuracy_score(
            judge.train_images[real], judge.train_labels[real], *test, seed=seed)
        result["cas_ratio"] = result["generator"]["cas"] / max(result["real"]["cas"], 1e-12)
    return result


def evaluate_checkpoint(checkpoint_dir=None, n_per_class=500, data_dir=None,
                        classifier_path=None, seed=0, cas=False):
    """Evaluates the generator in a checkpoint directory; returns the metrics as a dict.

    Args:
        checkpoint_dir: as for `cwgan.sample` (defaults to the nearest `checkpoints/`).
        n_per_class: samples per class, at least 20. Defaults to 500.
        data_dir: where the data is, as for `load_mnist`. Defaults to Keras' loader.
        classifier_path: the judge's `.keras` file; trained (two or three minutes on two
            CPU cores) and saved there if missing. Defaults to
            `default_classifier_path(dataset)`: in `~/.cache/cwgan/`, or in
            `$CWGAN_CACHE_DIR`.
        seed: the noise seed. Defaults to 0.
        cas: also the classification accuracy score (see `evaluate_generator`).
            Defaults to False.
    """
    n_per_class = check_int("n_per_class", n_per_class, minimum=MIN_PER_CLASS)
    seed = check_seed("seed", seed)
    directory = find_checkpoint_dir(checkpoint_dir)
    generator, info = load_generator(directory)
    judge = make_judge(info["classes"], info.get("dataset", "mnist"), data_dir,
                       classifier_path, seed)
    result = evaluate_generator(generator, info["classes"], info["latent_dim"], judge,
                                n_per_class, seed, cas)
    result.update({"checkpoint_dir": os.path.abspath(directory), "epoch": info.get("epoch"),
                   "generator_iterations": info.get("generator_iterations")})
    return result


# Validation: real floor images disturbed in controlled steps (`validate`). Each strength
# list starts at 0, the floor itself.
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
                      "coverage", "kid", "memorisation")


def _gaussian_blur(images, sigma):
    """Images in [-1, 1] (n, 28, 28, 1) blurred by a separable Gaussian; black outside."""
    if sigma <= 0:
        return images
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    x = np.pad((images[..., 0] + 1) / 2, ((0, 0), (radius, radius), (radius, radius)))
    size = images.shape[1]
    x = sum(w * x[:, i:i + size, :] for i, w in enumerate(taps))  # rows
    x = sum(w * x[:, :, i:i + size] for i, w in enumerate(taps))  # then columns
    return (x * 2 - 1)[..., None].astype(np.float32)


def disturb(images, labels, kind, strength, classes, seed=0):
    """Real images in [-1, 1] and their labels, disturbed by `kind` at `strength`.

    Args:
        images: (n, 28, 28, 1) float images in [-1, 1].
        labels: (n,) int labels (the requested class of each image).
        kind: one of `DISTURBANCES`: "speckle", "blur", "broken_strokes" (image damage),
            "label_swap" (right images, wrong classes), "class_drop" (the first of
            `classes` produced as other classes), "repeat" (each class collapsed onto
            one of its images).
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
    if kind == "speckle":
        mask = rng.random(images.shape) < strength
        images[mask] = rng.choice(np.float32([-1, 1]), int(mask.sum()))
    elif kind == "blur":
        images = _gaussian_blur(images, strength)
    elif kind == "broken_strokes":
        size = images.shape[1]
        for i in range(n):
            ys, xs = np.nonzero(images[i, :, :, 0] > 0)
            if len(ys) == 0:
                continue
            for j in rng.choice(len(ys), min(int(strength), len(ys)), replace=False):
                y, x = max(ys[j] - 1, 0), max(xs[j] - 1, 0)
                images[i, y:min(y + 3, size), x:min(x + 3, size)] = -1.0
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
    """Measures disturbed real digits: does each metric move with the disturbance?

    The floor images (`judge.floor_images`) are disturbed by each kind at each strength
    (`disturb`) and measured as a generator's samples would be; strength 0 is the real
    floor. A measure worth tuning against moves monotonically with the strength.

    Args:
        judge: a `Judge` (see `make_judge`).
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
