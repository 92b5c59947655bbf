"""`python -m cwgan.train`, end to end in a subprocess, and train() in-process."""

import configparser
import json
import os
import pathlib
import re
import subprocess

import pytest

import cwgan
from conftest import PYTHON, REPO, TEST_DATA, subprocess_env

TINY = ["--steps=4", "--steps_per_epoch=2", "--batch_size=4", "--n_critic=2",
        "--latent_dim=16", "--nojit_compile", f"--data_dir={TEST_DATA}"]


def run_cli(args, cwd, check=True):
    proc = subprocess.run([PYTHON, "-m", "cwgan.train", *args], cwd=str(cwd),
                          env=subprocess_env(), capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def read(path):
    return json.loads(path.read_text())


def test_bare_digits_trains_all_ten_writes_grids_and_checkpoints_then_resumes(tmp_path):
    run_cli(["--digits", *TINY], cwd=tmp_path)
    ckpt = tmp_path / "checkpoints"
    for name in ("generator.keras", "generator.json", "resume/ckpt-00000004.keras",
                 "train_config.json",
                 "samples/grid_0001.png", "samples/grid_0002.png"):
        assert (ckpt / name).is_file(), name
    info = read(ckpt / "generator.json")
    assert info["classes"] == list(range(10))
    assert (info["epoch"], info["generator_iterations"]) == (2, 4)
    assert read(ckpt / "train_config.json")["n_critic"] == 2
    assert not list(ckpt.glob(".*tmp*")), "temporary files left behind"

    # The same command with more steps continues the count instead of restarting.
    run_cli(["--digits", *TINY, "--steps=6"], cwd=tmp_path)
    info = read(ckpt / "generator.json")
    assert (info["epoch"], info["generator_iterations"]) == (3, 6)
    assert (ckpt / "samples/grid_0003.png").is_file()


def test_digits_list_trains_only_those(tmp_path):
    run_cli(["--digits=3,7", *TINY, "--checkpoint_dir=run37", "--samples_dir=grids"],
            cwd=tmp_path)
    assert read(tmp_path / "run37/generator.json")["classes"] == [3, 7]
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == [
        "grid_0001.png", "grid_0002.png"]
    images = cwgan.sample(label=[3, 7], seed=0, checkpoint_dir=tmp_path / "run37")
    assert images.shape == (2, 28, 28)


@pytest.mark.parametrize("flag, named", [
    ("--digits=3,x", "--digits"),
    ("--digits=11", "--digits"),
    ("--digits=3,3", "--digits"),
    ("--steps=0", "--steps"),
    ("--steps=5", "--steps"),  # not a multiple of --steps_per_epoch=2
    ("--grid_every=3", "--grid_every"),
    ("--jit_compile=maybe", "--jit_compile"),
    ("--clip_value=0", "--clip_value"),
    ("--learning_rate=nan", "--learning_rate"),
    ("--batch_size=500", "batch_size=500"),
])
def test_bad_flags_are_usage_errors_naming_the_flag(tmp_path, flag, named):
    proc = run_cli([*TINY, flag], cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert named in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "checkpoints" / "resume").exists()


def test_time_limit_stops_cleanly_and_saves_as_at_an_epoch_end(tmp_path):
    model, history = cwgan.train_model(cwgan.TrainConfig(
        steps=15, steps_per_epoch=3, batch_size=4, n_critic=2, latent_dim=16,
        data_dir=TEST_DATA, checkpoint_dir=str(tmp_path / "ck"), max_minutes=1e-6,
        jit_compile=False, verbose=0))
    assert len(history.history["critic_loss"]) == 1
    info = read(tmp_path / "ck" / "generator.json")
    assert (info["epoch"], info["generator_iterations"]) == (1, 1)
    assert (tmp_path / "ck" / "samples" / "grid_0001.png").is_file()


def test_xla_is_decided_by_measurement_by_default_and_forced_when_asked():
    assert cwgan.TrainConfig().jit_compile == "auto"
    assert cwgan.TrainConfig(n_critic_warmup=100, jit_compile=True).jit_compile is True
    for bad in ("yes", None, 1):
        with pytest.raises(ValueError, match=r"jit_compile=.*Expected one of \('auto', True, "
                                             r"False\)"):
            cwgan.TrainConfig(jit_compile=bad)


def test_resuming_with_other_options_is_refused(tmp_path):
    base = dict(steps=1, steps_per_epoch=1, batch_size=4, n_critic=2, latent_dim=16,
                data_dir=TEST_DATA, checkpoint_dir=str(tmp_path), jit_compile=False,
                verbose=0)
    cwgan.train_model(cwgan.TrainConfig(digits=(3, 7), **base))
    with pytest.raises(ValueError, match=r"digits: saved \[3, 7\], asked \[1, 2\]"):
        cwgan.train_model(cwgan.TrainConfig(digits=(1, 2), **base))


def test_eval_every_puts_quality_figures_in_history_and_jsonl(tmp_path, monkeypatch):
    from cwgan.evaluation import judge as evaluate_lib

    # A judge over the shipped images (they stand in for the test split too).
    real_make_judge = evaluate_lib.make_judge

    def small_judge(classes, dataset="mnist", data_dir=None, classifier_path=None, seed=0,
                    image_size=None):
        return real_make_judge(classes, dataset, data_dir,
                               str(tmp_path / "judge.keras"), seed, image_size)

    monkeypatch.setattr("cwgan.training.run.make_judge", small_judge)
    monkeypatch.setattr(evaluate_lib, "_test_split", lambda dataset, data_dir: (
        *cwgan.load_mnist(data_dir=TEST_DATA), "the shipped images"))
    _, history = cwgan.train_model(cwgan.TrainConfig(
        digits=(3, 7), steps=2, steps_per_epoch=1, batch_size=4, n_critic=2, latent_dim=16,
        data_dir=TEST_DATA, checkpoint_dir=str(tmp_path / "ck"), eval_every=2,
        eval_n_per_class=20, jit_compile=False, verbose=0))
    assert 0 <= history.history["cond_acc"][-1] <= 1
    assert 0 <= history.history["min_class_acc"][-1] <= history.history["cond_acc"][-1] + 1e-9
    lines = [json.loads(line) for line in (tmp_path / "ck" / "metrics.jsonl").read_text()
             .splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert "fd" not in lines[0] and lines[1]["fd"] >= 0
    assert lines[1]["generator_iterations"] == 2
    # The best generator by FD is kept beside the newest, and samples like it.
    best = json.loads((tmp_path / "ck" / "best" / "generator.json").read_text())
    assert best["fd"] == pytest.approx(lines[1]["fd"]) and best["generator_iterations"] == 2
    assert cwgan.sample(label=3, checkpoint_dir=tmp_path / "ck" / "best").shape == (1, 28, 28)


def test_best_generator_keeps_the_lowest_score_and_resumes_from_it(tmp_path):
    from conftest import tiny_model

    model = tiny_model(classes=[3, 7])
    best = tmp_path / "best"

    def run(scores):
        callback = cwgan.BestGenerator(best)
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, fd in enumerate(scores):
            callback.on_epoch_end(epoch, {"fd": fd})
        return json.loads((best / "generator.json").read_text())

    first = run([5.0, 7.0])
    assert (first["fd"], first["epoch"]) == (5.0, 1)
    # Resumed: it starts from the 5.0 on disk; a NaN score is ignored.
    second = run([9.0, 3.0, float("nan")])
    assert (second["fd"], second["epoch"]) == (3.0, 2)
    assert run([4.0]) == second  # 4.0 does not beat the best so far


def test_tensorboard_logs_losses_estimate_and_grids_by_generator_iteration(tmp_path):
    import tensorflow as tf

    cwgan.train_model(cwgan.TrainConfig(
        digits=(3, 7), steps=20, steps_per_epoch=10, batch_size=4, n_critic=2, latent_dim=16,
        data_dir=TEST_DATA, checkpoint_dir=str(tmp_path), tensorboard=True, jit_compile=False,
        verbose=0))
    events = {}
    for path in (tmp_path / "tensorboard").rglob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                events.setdefault(value.tag, []).append((event.step, value))
    for tag in ("batch_critic_loss", "batch_wasserstein_estimate", "epoch_generator_loss"):
        assert tag in events, sorted(events)
    assert sorted(step for step, _ in events["batch_critic_loss"]) == [10, 20]
    steps = sorted(step for step, _ in events["samples"])
    assert steps == [10, 20]
    image = tf.io.decode_png(tf.make_ndarray(events["samples"][0][1].tensor)[2])
    assert image.shape[-1] == 3 and image.shape[0] > 28 * 2


# Lines TensorFlow's C++ start-up writes before any setting applies
# (docs/troubleshooting.md): the absl C++ logger's warning, then its lines dated 0000 00:00.
_TF_STARTUP = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)"
                         r"|[IWEF]0000 00:00:")


