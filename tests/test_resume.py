"""Nothing lost: killed runs resume exactly, checkpoints rotate and survive corruption,
a diverged run keeps its last good checkpoint, --fresh moves a run aside."""

import dataclasses
import errno
import json
import os
import signal
import subprocess
import time

import keras
import numpy as np
import pytest

import cwgan
from cwgan.training.checkpoints import atomic_write, list_states, save_checkpoint
from conftest import PYTHON, TEST_DATA, subprocess_env

# 200 images, 8 per step: 25 generator iterations per epoch, 75 in all.
KILL_RUN = ["--digits", "--steps=75", "--steps_per_epoch=25", "--batch_size=4", "--n_critic=2", "--latent_dim=16",
            "--width=8", "--checkpoint_every=5", "--keep_checkpoints=3", "--nojit_compile",
            f"--data_dir={TEST_DATA}"]


def start(args, cwd):
    """Starts `python -m cwgan.train args`; its stderr goes to `<cwd>/stderr.txt`."""
    env = subprocess_env() | {"TF_DETERMINISTIC_OPS": "1"}
    with open(cwd / "stderr.txt", "w") as stderr:
        return subprocess.Popen([PYTHON, "-m", "cwgan.train", *args], cwd=str(cwd), env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)


def finish(proc, cwd, timeout=600):
    """Waits for `proc`; returns its exit status and stderr."""
    proc.wait(timeout=timeout)
    return proc.returncode, (cwd / "stderr.txt").read_text()


def newest(ckpt):
    states = list_states(str(ckpt))
    return states[0][0] if states else 0


def weights(path):
    model = keras.saving.load_model(path, safe_mode=True)
    return model, [np.asarray(v) for v in model.weights] + [
        np.asarray(v) for opt in (model.g_optimizer, model.c_optimizer) for v in opt.variables]


def test_killed_runs_resume_where_the_checkpoint_left_off_and_end_as_an_unkilled_run(
        tmp_path):
    reference = tmp_path / "reference"
    status, stderr = finish(start(KILL_RUN + [f"--checkpoint_dir={reference}"], tmp_path),
                            tmp_path)
    assert status == 0, stderr

    ckpt = tmp_path / "killed"
    args = KILL_RUN + [f"--checkpoint_dir={ckpt}"]
    resumed_from = []
    for kill_after in (12, 33, 58):  # generator iterations, mid-epoch 1, 2 and 3
        proc = start(args, tmp_path)
        while newest(ckpt) < kill_after and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        status, stderr = finish(proc, tmp_path)
        assert status == -signal.SIGKILL, stderr
        on_disk = [it for it, _ in list_states(str(ckpt))]
        assert on_disk and len(on_disk) <= 3 + 1  # +1: killed between a save and the pruning
        for it, path in list_states(str(ckpt)):  # every checkpoint on disk loads
            assert int(keras.saving.load_model(path).generator_iterations.numpy()) == it
        resumed_from.append(on_disk[0])
    assert resumed_from == sorted(resumed_from)
    status, stderr = finish(start(args, tmp_path), tmp_path)
    assert status == 0, stderr
    assert f"Resuming from {ckpt} at generator iteration {resumed_from[-1]}." in stderr

    # Same data order, noise stream and optimizer state: the same final model.
    final, ours = weights(str(ckpt / "resume" / "ckpt-00000075.keras"))
    _, theirs = weights(str(reference / "resume" / "ckpt-00000075.keras"))
    assert int(final.generator_iterations.numpy()) == 75
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    info = json.loads((ckpt / "generator.json").read_text())
    assert (info["epoch"], info["generator_iterations"]) == (3, 75)
    records = [json.loads(line) for line in (ckpt / "metrics.jsonl").read_text().splitlines()]
    assert [r["generator_iterations"] for r in records][-3:] == [25, 50, 75]


TINY = dict(batch_size=4, n_critic=2, latent_dim=16, data_dir=TEST_DATA, jit_compile=False,
            verbose=0)


def test_checkpoints_every_n_steps_keep_the_newest_k(tmp_path):
    cwgan.train_model(cwgan.TrainConfig(steps=14, steps_per_epoch=7, checkpoint_every=3,
                                        keep_checkpoints=2, checkpoint_dir=str(tmp_path),
                                        **TINY))
    # Saved at 3, 6, 7 (epoch end), 9, 12, 14 (epoch end); the newest two kept.
    assert [it for it, _ in list_states(str(tmp_path))] == [14, 12]
    assert not list((tmp_path / "resume").glob(".*"))


