"""ConditionalWGAN: the train step, clipping, counts, conditioning, saving."""

import numpy as np
import pytest
import keras

import cwgan
from conftest import tiny_model


def weights(model_part):
    return [np.array(v.numpy()) for v in model_part.trainable_variables]


def test_train_step_clips_every_critic_weight_and_updates_both_networks(data):
    images, labels = data
    model = tiny_model(n_critic=2, clip_value=0.01)
    # Give the critic weights far outside the box: the step must bring them back in.
    for v in model.critic.trainable_variables:
        v.assign(np.full(v.shape, 0.5, np.float32))
    gen_before, critic_before = weights(model.generator), weights(model.critic)
    model.fit(cwgan.make_dataset(images, labels, batch_size=16, n_critic=2, seed=0),
              steps_per_epoch=1, epochs=1, verbose=0)
    for v in model.critic.trainable_variables:
        assert np.abs(v.numpy()).max() <= 0.01 + 1e-7, v.path
    assert any(not np.allclose(a, b) for a, b in zip(gen_before, weights(model.generator)))
    assert any(not np.allclose(a, b) for a, b in zip(critic_before, weights(model.critic)))


def test_xla_is_the_default():
    model = cwgan.ConditionalWGAN(generator=cwgan.build_generator(100, width=4),
                                  critic=cwgan.build_critic(width=4))
    model.compile()
    assert model.jit_compile is True


def test_critic_starts_inside_the_clip_box():
    model = tiny_model(clip_value=0.003)
    assert max(np.abs(v.numpy()).max() for v in model.critic.trainable_variables) <= 0.003


@pytest.mark.parametrize("n_critic, jit_compile", [(1, False), (3, False), (3, True)])
def test_n_critic_critic_updates_per_generator_update(data, n_critic, jit_compile):
    images, labels = data
    model = tiny_model(n_critic=n_critic, jit_compile=jit_compile)
    model.fit(cwgan.make_dataset(images, labels, batch_size=8, n_critic=n_critic),
              steps_per_epoch=3, epochs=1, verbose=0)
    assert int(model.g_optimizer.iterations.numpy()) == 3
    assert int(model.c_optimizer.iterations.numpy()) == 3 * n_critic
    assert model.generator_iterations is model.g_optimizer.iterations
    assert max(np.abs(v.numpy()).max() for v in model.critic.trainable_variables) <= 0.01 + 1e-7


def test_metrics_are_in_history_and_estimate_is_minus_critic_loss_under_the_clip(data):
    images, labels = data
    model = tiny_model()
    history = model.fit(cwgan.make_dataset(images, labels, batch_size=8, n_critic=2),
                        steps_per_epoch=2, epochs=2, verbose=0)
    assert set(history.history) == {"critic_loss", "generator_loss", "wasserstein_estimate"}
    np.testing.assert_allclose(history.history["wasserstein_estimate"],
                               -np.array(history.history["critic_loss"]), rtol=1e-6)


def test_generator_output_depends_on_the_label():
    model = tiny_model()
    noise = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    out3 = model.generator([noise, np.full((4,), 3)], training=False).numpy()
    out5 = model.generator([noise, np.full((4,), 5)], training=False).numpy()
    assert out3.shape == (4, 28, 28, 1)
    assert np.abs(out3 - out5).max() > 1e-4
    assert out3.min() >= -1 and out3.max() <= 1


def test_resize_generator_draws_28x28_from_resize_and_convolution_only():
    from cwgan.model.networks import build_generator

    generator = build_generator(latent_dim=8, width=4, upsampling="resize")
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose)
                   for layer in generator.layers)
    noise = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    out3 = generator([noise, np.full((4,), 3)], training=False).numpy()
    out5 = generator([noise, np.full((4,), 5)], training=False).numpy()
    assert out3.shape == (4, 28, 28, 1) and out3.min() >= -1 and out3.max() <= 1
    assert np.abs(out3 - out5).max() > 1e-4


