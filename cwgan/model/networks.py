"""The generator and critic networks, shaped by the data (28x28 grey MNIST by default).

Two families: "dcgan" (convolutional) and "mlp" (fully connected; several times fewer
operations per image, so several times more iterations in the same time on a CPU).
The critic takes the label either by concatenation (one-hot planes or vector joined to
the image) or by projection (Miyato & Koyama 2018: score = w.h + <embed(y), h>).

Both are functional `keras.Model`s. The generator is built from stock layers only, so a
saved `generator.keras` loads with plain Keras, without importing cwgan; the critic, saved
only inside cwgan's checkpoints, also uses the two layers of `cwgan.model.critic_layers` (the
functions of stock layers, at a fraction of their cost).

Calling convention, for both: `net([x, labels])` with integer labels of shape `(batch,)`.
Built under the `mixed_float16` policy they compute in float16 but keep float32 outputs.

Image sizes: the convolutional networks double (or halve) a small map k times, so they
take square sizes s * 2^k with a start s of 4 to 8 and k >= 2 (`conv_plan`): 16, 20, 24,
28, 32, 40, 48, 56, 64, 80, 96, 112, 128, ...; 1 (grey) or 3 (colour) channels.
"""

import keras
import numpy as np
from keras import layers

from cwgan.data.loading import IMAGE_SHAPE, NUM_CLASSES
from cwgan.model.critic_layers import LabelPlanesConv2D, RowwiseDot
from cwgan.utils.checks import check_int
from cwgan.model.minibatch_std import MinibatchStdDev
from cwgan.model.reference_norm import ReferenceBatchNorm


UPSAMPLINGS = ("transpose", "resize")
CRITIC_NORMS = ("none", "layer", "batch", "reference")
GENERATOR_CONDITIONINGS = ("input", "layers", "norm")
GENERATOR_OUTPUTS = ("upsample", "conv")
CHANNELS = (1, 3)


def conv_plan(image_shape):
    """`(start, doublings)` of the convolutional networks for square `image_shape`
    `(size, size, channels)`: the generator grows a start x start map by `doublings`
    stride-2 steps (28: 7 -> 14 -> 28; 64: 8 -> 16 -> 32 -> 64), the critic shrinks the
    image by as many.

    Raises:
        ValueError: a size that is not square, not start * 2^k (start 4 to 8, k >= 2), or
            a channel count other than 1 or 3; the message lists the sizes allowed.
    """
    image_shape = tuple(image_shape)
    if len(image_shape) != 3 or image_shape[0] != image_shape[1] or \
            image_shape[2] not in CHANNELS:
        raise ValueError(f"Invalid image shape {image_shape}: expected (size, size, 1) or "
                         "(size, size, 3), square images of 1 or 3 channels.")
    size, doublings = image_shape[0], 0
    while (size > 8 or doublings < 2) and size % 2 == 0:
        size, doublings = size // 2, doublings + 1
    if doublings < 2 or not 4 <= size <= 8:
        allowed = sorted({s << k for s in range(4, 9) for k in range(2, 6)})[:14]
        raise ValueError(
            f"Invalid image size {image_shape[0]}: the convolutional networks take square "
            f"sizes start * 2^k with start 4 to 8 and k >= 2, e.g. {allowed} (and larger). "
            "Pass image_size (--image_size) to resize the data to one of them.")
    return size, doublings


