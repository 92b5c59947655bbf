"""Your own images: folders of class folders, other sizes and colours, streamed or in memory."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest

import cwgan
from cwgan import class_colour_share
from cwgan.data import loading as data_lib
from cwgan.data import folder as folder_lib
from conftest import TEST_DATA, class_norm_embeddings


def _grey_digits(n=200):
    images, labels = cwgan.load_mnist(data_dir=TEST_DATA)
    return np.round((images[:n, ..., 0] + 1.0) * 127.5).astype(np.uint8), labels[:n]


def _snapshot(root):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(root) for f in files}


def test_a_colour_folder_loads_with_its_classes_shape_and_splits(colour_folder):
    train = cwgan.load_data(data_dir=colour_folder)
    test = cwgan.load_data(data_dir=colour_folder, split="test")
    assert train.class_names == tuple(str(d) for d in range(10))
    assert train.image_shape == (32, 32, 3) and train.dataset == "folder"
    assert train.images.dtype == np.uint8 and train.images.shape == (len(train), 32, 32, 3)
    # Every file is in exactly one split; about one in ten is held out.
    files = {os.path.join(d, f) for d, _, fs in os.walk(colour_folder) for f in fs}
    assert len(train) + len(test) == len(files) == 200
    assert 5 <= len(test) <= 40
    assert train.info["images"] == len(train) and len(train.info["sha256"]) == 64
    # The pixels and labels are those of the coloured digits written (PNG is lossless).
    grey, labels = _grey_digits()
    written = {image.tobytes(): label
               for image, label in zip(cwgan.coloured_digits(grey, labels), labels)}
    assert all(written[image.tobytes()] == label
               for image, label in zip(train.images, train.labels))


def test_streamed_and_in_memory_give_the_same_steps_and_resume_mid_stream(colour_folder):
    memory = cwgan.load_data(data_dir=colour_folder, data_cache="memory")
    disk = cwgan.load_data(data_dir=colour_folder, data_cache="none")
    assert disk.images is None and len(disk.paths) == len(memory)
    assert disk.info == memory.info
    a = list(memory.stream(batch_size=8, n_critic=2, seed=3).take(12))
    b = list(disk.stream(batch_size=8, n_critic=2, seed=3).take(12))
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.shape == (16, 32, 32, 3) and xa.dtype == "float32"
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    assert -1.0 <= float(np.min(a[0][0])) and float(np.max(a[0][0])) <= 1.0
    # Step 10 of a stream started at step 10 is step 10 of the whole stream.
    resumed = next(iter(disk.stream(batch_size=8, n_critic=2, seed=3, start_step=10)))
    np.testing.assert_array_equal(resumed[0].numpy(), a[10][0].numpy())
    # One pass shows each image once.
    per_pass = len(memory) // 16
    seen = np.concatenate([y.numpy() for _, y in a[:per_pass]])
    assert np.array_equal(np.bincount(seen, minlength=10),
                          np.bincount(np.concatenate(
                              [y.numpy() for _, y in b[:per_pass]]), minlength=10))


def test_image_size_resizes_and_jpeg_and_grey_folders_load(tmp_path):
    grey, labels = _grey_digits(60)
    root = cwgan.write_image_folder(tmp_path / "grey", grey, labels % 3, ["a", "b", "c"],
                                    image_format="jpeg")
    data = cwgan.load_data(data_dir=root)
    assert data.image_shape == (28, 28, 1) and data.class_names == ("a", "b", "c")
    # The same images resized, in memory or streamed: the same pixels in [-1, 1], and
    # close to the originals (a resize keeps the mean tone).
    original = data.take(np.arange(len(data))).mean(axis=(1, 2, 3))
    for cache in ("memory", "none"):
        resized = cwgan.load_data(data_dir=root, image_size=32, data_cache=cache)
        assert resized.image_shape == (32, 32, 1) and resized.info["image_size"] == 32
        x, _ = next(iter(resized.stream(batch_size=4, n_critic=1)))
        assert x.shape == (4, 32, 32, 1)
        assert -1.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
        taken = resized.take(np.arange(len(resized)))
        assert taken.min() >= -1.0 and taken.max() <= 1.0
        np.testing.assert_allclose(taken.mean(axis=(1, 2, 3)), original, atol=0.02)


def test_class_colour_share_says_whether_colour_tells_the_class():
    grey, labels = _grey_digits(200)
    by_class = cwgan.coloured_digits(grey, labels)
    by_image = cwgan.coloured_digits(grey, labels, colours="image")
    assert class_colour_share(by_class, labels) > 0.9
    assert class_colour_share(by_image, labels) < 0.1
    assert class_colour_share(np.zeros((4, 2, 2, 3)), np.array([0, 0, 1, 1])) == 0.0
    with pytest.raises(ValueError, match=r"labels \(N,\).*\(4, 2, 2, 3\) and \(3,\)"):
        class_colour_share(np.zeros((4, 2, 2, 3)), np.zeros(3))


def test_the_images_colour_picks_the_generator_conditioning(tmp_path):
    grey, labels = _grey_digits(40)
    folders = {"grey": cwgan.write_image_folder(tmp_path / "grey", grey, labels % 2,
                                                ["even", "odd"]),
               # seed=1: a pair of class colours far apart, so that the share lies well
               # above the threshold (seed 0's pair lies close to it).
               "colour": cwgan.write_image_folder(tmp_path / "colour", cwgan.coloured_digits(
                   grey, labels % 2, seed=1), labels % 2, ["even", "odd"]),
               "image_colours": cwgan.write_image_folder(
                   tmp_path / "image_colours", cwgan.coloured_digits(
                       grey, labels % 2, colours="image"), labels % 2, ["even", "odd"])}
    config = cwgan.TrainConfig(jit_compile=False, latent_dim=8, width=4)
    assert config.generator_conditioning is None  # left to the data

    def generator(config, folder, data_cache="auto"):
        data = cwgan.load_data(data_dir=folder, data_cache=data_cache)
        return cwgan.build_model(config, data).generator

    def per_class_norms(config, folder):
        return class_norm_embeddings(generator(config, folder))

    def label_planes(config, folder, data_cache="auto"):
        return sum(isinstance(layer, keras.layers.CategoryEncoding)
                   for layer in generator(config, folder, data_cache).layers)

    assert per_class_norms(config, folders["grey"]) == 0
    assert label_planes(config, folders["grey"]) == 0
    # Colour per class: a scale and offset per class. Colour per image, in memory or
    # streamed from the files: label planes.
    assert per_class_norms(config, folders["colour"]) > 0
    assert label_planes(config, folders["colour"]) == 0
    assert per_class_norms(config, folders["image_colours"]) == 0
    assert label_planes(config, folders["image_colours"]) > 0
    assert label_planes(config, folders["image_colours"], data_cache="none") > 0
    # Asked for, either holds whatever the images.
    assert per_class_norms(dataclasses.replace(config, generator_conditioning="norm"),
                           folders["grey"]) > 0
    assert per_class_norms(dataclasses.replace(config, generator_conditioning="input"),
                           folders["colour"]) == 0


def _write(path, contents):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(contents)


@pytest.fixture()
def small_folder(tmp_path):
    grey, labels = _grey_digits(40)
    return cwgan.write_image_folder(tmp_path / "small", grey, labels % 2, ["even", "odd"])


def _png(shape, seed=0):
    import tensorflow as tf
    image = np.random.default_rng(seed).integers(0, 256, shape, np.uint8)
    return tf.io.encode_png(image).numpy()


@pytest.mark.parametrize("damage, error, match", [
    (lambda r: _write(os.path.join(r, "odd", "broken.png"), b"\x89PNG\r\n\x1a\nnot really"),
     ValueError, r"Cannot decode image .*odd.broken\.png"),
    (lambda r: _write(os.path.join(r, "even", "notes.txt"), b"hello"),
     ValueError, r"Not image files in .*even.notes\.txt"),
    (lambda r: os.makedirs(os.path.join(r, "empty")),
     ValueError, r"Class folder .*empty has no images"),
    (lambda r: _write(os.path.join(r, "odd", "big.png"), _png((40, 40, 1))),
     ValueError, r"different sizes: .* is 28x28, .*big\.png is 40x40.*image_size"),
    (lambda r: _write(os.path.join(r, "odd", "rgb.png"), _png((28, 28, 3))),
     ValueError, r"different channel counts: .* has 1, .*rgb\.png has 3"),
])
def test_bad_folders_are_refused_naming_the_file_and_left_unchanged(small_folder, damage,
                                                                    error, match):
    damage(small_folder)
    before = _snapshot(small_folder)
    with pytest.raises(error, match=match):
        cwgan.load_data(data_dir=small_folder)
    assert _snapshot(small_folder) == before


def test_a_single_class_or_no_class_folder_is_refused(tmp_path):
    _write(str(tmp_path / "one" / "cat" / "a.png"), _png((28, 28, 1)))
    with pytest.raises(ValueError, match=r"only the class folder 'cat'.*at least 2 classes"):
        cwgan.load_data(data_dir=tmp_path / "one")
    with pytest.raises(FileNotFoundError, match=r"data_dir=.*nowhere.*not a directory"):
        cwgan.load_data(data_dir=tmp_path / "nowhere")


def test_unsupported_sizes_are_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match=r"size 30.*\[16, 20, 24, 28, 32"):
        cwgan.build_generator(image_shape=(30, 30, 3))
    with pytest.raises(ValueError, match=r"\(28, 28, 2\)"):
        cwgan.build_critic(image_shape=(28, 28, 2))


def test_the_check_is_cached_until_a_file_changes(small_folder, monkeypatch):
    first = cwgan.load_data(data_dir=small_folder)
    calls = []
    original = folder_lib._check_all
    monkeypatch.setattr(folder_lib, "_check_all",
                        lambda *a: calls.append(1) or original(*a))
    assert cwgan.load_data(data_dir=small_folder).info == first.info
    assert not calls
    path = os.path.join(small_folder, "odd", sorted(os.listdir(
        os.path.join(small_folder, "odd")))[0])
    _write(path, _png((28, 28, 1), seed=5))
    changed = cwgan.load_data(data_dir=small_folder)
    assert calls and changed.info["sha256"] != first.info["sha256"]


def test_cifar10_offline_is_a_clear_error(monkeypatch):
    def offline():
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/: None")
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(FileNotFoundError, match=r"cifar10.load_data\(\) failed \(URL fetch "
                       r"failure.*internet.*data_dir"):
        cwgan.load_data("cifar10")


def test_cifar10_through_keras_loader_has_its_names_and_shape(monkeypatch):
    rng = np.random.default_rng(0)
    fake = ((rng.integers(0, 256, (30, 32, 32, 3), np.uint8), np.arange(30)[:, None] % 10),
            (rng.integers(0, 256, (10, 32, 32, 3), np.uint8), np.arange(10)[:, None]))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: fake)
    data = cwgan.load_data("cifar10", classes=[3, 5])
    assert data.image_shape == (32, 32, 3) and data.class_names[3] == "cat"
    assert sorted(set(data.labels.tolist())) == [3, 5] and len(data) == 6


@pytest.mark.parametrize("shape, classes", [((64, 64, 1), 3), ((16, 16, 3), 100)])
def test_networks_and_a_train_step_follow_the_data(shape, classes):
    keras.utils.set_random_seed(0)
    names = [f"class {i}" for i in range(classes)]
    model = cwgan.ConditionalWGAN(
        cwgan.build_generator(8, classes, width=4, embedding_dim=4, image_shape=shape),
        cwgan.build_critic(classes, width=4, image_shape=shape), latent_dim=8,
        n_critic=2, num_classes=classes, class_names=names, clip_value=0.01)
    model.compile(jit_compile=False)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2 * classes * 2,) + shape).astype(np.float32)
    labels = np.arange(len(images)) % classes
    model.fit(cwgan.make_dataset(images, labels, batch_size=classes, n_critic=2),
              epochs=1, verbose=0)
    assert model.image_shape == shape and model.class_names[-1] == f"class {classes - 1}"
    assert int(model.generator_iterations.numpy()) == 2  # 4 * classes images, 2 * classes a step
    for v in model.critic.trainable_variables:  # the clip holds at any shape
        assert float(np.max(np.abs(v.numpy()))) <= 0.01 + 1e-7
    out = model.generator([rng.standard_normal((3, 8)).astype(np.float32),
                           np.array([0, 1, classes - 1])])
    assert out.shape == (3,) + shape


def test_train_on_a_folder_samples_by_name_and_resumes(tmp_path):
    grey, labels = _grey_digits(120)
    names = ["a_zero", "b_one", "c_two"]  # folders are sorted by name
    keep = labels < 3
    root = cwgan.write_image_folder(tmp_path / "three",
                                    cwgan.coloured_digits(grey[keep], labels[keep]),
                                    labels[keep], names)
    config = cwgan.TrainConfig(steps=4, steps_per_epoch=2, batch_size=4, n_critic=2,
                               jit_compile=False, latent_dim=8, width=4, data_dir=str(root),
                               data_cache="none", checkpoint_dir=str(tmp_path / "ck"),
                               verbose=0)
    cwgan.train_model(dataclasses.replace(config, steps=2))
    # Colour images: the recipe's generator gives each class its own batch-norm scale and
    # offset, and the run records that choice (a resume is checked against it).
    saved = json.loads((tmp_path / "ck" / "train_config.json").read_text())
    assert saved["generator_conditioning"] == "norm"
    resumed = cwgan.training.run.prepare(config)
    assert resumed.start_step == 2
    assert resumed.model.class_names == tuple(names)
    assert resumed.model.image_shape == (32, 32, 3)
    resumed.fit()
    assert int(resumed.model.train_steps.numpy()) == 4
    cats = cwgan.sample(label="c_two", n=3, seed=0, checkpoint_dir=tmp_path / "ck")
    assert cats.shape == (3, 32, 32, 3) and 0.0 <= cats.min() and cats.max() <= 1.0
    np.testing.assert_allclose(cats, cwgan.sample(label=2, n=3, seed=0,
                                                  checkpoint_dir=tmp_path / "ck"))
    with pytest.raises(ValueError, match=r"'three' is not a class name.*'a_zero', 'b_one'"):
        cwgan.sample(label="three", checkpoint_dir=tmp_path / "ck")
    # Other data in the same checkpoint directory is refused, naming both.
    other = cwgan.write_image_folder(tmp_path / "other", cwgan.coloured_digits(
        grey[keep][::-1], labels[keep][::-1]), labels[keep][::-1], names)
    with pytest.raises(ValueError, match=r"data: saved .*three.*asked .*other"):
        cwgan.training.run.prepare(dataclasses.replace(config, data_dir=str(other)))


def test_the_grid_rows_carry_the_class_names(tmp_path, colour_checkpoint):
    import matplotlib.image
    grids = sorted(os.listdir(os.path.join(colour_checkpoint, "samples")))
    assert grids
    png = matplotlib.image.imread(os.path.join(colour_checkpoint, "samples", grids[-1]))
    # Colour tiles: the channels differ somewhere (a grey grid has R == G == B).
    assert png.ndim == 3 and np.abs(png[..., 0] - png[..., 1]).max() > 0.05
    assert data_lib.CLASS_NAMES["cifar10"][3] == "cat"