def test_conv_output_makes_the_image_with_a_full_size_convolution():
    from cwgan.model.networks import build_generator

    noise = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    for shape in ((28, 28, 1), (32, 32, 3)):
        generator = build_generator(latent_dim=8, width=4, image_shape=shape, output="conv")
        image_layer = generator.get_layer("image")
        assert isinstance(image_layer, keras.layers.Conv2D)
        assert not isinstance(image_layer, keras.layers.Conv2DTranspose)
        assert image_layer.kernel.shape == (3, 3, 2, shape[-1])  # of width // 2 maps
        assert image_layer.input.shape[1:3] == shape[:2]  # at full size
        out3 = generator([noise, np.full((4,), 3)], training=False).numpy()
        out5 = generator([noise, np.full((4,), 5)], training=False).numpy()
        assert out3.shape == (4,) + shape and out3.min() >= -1 and out3.max() <= 1
        assert np.abs(out3 - out5).max() > 1e-4


def test_layers_conditioning_tells_every_generator_layer_the_label():
    from cwgan.model.networks import build_generator

    noise = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)

    def label_effect(conditioning):
        generator = build_generator(latent_dim=8, width=4, conditioning=conditioning)
        # With the noise's label embedding at 0, the label can only enter through planes.
        embedding = generator.get_layer("label_embedding")
        embedding.embeddings.assign(np.zeros(embedding.embeddings.shape, np.float32))
        out3 = generator([noise, np.full((4,), 3)], training=False).numpy()
        out5 = generator([noise, np.full((4,), 5)], training=False).numpy()
        assert out3.shape == (4, 28, 28, 1) and out3.min() >= -1 and out3.max() <= 1
        return np.abs(out3 - out5).max()

    assert label_effect("input") < 1e-6  # no path for the label: the same images
    assert label_effect("layers") > 1e-4


def test_norm_conditioning_gives_each_class_its_own_scale_and_offset():
    from cwgan.model.networks import build_generator

    generator = build_generator(latent_dim=8, width=4, conditioning="norm",
                                image_shape=(32, 32, 3), output="conv")
    embedding = generator.get_layer("label_embedding")
    embedding.embeddings.assign(np.zeros(embedding.embeddings.shape, np.float32))
    noise = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)

    def label_effect():
        out3 = generator([noise, np.full((4,), 3)], training=False).numpy()
        out5 = generator([noise, np.full((4,), 5)], training=False).numpy()
        assert out3.shape == (4, 32, 32, 3) and out3.min() >= -1 and out3.max() <= 1
        return np.abs(out3 - out5).max()

    # It starts as plain batch norm (scale 1, offset 0 for every class) ...
    assert label_effect() < 1e-6
    per_class = [layer for layer in generator.layers
                 if isinstance(layer, keras.layers.Embedding) and layer is not embedding]
    assert len(per_class) == 4  # a scale and an offset after each of two upsamplings
    rng = np.random.default_rng(1)
    for layer in per_class:
        layer.embeddings.assign(rng.standard_normal(layer.embeddings.shape).astype(np.float32))
    # ... and the label acts through the classes' own scales and offsets alone.
    assert label_effect() > 1e-4


def test_deeper_critic_is_clipped_and_trains(data):
    images, labels = data
    generator = cwgan.build_generator(16, width=4)
    critic = cwgan.build_critic(width=4, conditioning="projection", depth=2)
    # Twice the convolutions of the depth-1 critic, the same output.
    assert sum(len(w.shape) == 4 for w in critic.trainable_weights) == 4  # conv kernels
    model = cwgan.ConditionalWGAN(generator, critic, latent_dim=16, n_critic=2,
                                  clip_value=0.01, seed=0)
    model.compile(jit_compile=False)
    for v in model.critic.trainable_variables:
        v.assign(np.full(v.shape, 0.5, np.float32))
    model.fit(cwgan.make_dataset(images, labels, batch_size=16, n_critic=2, seed=0),
              steps_per_epoch=1, epochs=1, verbose=0)
    for v in model.critic.trainable_variables:
        assert np.abs(v.numpy()).max() <= 0.01 + 1e-7, v.path


def test_critic_score_depends_on_the_label():
    model = tiny_model()
    for v in model.critic.trainable_variables:  # weights that let the label through
        v.assign(np.random.default_rng(1).uniform(-0.01, 0.01, v.shape).astype(np.float32))
    image = np.zeros((1, 28, 28, 1), np.float32)
    s3 = model.critic([image, np.array([3])]).numpy()
    s5 = model.critic([image, np.array([5])]).numpy()
    assert s3.shape == (1, 1) and s3 != s5


