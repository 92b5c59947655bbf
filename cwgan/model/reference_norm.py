"""Batch normalisation by the statistics of the real half of the critic's batch."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="cwgan")
class ReferenceBatchNorm(layers.Layer):
    """Normalises the whole batch by the mean and variance of its first half.

    In training the critic is called on `[real; fake]`, two halves of equal size, and
    every sample is normalised by the real half's statistics per channel: the real
    batch gets exactly what batch norm gives it alone, while the fakes are measured on
    the real scale, so a shift of their mean or spread shows in their scores. (Batch norm
    over each batch alone centres the fakes on their own mean, which hides such a shift;
    over both together, the fakes move the real batch's statistics.) Out of training
    it uses moving averages of the real halves' statistics, as batch norm does. No
    learned scale or offset: a clip box would hold them near c, not near 1.

    At equal steps it trained far worse than batch norm over each batch alone
    (docs/recipe.md, seventh round): a channel nearly constant on real images scales a
    fake's deviation there by up to 1/sqrt(epsilon), so the clip no longer bounds the
    critic's slope on fakes.

    Args:
        momentum: of the moving averages. Defaults to 0.99 (Keras' batch norm).
        epsilon: added to the variance. Defaults to 1e-3 (Keras' batch norm).
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def build(self, input_shape):
        channels = (input_shape[-1],)
        self.moving_mean = self.add_weight(shape=channels, initializer="zeros",
                                           trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(shape=channels, initializer="ones",
                                               trainable=False, name="moving_variance")

    def call(self, x, training=False):
        if training:
            reference = ops.cast(x[:ops.shape(x)[0] // 2], "float32")
            mean, variance = ops.moments(reference, axes=tuple(range(len(x.shape) - 1)))
            for moving, value in ((self.moving_mean, mean),
                                  (self.moving_variance, variance)):
                moving.assign(moving * self.momentum + value * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = ops.rsqrt(variance + self.epsilon)
        return (x - ops.cast(mean, x.dtype)) * ops.cast(scale, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config() | {"momentum": self.momentum, "epsilon": self.epsilon}