@pytest.mark.parametrize("module, args, named", [
    ("train", ["--digits=x"], "--digits"),
    ("train", ["--clip_value=-1"], "--clip_value"),
    ("evaluate", ["--checkpoint_dir=missing"], "checkpoint_dir"),
    ("export", ["--checkpoint_dir=missing", "--export_dir=out"], "checkpoint_dir"),
    ("interpolate", ["--kind=walk"], "--label"),
    ("report", ["--checkpoint_dir=missing"], "checkpoint_dir"),
    ("bench", ["--batch_sizes=x"], "--batch_sizes"),
])
def test_a_usage_error_prints_its_message_and_where_help_is_not_the_help(
        tmp_path, module, args, named):
    proc = subprocess.run([PYTHON, "-m", f"cwgan.{module}", *args], cwd=str(tmp_path),
                          env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not _TF_STARTUP.match(line)]
    assert len(lines) < 5, proc.stderr
    assert lines[0].startswith("FATAL ") and named in lines[0], proc.stderr
    assert lines[-1] == "Pass --helpshort or --helpfull to see help on flags."


def console_scripts():
    """setup.cfg's console scripts as {name: "module:function"}."""
    config = configparser.ConfigParser()
    config.read(os.path.join(REPO, "setup.cfg"))
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict((part.strip() for part in line.split("=")) for line in lines)


def test_every_cli_module_has_a_console_script():
    clis = {path.stem for path in pathlib.Path(REPO, "cwgan").glob("*.py")
            if 'if __name__ == "__main__":' in path.read_text()}
    assert clis >= {"train", "evaluate", "export", "interpolate", "report", "bench"}
    assert console_scripts() == {f"cwgan-{m.replace('_', '-')}": f"cwgan.{m}:run" for m in clis}


@pytest.mark.parametrize("name, target", sorted(console_scripts().items()))
def test_each_console_script_names_a_function_that_runs_its_cli(tmp_path, name, target):
    # A child Python per script: the CLI modules define flags of the same names.
    module, function = target.split(":")
    code = (f"import importlib; run = importlib.import_module({module!r}).{function}; "
            f"assert callable(run); run([{name!r}, '--no_such_flag'])")
    proc = subprocess.run([PYTHON, "-c", code], cwd=str(tmp_path), env=subprocess_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert "Unknown command line flag 'no_such_flag'" in proc.stderr