def test_an_epoch_end_on_the_checkpoint_cadence_is_saved_once(tmp_path, monkeypatch):
    saved = []
    real_save = cwgan.training.callbacks.save_checkpoint

    def spy(model, *args, **kwargs):
        saved.append(int(model.generator_iterations.numpy()))
        return real_save(model, *args, **kwargs)

    monkeypatch.setattr(cwgan.training.callbacks, "save_checkpoint", spy)
    cwgan.train_model(cwgan.TrainConfig(steps=12, steps_per_epoch=6, checkpoint_every=3,
                                        checkpoint_dir=str(tmp_path), **TINY))
    assert saved == [3, 6, 9, 12]


def test_warmup_run_checkpoints_each_generator_iteration_once_and_resumes_the_steps(
        tmp_path):
    # n_critic 2, warm-up 4: two steps per generator update (all early iterations warm).
    config = dict(TINY, n_critic_warmup=4, steps=6, steps_per_epoch=3, checkpoint_every=1,
                  keep_checkpoints=10, checkpoint_dir=str(tmp_path))
    model, _ = cwgan.train_model(cwgan.TrainConfig(**config))
    assert (int(model.train_steps.numpy()), int(model.generator_iterations.numpy())) == (6, 3)
    # Not at 0 (the first step leaves the count there); 1 again at the end of epoch 1.
    assert [it for it, _ in list_states(str(tmp_path))] == [3, 2, 1]
    assert json.loads((tmp_path / "train_config.json").read_text())["n_critic_warmup"] == 4
    model, _ = cwgan.train_model(cwgan.TrainConfig(**(config | {"steps": 9})))
    # Steps 7..9 continue epoch 3's data and the streak: updates at steps 8, then none.
    assert (int(model.train_steps.numpy()), int(model.generator_iterations.numpy())) == (9, 4)
    info = json.loads((tmp_path / "generator.json").read_text())
    assert (info["epoch"], info["generator_iterations"]) == (3, 4)


def test_lr_decay_falls_linearly_to_zero_at_the_last_step_and_follows_a_resume(tmp_path):
    def rates(steps):
        run = cwgan.training.run.prepare(cwgan.TrainConfig(**(TINY | dict(
            steps=steps, steps_per_epoch=1, lr_decay=True, learning_rate=1e-3,
            checkpoint_dir=str(tmp_path)))))
        seen = []
        run.callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: seen.append(
            [float(o.learning_rate.numpy()) for o in (run.model.g_optimizer,
                                                      run.model.c_optimizer)])))
        run.fit()
        return seen

    np.testing.assert_allclose(rates(4), [[1e-3] * 2, [7.5e-4] * 2, [5e-4] * 2, [2.5e-4] * 2])
    # Given 8 steps, the resumed run takes the rates of an 8-step run from step 5 on.
    np.testing.assert_allclose(rates(8), [[r] * 2 for r in (5e-4, 3.75e-4, 2.5e-4, 1.25e-4)])


def test_lr_decay_fraction_holds_the_rates_until_the_runs_last_share(tmp_path):
    run = cwgan.training.run.prepare(cwgan.TrainConfig(**(TINY | dict(
        steps=4, steps_per_epoch=1, learning_rate=1e-3, lr_decay_fraction=0.5,
        critic_lr_ratio=2.0, checkpoint_dir=str(tmp_path)))))
    seen = []
    run.callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: seen.append(
        [float(o.learning_rate.numpy()) for o in (run.model.g_optimizer,
                                                  run.model.c_optimizer)])))
    run.fit()
    np.testing.assert_allclose(seen, [[1e-3, 2e-3]] * 3 + [[5e-4, 1e-3]])
    saved = json.loads((tmp_path / "train_config.json").read_text())
    assert saved["lr_decay_fraction"] == 0.5


