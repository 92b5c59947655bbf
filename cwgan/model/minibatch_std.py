"""The minibatch standard deviation feature of ProGAN (Karras et al. 2018), for the critic."""

import keras
from keras import layers, ops

from cwgan.utils.checks import check_int


@keras.saving.register_keras_serializable(package="cwgan")
class MinibatchStdDev(layers.Layer):
    """Appends one channel: how much the samples of each group of `group_size` differ.

    For each group of `group_size` consecutive samples, the standard deviation of every
    feature over the group, averaged over all features and positions, fills a constant
    map joined to each member's features. A critic that sees it can tell a batch of
    near-copies (a generator drawing one look per class) from a varied real batch, which
    a critic of single samples cannot.

    Groups are consecutive samples, so that a batch of `n` real images followed by `n`
    fake ones (one critic pass over both, as `ConditionalWGAN` runs it) puts real and
    fake in separate groups when `n` is a multiple of `group_size`: a sample's score
    then depends on its own group only, each group of one kind.

    Args:
        group_size: samples per group (ProGAN's 4). The batch must be a multiple of it.
    """

    def __init__(self, group_size=4, **kwargs):
        super().__init__(**kwargs)
        self.group_size = check_int("group_size", group_size, minimum=2)

    def call(self, x):
        shape = ops.shape(x)
        groups = ops.reshape(x, (-1, self.group_size) + tuple(x.shape[1:]))
        std = ops.sqrt(ops.var(ops.cast(groups, "float32"), axis=1) + 1e-8)
        spread = ops.mean(std, axis=tuple(range(1, len(x.shape))))  # (batch / group,)
        spread = ops.cast(ops.repeat(spread, self.group_size, axis=0), x.dtype)
        planes = ops.broadcast_to(ops.reshape(spread, (-1,) + (1,) * (len(x.shape) - 1)),
                                  tuple(shape[:-1]) + (1,))
        return ops.concatenate([x, planes], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + 1,)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}
