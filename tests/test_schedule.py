"""The schedule is counted in training steps, so it does not depend on the data's size:
the same options train alike on 200 images and on 600, as on 10,000 and 60,000."""

import json
import shutil

import numpy as np
import pytest

import cwgan
from conftest import TEST_DATA
from cwgan.data.loading import read_idx, write_idx
from cwgan.training.callbacks import FitToTime


def _run(tmp_path, name, data_dir):
    ckpt = tmp_path / name
    model, history = cwgan.train_model(cwgan.TrainConfig(
        steps=12, steps_per_epoch=4, grid_every=8, checkpoint_every=0, batch_size=4,
        n_critic=2, latent_dim=16, width=8, learning_rate=1e-3, data_dir=data_dir,
        checkpoint_dir=str(ckpt), jit_compile=False, verbose=0))
    records = [json.loads(line) for line in (ckpt / "metrics.jsonl").read_text().splitlines()]
    return {"epochs": [(r["epoch"], r["generator_iterations"]) for r in records],
            "rates": [r["learning_rate"] for r in records],
            "grids": sorted(p.name for p in (ckpt / "samples").iterdir()),
            "info": json.loads((ckpt / "generator.json").read_text()),
            "train_steps": int(model.train_steps.numpy())}


@pytest.fixture(scope="module")
def resampled(tmp_path_factory):
    """600 images drawn with replacement from the 200 shipped ones (3x the data)."""
    directory = tmp_path_factory.mktemp("resampled")
    images = read_idx(f"{TEST_DATA}/train-images-first200-idx3-ubyte.gz")
    labels = read_idx(f"{TEST_DATA}/train-labels-first200-idx1-ubyte.gz")
    idx = np.random.default_rng(0).integers(0, len(images), 600)
    write_idx(directory / "train-images-idx3-ubyte.gz", images[idx])
    write_idx(directory / "train-labels-idx1-ubyte.gz", labels[idx])
    return directory


def test_the_same_options_give_the_same_schedule_on_3x_the_data(tmp_path, resampled):
    small = _run(tmp_path, "small", TEST_DATA)
    large = _run(tmp_path, "large", str(resampled))
    # 200 images hold 25 steps of 8 images, 600 hold 75: the epochs, the checkpoints, the
    # grids and the learning rate must not care.
    assert small["epochs"] == large["epochs"] == [(1, 4), (2, 8), (3, 12)]
    assert small["grids"] == large["grids"] == ["grid_0002.png", "grid_0003.png"]
    # The rate of each epoch's last step: 1e-3 * (1 - step / 12), step 3, 7, 11.
    np.testing.assert_allclose(small["rates"], [1e-3 * (1 - s / 12) for s in (3, 7, 11)])
    np.testing.assert_allclose(large["rates"], small["rates"])
    assert small["train_steps"] == large["train_steps"] == 12
    assert (small["info"]["epoch"], small["info"]["generator_iterations"]) == (3, 12)
    assert (large["info"]["epoch"], large["info"]["generator_iterations"]) == (3, 12)


def test_the_run_records_which_data_it_trained_on(tmp_path, resampled):
    _run(tmp_path, "large", str(resampled))
    data = json.loads((tmp_path / "large" / "train_config.json").read_text())["data"]
    _, _, info = cwgan.load_mnist(data_dir=str(resampled), return_info=True)
    assert data == info
    assert data["images"] == 600 and data["source"].startswith(str(resampled))
    # The same images from another place are the same data; other images or a subset not.
    copy = tmp_path / "copy"
    shutil.copytree(TEST_DATA, copy)
    _, _, original = cwgan.load_mnist(data_dir=TEST_DATA, return_info=True)
    _, _, copied = cwgan.load_mnist(data_dir=str(copy), return_info=True)
    _, _, subset = cwgan.load_mnist(digits=[3, 7], data_dir=TEST_DATA, return_info=True)
    assert copied["sha256"] == original["sha256"] and copied["source"] != original["source"]
    assert len({original["sha256"], info["sha256"], subset["sha256"]}) == 3


class _Clocked:
    """A stand-in model for FitToTime: a step counter and Keras' stop flag."""

    def __init__(self):
        import tensorflow as tf
        self.train_steps = tf.Variable(0, dtype="int64")
        self.stop_training = False


def _fit_run(steps, per_epoch_seconds, max_minutes=1.0, steps_per_epoch=10):
    """Drives FitToTime over epochs of the given durations; returns what it decided."""
    now = [0.0]
    model, decay, fits = _Clocked(), cwgan.LinearDecay(1e-3, steps), []
    callback = cwgan.FitToTime(max_minutes, steps, steps_per_epoch, decay,
                               on_fit=lambda s, p, _: fits.append((s, p)),
                               clock=lambda: now[0])
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, seconds in enumerate(per_epoch_seconds):
        now[0] += seconds
        model.train_steps.assign_add(steps_per_epoch)
        callback.on_epoch_end(epoch)
        if model.stop_training:
            break
    return int(model.train_steps.numpy()), decay.steps, fits


def test_fit_to_time_ends_the_schedule_where_the_time_ends():
    # A 20 s first epoch (compiling), then 0.5 s a step: after epoch 3, 30 s have passed
    # and 0.97 * 60 - 30 = 28.2 s are left, 56 steps: the end is step 80 (whole epochs).
    stopped, decay_steps, fits = _fit_run(1000, [20] + [5] * 20)
    assert fits == [(80, 0.5)] and decay_steps == 80 and stopped == 80
    # Twice as fast: 25 s at step 30, 33.2 s left, 132 steps more: the end is 160.
    assert _fit_run(1000, [20] + [2.5] * 40)[2] == [(160, 0.25)]  # 30 + 33.2 / 0.25