def test_a_corrupt_newest_checkpoint_is_named_and_the_one_before_used(tmp_path, caplog):
    config = cwgan.TrainConfig(steps=8, steps_per_epoch=4, checkpoint_every=2,
                               checkpoint_dir=str(tmp_path), **TINY)
    cwgan.train_model(config)
    (it, path), (previous, _) = list_states(str(tmp_path))[:2]
    assert (it, previous) == (8, 6)
    with open(path, "r+b") as f:  # truncate the newest to half its size
        f.truncate(os.path.getsize(path) // 2)
    run = cwgan.training.run.prepare(config)
    assert int(run.model.generator_iterations.numpy()) == 6
    assert f"Checkpoint {path} is unreadable" in caplog.text
    model, _ = run.fit()  # finishes epoch 2 from iteration 6
    assert int(model.generator_iterations.numpy()) == 8


def test_no_loadable_checkpoint_is_refused_not_silently_restarted(tmp_path):
    config = cwgan.TrainConfig(steps=4, steps_per_epoch=2, checkpoint_dir=str(tmp_path),
                               **TINY)
    cwgan.train_model(config)
    for _, path in list_states(str(tmp_path)):
        with open(path, "wb") as f:
            f.write(b"not a zip")
    with pytest.raises(ValueError, match="None of the 2 checkpoints .* loads.*--fresh"):
        cwgan.training.run.prepare(config)


def test_resume_restores_both_optimizers(tmp_path):
    # A constant rate: with --lr_decay the rate is not state but set before each step
    # (resuming sets the configured rate, then LinearDecay the step's).
    config = cwgan.TrainConfig(steps=6, steps_per_epoch=3, checkpoint_dir=str(tmp_path),
                               lr_decay=False, **TINY)
    model, _ = cwgan.train_model(config)
    run = cwgan.training.run.prepare(config)
    for name in ("g_optimizer", "c_optimizer"):
        saved, loaded = getattr(model, name), getattr(run.model, name)
        assert int(loaded.iterations.numpy()) == int(saved.iterations.numpy()) > 0
        for a, b in zip(saved.variables, loaded.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert any(np.abs(np.asarray(v)).sum() > 0 for v in loaded.variables[2:])


def test_fresh_moves_the_old_run_aside_and_starts_over(tmp_path):
    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    (ckpt / "README.md").write_text("kept in place")
    cwgan.train_model(cwgan.TrainConfig(digits=(3, 7), steps=4, steps_per_epoch=2,
                                        checkpoint_dir=str(ckpt), **TINY))
    old_generator = (ckpt / "generator.keras").read_bytes()
    model, _ = cwgan.train_model(cwgan.TrainConfig(digits=(1, 2), steps=2, steps_per_epoch=1,
                                                   fresh=True, checkpoint_dir=str(ckpt),
                                                   **TINY))
    assert int(model.generator_iterations.numpy()) == 2
    (moved,) = (ckpt / "previous").iterdir()
    assert (moved / "generator.keras").read_bytes() == old_generator
    assert (moved / "samples" / "grid_0002.png").is_file()
    assert json.loads((moved / "train_config.json").read_text())["digits"] == [3, 7]
    assert (ckpt / "README.md").read_text() == "kept in place"
    assert json.loads((ckpt / "generator.json").read_text())["classes"] == [1, 2]


def test_a_run_saved_before_an_option_existed_resumes_with_its_old_value(tmp_path):
    config = cwgan.TrainConfig(digits=(3, 7), steps=2, steps_per_epoch=2,
                               checkpoint_dir=str(tmp_path), **TINY)
    cwgan.train_model(config)
    saved = json.loads((tmp_path / "train_config.json").read_text())
    del saved["upsampling"]  # as cwgan wrote it before --upsampling
    (tmp_path / "train_config.json").write_text(json.dumps(saved))
    model, _ = cwgan.train_model(dataclasses.replace(config, steps=4))
    assert int(model.generator_iterations.numpy()) == 4
    with pytest.raises(ValueError, match="upsampling: saved 'transpose', asked 'resize'"):
        cwgan.train_model(dataclasses.replace(config, steps=6, upsampling="resize"))


def snapshot(directory):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in directory.rglob("*")
            if p.is_file()}


def test_non_finite_losses_stop_training_and_keep_the_last_good_files(tmp_path, monkeypatch):
    config = cwgan.TrainConfig(steps=2, steps_per_epoch=2, checkpoint_every=1,
                               checkpoint_dir=str(tmp_path), **TINY)
    cwgan.train_model(config)
    before = snapshot(tmp_path)
    real_load = cwgan.training.run.load_data

    def poisoned(*args, **kwargs):  # the same data's identity, NaN pixels
        data = real_load(*args, **kwargs)
        return dataclasses.replace(data, images=np.full(data.images.shape, np.nan, np.float32))

    monkeypatch.setattr(cwgan.training.run, "load_data", poisoned)
    with pytest.raises(FloatingPointError, match="critic_loss=nan at generator iteration 3"):
        cwgan.train_model(dataclasses.replace(config, steps=4))
    after = snapshot(tmp_path)
    changed = sorted(p.name for p in after if after[p] != before.get(p))
    assert changed == ["train_config.json"]  # rewritten identical; checkpoints, grids kept
    assert list_states(str(tmp_path))[0][0] == 2


def test_a_model_with_non_finite_weights_is_never_saved(tmp_path):
    from conftest import tiny_model

    model = tiny_model()
    model.critic.weights[0].assign(np.full(model.critic.weights[0].shape, np.nan))
    with pytest.raises(FloatingPointError, match="non-finite weights"):
        save_checkpoint(model, str(tmp_path), epoch=1)
    assert not list(tmp_path.rglob("*.keras"))


def test_a_write_that_fails_midway_leaves_the_old_file_whole_and_no_temporary(tmp_path):
    path = tmp_path / "generator.json"
    path.write_text("the old file")

    def disk_full(tmp):
        with open(tmp, "w") as f:
            f.write("half a fi")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(str(path), disk_full)
    assert path.read_text() == "the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["generator.json"]
