"""The generator and critic networks, sized for 28x28 images on a CPU.

Two families: "dcgan" (convolutional) and "mlp" (fully connected; several times fewer
operations per image, so several times more iterations in the same time on a CPU).
The critic takes the label either by concatenation (one-hot planes or vector joined to
the image) or by projection (Miyato & Koyama 2018: score = w.h + <embed(y), h>).

Both are functional `keras.Model`s built from stock layers only, so a saved
`generator.keras` loads with plain Keras, without importing cwgan.

Calling convention, for both: `net([x, labels])` with integer labels of shape `(batch,)`.
Built under the `mixed_float16` policy they compute in float16 but keep float32 outputs.
"""

import keras
from keras import layers

from cwgan.data import IMAGE_SHAPE, NUM_CLASSES


UPSAMPLINGS = ("transpose", "resize")


def build_generator(latent_dim=100, num_classes=NUM_CLASSES, width=64, embedding_dim=50,
                    upsampling="transpose"):
    """Maps (noise, label) to an image in [-1, 1].

    The label is embedded and joined to the noise; a dense layer and two stride-2
    upsamplings grow a 7x7 map to 28x28. Batch normalisation is fine here: the
    generator's loss is a mean over the batch anyway.

    Args:
        latent_dim: length of the noise vector z ~ N(0, I).
        num_classes: number of label values (labels are 0..num_classes-1).
        width: channels of the last hidden layer; the 7x7 layer has twice as many.
        embedding_dim: length of the learned label embedding.
        upsampling: "transpose" (4x4 stride-2 transposed convolutions, DCGAN's) or
            "resize" (nearest-neighbour 2x resize, then a 3x3 convolution: every output pixel
            sees the same number of weights, so none of the checkerboard that uneven
            overlap of transposed kernels leaves; Odena et al. 2016).

    Returns:
        A `keras.Model` taking `[noise (batch, latent_dim) float32, labels (batch,) int]`
        and returning images of shape `(batch, 28, 28, 1)` in [-1, 1] (tanh).
    """
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"Invalid value for argument `upsampling`. Received: "
                         f"upsampling={upsampling!r}. Expected one of {UPSAMPLINGS}.")

    def up(x, filters, **kwargs):
        if upsampling == "transpose":
            return layers.Conv2DTranspose(filters, 4, strides=2, padding="same", **kwargs)(x)
        x = layers.UpSampling2D(2, interpolation="nearest")(x)
        return layers.Conv2D(filters, 3, padding="same", **kwargs)(x)

    noise = keras.Input(shape=(latent_dim,), name="noise")
    label = keras.Input(shape=(), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, embedding_dim, name="label_embedding")(label)
    x = layers.Concatenate(name="noise_and_label")([noise, embedded])
    x = layers.Dense(7 * 7 * 2 * width, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((7, 7, 2 * width))(x)
    x = up(x, width, use_bias=False)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    # float32 output even under mixed precision: the critic compares it with real images.
    image = up(x, IMAGE_SHAPE[-1], activation="tanh", dtype="float32", name="image")
    return keras.Model([noise, label], image, name="generator")


ARCHITECTURES = ("dcgan", "mlp")
CONDITIONINGS = ("concat", "projection")


def _score(features, label, num_classes, conditioning):
    """The critic's linear head, with the label projected onto the features if asked."""
    score = layers.Dense(1, dtype="float32", name="score")(features)
    if conditioning == "projection":
        embedded = layers.Embedding(num_classes, features.shape[-1],
                                    name="label_projection")(label)
        projected = layers.Dot(axes=1, dtype="float32")([embedded, features])
        score = layers.Add(dtype="float32", name="projected_score")([score, projected])
    return score


def _check_conditioning(conditioning):
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"Invalid value for argument `conditioning`. Received: "
                         f"conditioning={conditioning!r}. Expected one of {CONDITIONINGS}.")


