"""Class-morph and latent-walk grids: the API, the PNG and `python -m cwgan.interpolate`."""

import json
import shutil
import subprocess

import keras
import numpy as np
import pytest
from keras import layers

import cwgan
from conftest import PYTHON, subprocess_env
from cwgan.sampling.interpolation import (class_morph, latent_walk, morph_images,
                                          save_interpolation_grid, slerp, split_at_embeddings)

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture
def named_checkpoint(colour_checkpoint, tmp_path):
    """`colour_checkpoint`'s generator with its classes named in words, trained (as far
    as generator.json says) on three and eight only."""
    directory = tmp_path / "named"
    directory.mkdir()
    shutil.copy(colour_checkpoint / "generator.keras", directory)
    info = json.loads((colour_checkpoint / "generator.json").read_text())
    (directory / "generator.json").write_text(json.dumps(
        info | {"class_names": WORDS, "classes": [3, 8]}))
    return directory


def test_morph_shape_range_and_endpoints_are_the_two_classes_samples(checkpoint_37):
    grid = class_morph(3, 7, steps=5, n=3, seed=4, checkpoint_dir=checkpoint_37)
    assert grid.shape == (3, 5, 28, 28) and grid.dtype == np.float32
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    for column, label in ((0, 3), (-1, 7)):
        np.testing.assert_allclose(
            grid[:, column], cwgan.sample(label=label, n=3, seed=4, checkpoint_dir=checkpoint_37),
            atol=1e-5)
    assert np.abs(grid[:, 2] - grid[:, 0]).max() > 0
    np.testing.assert_array_equal(
        grid, class_morph(3, 7, steps=5, n=3, seed=4, checkpoint_dir=checkpoint_37))


def test_walk_starts_at_the_samples_and_ends_at_the_seeds_second_draw(checkpoint_37):
    grid = latent_walk(7, steps=4, n=2, seed=1, checkpoint_dir=checkpoint_37)
    assert grid.shape == (2, 4, 28, 28) and grid.dtype == np.float32
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    np.testing.assert_allclose(
        grid[:, 0], cwgan.sample(label=7, n=2, seed=1, checkpoint_dir=checkpoint_37),
        atol=1e-5)
    generator, _ = cwgan.load_generator(checkpoint_37)
    rng = np.random.default_rng(1)
    rng.standard_normal((2, 16))
    end = rng.standard_normal((2, 16)).astype(np.float32)
    last = (np.asarray(generator([end, np.array([7, 7], np.int32)], training=False))[..., 0]
            + 1) / 2
    np.testing.assert_allclose(grid[:, -1], np.clip(last, 0, 1), atol=1e-5)


def test_colour_grids_by_class_name_are_those_of_the_index(colour_checkpoint):
    # Classes named "0".."9" (folder names): "3" is the class of that name, index 3.
    morph = class_morph("3", "8", steps=3, n=2, seed=2, checkpoint_dir=colour_checkpoint)
    assert morph.shape == (2, 3, 32, 32, 3) and morph.dtype == np.float32
    assert morph.min() >= 0.0 and morph.max() <= 1.0
    for column, label in ((0, "3"), (-1, "8")):
        np.testing.assert_allclose(morph[:, column], cwgan.sample(
            label=label, n=2, seed=2, checkpoint_dir=colour_checkpoint), atol=1e-5)
    np.testing.assert_array_equal(
        morph, class_morph(3, "8", steps=3, n=2, seed=2, checkpoint_dir=colour_checkpoint))

    walk = latent_walk("5", steps=3, n=2, seed=2, checkpoint_dir=colour_checkpoint)
    assert walk.shape == (2, 3, 32, 32, 3) and walk.dtype == np.float32
    np.testing.assert_allclose(walk[:, 0], cwgan.sample(
        label="5", n=2, seed=2, checkpoint_dir=colour_checkpoint), atol=1e-5)
    np.testing.assert_array_equal(
        walk, latent_walk(5, steps=3, n=2, seed=2, checkpoint_dir=colour_checkpoint))


