"""`python -m cwgan.export` and `export_saved_model`: a SavedModel that serves without cwgan."""

import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

import cwgan
from conftest import PYTHON, subprocess_env
from cwgan.sampling.export import EXPORT_INFO_FILE, export_saved_model

# Loads the export with TensorFlow alone, serves `inputs.npz`, saves the images.
_SERVE = """
import sys
import numpy as np
import tensorflow as tf

serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
inputs = np.load(sys.argv[2])
out = serve(label=tf.constant(inputs["label"]), noise=tf.constant(inputs["noise"]))
assert list(out) == ["images"], list(out)
try:
    serve(label=tf.constant([5], tf.int32), noise=tf.constant(inputs["noise"][:1]))
    raise AssertionError("label 5 was served")
except tf.errors.InvalidArgumentError as e:
    assert "trained classes: [3, 7]" in str(e), e
assert not any(m.startswith("cwgan") for m in sys.modules), "cwgan imported"
np.save(sys.argv[3], out["images"].numpy())
"""


def run_export(args, cwd):
    return subprocess.run([PYTHON, "-m", "cwgan.export", *args], cwd=str(cwd),
                          env=subprocess_env(), capture_output=True, text=True, timeout=300,
                          check=False)


def test_cli_export_serves_in_a_fresh_process_what_sample_gives(checkpoint_37, tmp_path):
    proc = run_export([f"--checkpoint_dir={checkpoint_37}", "--export_dir=exported"],
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert os.path.samefile(proc.stdout.strip(), tmp_path / "exported")
    info = json.loads((tmp_path / "exported" / EXPORT_INFO_FILE).read_text())
    assert (info["latent_dim"], info["classes"]) == (16, [3, 7])
    assert info["class_names"] == [str(d) for d in range(10)]
    assert info["image_shape"] == [28, 28, 1]
    assert info["outputs"] == {"images": "float32 (N, 28, 28) in [0, 1]"}

    labels = np.array([3, 7, 7, 3], np.int32)
    noise = np.random.default_rng(5).standard_normal((4, 16)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", label=labels, noise=noise)
    env = subprocess_env()
    env["PYTHONPATH"] = ""  # cwgan must not even be importable
    subprocess.run([PYTHON, "-c", _SERVE, "exported", "inputs.npz", "served.npy"],
                   check=True, env=env, cwd=str(tmp_path), timeout=300)
    served = np.load(tmp_path / "served.npy")
    assert served.shape == (4, 28, 28) and served.dtype == np.float32
    # The same noise as cwgan.sample draws for seed 5.
    expected = cwgan.sample(label=labels.tolist(), seed=5, checkpoint_dir=checkpoint_37)
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_a_colour_export_serves_rgb_images_and_names_its_classes(colour_checkpoint,
                                                                  tmp_path):
    path = export_saved_model(tmp_path / "exported", colour_checkpoint)
    info = json.loads((tmp_path / "exported" / EXPORT_INFO_FILE).read_text())
    assert info["class_names"] == [str(d) for d in range(10)]
    assert (info["image_shape"], info["dataset"]) == ([32, 32, 3], "folder")
    assert info["outputs"] == {"images": "float32 (N, 32, 32, 3) in [0, 1]"}

    serve = tf.saved_model.load(path).signatures["serving_default"]
    assert serve.structured_outputs["images"].shape.as_list() == [None, 32, 32, 3]
    # A server holding class names maps them to labels with the export's class_names.
    labels = np.array([info["class_names"].index(name) for name in ("3", "8", "3")],
                      np.int32)
    noise = np.random.default_rng(6).standard_normal((3, 16)).astype(np.float32)
    served = serve(label=tf.constant(labels), noise=tf.constant(noise))["images"].numpy()
    assert served.shape == (3, 32, 32, 3) and served.dtype == np.float32
    expected = cwgan.sample(label=["3", "8", "3"], seed=6, checkpoint_dir=colour_checkpoint)
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_a_previous_export_or_empty_dir_is_replaced_anything_else_refused(
        checkpoint_37, tmp_path):
    target = tmp_path / "exported"
    assert export_saved_model(target, checkpoint_37) == str(target)
    stamp = (target / "saved_model.pb").stat().st_mtime_ns
    export_saved_model(target, checkpoint_37)  # a previous export: replaced
    assert (target / "saved_model.pb").stat().st_mtime_ns != stamp
    (tmp_path / "empty").mkdir()
    export_saved_model(tmp_path / "empty", checkpoint_37)
    assert (tmp_path / "empty" / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "exported"], \
        "temporary directories left behind"

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="export_dir=.*not a previous cwgan export"):
        export_saved_model(tmp_path / "notes", checkpoint_37)
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is not a directory"):
        export_saved_model(tmp_path / "file", checkpoint_37)


@pytest.mark.parametrize("export_dir", [None, "", 3])
def test_export_dir_must_be_a_path(checkpoint_37, export_dir):
    with pytest.raises(ValueError, match=f"export_dir={export_dir!r}"):
        export_saved_model(export_dir, checkpoint_37)


def test_cli_missing_checkpoint_is_a_usage_error(tmp_path):
    proc = run_export([f"--checkpoint_dir={tmp_path / 'nope'}", "--export_dir=exported"],
                      cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "No trained generator in checkpoint_dir=" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "exported").exists()
