"""Ctrl-C (SIGINT) and SIGTERM stop `python -m cwgan.train` after the step in progress,
save a full checkpoint there, say so in one line and exit 130 / 143; the same command
then resumes and ends exactly as an uninterrupted run."""

import signal
import subprocess
import time

import keras
import numpy as np
import pytest

from conftest import PYTHON, TEST_DATA, subprocess_env
from cwgan.training.checkpoints import list_states

STEPS = 400  # long enough to be interrupted in the middle (a few seconds of training)
RUN = ["--digits", f"--steps={STEPS}", "--steps_per_epoch=25", "--batch_size=4",
       "--n_critic=2", "--latent_dim=16", "--width=8", "--checkpoint_every=0",
       "--nojit_compile", f"--data_dir={TEST_DATA}"]
HANG = 300  # seconds: a child still running after this has hung; not a timing test


def _default_sigint():
    # A background child of a non-interactive shell (CI) starts with SIGINT ignored, and
    # a process that ignores SIGINT keeps ignoring it, as a user's terminal job would not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(ckpt, cwd):
    env = subprocess_env() | {"TF_DETERMINISTIC_OPS": "1"}
    with open(cwd / f"stderr_{ckpt.name}.txt", "a") as stderr:  # the child keeps its copy
        return subprocess.Popen([PYTHON, "-m", "cwgan.train", *RUN,
                                 f"--checkpoint_dir={ckpt}"], cwd=str(cwd), env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr,
                                preexec_fn=_default_sigint)


def finish(proc, ckpt, cwd):
    proc.wait(timeout=HANG)
    return proc.returncode, (cwd / f"stderr_{ckpt.name}.txt").read_text()


def weights(path):
    model = keras.saving.load_model(path, safe_mode=True)
    return [np.asarray(v) for v in model.weights] + [
        np.asarray(v) for opt in (model.g_optimizer, model.c_optimizer) for v in opt.variables]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The final checkpoint of an uninterrupted run."""
    cwd = tmp_path_factory.mktemp("reference")
    ckpt = cwd / "reference"
    status, stderr = finish(start(ckpt, cwd), ckpt, cwd)
    assert status == 0, stderr
    return ckpt / "resume" / f"ckpt-{STEPS:08d}.keras"


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_where_it_stopped_and_the_same_command_resumes_exactly(
        tmp_path, reference, signum, status):
    ckpt = tmp_path / "run"
    proc = start(ckpt, tmp_path)
    metrics = ckpt / "metrics.jsonl"
    while proc.poll() is None and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.02)  # until the first epoch (25 steps) is done: training is under way
    assert proc.poll() is None, "the run ended before it could be interrupted"
    sent = time.monotonic()
    proc.send_signal(signum)
    code, stderr = finish(proc, ckpt, tmp_path)
    print(f"{signal.Signals(signum).name}: exited {time.monotonic() - sent:.2f} s after "
          "the signal")
    assert code == status, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    (newest, path), *_ = list_states(str(ckpt))
    assert 25 <= newest < STEPS
    line = stderr.strip().splitlines()[-1]
    assert line == (f"Interrupted ({signal.Signals(signum).name}) at generator iteration "
                    f"{newest}; saved {path.removeprefix(str(tmp_path) + '/')}; run the "
                    "same command to resume."), line

    code, stderr = finish(start(ckpt, tmp_path), ckpt, tmp_path)
    assert code == 0, stderr
    assert f"Resuming from {ckpt} at generator iteration {newest}." in stderr
    for ours, theirs in zip(weights(str(ckpt / "resume" / f"ckpt-{STEPS:08d}.keras")),
                            weights(str(reference))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
