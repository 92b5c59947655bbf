"""The critic's own layers compute what the stock layers they replace compute."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import cwgan
from cwgan.model.networks import label_planes


@pytest.fixture(autouse=True)
def full_float32():
    """The comparisons below pit two computations of one function against each other at
    float32 rounding; an Ampere-or-later GPU would run both in TensorFloat-32 (10-bit
    mantissas) by default, so it is off for these tests."""
    before = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield
    tf.config.experimental.enable_tensor_float_32_execution(before)


def stock_label_planes_conv(image_shape, num_classes, filters, kernel_size, strides):
    """Conv2D over the image joined with one-hot label planes, from stock layers."""
    image = keras.Input(image_shape)
    label = keras.Input((), dtype="int32")
    joined = keras.layers.Concatenate()([image, label_planes(label, num_classes,
                                                             image_shape[:2])])
    out = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same")(joined)
    return keras.Model([image, label], out)


def ours_label_planes_conv(image_shape, num_classes, filters, kernel_size, strides):
    image = keras.Input(image_shape)
    label = keras.Input((), dtype="int32")
    out = cwgan.LabelPlanesConv2D(filters, kernel_size, strides, num_classes)([image, label])
    return keras.Model([image, label], out)


@pytest.mark.parametrize("image_shape,num_classes,kernel_size,strides", [
    ((28, 28, 1), 10, 4, 2),   # the MNIST critic's first layer
    ((32, 32, 3), 4, 4, 2),    # colour, fewer classes
    ((20, 20, 1), 10, 3, 1),   # odd kernel, no stride
    ((9, 9, 2), 3, 4, 2),      # odd size: uneven padding at the borders
])
def test_label_planes_conv_matches_conv_over_concatenated_planes(
        image_shape, num_classes, kernel_size, strides):
    rng = np.random.default_rng(0)
    stock = stock_label_planes_conv(image_shape, num_classes, 5, kernel_size, strides)
    ours = ours_label_planes_conv(image_shape, num_classes, 5, kernel_size, strides)
    assert [w.shape for w in ours.weights] == [w.shape for w in stock.weights]
    weights = [rng.normal(size=w.shape).astype("float32") for w in stock.weights]
    stock.set_weights(weights)
    ours.set_weights(weights)
    images = tf.constant(rng.uniform(-1, 1, (12,) + image_shape).astype("float32"))
    labels = tf.constant(np.arange(12) % num_classes, "int32")

    def outputs_and_grads(model):
        with tf.GradientTape() as tape:
            tape.watch(images)
            out = model([images, labels])
            # A weighted sum, so that every output position matters to the gradients.
            loss = tf.reduce_sum(out * np.linspace(-1, 1, out.shape[-1], dtype="float32"))
        grads = tape.gradient(loss, [images] + model.trainable_weights)
        return [out.numpy()] + [g.numpy() for g in grads]

    for a, b in zip(outputs_and_grads(stock), outputs_and_grads(ours)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


def test_rowwise_dot_matches_dot():
    rng = np.random.default_rng(0)
    a, b = (rng.normal(size=(6, 7)).astype("float32") for _ in range(2))
    np.testing.assert_allclose(cwgan.RowwiseDot()([a, b]).numpy(),
                               keras.layers.Dot(axes=1)([a, b]).numpy(), rtol=1e-5)


def test_critic_with_its_own_layers_saves_and_loads(tmp_path):
    critic = cwgan.build_critic(width=4, conditioning="projection")
    path = str(tmp_path / "critic.keras")
    critic.save(path)
    loaded = keras.saving.load_model(path)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype("float32")
    labels = np.array([0, 3, 7, 9])
    np.testing.assert_allclose(loaded([images, labels]).numpy(),
                               critic([images, labels]).numpy(), rtol=1e-6)


@pytest.mark.parametrize("argument,kwargs", [
    ("filters", dict(filters=0)),
    ("kernel_size", dict(kernel_size=2.5)),
    ("strides", dict(strides=-1)),
    ("num_classes", dict(num_classes="10")),
])
def test_label_planes_conv_names_a_bad_argument(argument, kwargs):
    args = {**dict(filters=4, kernel_size=4, strides=2, num_classes=10), **kwargs}
    with pytest.raises(ValueError, match=argument):
        cwgan.LabelPlanesConv2D(**args)


@pytest.mark.parametrize("image_shape,conditioning,norm", [
    ((28, 28, 1), "projection", "none"), ((28, 28, 1), "concat", "none"),
    ((32, 32, 3), "projection", "none"), ((28, 28, 1), "projection", "batch")])
def test_critic_scores_as_its_stock_layer_version(image_shape, conditioning, norm):
    # The bench times build_critic against this stock-layer critic: the same function.
    from cwgan.benchmarks.speed import build_stock_critic
    ours = cwgan.build_critic(4, width=8, conditioning=conditioning, image_shape=image_shape,
                              norm=norm)
    stock = build_stock_critic(4, width=8, conditioning=conditioning, image_shape=image_shape,
                               norm=norm)
    rng = np.random.default_rng(1)
    assert [w.shape for w in ours.weights] == [w.shape for w in stock.weights]
    weights = [rng.normal(scale=0.05, size=w.shape).astype("float32") for w in ours.weights]
    ours.set_weights(weights)
    stock.set_weights(weights)
    images = rng.uniform(-1, 1, (8,) + image_shape).astype("float32")
    labels = np.arange(8) % 4
    np.testing.assert_allclose(ours([images, labels], training=True).numpy(),
                               stock([images, labels], training=True).numpy(),
                               rtol=1e-4, atol=1e-5)
