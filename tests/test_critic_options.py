"""The recipe options of the seventh round: the critic's normalisation, its minibatch
standard deviation channel, two time-scale rates, Adam, and one generator call for a step's
fake batches. Each must keep the algorithm: clipped critic weights, finite losses."""

import keras
import numpy as np
import pytest

import cwgan
from conftest import TEST_DATA
from cwgan.model.minibatch_std import MinibatchStdDev
from cwgan.model.reference_norm import ReferenceBatchNorm

N_CRITIC, BATCH = 2, 8


class CountingNetwork(keras.Model):
    """Delegates to `inner`, counting calls and the batch sizes it was called with."""

    def __init__(self, inner):
        super().__init__(name=f"counting_{inner.name}")
        self.inner = inner
        self.batches = []

    @property
    def inputs(self):
        return self.inner.inputs

    @property
    def outputs(self):
        return self.inner.outputs

    def call(self, inputs, training=False):
        self.batches.append(int(inputs[0].shape[0]))
        return self.inner(inputs, training=training)


def _fit(model, data, steps=2):
    images, labels = data
    dataset = cwgan.make_dataset(images[:64], labels[:64], batch_size=BATCH,
                                 n_critic=model.n_critic, seed=0)
    return model.fit(dataset.take(steps), epochs=1, verbose=0)


def _model(data=None, batch_fakes=False, norm="none", minibatch_std=0, eager=False,
           mixed_batches=False):
    keras.utils.set_random_seed(0)
    generator = CountingNetwork(cwgan.build_generator(8, width=8, embedding_dim=4))
    critic = cwgan.build_critic(width=8, norm=norm, minibatch_std=minibatch_std)
    model = cwgan.ConditionalWGAN(generator, critic, latent_dim=8, n_critic=N_CRITIC,
                                  clip_value=0.01, seed=0, batch_fakes=batch_fakes,
                                  mixed_batches=mixed_batches)
    model.compile(c_optimizer=keras.optimizers.RMSprop(0.5), run_eagerly=eager,
                  jit_compile=False)
    return model


def _clipped(model):
    return max(float(np.max(np.abs(v.numpy()))) for v in model.critic.trainable_variables)


def test_minibatch_std_sees_each_group_of_consecutive_samples():
    rng = np.random.default_rng(0)
    same = np.repeat(rng.normal(size=(1, 5, 5, 3)), 4, axis=0)
    varied = rng.normal(size=(4, 5, 5, 3))
    out = MinibatchStdDev(4)(np.concatenate([same, varied]).astype("float32")).numpy()
    assert out.shape == (8, 5, 5, 4)
    np.testing.assert_allclose(out[..., :3], np.concatenate([same, varied]), rtol=1e-6)
    # Near-copies: (almost) no spread; varied samples: their spread, each map constant.
    assert np.all(out[:4, ..., 3] < 1e-3)
    expected = np.mean(np.std(varied, axis=0))
    np.testing.assert_allclose(out[4:, ..., 3], expected, rtol=1e-4)
    layer = MinibatchStdDev.from_config(MinibatchStdDev(2).get_config())
    assert layer.group_size == 2
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(1)


@pytest.mark.parametrize("options", [dict(norm="batch"), dict(norm="layer"),
                                     dict(norm="reference"),
                                     dict(minibatch_std=4), dict(batch_fakes=True)])
def test_each_option_trains_with_the_critic_clipped(data, options):
    model = _model(**options)
    history = _fit(model, data)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert _clipped(model) <= 0.01 + 1e-7  # a rate of 0.5 would leave the box by far


def test_batch_norm_critic_scores_real_and_fake_in_separate_passes(data):
    # Its scores depend on the batch: one concatenated pass would normalise real and fake
    # together. The layer-norm critic is one of single samples and keeps the one pass.
    assert _model(norm="batch")._separate_passes
    assert not _model(norm="layer")._separate_passes
    critic = cwgan.build_critic(width=8, norm="layer")
    images = np.random.default_rng(0).uniform(-1, 1, (6, 28, 28, 1)).astype("float32")
    labels = np.arange(6) % 10
    alone = critic([images[:3], labels[:3]], training=True).numpy()
    together = critic([images, labels], training=True).numpy()[:3]
    np.testing.assert_allclose(alone, together, rtol=1e-4, atol=1e-5)


def test_mixed_batches_changes_a_batch_norm_critics_step_and_nothing_else(data):
    # One pass over real and fake together normalises them by the statistics of both;
    # a critic of single samples scores the same either way.
    def critic_after_a_step(**options):
        model = _model(**options)
        _fit(model, data, steps=1)
        return [v.numpy() for v in model.critic.trainable_variables]

    for norm, same in (("none", True), ("batch", False)):
        apart = critic_after_a_step(norm=norm)
        mixed = critic_after_a_step(norm=norm, mixed_batches=True)
        assert same == all(np.allclose(a, b, atol=1e-6) for a, b in zip(apart, mixed))
    saved = cwgan.ConditionalWGAN(mixed_batches=True).get_config()
    assert cwgan.ConditionalWGAN.from_config(saved).mixed_batches


