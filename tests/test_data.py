"""load_mnist and make_dataset: sources, fallback, scaling, filtering, errors."""

import gzip
import logging

import keras
import numpy as np
import pytest

import cwgan
from cwgan.data.loading import make_stream
from cwgan.data.loading import write_idx
from conftest import TEST_DATA, tiny_model


def test_idx_dir_gives_scaled_images_and_int_labels():
    images, labels = cwgan.load_mnist(data_dir=TEST_DATA)
    assert images.shape == (200, 28, 28, 1) and images.dtype == np.float32
    assert labels.shape == (200,) and labels.dtype == np.int32
    assert images.min() == -1.0 and images.max() == 1.0
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]  # the first official training labels


def test_digits_keeps_only_those_classes():
    _, all_labels = cwgan.load_mnist(data_dir=TEST_DATA)
    images, labels = cwgan.load_mnist(digits=[7, 3], data_dir=TEST_DATA)
    assert set(labels.tolist()) == {3, 7}
    assert len(images) == np.isin(all_labels, [3, 7]).sum()


def test_npz_dir_is_read(tmp_path):
    x = np.zeros((6, 28, 28), np.uint8)
    x[:, 10, 10] = 255
    y = np.array([0, 1, 2, 0, 1, 2], np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    images, labels = cwgan.load_mnist(digits=[1, 2], data_dir=tmp_path)
    assert images.shape == (4, 28, 28, 1) and labels.tolist() == [1, 2, 1, 2]
    assert images[0, 10, 10, 0] == 1.0 and images[0, 0, 0, 0] == -1.0


def test_offline_falls_back_to_the_bundled_subset_and_says_so(monkeypatch, caplog):
    def offline():
        raise Exception("URL fetch failure: Name or service not known")
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with caplog.at_level(logging.WARNING, logger="cwgan"):
        images, labels = cwgan.load_mnist(digits=[0])
    assert len(images) == 1001  # digit 0 in the first 10,000 official training images
    assert "failed" in caplog.text and "bundled" in caplog.text
    test_images, _ = cwgan.load_mnist(split="test")
    assert len(test_images) == 10000


def test_fashion_mnist_offline_uses_debians_copy_and_names_the_grid_rows(
        monkeypatch, tmp_path, caplog):
    from cwgan.data import loading as data

    def offline():
        raise Exception("URL fetch failure: Name or service not known")
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    raw = data.read_idx(f"{TEST_DATA}/train-images-first200-idx3-ubyte.gz")
    raw_labels = data.read_idx(f"{TEST_DATA}/train-labels-first200-idx1-ubyte.gz")
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", raw)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", raw_labels)
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion_mnist", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="cwgan"):
        images, labels = cwgan.load_mnist(digits=[8, 9], dataset="fashion_mnist")
    assert len(images) == np.isin(raw_labels, [8, 9]).sum()
    assert str(tmp_path) in caplog.text

    model = tiny_model(classes=[8, 9])
    grid = cwgan.SampleGrid(tmp_path / "grids", class_names=data.CLASS_NAMES["fashion_mnist"])
    grid.set_model(model)
    grid.on_train_begin()
    assert grid.row_labels == ["Bag", "Ankle boot"]


def test_keras_loader_is_used_when_it_works(monkeypatch):
    x = np.full((4, 28, 28), 255, np.uint8)
    y = np.array([1, 1, 2, 2], np.uint8)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((x, y), (x, y)))
    images, labels = cwgan.load_mnist(digits=[1, 2])
    assert len(images) == 4 and images.max() == 1.0


def test_truncated_idx_file_is_named(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((3,), np.uint8))
    raw = gzip.open(tmp_path / "train-images-idx3-ubyte.gz").read()
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(raw[:-10])
    with pytest.raises(ValueError, match="Truncated.*train-images-idx3-ubyte.gz"):
        cwgan.load_mnist(data_dir=tmp_path)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"digits": [10]}, ValueError, r"\[10\] not in 0..9"),
    ({"digits": [3, 3]}, ValueError, "repeats"),
    ({"digits": []}, ValueError, "empty"),
    ({"digits": "37"}, ValueError, "digits='37'"),
    ({"dataset": "cifar"}, ValueError, "dataset='cifar'"),
    ({"split": "val"}, ValueError, "split='val'"),
    ({"data_dir": "/nonexistent/dir"}, FileNotFoundError, "/nonexistent/dir"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    kwargs.setdefault("data_dir", TEST_DATA)
    with pytest.raises(error, match=match):
        cwgan.load_mnist(**kwargs)


def test_empty_dir_says_what_it_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images"):
        cwgan.load_mnist(data_dir=tmp_path)


def test_make_dataset_groups_n_critic_batches_with_fixed_shape(data):
    images, labels = data
    ds = cwgan.make_dataset(images, labels, batch_size=16, n_critic=3, seed=0)
    assert ds.element_spec[0].shape.as_list() == [48, 28, 28, 1]
    assert ds.element_spec[1].shape.as_list() == [48]
    assert sum(1 for _ in ds) == 200 // 48


def test_make_dataset_refuses_a_batch_larger_than_the_data(data):
    images, labels = data
    with pytest.raises(ValueError, match="batch_size=64 with n_critic=5.*200"):
        cwgan.make_dataset(images, labels, batch_size=64, n_critic=5)


def test_make_stream_is_addressable_by_step_and_covers_each_pass_once(data):
    images, labels = data
    per_pass = len(images) // 8  # batch 4, n_critic 2: 25 steps per pass
    whole = [y.numpy() for _, y in make_stream(images, labels, 4, 2, seed=3).take(60)]
    tail = [y.numpy() for _, y in make_stream(images, labels, 4, 2, seed=3,
                                              start_step=37).take(23)]
    for a, b in zip(whole[37:], tail):
        np.testing.assert_array_equal(a, b)
    first_pass = np.concatenate([x.numpy() for x, _ in make_stream(
        images, labels, 4, 2, seed=3).take(per_pass)])
    assert len({row.tobytes() for row in first_pass}) == per_pass * 8  # no image twice
    assert not all((a == b).all() for a, b in zip(whole[:per_pass], whole[per_pass:]))
    other_seed = [y.numpy() for _, y in make_stream(images, labels, 4, 2, seed=4).take(5)]
    assert not all((a == b).all() for a, b in zip(whole[:5], other_seed))