def test_slower_epochs_later_move_the_end_earlier():
    # Decided at epoch 3 (step 80, as above); epoch 5 takes 15 s (say, an evaluation):
    # 0.75 s a step over the timed epochs, 8.2 s left at step 50: the end moves to 60.
    stopped, decay_steps, fits = _fit_run(1000, [20, 5, 5, 5, 15] + [5] * 20)
    assert fits == [(80, 0.5), (60, 0.75)] and decay_steps == 60 and stopped == 60


def test_after_a_slow_spell_the_end_moves_later_and_the_run_uses_its_minutes():
    # 10 minutes, 100 steps an epoch at 0.1 s a step, but epochs 4 to 9 take 3x as long
    # (a busy machine). The end moves earlier during the spell, later again after it
    # (the 10-epoch window forgets it), and the run stops within its last epoch.
    epochs = [20] + [10] * 3 + [30] * 6 + [10] * 60
    stopped, decay_steps, fits = _fit_run(100_000, epochs, max_minutes=10.0,
                                          steps_per_epoch=100)
    ends = [end for end, _ in fits]
    assert min(ends) < ends[-1] < ends[0], ends  # the spell cost steps, but not more
    assert stopped == decay_steps == ends[-1]
    elapsed = sum(epochs[:stopped // 100])
    assert 600 * FitToTime.MARGIN - 10 <= elapsed <= 600, elapsed
    # Moving the end never makes the rate jump: it goes on along a line to 0 there.
    decay = cwgan.LinearDecay(1.0, 1000)
    before = decay.rate(400)
    assert decay.end_at(400, 2000) == (400, before)
    assert decay.rate(400) == pytest.approx(before) and decay.rate(1200) == pytest.approx(
        before / 2) and decay.rate(2000) == 0.0
    decay.end_at(1200, 1300)
    assert decay.rate(1200) == pytest.approx(before / 2) and decay.rate(1300) == 0.0


def test_a_decay_over_the_last_quarter_holds_the_rate_then_falls_and_follows_a_moved_end():
    decay = cwgan.LinearDecay(1.0, 1000, fraction=0.25)
    assert [decay.rate(s) for s in (0, 500, 750)] == [1.0, 1.0, 1.0]
    assert decay.rate(875) == pytest.approx(0.5) and decay.rate(1000) == 0.0
    # Fitted to 800 steps while the rate is still constant: the fall spans 600..800.
    assert decay.end_at(300, 800) == (300, 1.0)
    assert decay.rate(599) == 1.0 and decay.rate(700) == pytest.approx(0.5)
    # Moved earlier during the fall: a line from the step's rate to 0 at the new end.
    assert decay.end_at(700, 740) == (700, pytest.approx(0.5))
    assert decay.rate(720) == pytest.approx(0.25) and decay.rate(740) == 0.0
    # Moved later during the fall: the rate never rises, and reaches 0 at the new end.
    later = cwgan.LinearDecay(1.0, 1000, fraction=0.25)
    later.end_at(900, 2000)
    rates = [later.rate(s) for s in range(900, 2001, 50)]
    assert rates[0] == pytest.approx(0.4) and rates[-1] == 0.0
    assert all(a >= b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5, float("nan"), True])
def test_a_decay_fraction_outside_0_to_1_is_refused_by_name(fraction):
    with pytest.raises(ValueError, match=r"lr_decay_fraction.*\(0, 1\]"):
        cwgan.TrainConfig(lr_decay_fraction=fraction)
    with pytest.raises(ValueError, match=r"fraction.*\(0, 1\]"):
        cwgan.LinearDecay(1.0, 100, fraction=fraction)


def test_fit_to_time_leaves_a_schedule_that_fits_alone():
    stopped, decay_steps, fits = _fit_run(60, [20] + [1] * 10)
    assert fits == [] and decay_steps == 60 and stopped == 60


def test_a_fitted_end_is_recorded_and_kept_by_a_resumed_run(tmp_path):
    base = dict(steps_per_epoch=2, batch_size=4, n_critic=2, latent_dim=16, width=8,
                data_dir=TEST_DATA, checkpoint_dir=str(tmp_path), jit_compile=False,
                verbose=0, max_minutes=10.0)
    cwgan.train_model(cwgan.TrainConfig(steps=2, **base))
    path = tmp_path / "train_config.json"
    saved = json.loads(path.read_text())
    # As an earlier process that found only 4 of 8 steps fit in its 10 minutes left it.
    path.write_text(json.dumps(saved | {"steps": 8, "fitted_steps": 4}))
    model, history = cwgan.train_model(cwgan.TrainConfig(steps=8, **base))
    assert int(model.train_steps.numpy()) == 4
    assert history.history["learning_rate"][-1] == pytest.approx(
        cwgan.TrainConfig(steps=8, **base).learning_rate * (1 - 3 / 4))
    saved = json.loads(path.read_text())
    assert saved["steps"] == 8 and saved["fitted_steps"] == 4
    # Opting out keeps --steps: the run goes on to 8.
    model, _ = cwgan.train_model(cwgan.TrainConfig(steps=8, fit_to_time=False, **base))
    assert int(model.train_steps.numpy()) == 8