def test_reference_norm_measures_the_fake_half_on_the_real_halfs_scale():
    rng = np.random.default_rng(0)
    real = rng.normal(3.0, 2.0, size=(16, 4, 4, 2)).astype("float32")
    layer = ReferenceBatchNorm(momentum=0.0)
    out = layer(np.concatenate([real, real + 1.0]), training=True).numpy()
    # The real half as batch norm alone gives it; the shifted copy stays shifted.
    np.testing.assert_allclose(out[:16].mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[:16].std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    shift = out[16:] - out[:16]
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0, 0, 0], shift.shape), rtol=1e-4)
    assert np.all(shift > 0.4)  # 1 / std 2
    # Out of training: the moving statistics (momentum 0: the last real half's).
    np.testing.assert_allclose(layer(real, training=False).numpy(), out[:16], atol=1e-4)
    assert ReferenceBatchNorm.from_config(layer.get_config()).momentum == 0.0


def test_batch_fakes_calls_the_generator_once_for_a_steps_fake_batches(data):
    # Per step: n_critic calls of one batch each, then the generator update's; with
    # batch_fakes one call of n_critic batches, then the update's.
    paper = _model(eager=True)
    _fit(paper, data, steps=1)
    assert paper.generator.batches == [BATCH] * N_CRITIC + [BATCH]
    batched = _model(batch_fakes=True, eager=True)
    _fit(batched, data, steps=1)
    assert batched.generator.batches == [N_CRITIC * BATCH, BATCH]
    saved = cwgan.ConditionalWGAN(batch_fakes=True).get_config()
    assert cwgan.ConditionalWGAN.from_config(saved).batch_fakes


def test_critic_lr_ratio_sets_the_critics_rate_through_the_decay(tmp_path):
    config = cwgan.TrainConfig(steps=4, steps_per_epoch=2, batch_size=4, n_critic=2,
                               latent_dim=8, width=4, data_dir=TEST_DATA,
                               checkpoint_dir=str(tmp_path), jit_compile=False, verbose=0,
                               critic_lr_ratio=3.0)
    model, _ = cwgan.train_model(config)
    g_rate = float(model.g_optimizer.learning_rate.numpy())
    c_rate = float(model.c_optimizer.learning_rate.numpy())
    assert g_rate == pytest.approx(config.learning_rate * (1 - 3 / 4))
    assert c_rate == pytest.approx(3.0 * g_rate)


def test_the_recipe_critic_has_batch_norm_but_not_under_gp_or_mlp():
    assert cwgan.TrainConfig().critic_norm == "batch"
    assert cwgan.TrainConfig(constraint="gp").critic_norm == "none"
    assert cwgan.TrainConfig(architecture="mlp").critic_norm == "none"
    assert cwgan.TrainConfig(critic_norm="layer", constraint="gp").critic_norm == "layer"
    with pytest.raises(ValueError, match="critic_norm='batch' with constraint='gp'"):
        cwgan.TrainConfig(critic_norm="batch", constraint="gp")


def test_the_recipe_clip_follows_the_critics_norm_unless_given():
    assert cwgan.TrainConfig().clip_value == 0.05
    assert cwgan.TrainConfig(critic_norm="none").clip_value == 0.1
    assert cwgan.TrainConfig(architecture="mlp").clip_value == 0.1
    assert cwgan.TrainConfig(clip_value=0.2).clip_value == 0.2
    with pytest.raises(ValueError, match="clip_value"):
        cwgan.TrainConfig(clip_value=-0.1)


def test_the_recipe_generator_makes_the_image_with_a_convolution_but_not_the_mlp():
    assert cwgan.TrainConfig().generator_output == "conv"
    assert cwgan.TrainConfig(architecture="mlp").generator_output == "upsample"
    assert cwgan.TrainConfig(generator_output="upsample").generator_output == "upsample"
    generator = cwgan.build_model(cwgan.TrainConfig(width=4, jit_compile=False)).generator
    assert not isinstance(generator.get_layer("image"), keras.layers.Conv2DTranspose)
    with pytest.raises(ValueError, match="generator_output='rgb'"):
        cwgan.TrainConfig(generator_output="rgb")


def test_bad_critic_options_are_named():
    with pytest.raises(ValueError, match="minibatch_std=3 with batch_size=32"):
        cwgan.TrainConfig(minibatch_std=3)
    with pytest.raises(ValueError, match="critic_norm='group'"):
        cwgan.TrainConfig(critic_norm="group")
    with pytest.raises(ValueError, match="critic_lr_ratio"):
        cwgan.TrainConfig(critic_lr_ratio=0)
    with pytest.raises(ValueError, match="norm='instance'"):
        cwgan.build_critic(norm="instance")
    with pytest.raises(ValueError, match="mlp"):
        cwgan.build_networks("mlp", critic_norm="layer")


def test_adam_trains_the_clipped_critic_and_a_resume_keeps_its_optimizer(tmp_path):
    options = dict(steps=2, steps_per_epoch=2, batch_size=4, n_critic=2, latent_dim=8,
                   width=4, data_dir=TEST_DATA, checkpoint_dir=str(tmp_path),
                   jit_compile=False, verbose=0, clip_value=0.01, learning_rate=0.5)
    assert cwgan.TrainConfig().optimizer == "rmsprop"
    assert cwgan.TrainConfig(constraint="gp").optimizer == "adam"
    model, _ = cwgan.train_model(cwgan.TrainConfig(optimizer="adam", **options))
    assert isinstance(model.c_optimizer, keras.optimizers.Adam)
    assert float(model.c_optimizer.beta_1) == 0.5
    for weight in model.critic.trainable_weights:
        assert np.max(np.abs(weight.numpy())) <= 0.01 + 1e-7
    with pytest.raises(ValueError, match="optimizer: saved 'adam', asked 'rmsprop'"):
        cwgan.train_model(cwgan.TrainConfig(**options | {"steps": 4}))
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        cwgan.TrainConfig(optimizer="sgd")
