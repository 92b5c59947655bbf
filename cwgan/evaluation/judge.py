r"""Sample quality in numbers: `cwgan.evaluate_checkpoint` (and `python -m cwgan.evaluate`).

A CNN classifier, trained by cwgan on real images the generator never sees, judges samples:

  - data: the generator trains on the training split. The classifier trains on the whole
    test split (MNIST: 10,000 digits, both of its writer populations; a folder of your
    own images: its held-out part, see `cwgan.data.folder`), with shifts, small rotations and
    zooms. The training images of each class are cut in two by a fixed seeded
    permutation (`split_training`): one part is the reference that samples are compared
    with, the other the floor: real images of the generator's own population, unseen by
    the classifier and the reference, measured exactly as samples are (`real` in the
    result: what a perfect generator would reach with as many images). Large images are
    not all loaded: each part holds at most `real_per_class_limit` images of a class, a
    random choice (all of MNIST's fit). `classifier_accuracy` is the classifier's
    accuracy on all floor images. `real_images` in the result says which images each
    part is.
  - features: each image's activations at three depths of the classifier, spatially
    averaged after each convolution block ("block1": strokes and texture, 32-d;
    "block2": parts, 64-d) and the penultimate dense layer ("features": class shape,
    256-d). Each layer is scaled to the same total variance on the reference (so a
    layer weighs by what it sees, not by its width), a dimension's variance 1 on
    average. Speckle and broken strokes move the first; wrong shapes the last.
  - `cond_acc`: the fraction of samples the classifier puts in the requested class, and
    the same per class (per-class figures are keyed by the class's name: "0".."9" for
    digits, the class folder's name for a folder).
  - `cond_acc_shape` (colour images only; None for grey ones, whose `cond_acc` already
    judges the shape): the same by a second classifier that sees only the shape
    (`shape_view`: brightness, each image standardised, either polarity), trained on the
    same images. Where a class has its own colours, the first classifier can name it by
    colour alone and `cond_acc` is about 1 whatever the shapes; this one asks whether the
    shape is the class's. Its floor (`real`) says how far shape alone tells the classes
    apart in the data.
  - `fd`: the Fréchet distance between Gaussian fits of the features of the samples and
    of the reference (all classes), and `fd_per_class` / `fd_class_mean` within each
    class (collapse inside a class shows there, not in the overall figure).
  - `precision` / `recall` (Kynkäänniemi et al. 2019, k=3) and `density` / `coverage`
    (Naeem et al. 2020, k=5) in the same feature space: fidelity (are samples where real
    images are?) apart from diversity (is every kind of real image produced?). `kid`,
    `kid_std`: the kernel distance (Binkowski et al. 2018), unbiased at small sample
    sizes, mean and spread over 100 subsets of up to 1,000. These compare with a
    reference sample of the same size and classes (fixed, `REFERENCE_SEED`), since
    they depend on sample size; see `cwgan.evaluation.metrics`. None where a set is too small.
  - `memorisation`: the share of samples whose nearest reference image (pixel L2) is
    closer than `MEMORISATION_QUANTILE` of floor images are to theirs: about that
    quantile for real data, higher for a generator that copies its training set.
  - `cas` (with `cas=True`): a classifier trained on samples only, tested on the floor
    images, against the same trained on as many reference images.
"""

import logging
import os

import keras
import numpy as np

from cwgan.data import folder
from cwgan.data.loading import (IMAGE_SHAPE, MNIST_LIKE, NUM_CLASSES, describe_classes,
                                load_data, load_mnist, read_image, to_unit_range)
from cwgan.evaluation.metrics import (density_coverage, frechet_distance,
                                      kernel_inception_distance, knn_radii, nearest_distances,
                                      precision_recall, roughness, tone_spread)
from cwgan.sampling.sample import load_generator
from cwgan.training.checkpoints import (TRAIN_CONFIG_FILE, atomic_write,
                                        find_checkpoint_dir, read_json)
from cwgan.utils.cache import cache_dir
from cwgan.utils.checks import check_int, check_seed

logger = logging.getLogger("cwgan")

MEMORISATION_QUANTILE = 0.05

MIN_PER_CLASS = 20  # fewer samples make per-class covariances meaningless

PRECISION_RECALL_K = 3  # Kynkäänniemi et al. 2019
DENSITY_COVERAGE_K = 5  # Naeem et al. 2020
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Binkowski et al. 2018
REFERENCE_SEED = 0  # which reference images the sample-based measures compare with
SPLIT_SEED = 0  # how the training images are cut into reference and floor

