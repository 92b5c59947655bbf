"""cwgan.sample and the saved generator."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cwgan
from conftest import PYTHON, subprocess_env


def test_sample_shape_range_and_dtype(checkpoint_37):
    images = cwgan.sample(label=7, n=5, seed=0, checkpoint_dir=checkpoint_37)
    assert images.shape == (5, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert cwgan.sample(label=3, checkpoint_dir=checkpoint_37).shape == (1, 28, 28)


def test_same_seed_same_images_other_seed_other_images(checkpoint_37):
    a = cwgan.sample(label=7, n=3, seed=11, checkpoint_dir=checkpoint_37)
    b = cwgan.sample(label=7, n=3, seed=11, checkpoint_dir=checkpoint_37)
    c = cwgan.sample(label=7, n=3, seed=12, checkpoint_dir=checkpoint_37)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0


def test_a_list_of_labels_gives_one_image_each(checkpoint_37):
    images = cwgan.sample(label=[3, 7, 7], seed=0, checkpoint_dir=checkpoint_37)
    assert images.shape == (3, 28, 28)
    # Same seed: entry i gets the same noise as image i of a single-label call.
    np.testing.assert_allclose(
        images[1], cwgan.sample(label=7, n=2, seed=0, checkpoint_dir=checkpoint_37)[1],
        atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"label": 5}, r"trained on classes \[3, 7\] only, so \[5\]"),
    ({"label": 10}, r"label=10.*0..9"),
    ({"label": -1}, r"label=-1.*0..9"),
    ({"label": "seven"}, r"'seven' is not a class name.*'0', '1'"),
    ({"label": 7.0}, r"label=7.0"),
    ({"label": True}, r"label=True"),
    ({"label": [[3, 7]]}, r"1-D"),
    ({"label": []}, r"non-empty"),
    ({"label": 7, "n": 0}, r"n=0.*1..100000"),
    ({"label": [3, 7], "n": 2}, r"n=2"),
    ({"label": 7, "seed": 1.5}, r"seed=1.5"),
])
def test_bad_requests_are_named(checkpoint_37, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cwgan.sample(checkpoint_dir=checkpoint_37, **kwargs)


def test_missing_checkpoint_is_a_clear_file_not_found(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="No trained generator in checkpoint_dir"):
        cwgan.sample(label=7, checkpoint_dir=tmp_path)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("CWGAN_CHECKPOINT_DIR", raising=False)
    # Search work/ only: not a checkpoints/ an earlier run left in a parent (/tmp).
    monkeypatch.setenv("CWGAN_CEILING_DIRS", str(tmp_path))
    # Nothing asked for, nothing found: the shipped generator, with a warning saying so.
    with pytest.warns(UserWarning, match=r"python -m cwgan.train.*shipped with cwgan"):
        sevens = cwgan.sample(label=7, n=2, seed=0)
    np.testing.assert_array_equal(
        sevens, cwgan.sample(label=7, n=2, seed=0, checkpoint_dir=cwgan.PRETRAINED_DIR))
    assert sevens.shape == (2, 28, 28) and 0 <= sevens.min() and sevens.max() <= 1
    # Asked for and missing is an error, never the shipped one.
    monkeypatch.setenv("CWGAN_CHECKPOINT_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        cwgan.sample(label=7)


def test_your_own_checkpoints_win_over_the_shipped_generator(checkpoint_37, monkeypatch):
    import warnings

    monkeypatch.delenv("CWGAN_CHECKPOINT_DIR", raising=False)
    monkeypatch.setenv("CWGAN_CEILING_DIRS", str(checkpoint_37.parent))
    monkeypatch.chdir(checkpoint_37.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: it is not the shipped one
        ours = cwgan.sample(label=3, seed=1)
    np.testing.assert_array_equal(ours, cwgan.sample(label=3, seed=1,
                                                     checkpoint_dir=checkpoint_37))
    info = json.loads((Path(cwgan.PRETRAINED_DIR) / "generator.json").read_text())
    assert info["classes"] == list(range(10))  # the shipped one draws every digit


def _colour_signature(images):
    """(n, 6) colours of `(n, 32, 32, 3)` images in [0, 1]: the paper (the 2-pixel border,
    where a 28-pixel digit on a 32-pixel canvas leaves only paper) and the ink (the
    pixels' mean weighted by their squared distance from the paper)."""
    n = len(images)
    border = np.concatenate([images[:, :2].reshape(n, -1, 3), images[:, -2:].reshape(n, -1, 3),
                             images[:, :, :2].reshape(n, -1, 3),
                             images[:, :, -2:].reshape(n, -1, 3)], axis=1).mean(1)
    pixels = images.reshape(n, -1, 3)
    weight = ((pixels - border[:, None]) ** 2).sum(-1)
    ink = (pixels * weight[..., None]).sum(1) / weight.sum(1, keepdims=True)
    return np.concatenate([ink, border], axis=1)


def test_the_shipped_colour_generator_draws_each_class_in_its_colours(coloured_test_digits):
    """`cwgan.PRETRAINED_COLOUR_DIR` (`make pretrained-colour`) was trained on `python -m
    cwgan.demo_data`'s digits, whose ink and paper colours are the class's: nine in ten
    samples of each class must be nearest, by those colours, to the class's real digits
    (real digits themselves are nearly all nearest their own class)."""
    info = json.loads((Path(cwgan.PRETRAINED_COLOUR_DIR) / "generator.json").read_text())
    assert info["image_shape"] == [32, 32, 3] and info["classes"] == list(range(10))
    real, labels = coloured_test_digits
    real = real.astype(np.float32) / 255.0
    centres = np.stack([_colour_signature(real[labels == c]).mean(0) for c in range(10)])
    asked = np.repeat(np.arange(10), 20)
    samples = cwgan.sample(label=asked.tolist(), seed=0,
                           checkpoint_dir=cwgan.PRETRAINED_COLOUR_DIR)
    assert samples.shape == (200, 32, 32, 3)
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    distances = ((_colour_signature(samples)[:, None] - centres[None]) ** 2).sum(-1)
    right = np.argmin(distances, axis=1) == asked
    for digit in range(10):
        assert np.mean(right[asked == digit]) >= 0.9, f"class {digit}: {right[asked == digit]}"


def test_default_checkpoint_dir_is_found_from_a_subfolder_and_from_env(
        checkpoint_37, tmp_path, monkeypatch):
    monkeypatch.delenv("CWGAN_CHECKPOINT_DIR", raising=False)
    # The search may go up from notebooks/ to checkpoint_37's parent, no further.
    monkeypatch.setenv("CWGAN_CEILING_DIRS", str(checkpoint_37.parent.parent))
    notebooks = checkpoint_37.parent / "notebooks"
    notebooks.mkdir(exist_ok=True)
    monkeypatch.chdir(notebooks)
    expected = cwgan.sample(label=7, seed=3, checkpoint_dir=checkpoint_37)
    np.testing.assert_array_equal(cwgan.sample(label=7, seed=3), expected)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CWGAN_CHECKPOINT_DIR", str(checkpoint_37))
    np.testing.assert_array_equal(cwgan.sample(label=7, seed=3), expected)


def test_the_search_for_checkpoints_stops_below_a_ceiling_dir(tmp_path, monkeypatch):
    """find_checkpoint_dir never moves up into a $CWGAN_CEILING_DIRS entry (git's rule)."""
    from cwgan.training.checkpoints import find_checkpoint_dir

    monkeypatch.delenv("CWGAN_CHECKPOINT_DIR", raising=False)
    outer = tmp_path / "outer"
    (outer / "checkpoints").mkdir(parents=True)
    (outer / "checkpoints" / "generator.keras").touch()  # only its presence is checked
    deep = outer / "project" / "notebooks"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.setenv("CWGAN_CEILING_DIRS", str(tmp_path))
    assert os.path.samefile(find_checkpoint_dir(), outer / "checkpoints")
    for ceiling in (outer, f"relative{os.pathsep}{outer}{os.pathsep}"):
        monkeypatch.setenv("CWGAN_CEILING_DIRS", str(ceiling))
        with pytest.raises(FileNotFoundError, match=r"CWGAN_CEILING_DIRS stopped") as e:
            find_checkpoint_dir()
        assert str(outer / "checkpoints") not in str(e.value)
        assert str(outer / "project" / "checkpoints") in str(e.value)
    # The current directory itself is always searched, even when it is a ceiling.
    monkeypatch.chdir(outer)
    monkeypatch.setenv("CWGAN_CEILING_DIRS", str(outer))
    assert os.path.samefile(find_checkpoint_dir(), outer / "checkpoints")


def test_generator_reloads_in_a_fresh_process_without_cwgan(checkpoint_37):
    code = (
        "import sys, numpy as np, keras\n"
        f"g = keras.saving.load_model({str(checkpoint_37 / 'generator.keras')!r}, "
        "safe_mode=True)\n"
        "z = np.random.default_rng(0).standard_normal((2, 16)).astype('float32')\n"
        "out = np.asarray(g([z, np.array([3, 7])], training=False))\n"
        "assert out.shape == (2, 28, 28, 1), out.shape\n"
        "assert not any(m.startswith('cwgan') for m in sys.modules), 'cwgan imported'\n"
        "np.save(sys.argv[1], out)\n")
    out_path = checkpoint_37.parent / "fresh.npy"
    env = subprocess_env()
    env["PYTHONPATH"] = ""  # cwgan must not even be importable from the repo
    subprocess.run([PYTHON, "-c", code, str(out_path)], check=True, env=env,
                   cwd=str(checkpoint_37.parent), timeout=300)
    ours = cwgan.load_generator(checkpoint_37)[0]
    z = np.random.default_rng(0).standard_normal((2, 16)).astype("float32")
    np.testing.assert_allclose(np.load(out_path),
                               np.asarray(ours([z, np.array([3, 7])], training=False)),
                               atol=1e-6)


def test_checkpoint_files_get_the_usual_permissions(checkpoint_37):
    mode = (checkpoint_37 / "generator.keras").stat().st_mode & 0o777
    assert mode == 0o666 & ~_current_umask()


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