def test_wasserstein_losses_are_plain_means():
    real = np.array([[1.0], [3.0]], np.float32)
    fake = np.array([[-1.0], [0.0]], np.float32)
    assert float(cwgan.wasserstein_critic_loss(real, fake)) == pytest.approx(-2.5)
    assert float(cwgan.wasserstein_generator_loss(fake)) == pytest.approx(0.5)


def test_clip_constraint_clips_and_serializes():
    clip = cwgan.ClipConstraint(0.05)
    out = np.asarray(clip(np.array([-1.0, 0.01, 2.0], np.float32)))
    np.testing.assert_allclose(out, [-0.05, 0.01, 0.05])
    again = keras.constraints.deserialize(keras.constraints.serialize(clip))
    assert isinstance(again, cwgan.ClipConstraint) and again.clip_value == 0.05


def test_save_and_reload_resumes_the_step_count_and_state(data, tmp_path):
    images, labels = data
    model = tiny_model()
    ds = cwgan.make_dataset(images, labels, batch_size=8, n_critic=2, seed=0)
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert int(again.generator_iterations.numpy()) == 3
    assert int(again.c_optimizer.iterations.numpy()) == 6
    for a, b in zip(model.c_optimizer.variables + model.g_optimizer.variables,
                    again.c_optimizer.variables + again.g_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(model.seed_generator.state.numpy(),
                                  again.seed_generator.state.numpy())
    assert all(v.constraint is not None for v in again.critic.trainable_variables)
    again.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)
    assert int(again.generator_iterations.numpy()) == 5
    assert max(np.abs(v.numpy()).max() for v in again.critic.trainable_variables) <= 0.01 + 1e-7


def test_a_step_whose_batch_is_not_n_critic_batches_is_refused(data):
    images, labels = data
    model = tiny_model(n_critic=3)
    with pytest.raises(ValueError, match="not a multiple of n_critic=3"):
        model.fit(cwgan.make_dataset(images, labels, batch_size=5, n_critic=2),
                  steps_per_epoch=1, verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_critic": 0}, "n_critic=0"),
    ({"clip_value": 0.0}, "clip_value=0.0"),
    ({"clip_value": float("nan")}, "clip_value=nan"),
    ({"latent_dim": 7}, "latent_dim=7"),  # the default generator takes 100
    ({"classes": [3, 3]}, "repeats"),
    ({"classes": [12]}, "12"),
    ({"seed": "x"}, "seed='x'"),
    ({"n_critic_warmup": -1}, "n_critic_warmup=-1"),
    ({"n_critic_warmup": 5}, "n_critic_warmup=5.*more than n_critic=5"),
])
def test_bad_model_arguments_are_named(kwargs, match):
    generator = cwgan.build_generator(100, width=4, embedding_dim=2)
    with pytest.raises(ValueError, match=match):
        cwgan.ConditionalWGAN(generator=generator, critic=cwgan.build_critic(width=4),
                              **kwargs)


def test_the_step_is_traced_once_across_steps_and_epochs(data):
    images, labels = data
    model = tiny_model()
    traces = []
    step = model.train_step

    def counting_step(batch):
        traces.append(1)  # Python runs only while tracing
        return step(batch)

    model.train_step = counting_step
    model.fit(cwgan.make_dataset(images, labels, batch_size=8, n_critic=2).repeat(),
              steps_per_epoch=3, epochs=2, verbose=0)
    assert int(model.generator_iterations.numpy()) == 6
    assert len(traces) == 1