def build_critic(num_classes=NUM_CLASSES, width=64, conditioning="concat"):
    """Maps (image, label) to an unbounded real score f(image | label).

    The label enters as one-hot planes stacked onto the image. A learned embedding would
    sit inside the clip box with everything else and reach the first convolution at a
    hundredth of the pixels' scale; one-hot planes carry it at full scale.

    No batch normalisation: it makes each sample's score depend on the rest of its batch,
    while the Wasserstein estimate E[f(real)] - E[f(fake)] needs one function f of a single
    sample (and real and fake go through the critic in one concatenated batch). The
    output is linear: a Wasserstein critic scores, it does not classify.

    Args:
        num_classes: number of label values.
        width: channels of the first convolution; the second has twice as many.
        conditioning: "concat" (one-hot planes) or "projection" (planes and a projection
            of a label embedding onto the last features).

    Returns:
        A `keras.Model` taking `[images (batch, 28, 28, 1), labels (batch,) int]` and
        returning scores of shape `(batch, 1)`.
    """
    _check_conditioning(conditioning)
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    planes = layers.CategoryEncoding(num_classes, output_mode="one_hot")(label)
    planes = layers.Reshape((1, 1, num_classes))(planes)
    planes = layers.UpSampling2D(size=IMAGE_SHAPE[:2], name="label_planes")(planes)
    x = layers.Concatenate(name="image_and_label")([image, planes])
    x = layers.Conv2D(width, 4, strides=2, padding="same")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(2 * width, 4, strides=2, padding="same")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    return keras.Model([image, label], _score(x, label, num_classes, conditioning),
                       name="critic")


def build_mlp_generator(latent_dim=100, num_classes=NUM_CLASSES, width=256, embedding_dim=50):
    """Fully connected (noise, label) -> image in [-1, 1]: widths w, 2w, 4w, then 784.

    Same calling convention and output as `build_generator`.
    """
    noise = keras.Input(shape=(latent_dim,), name="noise")
    label = keras.Input(shape=(), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, embedding_dim, name="label_embedding")(label)
    x = layers.Concatenate(name="noise_and_label")([noise, embedded])
    for i, units in enumerate((width, 2 * width, 4 * width)):
        x = layers.Dense(units, use_bias=i == 0)(x)
        if i:
            x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(IMAGE_SHAPE[0] * IMAGE_SHAPE[1], activation="tanh", dtype="float32")(x)
    image = layers.Reshape(IMAGE_SHAPE, dtype="float32", name="image")(x)
    return keras.Model([noise, label], image, name="generator")


def build_mlp_critic(num_classes=NUM_CLASSES, width=256, conditioning="concat"):
    """Fully connected (image, label) -> score: widths 2w, 2w, w; no batch norm.

    The label joins the flattened image as a one-hot vector (full scale, see
    `build_critic`), and with "projection" also through the projection head.
    """
    _check_conditioning(conditioning)
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    onehot = layers.CategoryEncoding(num_classes, output_mode="one_hot")(label)
    x = layers.Concatenate(name="image_and_label")([layers.Flatten()(image), onehot])
    for units in (2 * width, 2 * width, width):
        x = layers.LeakyReLU(0.2)(layers.Dense(units)(x))
    return keras.Model([image, label], _score(x, label, num_classes, conditioning),
                       name="critic")


def build_networks(architecture="dcgan", latent_dim=100, width=None, conditioning="concat",
                   num_classes=NUM_CLASSES, upsampling="transpose"):
    """(generator, critic) of an architecture; `width` defaults to 64 (dcgan) / 256 (mlp).

    `upsampling` is the dcgan generator's (see `build_generator`); the mlp has none.
    """
    if architecture == "dcgan":
        width = width or 64
        return (build_generator(latent_dim, num_classes, width, upsampling=upsampling),
                build_critic(num_classes, width, conditioning))
    if architecture == "mlp":
        width = width or 256
        return (build_mlp_generator(latent_dim, num_classes, width),
                build_mlp_critic(num_classes, width, conditioning))
    raise ValueError(f"Invalid value for argument `architecture`. Received: architecture="
                     f"{architecture!r}. Expected one of {ARCHITECTURES}.")