def test_slerp_hits_both_ends_and_keeps_the_norm_of_orthogonal_unit_vectors():
    start = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    end = np.array([[0.0, 1.0], [2.0, 0.0]], np.float32)  # row 1: parallel, a line
    path = slerp(start, end, 5)
    assert path.shape == (2, 5, 2)
    np.testing.assert_array_equal(path[:, 0], start)
    np.testing.assert_array_equal(path[:, -1], end)
    np.testing.assert_allclose(np.linalg.norm(path[0], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(path[0, 2], [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)
    np.testing.assert_allclose(path[1, :, 0], [1.0, 1.25, 1.5, 1.75, 2.0], rtol=1e-6)


def test_morph_endpoints_for_the_mlp_generator():
    keras.utils.set_random_seed(0)
    generator = cwgan.build_mlp_generator(latent_dim=8, width=8, embedding_dim=4)
    noise = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    grid = morph_images(generator, noise, 1, 6, steps=3)
    for column, label in ((0, 1), (-1, 6)):
        images = generator([noise, np.full((2,), label, np.int32)], training=False)
        np.testing.assert_allclose(grid[:, column], np.clip(
            (np.asarray(images)[..., 0] + 1) / 2, 0, 1), atol=1e-5)


def _generator_with_a_second_label_path(embed):
    noise = keras.Input((4,), name="noise")
    label = keras.Input((), dtype="int32", name="label")
    onehot = layers.CategoryEncoding(10, output_mode="one_hot")(label)
    parts = [noise, onehot]
    if embed:
        parts.append(layers.Embedding(10, 3, name="label_embedding")(label))
    image = layers.Reshape((28, 28, 1))(layers.Dense(784)(layers.Concatenate()(parts)))
    return keras.Model([noise, label], image, name="odd_generator")


@pytest.mark.parametrize("embed, match", [
    (False, "without a keras.layers.Embedding named 'label_embedding'"),
    (True, "label reaches the image other than through 'label_embedding'"),
])
def test_a_generator_whose_label_path_is_unknown_is_refused(embed, match):
    with pytest.raises(ValueError, match=match):
        split_at_embeddings(_generator_with_a_second_label_path(embed))


def test_save_interpolation_grid_writes_a_png(tmp_path):
    grid = np.random.default_rng(0).uniform(size=(2, 3, 28, 28)).astype(np.float32)
    path = tmp_path / "new_dir" / "walk.png"
    save_interpolation_grid(path, grid, title="walk")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["walk.png"]
    with pytest.raises(ValueError, match=r"images of shape \(3, 28, 28\)"):
        save_interpolation_grid(path, grid[0])


def test_save_interpolation_grid_writes_colour_rows_labelled_by_name(tmp_path):
    grid = np.random.default_rng(0).uniform(size=(2, 3, 16, 16, 3)).astype(np.float32)
    path = tmp_path / "walks.png"
    save_interpolation_grid(path, grid, row_labels=["cat", "dog"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"row_labels.*1 labels for 2 rows"):
        save_interpolation_grid(path, grid, row_labels=["cat"])
    with pytest.raises(ValueError, match=r"images of shape \(2, 3, 16, 16, 4\)"):
        save_interpolation_grid(path, np.zeros((2, 3, 16, 16, 4)))


@pytest.mark.parametrize("call, match", [
    (lambda d: class_morph(5, 7, checkpoint_dir=d), r"label_from=5.*\[3, 7\]"),
    (lambda d: class_morph(3, 10, checkpoint_dir=d), r"label_to=10.*\[3, 7\]"),
    (lambda d: class_morph(3, 3, checkpoint_dir=d), r"label_to=3.*other than label_from"),
    (lambda d: class_morph("three", 7, checkpoint_dir=d), r"label_from='three'.*\[3, 7\]"),
    (lambda d: class_morph([3], 7, checkpoint_dir=d), r"label_from=\[3\]"),
    (lambda d: class_morph("3", 3, checkpoint_dir=d), r"label_to=3.*other than label_from"),
    (lambda d: class_morph(3, 7, steps=1, checkpoint_dir=d), r"steps=1.*2\.\.32"),
    (lambda d: class_morph(3, 7, n=0, checkpoint_dir=d), r"n=0.*1\.\.32"),
    (lambda d: latent_walk(True, checkpoint_dir=d), r"label=True"),
    (lambda d: latent_walk(4, checkpoint_dir=d), r"label=4.*\[3, 7\]"),
    (lambda d: latent_walk(7, steps=33, checkpoint_dir=d), r"steps=33"),
    (lambda d: latent_walk(7, n=33, checkpoint_dir=d), r"n=33"),
    (lambda d: latent_walk(7, seed=-1, checkpoint_dir=d), r"seed=-1"),
])
def test_bad_requests_are_named(checkpoint_37, call, match):
    with pytest.raises(ValueError, match=match):
        call(checkpoint_37)


def test_named_classes_by_name_or_index_and_refusals_list_the_names(named_checkpoint):
    morph = class_morph("three", "eight", steps=2, n=1, checkpoint_dir=named_checkpoint)
    np.testing.assert_array_equal(
        morph, class_morph(3, "eight", steps=2, n=1, checkpoint_dir=named_checkpoint))
    with pytest.raises(ValueError, match=r"label='five'. Expected one of the classes the "
                       r"generator was trained on: \['three', 'eight'\] \(or their "
                       r"indices \[3, 8\]\)\."):
        latent_walk("five", checkpoint_dir=named_checkpoint)
    with pytest.raises(ValueError, match=r"label_from='3'. .*\['three', 'eight'\]"):
        class_morph("3", "eight", checkpoint_dir=named_checkpoint)  # a name, not an index


def run_cli(args, cwd):
    return subprocess.run([PYTHON, "-m", "cwgan.interpolate", *args], cwd=str(cwd),
                          env=subprocess_env(), capture_output=True, text=True, timeout=300,
                          check=False)


def test_cli_draws_a_morph_png(checkpoint_37, tmp_path):
    proc = run_cli([f"--checkpoint_dir={checkpoint_37}", "--kind=morph", "--from_label=3",
                    "--to_label=7", "--steps=4", "--n=2", "--out=morph.png"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "morph.png"
    assert (tmp_path / "morph.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_draws_a_colour_walk_of_a_class_given_by_name(named_checkpoint, tmp_path):
    proc = run_cli([f"--checkpoint_dir={named_checkpoint}", "--kind=walk", "--label=eight",
                    "--steps=3", "--n=2"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "walk_eight.png"
    assert (tmp_path / "walk_eight.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, expected", [
    (["--kind=morph", "--from_label=3", "--to_label=9"],
     ("Invalid value for flag `--to_label`. Received: to_label=9. Expected one of the "
      "classes the generator was trained on: [3, 7].")),
    (["--kind=morph", "--from_label=3"],
     "--kind=morph needs --from_label and --to_label; missing --to_label."),
    (["--kind=walk", "--label=x"],
     ("Invalid value for flag `--label`. Received: label='x'. Expected one of the classes "
      "the generator was trained on: [3, 7].")),
], ids=["untrained_class", "missing_label_flag", "unknown_name"])
def test_cli_bad_labels_are_usage_errors(checkpoint_37, tmp_path, args, expected):
    proc = run_cli([f"--checkpoint_dir={checkpoint_37}", *args], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())