def test_mixed_precision_runs_with_loss_scaling_and_keeps_the_clip(data):
    images, labels = data
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny_model()
    finally:
        keras.config.set_dtype_policy("float32")
    assert isinstance(model.c_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    history = model.fit(cwgan.make_dataset(images, labels, batch_size=8, n_critic=2),
                        steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["critic_loss"]).all()
    assert model.critic.outputs[0].dtype == "float32"
    assert model.generator.outputs[0].dtype == "float32"
    for v in model.critic.trainable_variables:
        assert v.dtype == "float32" and np.abs(v.numpy()).max() <= 0.01 + 1e-7
    assert int(model.c_optimizer.iterations.numpy()) > 0


def test_gradient_penalty_critic_is_not_clipped_and_trains(data, tmp_path):
    images, labels = data
    keras.utils.set_random_seed(0)
    model = cwgan.ConditionalWGAN(
        generator=cwgan.build_generator(8, width=8, embedding_dim=4),
        critic=cwgan.build_critic(width=8), latent_dim=8, n_critic=2, constraint="gp")
    model.compile(jit_compile=False)
    assert isinstance(model.c_optimizer, keras.optimizers.Adam)
    assert all(v.constraint is None for v in model.critic.trainable_variables)
    for v in model.critic.trainable_variables:
        v.assign(np.full(v.shape, 0.05, np.float32))
    history = model.fit(cwgan.make_dataset(images, labels, batch_size=8, n_critic=2),
                        steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["critic_loss"]).all()
    assert max(np.abs(v.numpy()).max() for v in model.critic.trainable_variables) > 0.04
    # The estimate is E[f(real)] - E[f(fake)] alone; the penalty is its own metric, and
    # the critic's loss is -estimate + lambda * penalty.
    logs = {k: np.array(v) for k, v in history.history.items()}
    assert set(logs) == {"critic_loss", "generator_loss", "wasserstein_estimate",
                         "gradient_penalty"}
    assert (logs["gradient_penalty"] > 0).all()
    np.testing.assert_allclose(logs["critic_loss"], -logs["wasserstein_estimate"]
                               + 10.0 * logs["gradient_penalty"], rtol=1e-5, atol=1e-6)
    path = str(tmp_path / "gp.keras")
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert again.constraint == "gp" and again.gp_weight == 10.0


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    # A critic whose gradient w.r.t. the image is 1/28 everywhere: norm = 1 exactly.
    image = keras.Input((28, 28, 1))
    label = keras.Input((), dtype="int32")
    score = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(
        1.0 / 28.0))(keras.layers.Flatten()(image))
    critic = keras.Model([image, label], score)
    model = cwgan.ConditionalWGAN(generator=cwgan.build_generator(8, width=4), critic=critic,
                                  latent_dim=8, constraint="gp")
    as_tensor = keras.ops.convert_to_tensor  # as in the train step
    real = as_tensor(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype("float32"))
    fake = as_tensor(np.zeros((4, 28, 28, 1), np.float32))
    labels = as_tensor(np.zeros(4, np.int32))
    assert float(model._gradient_penalty(real, fake, labels)) == pytest.approx(0.0, abs=1e-6)
    critic.layers[-1].kernel.assign(np.full((784, 1), 2.0 / 28.0, np.float32))
    assert float(model._gradient_penalty(real, fake, labels)) == pytest.approx(1.0, rel=1e-4)


def iterations(model):
    return (int(model.train_steps.numpy()), int(model.c_optimizer.iterations.numpy()),
            int(model.generator_iterations.numpy()))


@pytest.mark.parametrize("jit_compile", [False, True])
def test_warmup_runs_that_many_critic_updates_before_the_first_generator_updates(
        data, jit_compile):
    images, labels = data
    model = tiny_model(n_critic=2, n_critic_warmup=6, jit_compile=jit_compile)
    stream = cwgan.make_stream(images, labels, batch_size=8, n_critic=2)
    generator_before = weights(model.generator)
    history = model.fit(stream, steps_per_epoch=2, epochs=1, verbose=0)
    # Two steps, four critic updates: fewer than six, so the generator has not moved.
    assert iterations(model) == (2, 4, 0)
    for a, b in zip(generator_before, weights(model.generator)):
        np.testing.assert_array_equal(a, b)
    assert history.history["generator_loss"] == [0.0]  # no update, nothing to report
    model.fit(stream, steps_per_epoch=7, epochs=1, verbose=0)
    assert iterations(model) == (9, 18, 3)  # one generator update per 6 critic updates
    assert max(np.abs(v.numpy()).max() for v in model.critic.trainable_variables) <= 0.01 + 1e-7


