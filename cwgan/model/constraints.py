"""The WGAN weight clip as a Keras constraint."""

import keras

from cwgan.utils.checks import check_positive_float


@keras.saving.register_keras_serializable(package="cwgan")
class ClipConstraint(keras.constraints.Constraint):
    """Clips every entry of a weight to [-clip_value, clip_value].

    The WGAN paper keeps the critic's weights in a compact box so that the critic stays
    K-Lipschitz for some K; the Wasserstein estimate is only meaningful under that bound.
    Keras' optimizers apply a variable's constraint right after each update, inside the
    compiled step, so the clip costs no host round trip.

    Args:
        clip_value: positive float c; weights are clipped to [-c, c]. Defaults to 0.01,
            the paper's value.
    """

    def __init__(self, clip_value=0.01):
        self.clip_value = check_positive_float("clip_value", clip_value)

    def __call__(self, w):
        return keras.ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}
