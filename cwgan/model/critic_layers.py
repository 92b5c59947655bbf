"""Two layers of the critic, each the function of stock layers at a fraction of their cost.

The critic runs n_critic + 1 times per generator iteration, on twice the batch, so its
cost is most of a training step's. Two of its stock-layer idioms did work the function
does not need:

- `LabelPlanesConv2D`: a convolution over the image joined with one-hot label planes
  (`Concatenate` of the image and `UpSampling2D` of the one-hot label, then `Conv2D`)
  convolved all-but-one constant planes of every sample: on MNIST, 11 input channels
  where the image has 1.
- `RowwiseDot`: the projection's `<embed(y), h>` (`Dot(axes=1)`), which TensorFlow runs as
  a batch of (1 x n) @ (n x 1) matrix products, forward and backward.

Both keep the stock layers' weights (shapes, initialisers, names), so the WGAN clip holds
the same function class and a recipe measured with the stock layers is the recipe here.
"""

import keras
from keras import layers, ops

from cwgan.utils.checks import check_int


@keras.saving.register_keras_serializable(package="cwgan")
class LabelPlanesConv2D(layers.Layer):
    """`Conv2D` over `[image, one-hot planes of label]`, "same" padding, without the planes.

    A convolution is linear in its input channels, so
    conv([x, planes(y)], K) = conv(x, K_image) + conv(planes(y), K_label), and the second
    term depends on the label alone: one map per class, the convolution of an all-ones
    plane (zero-padded at the borders, like the planes) with that class's slice of K. The
    layer convolves the image's own channels and adds the label's map, gathered by a
    one-hot matrix product: the same outputs as the stock layers (to float rounding), at
    the cost of a convolution over `channels` inputs instead of `channels + num_classes`.

    The label enters as one-hot planes at full scale rather than through a learned
    embedding, which the WGAN clip would hold at a hundredth of the pixels' scale
    (see `cwgan.build_critic`).

    Args:
        filters: output channels.
        kernel_size: side of the square kernel.
        strides: stride along both axes.
        num_classes: label values (0..num_classes-1), one plane each.

    Call arguments:
        inputs: `[images (batch, height, width, channels), labels (batch,) int]`.

    Weights: `kernel` `(kernel_size, kernel_size, channels + num_classes, filters)` (the
    image's channels first, then one per class, as in the concatenation) and `bias`
    `(filters,)`, initialised as `Conv2D`'s (Glorot uniform, zeros).
    """

    def __init__(self, filters, kernel_size, strides, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        self.strides = check_int("strides", strides, minimum=1)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)

    def build(self, input_shape):
        image_shape, _ = input_shape
        self.channels = image_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", initializer="glorot_uniform",
            shape=(self.kernel_size, self.kernel_size, self.channels + self.num_classes,
                   self.filters))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs):
        images, labels = inputs
        k, c, n, f = self.kernel_size, self.channels, self.num_classes, self.filters
        out = ops.conv(images, self.kernel[:, :, :c], strides=self.strides, padding="same")
        # The planes are zero-padded like the image, so a class's map is not constant near
        # the borders: convolve an all-ones plane of the image's size, every class's
        # filters at once (k, k, 1, n * f), rather than assume it.
        ones = ops.ones((1,) + tuple(images.shape[1:3]) + (1,), dtype=self.compute_dtype)
        maps = ops.conv(ones, ops.reshape(self.kernel[:, :, c:], (k, k, 1, n * f)),
                        strides=self.strides, padding="same")
        height, width = out.shape[1], out.shape[2]
        maps = ops.reshape(ops.transpose(ops.reshape(maps, (height * width, n, f)), (1, 0, 2)),
                           (n, height * width * f))
        onehot = ops.one_hot(ops.cast(labels, "int32"), n, dtype=self.compute_dtype)
        label_maps = ops.reshape(ops.matmul(onehot, maps), (-1, height, width, f))
        return out + label_maps + self.bias

    def compute_output_shape(self, input_shape):
        image_shape, _ = input_shape
        size = [None if s is None else -(-s // self.strides) for s in image_shape[1:3]]
        return (image_shape[0], *size, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="cwgan")
class RowwiseDot(layers.Layer):
    """`[a, b]` (both `(batch, n)`) -> `(batch, 1)`: each row's inner product, as
    `Dot(axes=1)` computes it, by an elementwise product and a sum."""

    def call(self, inputs):
        a, b = inputs
        return ops.sum(a * b, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)