def test_after_25_iterations_warmup_returns_before_every_500th(data):
    images, labels = data
    model = tiny_model(n_critic=2, n_critic_warmup=6)
    stream = cwgan.make_stream(images, labels, batch_size=8, n_critic=2)
    model.g_optimizer.iterations.assign(498)
    seen = []
    for _ in range(6):
        model.fit(stream, steps_per_epoch=1, epochs=1, verbose=0)
        seen.append(int(model.generator_iterations.numpy()))
    # 498 and 499 take n_critic=2 critic updates each; 500 takes 6 (three steps).
    assert seen == [499, 500, 500, 500, 501, 502]


def test_a_run_saved_in_the_middle_of_a_warmup_resumes_exactly(data, tmp_path):
    images, labels = data

    def stream(start_step):
        return cwgan.make_stream(images, labels, batch_size=8, n_critic=2, seed=0,
                                 start_step=start_step)

    whole = tiny_model(n_critic=2, n_critic_warmup=6)
    whole.fit(stream(0), steps_per_epoch=7, epochs=1, verbose=0)
    halted = tiny_model(n_critic=2, n_critic_warmup=6)
    halted.fit(stream(0), steps_per_epoch=4, epochs=1, verbose=0)  # one update, 2 critic in
    path = str(tmp_path / "m.keras")
    halted.save(path)
    resumed = keras.saving.load_model(path, safe_mode=True)
    assert iterations(resumed) == (4, 8, 1)
    assert resumed.n_critic_warmup == 6
    resumed.jit_compile = False  # as `whole`: XLA alone changes the weights' last digits
    resumed.fit(stream(int(resumed.train_steps.numpy())), steps_per_epoch=3, epochs=1,
                verbose=0)
    assert iterations(resumed) == iterations(whole) == (7, 14, 2)
    for a, b in zip(weights(whole.generator) + weights(whole.critic),
                    weights(resumed.generator) + weights(resumed.critic)):
        np.testing.assert_allclose(a, b, rtol=1e-6)  # losing the streak: 2e-4 apart


def test_ema_generator_is_the_running_average_and_live_weights_return(data, tmp_path):
    images, labels = data
    keras.utils.set_random_seed(0)
    model = cwgan.ConditionalWGAN(
        generator=cwgan.build_generator(8, width=8, embedding_dim=4),
        critic=cwgan.build_critic(width=8), latent_dim=8, n_critic=2, seed=0, ema=0.5)
    m = 0.5
    model.compile(g_optimizer=model.default_optimizer(1e-3), jit_compile=False)
    seen = []  # the live weights after each generator update

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append([np.array(v.numpy(), copy=True)
                         for v in model.generator.trainable_variables])

    ds = cwgan.make_dataset(images, labels, batch_size=8, n_critic=2, seed=0)
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0, callbacks=[Record()])
    expected = seen[0]  # the first step copies the weights, then m * avg + (1 - m) * w
    for weights in seen[1:]:
        expected = [m * a + (1 - m) * w for a, w in zip(expected, weights)]
    with model.averaged_generator() as generator:
        for v, e in zip(generator.trainable_variables, expected):
            np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)
        assert not np.allclose(generator.trainable_variables[0].numpy(), seen[-1][0])
    for v, w in zip(model.generator.trainable_variables, seen[-1]):  # live ones are back
        np.testing.assert_array_equal(v.numpy(), w)
    # The saved generator is the average; a reload keeps averaging from where it was.
    cwgan.training.checkpoints.save_checkpoint(model, str(tmp_path), epoch=1)
    saved = keras.saving.load_model(str(tmp_path / "generator.keras"), safe_mode=True)
    for v, e in zip(saved.trainable_variables, expected):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)
    again = cwgan.training.checkpoints.load_latest_state(str(tmp_path))
    with again.averaged_generator() as generator:
        for v, e in zip(generator.trainable_variables, expected):
            np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)


def test_without_ema_or_before_a_step_the_generator_is_left_alone():
    model = tiny_model()
    before = [v.numpy() for v in model.generator.trainable_variables]
    with model.averaged_generator() as generator:
        assert generator is model.generator
        for v, b in zip(generator.trainable_variables, before):
            np.testing.assert_array_equal(v.numpy(), b)