# In the cached classifier's file name: a judge built another way is never loaded.
# 1: a 2-layer CNN on half the test split (until issue 12); 2: `build_classifier`;
# 3: the same, after a folder resized by `--image_size` was read as 0-255 pixels (a
# judge of version 2 of a resized folder learned from those).
JUDGE_VERSION = 3
FEATURE_LAYERS = ("block1", "block2", "features")
CLASSIFIER_EPOCHS = 20
# A held-out part smaller than MNIST's test split is seen more often: at least this many
# training steps (MNIST's 10,000 digits take 1,580 in 20 epochs).
CLASSIFIER_MIN_STEPS = 500
# The classifier cannot learn a class it never sees; a class of the training split needs
# two images for the reference and two for the floor (a covariance needs two).
MIN_HELD_OUT_PER_CLASS = 1
MIN_TRAINING_PER_CLASS = 4
# The reference and the floor together, as float32: all of MNIST's 60,000 training
# images fit (188 MB); larger images are subsampled per class (`real_per_class_limit`).
REAL_IMAGES_BYTES = 256 << 20
_PREDICT_BATCH = 500  # images per predict call at 28x28; fewer for larger images


def _batch_size(image_shape):
    """Images per `predict` call: 500 at 28x28 or less, fewer for larger images, so a
    call's activations stay about the same size."""
    pixels = int(image_shape[0]) * int(image_shape[1])
    return max(16, min(_PREDICT_BATCH, _PREDICT_BATCH * 28 * 28 // pixels))


def real_per_class_limit(image_shape, num_classes):
    """At most how many images of a class the reference (and as many the floor) holds:
    `REAL_IMAGES_BYTES` of float32 over both parts of `num_classes` classes, and at
    least `MIN_PER_CLASS`."""
    per_image = 4 * int(np.prod(image_shape))
    return max(MIN_PER_CLASS, REAL_IMAGES_BYTES // (per_image * 2 * int(num_classes)))


def _first_per_class(labels, classes, n):
    """Indices of the first `n` items of each of `classes` in `labels` (as far as there are)."""
    return np.concatenate([np.flatnonzero(labels == c)[:n] for c in classes])


# ITU-R BT.601 luma: the brightness that `shape_view` keeps of a colour image.
LUMA = (0.299, 0.587, 0.114)


def shape_view(images):
    """What the shape judge sees of colour images `(n, h, w, 3)` in [-1, 1]: each pixel's
    brightness (`LUMA`), each image shifted and scaled to mean 0 and standard deviation 1,
    `(n, h, w, 1)`. Neither an image's colours nor its overall brightness or contrast are
    left; only where it is lighter or darker. (The judge also reads every image at both
    polarities, so light-on-dark and dark-on-light are the same shape.) Numpy arrays or
    tensors."""
    ops = keras.ops
    luma = ops.sum(ops.convert_to_tensor(images, "float32")
                   * ops.convert_to_tensor(LUMA, "float32"), axis=-1, keepdims=True)
    centred = luma - ops.mean(luma, axis=(1, 2, 3), keepdims=True)
    # A flat image stays flat (0), not noise blown up to unit variance.
    spread = ops.maximum(ops.std(centred, axis=(1, 2, 3), keepdims=True), 0.01)
    return centred / spread


def _new_classifier(seed, steps, input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES):
    """`build_classifier(input_shape, num_classes)`, seeded and compiled (Adam 2e-3 with a
    cosine decay over `steps`, cross-entropy, accuracy)."""
    keras.utils.set_random_seed(seed)
    model = build_classifier(input_shape, num_classes)
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


def build_classifier(input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES):
    """A CNN: images of `input_shape` in [-1, 1] -> `num_classes` class probabilities.

    Two blocks of two 3x3 convolutions (32, then 64 channels; batch norm, ReLU, 2x2 max
    pooling), then a 256-unit dense layer. Images larger than 32x32 get further blocks
    of 128 channels ("block3", ...) until the map is at most 8x8, so the dense layer
    stays small and sees the whole image. `FEATURE_LAYERS` name the layers whose
    activations the measures use: the first two blocks' last ReLUs and the dense layer.

    Args:
        input_shape: `(height, width, channels)`. Defaults to MNIST's (28, 28, 1).
        num_classes: the number of outputs. Defaults to 10.
    """
    inputs = keras.Input(shape=tuple(input_shape))
    x = keras.layers.MaxPooling2D()(_conv_block(inputs, 32, "block1"))
    x = keras.layers.MaxPooling2D()(_conv_block(x, 64, "block2"))
    block = 3
    while x.shape[1] > 8:
        x = keras.layers.MaxPooling2D()(_conv_block(x, 128, f"block{block}"))
        block += 1
    x = keras.layers.Dropout(0.3)(keras.layers.Flatten()(x))
    x = keras.layers.Dense(256, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="classifier")


def _augmentation(seed, black_outside):
    """Shifts of up to 10%, rotations of up to 11 degrees, zooms of up to 10%; outside
    the image black (MNIST's background), else the image reflected."""
    fill = ({"fill_mode": "constant", "fill_value": -1.0} if black_outside
            else {"fill_mode": "reflect"}) | {"seed": seed}
    return keras.Sequential([keras.layers.RandomRotation(0.03, **fill),
                             keras.layers.RandomZoom(0.1, **fill),
                             keras.layers.RandomTranslation(0.1, 0.1, **fill)])


def _save(path, model):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, model.save)
    return model


def train_classifier(path, images, labels, epochs=CLASSIFIER_EPOCHS, seed=0, verbose=0):
    """Trains the judge on `images` / `labels` (MNIST's test split), saves it to `path`.

    Augmented with shifts of up to 10%, rotations of up to 11 degrees and zooms of up to
    10%, so that it judges a digit's shape, not its exact placement. Returns the model.
    """
    import tensorflow as tf
    batch_size = 128
    model = _new_classifier(seed, epochs * -(-len(images) // batch_size))
    augment = _augmentation(seed, black_outside=True)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.shuffle(len(images), seed=seed).batch(batch_size)
    ds = ds.map(lambda a, b: (augment(a, training=True), b)).prefetch(2)
    model.fit(ds, epochs=epochs, verbose=verbose, shuffle=False)
    return _save(path, model)


def train_classifier_on_data(path, data, epochs=None, seed=0, verbose=0, shape_only=False):
    """Trains the judge on `data` (an `ImageData`: the held-out images of a folder, or
    another data set's test split), saves it to `path`; returns the model.

    Augmented as `train_classifier` does (outside the image: black for grey images,
    whose background MNIST-like data has black, else the image reflected). Images in
    memory are used as they are; streamed ones are read from their files at each epoch.

    Args:
        epochs: passes over `data`. Defaults to `CLASSIFIER_EPOCHS`, or more when `data`
            is small: at least `CLASSIFIER_MIN_STEPS` batches.
        shape_only: the shape judge of colour images: it learns from `shape_view` of
            the images, each at a random polarity, and takes one channel.
    """
    import tensorflow as tf

    batch_size = 128
    steps_per_epoch = -(-len(data) // batch_size)
    if epochs is None:
        epochs = max(CLASSIFIER_EPOCHS, -(-CLASSIFIER_MIN_STEPS // steps_per_epoch))
    epochs = check_int("epochs", epochs, minimum=1)
    shape = tuple(data.image_shape)
    model = _new_classifier(seed, epochs * steps_per_epoch,
                            shape[:-1] + (1,) if shape_only else shape, data.num_classes)
    augment = _augmentation(seed, black_outside=shape[-1] == 1 and not shape_only)
    if data.in_memory:
        ds = tf.data.Dataset.from_tensor_slices((data.images, data.labels))
        ds = ds.shuffle(len(data), seed=seed).batch(batch_size)
        ds = ds.map(lambda a, b: (to_unit_range(a), b))
    else:
        ds = tf.data.Dataset.from_tensor_slices((list(data.paths), data.labels))
        ds = ds.shuffle(len(data), seed=seed)
        ds = ds.map(lambda p, b: (read_image(p, shape, data.resize), b),
                    num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    if shape_only:
        signs = tf.random.Generator.from_seed(seed)

        def view(a, b):  # each image at a random polarity
            flip = signs.uniform((tf.shape(a)[0], 1, 1, 1)) < 0.5
            x = shape_view(a)
            return tf.where(flip, -x, x), b

        ds = ds.map(view)
    # One Keras epoch of all the passes: a small set's many passes cost no epoch overhead.
    ds = ds.map(lambda a, b: (augment(a, training=True), b)).repeat().prefetch(2)
    model.fit(ds, epochs=1, steps_per_epoch=epochs * steps_per_epoch, verbose=verbose,
              shuffle=False)
    return _save(path, model)


def load_classifier(path, images, labels, seed=0, epochs=None):
    """Loads the judge from `path`, training it on `images` / `labels` (`train_classifier`;
    `epochs` defaults to `CLASSIFIER_EPOCHS`) and saving it first if it is not there."""
    if not os.path.exists(path):
        return train_classifier(path, images, labels, seed=seed,
                                epochs=CLASSIFIER_EPOCHS if epochs is None else epochs)
    return keras.saving.load_model(path, safe_mode=True)


class Judge:
    """The classifier and the real-data references, prepared once, for repeated evaluation.

    `train_images` / `train_labels` are the reference that samples are compared with, and
    `held_images` / `held_labels` the floor: real images measured as samples are (see
    `make_judge`). `real_images` says in words which real images each part uses: the
    classifier's training data, the reference, and the floor. `class_names` name the
    classifier's classes (label i is `class_names[i]`; default "0", "1", ...); the
    per-class figures are keyed by them. `shape_classifier`, for colour images, is the
    shape judge (`cond_acc_shape`): a classifier of `shape_view` images.
    """

    def __init__(self, classifier, train_images, train_labels, held_images, held_labels,
                 real_images=None, class_names=None, shape_classifier=None):
        self.classifier = classifier
        self.shape_classifier = shape_classifier
        self.real_images = real_images or {}
        self.image_shape = tuple(classifier.inputs[0].shape[1:])
        self.num_classes = int(classifier.outputs[0].shape[-1])
        self.class_names = tuple(class_names or (str(c) for c in range(self.num_classes)))
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"Invalid value for argument `class_names`. Received "
                             f"{len(self.class_names)} names for a classifier of "
                             f"{self.num_classes} classes. Expected one name per class.")
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
        # A judge that cannot tell real images apart makes every figure meaningless (a
        # classifier trained on other pixels than it is shown does this): say so.
        trusted = (1.0 + 1.0 / self.num_classes) / 2  # halfway from chance to perfect
        if self.classifier_accuracy < trusted:
            logger.warning(
                "The judge's classifier puts only %.3f of the real floor images in their "
                "class (chance: %.3f; below %.3f its figures say little). Check that the "
                "classifier was trained on these images at this size (delete its cached "
                "file to retrain it).", self.classifier_accuracy, 1.0 / self.num_classes,
                trusted)
        # Reference images per class in a fixed random order: the first n of a class are
        # the reference sample that n samples of that class are compared with.
        rng = np.random.default_rng(REFERENCE_SEED)
        self._reference_order = {int(c): rng.permutation(np.flatnonzero(train_labels == c))
                                 for c in np.unique(train_labels)}
        self._floors = {}
        self._reference_samples = {}

    def _layer_features(self, images):
        *layers, probs = self._features.predict(images, batch_size=_batch_size(
            self.image_shape), verbose=0)
        return [np.asarray(f, np.float64) for f in layers], probs

    def features(self, images):
        """`(features, probabilities)` of `images`: `FEATURE_LAYERS`' activations side by
        side, each layer scaled to the same total variance on the reference."""
        layers, probs = self._layer_features(images)
        return self._scaled(layers), probs

    def shape_probabilities(self, images):
        """The shape judge's class probabilities of colour `images` in [-1, 1]: the mean
        of its outputs for `shape_view` of each image and of its negative, so that a
        shape is judged alike light on dark and dark on light."""
        view = np.asarray(shape_view(images))
        batch_size = _batch_size(self.image_shape)
        return (self.shape_classifier.predict(view, batch_size=batch_size, verbose=0)
                + self.shape_classifier.predict(-view, batch_size=batch_size, verbose=0)) / 2

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
        name = self.class_names
        train_mask = np.isin(self.train_labels, classes)
        fd_class = {name[c]: frechet_distance(feats[labels == c],
                                              self.train_features[self.train_labels == c])
                    for c in classes}
        nn = nearest_distances(images, self.train_images[train_mask])
        result = {
            "n": int(len(images)),
            "cond_acc": float(correct.mean()),
            "cond_acc_per_class": {name[c]: float(correct[labels == c].mean())
                                   for c in classes},
            "fd": frechet_distance(feats, self.train_features[train_mask]),
            "fd_per_class": fd_class,
            "fd_class_mean": float(np.mean(list(fd_class.values()))),
            "memorisation": float(np.mean(nn < self.memorisation_threshold)),
            "roughness": roughness(images),
            "tone_spread": tone_spread(images, labels),
            "cond_acc_shape": None,
            "cond_acc_shape_per_class": None,
        }
        if self.shape_classifier is not None:
            right = np.argmax(self.shape_probabilities(images), 1) == labels
            result["cond_acc_shape"] = float(right.mean())
            result["cond_acc_shape_per_class"] = {name[c]: float(right[labels == c].mean())
                                                  for c in classes}
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


def split_indices(labels, seed=None, limit=None):
    """`(reference, floor)`: the indices of `split_training`'s two parts of `labels`.

    With `limit`, each part holds at most `limit` images of a class: the first `limit`
    of its share of the class's permutation (so a part never depends on the other's
    limit). Both sorted.
    """
    seed = SPLIT_SEED if seed is None else seed
    labels = np.asarray(labels)
    reference, floor = [np.array([], np.int64)], [np.array([], np.int64)]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = np.random.default_rng([seed, int(c)]).permutation(len(idx))
        half = (len(idx) + 1) // 2
        stop = len(idx) if limit is None else half + limit
        reference.append(idx[np.sort(perm[:half if limit is None else min(half, limit)])])
        floor.append(idx[np.sort(perm[half:stop])])
    return np.sort(np.concatenate(reference)), np.sort(np.concatenate(floor))


def split_training(images, labels, seed=None):
    """Cuts the training images of each class in two by a fixed random permutation.

    Returns `((reference_images, reference_labels), (floor_images, floor_labels))`: of
    each class, the first half (rounded up) of a permutation seeded by `(seed, class)` is
    the reference, the rest the floor, each in the source's order. The cut of a class does
    not depend on which other classes are loaded. `seed` defaults to `SPLIT_SEED`.
    """
    reference, floor = split_indices(labels, seed)
    return (images[reference], labels[reference]), (images[floor], labels[floor])


def _test_split(dataset, data_dir):
    """`(images, labels, source)` of MNIST's test split: the classifier's training data."""
    images, labels, info = load_mnist(None, data_dir, dataset, split="test",
                                      return_info=True)
    return images, labels, info["source"]


def _is_folder(data_dir):
    return data_dir is not None and folder.is_image_folder(os.fspath(data_dir))


def _mnist_judge(dataset, data_dir, image_size):
    """True for MNIST-like 28x28 digits: the judge cwgan has always built for them (its
    classifier cached under the data set's name, `default_classifier_path`)."""
    return dataset in MNIST_LIKE and not _is_folder(data_dir) and image_size in (None, 28)


def load_real_images(dataset="mnist", data_dir=None, classes=None, split="train",
                     image_size=None, data_cache="none"):
    """`cwgan.load_data` for the real images a generator of `dataset` is judged against:
    dataset "folder" (a generator trained on a folder) reads `data_dir`'s folder. By
    default the images of a folder stay on disk (`data_cache="none"`) until read with
    `ImageData.take`, so that loading a few of each class costs a few files."""
    if dataset == "folder":
        if not _is_folder(data_dir):
            raise ValueError(
                f"Invalid value for argument `data_dir`. Received: data_dir={data_dir!r} "
                "for a generator trained on a folder of images. Expected the folder of "
                "class folders it was trained on.")
        dataset = "mnist"  # ignored: load_data reads the folder
    return load_data(dataset, data_dir, classes, split, image_size, data_cache)


def _check_training_counts(train, classes):
    counts = np.bincount(train.labels, minlength=train.num_classes)
    for c in classes:
        if counts[c] < MIN_TRAINING_PER_CLASS:
            raise ValueError(
                f"Too few training images of class {train.class_names[c]!r} in "
                f"{train.info['source']} to judge a generator: {counts[c]}. Expected at "
                f"least {MIN_TRAINING_PER_CLASS} (half for the reference, half for the "
                "floor; a per-class Fréchet distance needs two of each).")


def _check_held_out(held_out, train):
    """Refuses held-out images whose classes are not the training split's, or with fewer
    than `MIN_HELD_OUT_PER_CLASS` of a class; `(count, name)` of the scarcest class."""
    source = held_out.info["source"]
    if tuple(held_out.class_names) != tuple(train.class_names):
        missing = [n for n in train.class_names if n not in held_out.class_names]
        extra = [n for n in held_out.class_names if n not in train.class_names]
        raise ValueError(
            f"The held-out images in {source} are of classes {list(held_out.class_names)}, "
            f"the training images of {list(train.class_names)}"
            + (f" (class {missing[0]!r} has 0 held-out images)" if missing else "")
            + (f" (class {extra[0]!r} has no training images)" if extra and not missing
               else "")
            + f". The judge's classifier learns every class from the held-out images: "
            f"expected at least {MIN_HELD_OUT_PER_CLASS} of each class, in a test/ folder "
            "with the same class folders as train/.")
    counts = np.bincount(held_out.labels, minlength=held_out.num_classes)
    for c, count in enumerate(counts):
        if count < MIN_HELD_OUT_PER_CLASS:
            raise ValueError(
                f"Too few held-out images of class {held_out.class_names[c]!r} in {source} "
                f"for the judge's classifier: {count}. Expected at least "
                f"{MIN_HELD_OUT_PER_CLASS} of each class (add images to the class, or a "
                "test/ folder beside train/ with some of each class).")
    scarcest = int(np.argmin(counts))
    return int(counts[scarcest]), held_out.class_names[scarcest]


def make_judge(classes, dataset="mnist", data_dir=None, classifier_path=None, seed=0,
               image_size=None, classifier_epochs=None):
    """Builds a `Judge` for generators trained on `classes` of the training split.

    The classifier is trained on the test split (or loaded from its cache); the training
    images of `classes` are cut in two (`split_training`): the reference, and the floor
    (the same population as the generator's data, unseen by the classifier and the
    reference). Of large images each part holds at most `real_per_class_limit` of a
    class.

    Example:

    ```python
    judge = make_judge((0, 1), dataset="folder", data_dir="my_images")
    judge.metrics(images, labels)   # images in [-1, 1] of the folder's shape
    ```

    Args:
        classes: the generator's classes (indices into the data's class names).
        dataset: `"mnist"`, `"fashion_mnist"`, `"cifar10"`, or `"folder"` (the
            generator's `generator.json` says which). Defaults to `"mnist"`.
        data_dir: as for `cwgan.load_data`: a folder of class folders (the classifier
            learns from its held-out images), IDX files or an npz. Defaults to Keras'
            loader.
        classifier_path: the judge's `.keras` file. Defaults to `default_classifier_path`.
        seed: the classifier's training seed. Defaults to 0.
        image_size: the size the generator was trained at (`--image_size`). Defaults to
            the data's own.
        classifier_epochs: the classifier's training epochs if it is not cached. Defaults
            to `CLASSIFIER_EPOCHS` (more for a small held-out part, see
            `train_classifier_on_data`).

    Raises:
        ValueError: too few training or held-out images of a class (named, with the
            count and what is needed), or held-out classes unlike the training ones.
    """
    train = load_real_images(dataset, data_dir, None, "train", image_size)
    every = tuple(range(train.num_classes))
    classes = every if classes is None else tuple(sorted(int(c) for c in classes))
    if classes != every:  # a subset: its own identity (sha256), as training records it
        train = load_real_images(dataset, data_dir, classes, "train", image_size)
    _check_training_counts(train, classes)
    if _mnist_judge(dataset, data_dir, image_size):
        test_images, test_labels, test_source = _test_split(dataset, data_dir)
        classifier_path = classifier_path or default_classifier_path(dataset)
        classifier = load_classifier(classifier_path, test_images, test_labels, seed,
                                     classifier_epochs)
        shape_classifier = None  # grey digits: cond_acc already judges the shape
        about_classifier = (f"all {len(test_images)} images of the test split "
                            f"({test_source}); its accuracy is measured on the floor")
    else:
        held_out = load_real_images(dataset, data_dir, None, "test", image_size)
        fewest, scarcest = _check_held_out(held_out, train)
        classifier_path = classifier_path or default_classifier_path(dataset, held_out)
        shape_path = shape_classifier_path(classifier_path)
        paths = [classifier_path] + ([shape_path] if train.image_shape[-1] == 3 else [])
        if not all(os.path.exists(path) for path in paths):  # in memory, if it fits
            held_out = load_real_images(dataset, data_dir, None, "test", image_size,
                                        data_cache="auto")
        models = []
        for path in paths:
            if os.path.exists(path):
                models.append(keras.saving.load_model(path, safe_mode=True))
                continue
            logger.info("Training the judge's %s on %d held-out images of %s (once; "
                        "cached as %s).", "shape classifier" if path == shape_path else
                        "classifier", len(held_out), held_out.info["source"], path)
            models.append(train_classifier_on_data(path, held_out, classifier_epochs, seed,
                                                   shape_only=path == shape_path))
        classifier = models[0]
        shape_classifier = models[1] if len(models) > 1 else None
        about_classifier = (f"all {len(held_out)} held-out images ({held_out.info['source']}"
                            f", sha256 {held_out.info['sha256'][:12]}; the fewest of a "
                            f"class: {fewest}, of {scarcest!r}); its accuracy is measured "
                            "on the floor")
    found = (tuple(classifier.inputs[0].shape[1:]), int(classifier.outputs[0].shape[-1]))
    if found != (tuple(train.image_shape), train.num_classes):
        raise ValueError(
            f"The classifier {classifier_path} takes images of shape {found[0]} into "
            f"{found[1]} classes; the data has shape {tuple(train.image_shape)} and "
            f"{train.num_classes} classes. Pass another classifier_path (--classifier), or "
            "none for the cached one.")
    limit = real_per_class_limit(train.image_shape, train.num_classes)
    ref_idx, held_idx = split_indices(train.labels, limit=limit)
    ref_images, ref_labels = train.take(ref_idx), train.labels[ref_idx]
    held_images, held_labels = train.take(held_idx), train.labels[held_idx]
    info = train.info
    training = (f"training images of classes {describe_classes(train.class_names, classes)}"
                f" ({info['source']}, sha256 {info['sha256'][:12]})")
    capped = len(ref_idx) + len(held_idx) < len(train)
    at_most = f" (at most {limit} of a class)" if capped else ""
    real_images = {
        "classifier": about_classifier,
        "reference": f"{len(ref_images)} of the {info['images']} {training}: of "
                     f"each class, the first half of a permutation seeded by "
                     f"({SPLIT_SEED}, class){at_most}; FD, KID, precision / recall, density "
                     "/ coverage and memorisation compare samples with these",
        "floor": f"the other {len(held_images)} of the {info['images']} {training}{at_most}, "
                 "seen by neither the classifier nor the reference (the same population "
                 "as the generator's training data): the 'real' figures, up to "
                 "n_per_class per class; CAS is tested on all of them",
    }
    return Judge(classifier, ref_images, ref_labels, held_images, held_labels, real_images,
                 train.class_names, shape_classifier)


def default_classifier_path(dataset="mnist", held_out=None):
    """Where the judge is cached, in `cwgan.utils.cache.cache_dir()`.

    For MNIST-like 28x28 digits (`held_out` None): `<cache>/classifier_<dataset>_v<N>.keras`
    (N: `JUDGE_VERSION`). For other data, `held_out` (an `ImageData`: the held-out images
    it learns from) names it by its shape and content hash, so another folder, or the
    same at another size, never reuses it:
    `<cache>/classifier_<dataset>_<H>x<W>x<C>_<sha256[:16]>_v<N>.keras`.
    """
    if held_out is None:
        return os.path.join(cache_dir(), f"classifier_{dataset}_v{JUDGE_VERSION}.keras")
    shape = "x".join(str(d) for d in held_out.image_shape)
    return os.path.join(cache_dir(), f"classifier_{held_out.dataset}_{shape}_"
                                     f"{held_out.info['sha256'][:16]}_v{JUDGE_VERSION}.keras")


def shape_classifier_path(classifier_path):
    """Where the shape judge of colour images is cached: beside the classifier, its name
    ending in `_shape.keras` (`classifier_..._v3.keras` -> `classifier_..._v3_shape.keras`)."""
    root, ext = os.path.splitext(os.fspath(classifier_path))
    return f"{root}_shape{ext or '.keras'}"


def generate(generator, classes, latent_dim, n_per_class, seed=0):
    """`n_per_class` images in [-1, 1] per class from seeded noise, and their labels."""
    labels = np.repeat(np.asarray(classes, np.int32), n_per_class)
    noise = np.random.default_rng(seed).standard_normal((len(labels), latent_dim))
    batch_size = _batch_size(tuple(generator.outputs[0].shape[1:]))
    images = generator.predict([noise.astype(np.float32), labels], batch_size=batch_size,
                               verbose=0)
    return np.asarray(images, np.float32), labels


def classification_accuracy_score(images, labels, test_images, test_labels, epochs=5,
                                  seed=0, num_classes=NUM_CLASSES):
    """CAS (Ravuri & Vinyals 2019; "GAN-train", Shmelkov et al. 2018): the accuracy on
    real `test_images` of a classifier (`build_classifier` for the images' shape and
    `num_classes`) trained only on `images`.

    Samples that are realistic and diverse enough to teach a classifier score near what
    the same number of real images scores; in [0, 1]. Seeded, so two calls with the same
    data give the same score.
    """
    batch_size = 128
    model = _new_classifier(seed, epochs * -(-len(images) // batch_size),
                            tuple(images.shape[1:]), num_classes)
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
    shape = tuple(generator.outputs[0].shape[1:])
    if shape != judge.image_shape:
        raise ValueError(
            f"The generator makes images of shape {shape}, the judge's real images are "
            f"{judge.image_shape}. Expected the data the generator was trained on, at its "
            "size (image_size, --image_size).")
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
        result["generator"]["cas"] = classification_accuracy_score(
            images, labels, *test, seed=seed, num_classes=judge.num_classes)
        result["real"]["cas"] = classification_accuracy_score(
            judge.train_images[real], judge.train_labels[real], *test, seed=seed,
            num_classes=judge.num_classes)
        result["cas_ratio"] = result["generator"]["cas"] / max(result["real"]["cas"], 1e-12)
    return result


def _run_config(directory):
    """The run's `train_config.json`: in `directory`, or beside a `best/` directory (where
    `--eval_every` keeps the best generator, cwgan.training.run.BEST_DIR); {} if there is none."""
    directory = os.path.abspath(directory)
    candidates = [directory]
    if os.path.basename(directory) == "best":
        candidates.append(os.path.dirname(directory))
    for candidate in candidates:
        path = os.path.join(candidate, TRAIN_CONFIG_FILE)
        if os.path.isfile(path):
            try:
                return read_json(path)
            except (OSError, ValueError):
                return {}
    return {}


def checkpoint_data(checkpoint_dir, info, data_dir=None, image_size=None):
    """`(dataset, data_dir, image_size)` of the data the generator in `checkpoint_dir`
    (its `generator.json` read as `info`) is judged against.

    `dataset` comes from `info` (else `train_config.json`, else "mnist"); `image_size`,
    unless given, from the run's `train_config.json` (in the directory, or beside a
    `best/` directory), else the generator's image size. `data_dir`, unless given: for
    a folder, cifar10 or a resized run, the run's own (`train_config.json`), so it is
    judged on its own data without naming it again; for MNIST-like 28x28 digits None
    (Keras' loader, else the bundled copy), as always: their judge is one yardstick for
    every run, whatever data a run trained on.

    Raises:
        ValueError: a generator trained on a folder, and no folder given or recorded.
        FileNotFoundError: the recorded `data_dir` is not there.
    """
    config = _run_config(checkpoint_dir)
    dataset = info.get("dataset") or config.get("dataset") or "mnist"
    if image_size is None:
        image_size = config.get("image_size") if config else int(info["image_shape"][0])
    recorded = config.get("data_dir")
    if data_dir is None and not _mnist_judge(dataset, recorded, image_size):
        data_dir = recorded
        if data_dir is not None and not os.path.isdir(data_dir):
            raise FileNotFoundError(
                f"The run in {checkpoint_dir} was trained on data_dir={data_dir!r} "
                f"({TRAIN_CONFIG_FILE}), which is not a directory here. Pass data_dir "
                "(--data_dir) the data it was trained on.")
    if dataset == "folder" and data_dir is None:
        raise ValueError(
            f"{checkpoint_dir} holds a generator trained on a folder of images, and no "
            f"{TRAIN_CONFIG_FILE} says which. Pass data_dir (--data_dir) that folder.")
    return dataset, data_dir, image_size


def evaluate_checkpoint(checkpoint_dir=None, n_per_class=500, data_dir=None,
                        classifier_path=None, seed=0, cas=False, image_size=None,
                        classifier_epochs=None):
    """Evaluates the generator in a checkpoint directory; returns the metrics as a dict.

    Args:
        checkpoint_dir: as for `cwgan.sample` (defaults to the nearest `checkpoints/`).
        n_per_class: samples per class, at least 20. Defaults to 500.
        data_dir: where the data is, as for `cwgan.load_data`. Defaults to the run's own
            for a folder, cifar10 or a resized run (`train_config.json`), else Keras'
            loader (see `checkpoint_data`).
        classifier_path: the judge's `.keras` file; trained (MNIST: two or three minutes
            on two CPU cores) and saved there if missing. Defaults to
            `default_classifier_path`: in `~/.cache/cwgan/`, or in `$CWGAN_CACHE_DIR`.
        seed: the noise seed. Defaults to 0.
        cas: also the classification accuracy score (see `evaluate_generator`).
            Defaults to False.
        image_size: the size the generator makes. Defaults to the run's
            (`train_config.json`), else the generator's own.
        classifier_epochs: see `make_judge`.

    Raises:
        ValueError: data unlike the generator's (classes, image shape), or too few
            images of a class (see `make_judge`).
    """
    n_per_class = check_int("n_per_class", n_per_class, minimum=MIN_PER_CLASS)
    seed = check_seed("seed", seed)
    directory = find_checkpoint_dir(checkpoint_dir)
    generator, info = load_generator(directory)
    dataset, data_dir, image_size = checkpoint_data(directory, info, data_dir, image_size)
    judge = make_judge(info["classes"], dataset, data_dir, classifier_path, seed,
                       image_size, classifier_epochs)
    if tuple(judge.class_names) != tuple(info["class_names"]):
        raise ValueError(
            f"The generator in {directory} was trained on classes {list(info['class_names'])}"
            f"; the data (data_dir={data_dir!r}) has {list(judge.class_names)}. Expected "
            "the data it was trained on.")
    result = evaluate_generator(generator, info["classes"], info["latent_dim"], judge,
                                n_per_class, seed, cas)
    result.update({"checkpoint_dir": os.path.abspath(directory), "epoch": info.get("epoch"),
                   "generator_iterations": info.get("generator_iterations")})
    return result