def build_generator(latent_dim=100, num_classes=NUM_CLASSES, width=64, embedding_dim=50,
                    upsampling="transpose", image_shape=IMAGE_SHAPE, conditioning="input",
                    output="upsample"):
    """Maps (noise, label) to an image in [-1, 1].

    The label is embedded and joined to the noise; a dense layer and stride-2
    upsamplings grow a small map to the image (28x28: 7x7, then 14x14, then 28x28; see
    `conv_plan`), halving the channels at each step. Batch normalisation is fine here:
    the generator's loss is a mean over the batch anyway.

    Args:
        latent_dim: length of the noise vector z ~ N(0, I).
        num_classes: number of label values (labels are 0..num_classes-1).
        width: channels of the last hidden layer; each layer before it has twice as many
            as the next (28x28: 2 * width at 7x7).
        embedding_dim: length of the learned label embedding.
        upsampling: "transpose" (4x4 stride-2 transposed convolutions, DCGAN's) or
            "resize" (nearest-neighbour 2x resize, then a 3x3 convolution: every output pixel
            sees the same number of weights, so none of the checkerboard that uneven
            overlap of transposed kernels leaves; Odena et al. 2016).
        image_shape: `(size, size, channels)` of the images; see `conv_plan`.
        conditioning: "input" (the label only joins the noise), "layers" (one-hot label
            planes also join the maps before every upsampling, so that each layer is told
            the class directly instead of through what the layers below kept of it) or
            "norm" (class-conditional batch norm of the maps: each class has its own scale
            and offset per channel after every upsampling; BigGAN's and Miyato &
            Koyama's generator beside a projection critic).
        output: "upsample" (the last upsampling makes the image, DCGAN's) or "conv" (the
            last upsampling makes `width // 2` maps at full size, and a 3x3 convolution
            of them the image: one set of weights makes every pixel's channels, where a
            stride-2 transposed convolution gives each of the four pixel parities its
            own; the recipe's choice, docs/recipe.md).

    Returns:
        A `keras.Model` taking `[noise (batch, latent_dim) float32, labels (batch,) int]`
        and returning images of shape `(batch,) + image_shape` in [-1, 1] (tanh).
    """
    start, doublings = conv_plan(image_shape)
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"Invalid value for argument `upsampling`. Received: "
                         f"upsampling={upsampling!r}. Expected one of {UPSAMPLINGS}.")
    if conditioning not in GENERATOR_CONDITIONINGS:
        raise ValueError(f"Invalid value for argument `conditioning`. Received: "
                         f"conditioning={conditioning!r}. Expected one of "
                         f"{GENERATOR_CONDITIONINGS}.")
    if output not in GENERATOR_OUTPUTS:
        raise ValueError(f"Invalid value for argument `output`. Received: output={output!r}. "
                         f"Expected one of {GENERATOR_OUTPUTS}.")

    def up(x, filters, **kwargs):
        if upsampling == "transpose":
            return layers.Conv2DTranspose(filters, 4, strides=2, padding="same", **kwargs)(x)
        x = layers.UpSampling2D(2, interpolation="nearest")(x)
        return layers.Conv2D(filters, 3, padding="same", **kwargs)(x)

    noise = keras.Input(shape=(latent_dim,), name="noise")
    label = keras.Input(shape=(), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, embedding_dim, name="label_embedding")(label)
    x = layers.Concatenate(name="noise_and_label")([noise, embedded])
    filters = width * 2 ** (doublings - 1)
    x = layers.Dense(start * start * filters, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((start, start, filters))(x)

    def with_label(x):
        if conditioning != "layers":
            return x
        return layers.Concatenate()([x, label_planes(label, num_classes, x.shape[1:3])])

    def batch_norm(x):
        if conditioning != "norm":
            return layers.BatchNormalization()(x)
        return class_batch_norm(layers.BatchNormalization(center=False, scale=False)(x),
                                label, num_classes)

    for _ in range(doublings - 1):
        filters //= 2
        x = up(with_label(x), filters, use_bias=False)
        x = layers.ReLU()(batch_norm(x))
    # float32 output even under mixed precision: the critic compares it with real images.
    if output == "upsample":
        image = up(with_label(x), image_shape[-1], activation="tanh", dtype="float32",
                   name="image")
    else:
        x = up(with_label(x), max(filters // 2, 1), use_bias=False)
        x = layers.ReLU()(batch_norm(x))
        image = layers.Conv2D(image_shape[-1], 3, padding="same", activation="tanh",
                              dtype="float32", name="image")(x)
    return keras.Model([noise, label], image, name="generator")


def class_batch_norm(x, label, num_classes):
    """Normalised maps `x` scaled and shifted per channel by the class's own learned
    scale (from 1) and offset (from 0), from stock layers so that the generator loads
    in plain Keras."""
    channels = x.shape[-1]
    scale = layers.Embedding(num_classes, channels, embeddings_initializer="ones")(label)
    offset = layers.Embedding(num_classes, channels, embeddings_initializer="zeros")(label)
    scale = layers.Reshape((1, 1, channels))(scale)
    offset = layers.Reshape((1, 1, channels))(offset)
    return layers.Add()([layers.Multiply()([x, scale]), offset])


def label_planes(label, num_classes, size):
    """Integer labels `(batch,)` as one-hot planes `(batch,) + size + (num_classes,)`, to
    join a layer's maps: the class at full scale, whatever the weights around it. (The
    critic's `LabelPlanesConv2D` computes a convolution over them without building them.)"""
    onehot = layers.CategoryEncoding(num_classes, output_mode="one_hot")(label)
    onehot = layers.Reshape((1, 1, num_classes))(onehot)
    return layers.UpSampling2D(size=tuple(size))(onehot)


ARCHITECTURES = ("dcgan", "mlp")
CONDITIONINGS = ("concat", "projection")


def _score(features, label, num_classes, conditioning):
    """The critic's linear head, with the label projected onto the features if asked."""
    score = layers.Dense(1, dtype="float32", name="score")(features)
    if conditioning == "projection":
        embedded = layers.Embedding(num_classes, features.shape[-1],
                                    name="label_projection")(label)
        projected = RowwiseDot(dtype="float32")([embedded, features])
        score = layers.Add(dtype="float32", name="projected_score")([score, projected])
    return score


def _check_conditioning(conditioning):
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"Invalid value for argument `conditioning`. Received: "
                         f"conditioning={conditioning!r}. Expected one of {CONDITIONINGS}.")


def normalise(x, norm):
    """`x` normalised as the critic's `norm` says, without parameters (a clip box would
    hold a learned scale near c, not near 1)."""
    if norm == "layer":  # over each sample's maps: the critic stays one of single samples
        return layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False)(x)
    if norm == "batch":  # over the batch: real and fake go through in separate passes
        return layers.BatchNormalization(center=False, scale=False)(x)
    if norm == "reference":  # over the real half of a [real; fake] batch
        return ReferenceBatchNorm()(x)
    return x


def build_critic(num_classes=NUM_CLASSES, width=64, conditioning="concat",
                 image_shape=IMAGE_SHAPE, depth=1, norm="none", minibatch_std=0):
    """Maps (image, label) to an unbounded real score f(image | label).

    The label enters as one-hot planes stacked onto the image (the first convolution is
    `LabelPlanesConv2D`: that function, without building the planes). A learned embedding
    would sit inside the clip box with everything else and reach the first convolution at
    a hundredth of the pixels' scale; one-hot planes carry it at full scale.

    By default no normalisation: batch norm makes each sample's score depend on the rest
    of its batch, while the Wasserstein estimate E[f(real)] - E[f(fake)] is of one
    function f of a single sample (the WGAN paper's own code has it all the same, and
    `ConditionalWGAN` then scores real and fake batches in separate passes). The output
    is linear: a Wasserstein critic scores, it does not classify.

    Args:
        num_classes: number of label values.
        width: channels of the first convolution; each next one has twice as many
            (one stride-2 convolution per doubling of the generator, see `conv_plan`).
        conditioning: "concat" (one-hot planes) or "projection" (planes and a projection
            of a label embedding onto the last features).
        image_shape: `(size, size, channels)` of the images.
        depth: convolutions per resolution: 1 is DCGAN's one 4x4 stride-2 convolution;
            each more adds a 3x3 stride-1 one of as many channels after it (a wider view
            and more layers at about twice the critic's cost for depth 2).
        norm: "none", "layer" (layer normalisation of each convolution's maps after the
            first, over the sample's positions and channels), "batch" (batch
            normalisation there) or "reference" (`ReferenceBatchNorm`: by the statistics
            of the real half of a `[real; fake]` batch); all without a learned scale or
            offset.
        minibatch_std: if not 0, the group size of a `MinibatchStdDev` channel joined to
            the maps before the last convolution (ProGAN's diversity feature; the batch
            must be a multiple of it). Defaults to 0 (none).

    Returns:
        A `keras.Model` taking `[images (batch,) + image_shape, labels (batch,) int]` and
        returning scores of shape `(batch, 1)`.
    """
    _check_conditioning(conditioning)
    depth = check_int("depth", depth, minimum=1)
    if norm not in CRITIC_NORMS:
        raise ValueError(f"Invalid value for argument `norm`. Received: norm={norm!r}. "
                         f"Expected one of {CRITIC_NORMS}.")
    if minibatch_std:
        minibatch_std = check_int("minibatch_std", minibatch_std, minimum=2)
    _, doublings = conv_plan(image_shape)
    image = keras.Input(shape=image_shape, name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    for i in range(doublings):
        filters = width * 2 ** i
        if i == 0:  # over the image and the label's one-hot planes, without building them
            x = LabelPlanesConv2D(filters, 4, 2, num_classes, name="image_and_label_conv")(
                [image, label])
        else:
            if minibatch_std and i == doublings - 1:
                x = MinibatchStdDev(minibatch_std)(x)
            x = layers.Conv2D(filters, 4, strides=2, padding="same")(x)
            x = normalise(x, norm)
        x = layers.LeakyReLU(0.2)(x)
        for _ in range(depth - 1):
            x = normalise(layers.Conv2D(filters, 3, padding="same")(x), norm)
            x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    return keras.Model([image, label], _score(x, label, num_classes, conditioning),
                       name="critic")


def build_mlp_generator(latent_dim=100, num_classes=NUM_CLASSES, width=256, embedding_dim=50,
                        image_shape=IMAGE_SHAPE):
    """Fully connected (noise, label) -> image in [-1, 1]: widths w, 2w, 4w, then the
    image's pixels (any `image_shape`).

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
    x = layers.Dense(int(np.prod(image_shape)), activation="tanh", dtype="float32")(x)
    image = layers.Reshape(tuple(image_shape), dtype="float32", name="image")(x)
    return keras.Model([noise, label], image, name="generator")


def build_mlp_critic(num_classes=NUM_CLASSES, width=256, conditioning="concat",
                     image_shape=IMAGE_SHAPE):
    """Fully connected (image, label) -> score: widths 2w, 2w, w; no batch norm.

    The label joins the flattened image as a one-hot vector (full scale, see
    `build_critic`), and with "projection" also through the projection head.
    """
    _check_conditioning(conditioning)
    image = keras.Input(shape=tuple(image_shape), name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    onehot = layers.CategoryEncoding(num_classes, output_mode="one_hot")(label)
    x = layers.Concatenate(name="image_and_label")([layers.Flatten()(image), onehot])
    for units in (2 * width, 2 * width, width):
        x = layers.LeakyReLU(0.2)(layers.Dense(units)(x))
    return keras.Model([image, label], _score(x, label, num_classes, conditioning),
                       name="critic")


def build_networks(architecture="dcgan", latent_dim=100, width=None, conditioning="concat",
                   num_classes=NUM_CLASSES, upsampling="transpose", image_shape=IMAGE_SHAPE,
                   generator_conditioning="input", critic_depth=1, critic_norm="none",
                   minibatch_std=0, generator_output="upsample"):
    """(generator, critic) of an architecture; `width` defaults to 64 (dcgan) / 256 (mlp).

    `upsampling`, `generator_conditioning` and `generator_output` are the dcgan
    generator's `upsampling`, `conditioning` and `output`; `critic_depth`, `critic_norm`
    and `minibatch_std` the dcgan critic's `depth`, `norm` and `minibatch_std` (see
    `build_generator`, `build_critic`); the mlp has none of them.
    """
    if architecture == "dcgan":
        width = width or 64
        return (build_generator(latent_dim, num_classes, width, upsampling=upsampling,
                                image_shape=image_shape, conditioning=generator_conditioning,
                                output=generator_output),
                build_critic(num_classes, width, conditioning, image_shape, critic_depth,
                             critic_norm, minibatch_std))
    if architecture == "mlp":
        dcgan_only = {"generator_conditioning": (generator_conditioning, "input"),
                      "critic_depth": (critic_depth, 1), "critic_norm": (critic_norm, "none"),
                      "minibatch_std": (minibatch_std, 0),
                      "generator_output": (generator_output, "upsample")}
        given = [f"{name}={value!r}" for name, (value, off) in dcgan_only.items()
                 if value != off]
        if given:
            raise ValueError(
                f"The mlp networks have no layers of maps: {', '.join(given)} are dcgan "
                "options. Expected generator_conditioning='input', critic_depth=1, "
                "critic_norm='none', minibatch_std=0 and generator_output='upsample' with "
                "architecture='mlp'.")
        width = width or 256
        return (build_mlp_generator(latent_dim, num_classes, width, image_shape=image_shape),
                build_mlp_critic(num_classes, width, conditioning, image_shape))
    raise ValueError(f"Invalid value for argument `architecture`. Received: architecture="
                     f"{architecture!r}. Expected one of {ARCHITECTURES}.")
