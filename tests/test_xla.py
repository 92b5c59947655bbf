"""`jit_compile="auto"`: XLA on or off by timing the step both ways, cached per machine
and model shape, logged in one line with both timings. (No timing is asserted: only
that the faster one is chosen and the cache is used.)"""

import logging
import os

import pytest

import cwgan
from conftest import TEST_DATA, tiny_model
from cwgan.training import xla
from cwgan.utils.cache import CACHE_ENV_VAR

SHAPE = {"test": "tiny", "n_critic": 2}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache" / xla.CACHE_FILE


def make(jit_compile):
    return tiny_model(n_critic=2, jit_compile=jit_compile)


def test_auto_times_both_settings_keeps_the_faster_and_caches_it(cache, monkeypatch):
    jit, record = xla.choose_jit_compile(make, SHAPE, batch_size=4, classes=range(10),
                                         steps=2, rounds=1)
    assert record["measured"] == "now" and cache.is_file()
    assert record["seconds_xla_on"] > 0 and record["seconds_xla_off"] > 0
    assert jit == (record["seconds_xla_on"] < record["seconds_xla_off"])
    line = xla.describe(record)
    assert line.startswith(f"XLA {'on' if jit else 'off'} (jit_compile=auto: ")
    assert f"{record['seconds_xla_on']:.4f} s/step with XLA" in line
    assert f"{record['seconds_xla_off']:.4f} without, measured now" in line

    def no_timing(*args, **kwargs):
        raise AssertionError("timed again although the choice is cached")

    monkeypatch.setattr(xla, "time_interleaved", no_timing)
    again, cached = xla.choose_jit_compile(make, SHAPE, 4, range(10))
    assert (again, cached["measured"]) == (jit, "cached")
    # Another model shape, or another machine (here: oneDNN switched), is measured anew.
    other = "1" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" else "0"
    for shape, env in ((dict(SHAPE, n_critic=3), None), (SHAPE, other)):
        if env is not None:
            monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", env)
        with pytest.raises(AssertionError, match="timed again"):
            xla.choose_jit_compile(make, shape, 4, range(10))


def test_an_unreadable_cache_is_measured_over_not_fatal(cache, caplog):
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    _, record = xla.choose_jit_compile(make, SHAPE, 4, range(10), steps=1, rounds=1)
    assert record["measured"] == "now"
    assert "Ignoring the unreadable XLA cache" in caplog.text


def test_training_logs_the_choice_and_both_timings_in_one_line(cache, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cwgan")
    model, _ = cwgan.train_model(cwgan.TrainConfig(
        digits=(3, 7), steps=2, steps_per_epoch=1, batch_size=4, n_critic=2, latent_dim=8,
        width=4, data_dir=TEST_DATA, checkpoint_dir=str(tmp_path / "ck"), verbose=0))
    (line,) = [r.getMessage() for r in caplog.records if "jit_compile=auto" in r.getMessage()]
    assert line.startswith(f"XLA {'on' if model.jit_compile else 'off'} (")
    assert "s/step with XLA" in line and "without" in line
