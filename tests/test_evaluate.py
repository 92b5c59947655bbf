"""The evaluator (classifier, reference, real floor) and the report; the measures
themselves are tested in test_metrics.py."""

import json
import logging
import os

import keras
import numpy as np
import pytest

import cwgan
from cwgan import load_mnist
from cwgan.data.loading import write_idx
from cwgan.evaluation.judge import make_judge, split_training
from cwgan.evaluation.report import report
from cwgan.evaluation.validation import DISTURBANCES, disturb, format_table, validate
from conftest import TEST_DATA


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Disjoint splits from the 200 shipped images: train 0..99, t10k 100..199."""
    images, labels = load_mnist(data_dir=TEST_DATA)
    pixels = np.round((images[..., 0] + 1) * 127.5).astype(np.uint8)
    d = tmp_path_factory.mktemp("evaldata")
    for prefix, part in (("train", slice(0, 100)), ("t10k", slice(100, 200))):
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", pixels[part])
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels[part].astype(np.uint8))
    return d


def test_evaluate_reports_generator_and_real_floor(checkpoint_37, data_dir, tmp_path):
    result = cwgan.evaluate_checkpoint(checkpoint_37, n_per_class=20, data_dir=data_dir,
                                       classifier_path=str(tmp_path / "judge.keras"))
    assert (tmp_path / "judge.keras").is_file()
    assert 0 <= result["classifier_accuracy"] <= 1
    for side in ("generator", "real"):
        m = result[side]
        assert set(m["cond_acc_per_class"]) == {"3", "7"}
        assert 0 <= m["cond_acc"] <= 1 and 0 <= m["memorisation"] <= 1
        assert m["fd"] >= 0 and m["fd_class_mean"] >= 0
        for key in ("precision", "recall", "coverage"):
            assert 0 <= m[key] <= 1, key
        assert m["density"] >= 0 and m["kid_std"] >= 0 and np.isfinite(m["kid"])
    assert result["generator"]["n"] == 40
    # Grey digits: cond_acc is the shape's already; no second, shape-only judge.
    assert result["generator"]["cond_acc_shape"] is None
    assert not (tmp_path / "judge_shape.keras").exists()
    # Which real images each part uses, named: the test split, the training set's halves.
    sources = result["real_images"]
    assert sources["classifier"].startswith(f"all 100 images of the test split "
                                            f"({data_dir}/t10k-images")
    assert sources["reference"].startswith(f"11 of the 21 training images of classes [3, 7] "
                                           f"({data_dir}/train-images")
    assert sources["floor"].startswith("the other 10 of the 21 training images")
    assert result["real"]["n"] == 10  # up to n_per_class per class: all there are
    json.dumps(result)  # the CLI prints it as JSON


def test_memorisation_flags_copies_of_training_images(data_dir, tmp_path):
    judge = make_judge((3, 7), data_dir=data_dir,
                          classifier_path=str(tmp_path / "judge.keras"))
    copies = judge.metrics(judge.train_images, judge.train_labels)
    assert copies["memorisation"] == 1.0
    noise = np.random.default_rng(0).uniform(-1, 1, judge.train_images.shape).astype("float32")
    assert judge.metrics(noise, judge.train_labels)["memorisation"] == 0.0


def test_too_few_samples_is_refused(checkpoint_37):
    with pytest.raises(ValueError, match="n_per_class=5"):
        cwgan.evaluate_checkpoint(checkpoint_37, n_per_class=5)


def test_report_draws_png_and_measures_correlation(tmp_path):
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for i in range(1, 7):
            record = {"epoch": i, "generator_iterations": 10 * i,
                      "wasserstein_estimate": 1.0 / i, "critic_loss": -1.0 / i}
            if i % 2 == 0:
                record.update(fd=50.0 / i + 1, fd_class_mean=60.0 / i, cond_acc=0.1 * i,
                              memorisation=0.05)
            f.write(json.dumps(record) + "\n")
        f.write('{"epoch": 7, "generator_it')  # a torn last line is skipped
    result = report(str(tmp_path))
    assert result["n_points"] == 3
    assert result["pearson"] == pytest.approx(1.0) and result["spearman"] == pytest.approx(1.0)
    assert (tmp_path / "report.png").stat().st_size > 1000
    assert result["real_vs_generated"] is None  # no generator in the directory


def test_report_without_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No metrics.jsonl"):
        report(str(tmp_path))


def test_split_training_cuts_each_class_in_two_the_same_way_whatever_is_loaded(data_dir):
    images, labels = load_mnist(data_dir=data_dir)
    (ref, ref_labels), (floor, floor_labels) = split_training(images, labels)
    assert len(ref) + len(floor) == len(images)
    for c in range(10):
        n = np.sum(labels == c)
        assert np.sum(ref_labels == c) == (n + 1) // 2 and np.sum(floor_labels == c) == n // 2
    flat = lambda x: {a.tobytes() for a in x}  # noqa: E731
    assert not flat(ref) & flat(floor)  # no image on both sides
    # Digits 3 and 7 alone are cut exactly as within all ten.
    images37, labels37 = load_mnist((3, 7), data_dir=data_dir)
    (ref37, _), (floor37, _) = split_training(images37, labels37)
    keep = np.isin(ref_labels, (3, 7))
    np.testing.assert_array_equal(ref37, ref[keep])
    np.testing.assert_array_equal(floor37, floor[np.isin(floor_labels, (3, 7))])


def test_the_floor_is_the_training_images_the_reference_does_not_hold(data_dir, tmp_path):
    judge = make_judge((3, 7), data_dir=data_dir, classifier_path=str(tmp_path / "judge.keras"))
    assert len(judge.train_images) == 11 and len(judge.held_images) == 10
    # The reference itself is memorised entirely; the floor images are not in it.
    assert judge.metrics(judge.train_images, judge.train_labels)["memorisation"] == 1.0
    assert judge.metrics(judge.held_images, judge.held_labels)["memorisation"] < 1.0
    # The classifier's accuracy is measured on the floor: the real cond_acc at every image.
    assert judge.classifier_accuracy == judge.real_floor((3, 7), 10)["cond_acc"]


def test_features_span_three_layers_each_scaled_to_the_same_variance(data_dir, tmp_path):
    from cwgan.evaluation.judge import FEATURE_LAYERS

    judge = make_judge((3, 7), data_dir=data_dir, classifier_path=str(tmp_path / "judge.keras"))
    widths = [32, 64, 256]
    assert judge.train_features.shape == (11, sum(widths)) and len(FEATURE_LAYERS) == 3
    edges = np.cumsum([0] + widths)
    for lo, hi in zip(edges[:-1], edges[1:]):  # on the reference: 352 / 3 each
        assert np.var(judge.train_features[:, lo:hi], 0).sum() == pytest.approx(352 / 3)


def test_sample_measures_separate_fidelity_from_diversity_on_real_images(data_dir, tmp_path):
    judge = make_judge((3, 7), data_dir=data_dir, classifier_path=str(tmp_path / "judge.keras"))
    real = judge.metrics(judge.train_images, judge.train_labels)  # the reference itself
    assert real["precision"] == 1.0 and real["recall"] == 1.0 and real["coverage"] == 1.0
    one = np.repeat(judge.train_images[:1], len(judge.train_images), axis=0)
    collapsed = judge.metrics(one, judge.train_labels)  # one real image, repeated
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.2
    # k=5 balls around 11 points are wide: coverage falls, not to 0.
    assert collapsed["coverage"] < 0.5 and collapsed["kid"] > real["kid"]


def test_disturbances_leave_images_alone_at_zero_and_change_them_above():
    images, labels = load_mnist((3, 7), data_dir=TEST_DATA)
    for kind, strengths in DISTURBANCES.items():
        same = disturb(images, labels, kind, 0, (3, 7))
        np.testing.assert_array_equal(same[0], images)
        np.testing.assert_array_equal(same[1], labels)
        changed = disturb(images, labels, kind, strengths[-1], (3, 7))
        assert changed[0].shape == images.shape and changed[0].dtype == np.float32
        assert -1 <= changed[0].min() and changed[0].max() <= 1
        assert (not np.array_equal(changed[0], images)
                or not np.array_equal(changed[1], labels)), kind
    _, swapped = disturb(images, labels, "label_swap", 1.0, (3, 7))
    assert np.sum(swapped == 3) == np.sum(labels == 3)  # counts kept, about half changed
    assert 0.3 < np.mean(swapped != labels) < 0.7
    dropped, _ = disturb(images, labels, "class_drop", 1.0, (3, 7))
    flat = {a.tobytes() for a in images[labels == 7]}
    assert all(a.tobytes() in flat for a in dropped[labels == 3])  # every 3 is now a 7


def test_cas_trains_on_the_samples_and_tests_on_held_out_real_digits(data_dir, tmp_path):
    from cwgan.evaluation.judge import classification_accuracy_score

    images, labels = load_mnist(data_dir=TEST_DATA)
    right = classification_accuracy_score(images[:100], labels[:100], images[100:],
                                          labels[100:], epochs=40)
    shuffled = np.random.default_rng(0).permutation(labels[:100])
    wrong = classification_accuracy_score(images[:100], shuffled, images[100:],
                                          labels[100:], epochs=40)
    assert right > 0.5 and wrong < 0.3, (right, wrong)  # labels it can learn from, or not


def test_evaluate_with_cas_reports_it_for_samples_and_real_digits(checkpoint_37, data_dir,
                                                                   tmp_path):
    result = cwgan.evaluate_checkpoint(checkpoint_37, n_per_class=20, data_dir=data_dir,
                                       classifier_path=str(tmp_path / "judge.keras"),
                                       cas=True)
    for side in ("generator", "real"):
        assert 0 <= result[side]["cas"] <= 1
    assert result["cas_ratio"] == pytest.approx(result["generator"]["cas"]
                                                / result["real"]["cas"])
    json.dumps(result)


def test_validation_moves_the_measures_with_the_strength(data_dir, tmp_path):
    judge = make_judge((3, 7), data_dir=data_dir, classifier_path=str(tmp_path / "judge.keras"))
    rows = validate(judge, (3, 7), n_per_class=20,
                    disturbances={"speckle": (0, 0.2), "label_swap": (0, 1.0)})
    assert [(r["disturbance"], r["strength"]) for r in rows] == [
        ("none", 0), ("speckle", 0.2), ("label_swap", 1.0)]
    floor, speckle, swap = rows
    assert floor == judge.real_floor((3, 7), 20) | {"disturbance": "none", "strength": 0}
    assert speckle["fd"] > floor["fd"] and speckle["kid"] > floor["kid"]
    assert speckle["precision"] < floor["precision"]
    assert speckle["roughness"] > 1.5 * floor["roughness"]
    # Swapped labels leave the set of images, so the overall measures, as they were; the
    # per-class ones see it (cond_acc too, with a classifier trained on more than 50 images).
    for key in ("fd", "precision", "recall", "density", "coverage", "kid", "roughness"):
        assert swap[key] == pytest.approx(floor[key]), key
    assert swap["fd_per_class"] != floor["fd_per_class"]
    table = format_table(rows).splitlines()
    assert table[0].startswith("| disturbance | strength | cond_acc | fd |")
    assert len(table) == 2 + 3 and table[3].startswith("| speckle | 0.2 | ")
    from cwgan.evaluation.report import draw_validation
    draw_validation(rows, str(tmp_path / "validation.png"))
    assert (tmp_path / "validation.png").stat().st_size > 0


def test_real_vs_generated_shows_real_and_generated_rows_per_class(checkpoint_37, data_dir,
                                                                  tmp_path):
    from cwgan.evaluation.report import real_vs_generated

    path = real_vs_generated(checkpoint_37, str(tmp_path / "rvg.png"), data_dir, n=4)
    from matplotlib.image import imread
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 2 * 28 and image.shape[1] > 8 * 28
    # Mismatched halves are refused, naming both shapes.
    from cwgan.evaluation.report import draw_real_vs_generated
    with pytest.raises(ValueError, match=r"real \(2, 4, 28, 28\), generated \(2, 3, 28, 28\)"):
        draw_real_vs_generated(np.zeros((2, 4, 28, 28)), np.zeros((2, 3, 28, 28)), (3, 7),
                               str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


# Any data cwgan trains on: a folder of colour images (issue 13).

def _finite_measures(m):
    for key in ("cond_acc", "fd", "fd_class_mean", "memorisation", "precision", "recall",
                "density", "coverage", "kid", "kid_std", "roughness", "tone_spread"):
        assert m[key] is not None and np.isfinite(m[key]), key
    return m


def test_a_colour_folder_run_is_judged_on_its_own_held_out_images(colour_checkpoint,
                                                                  colour_folder):
    from cwgan.evaluation.judge import default_classifier_path

    # No data_dir: the run's train_config.json names the folder.
    result = cwgan.evaluate_checkpoint(colour_checkpoint, n_per_class=20, cas=True,
                                       classifier_epochs=2)
    digits = {str(d) for d in range(10)}
    for side in ("generator", "real"):
        m = _finite_measures(result[side])
        assert set(m["cond_acc_per_class"]) == digits == set(m["fd_per_class"])
        assert 0 <= m["cas"] <= 1
    assert result["generator"]["n"] == 200 and np.isfinite(result["cas_ratio"])
    held_out = cwgan.load_data(data_dir=colour_folder, split="test")
    assert result["real_images"]["classifier"].startswith(
        f"all {len(held_out)} held-out images ({colour_folder} (test)")
    # The classifier is cached under the held-out images' shape and content hash, the
    # shape judge of colour images beside it.
    path = default_classifier_path("folder", held_out)
    assert os.path.isfile(path)
    assert f"32x32x3_{held_out.info['sha256'][:16]}" in os.path.basename(path)
    assert os.path.isfile(path.replace(".keras", "_shape.keras"))
    for side in ("generator", "real"):
        m = result[side]
        assert 0 <= m["cond_acc_shape"] <= 1
        assert set(m["cond_acc_shape_per_class"]) == digits
    json.dumps(result)


def test_the_shape_judge_sees_neither_colour_nor_polarity():
    from cwgan.data.demo import class_colours
    from cwgan.evaluation.judge import Judge, build_classifier, shape_view

    images, labels = load_mnist(data_dir=TEST_DATA)
    ink_share = (images[:20] + 1.0) / 2  # (20, 28, 28, 1) in [0, 1]
    labels = labels[:20]

    def colour(seed):  # ink and paper colours per class, as cwgan.coloured_digits draws
        ink, paper = class_colours(10, seed)
        rgb = paper[labels, None, None] * (1 - ink_share) + ink[labels, None, None] * ink_share
        return (2 * rgb - 1).astype(np.float32)

    # The same digits in two colourings: other ink and paper per class, and in the
    # second some classes light on dark where the first has them dark on light.
    first, second = colour(0), colour(1)
    a, b = np.asarray(shape_view(first)), np.asarray(shape_view(second))
    assert a.shape == (20, 28, 28, 1)
    np.testing.assert_allclose(a.mean((1, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(a.std((1, 2, 3)), 1.0, atol=1e-3)
    same_sign = np.abs(a - b).max((1, 2, 3)) < 1e-3
    flipped = np.abs(a + b).max((1, 2, 3)) < 1e-3
    assert np.all(same_sign | flipped) and flipped.any()
    # The judge reads both polarities: two colourings of a shape get the same answer,
    # where the colour classifier's differ.
    keras.utils.set_random_seed(0)
    judge = Judge(build_classifier((28, 28, 3), 10), first, labels, first, labels,
                  shape_classifier=build_classifier((28, 28, 1), 10))
    np.testing.assert_allclose(judge.shape_probabilities(first),
                               judge.shape_probabilities(second), atol=1e-5)
    assert not np.allclose(judge.classifier.predict(first, verbose=0),
                           judge.classifier.predict(second, verbose=0), atol=1e-3)


def test_another_folder_gets_its_own_classifier_and_its_class_names(colour_folder,
                                                                    tmp_path):
    from cwgan.evaluation.judge import Judge, build_classifier, default_classifier_path

    images, labels = load_mnist(data_dir=TEST_DATA)
    grey = np.round((images[..., 0] + 1.0) * 127.5).astype(np.uint8)
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    other = cwgan.write_image_folder(tmp_path / "other", cwgan.coloured_digits(
        grey, labels, seed=1), labels, names)  # other colours, named classes
    held_out = {d: cwgan.load_data(data_dir=d, split="test") for d in (colour_folder, other)}
    paths = {d: default_classifier_path("folder", h) for d, h in held_out.items()}
    assert paths[colour_folder] != paths[other]
    for d in paths:
        assert held_out[d].info["sha256"][:16] in os.path.basename(paths[d])
    # Per-class figures are keyed by the classes' names.
    data = cwgan.load_data(data_dir=other)
    keep = np.concatenate([np.flatnonzero(data.labels == c)[:4] for c in range(10)])
    real, real_labels = data.take(keep), data.labels[keep]
    judge = Judge(build_classifier((32, 32, 3), 10), real, real_labels, real, real_labels,
                  class_names=data.class_names)
    m = judge.metrics(real, real_labels)
    assert data.class_names == tuple(sorted(names))
    assert set(m["cond_acc_per_class"]) == set(m["fd_per_class"]) == set(names)


def test_a_judge_that_cannot_classify_the_real_images_says_so(colour_folder, caplog):
    from cwgan.evaluation.judge import Judge, build_classifier

    data = cwgan.load_data(data_dir=colour_folder)
    keep = np.concatenate([np.flatnonzero(data.labels == c)[:4] for c in range(10)])
    real, real_labels = data.take(keep), data.labels[keep]
    keras.utils.set_random_seed(0)
    untrained = build_classifier(data.image_shape, data.num_classes)
    with caplog.at_level(logging.WARNING, logger="cwgan"):
        judge = Judge(untrained, real, real_labels, real, real_labels)
    assert judge.classifier_accuracy < 0.55
    assert f"puts only {judge.classifier_accuracy:.3f} of the real floor" in caplog.text


def test_a_folder_run_names_its_data_and_mnist_runs_share_one_yardstick(
        checkpoint_37, colour_checkpoint, colour_folder):
    from cwgan.evaluation.judge import checkpoint_data

    _, info = cwgan.load_generator(colour_checkpoint)
    assert checkpoint_data(colour_checkpoint, info) == ("folder", colour_folder, None)
    # Trained on TEST_DATA's digits, judged on Keras' MNIST as every MNIST run is.
    _, info = cwgan.load_generator(checkpoint_37)
    assert checkpoint_data(checkpoint_37, info) == ("mnist", None, None)
    assert checkpoint_data(checkpoint_37, info, TEST_DATA) == ("mnist", TEST_DATA, None)


def test_a_generator_is_judged_only_against_the_data_it_was_trained_on(colour_checkpoint):
    with pytest.raises(ValueError, match="folder of class folders it was trained on"):
        cwgan.evaluate_checkpoint(colour_checkpoint, n_per_class=20, data_dir=TEST_DATA)


def _image_folder(root, counts):
    """`root/<split>/<class>/NN.png`: `counts[split][class]` grey 8x8 images."""
    import tensorflow as tf

    for split, classes in counts.items():
        for name, n in classes.items():
            os.makedirs(root / split / name)
            for i in range(n):
                pixels = np.full((8, 8, 1), 40 * i, np.uint8)
                (root / split / name / f"{i:02d}.png").write_bytes(
                    tf.io.encode_png(pixels).numpy())
    return root


def test_too_few_held_out_or_training_images_of_a_class_are_refused(tmp_path):
    # test/ lacks class b: the classifier could never learn it.
    no_b = _image_folder(tmp_path / "no_b", {"train": {"a": 6, "b": 6, "c": 6},
                                             "test": {"a": 2, "c": 2}})
    with pytest.raises(ValueError, match=r"class 'b' has 0 held-out images.*expected at "
                                         r"least 1 of each class"):
        make_judge((0, 1, 2), "folder", no_b)
    # Three training images of b: too few for a reference and a floor of two each.
    three = _image_folder(tmp_path / "three", {"train": {"a": 6, "b": 3},
                                               "test": {"a": 2, "b": 2}})
    with pytest.raises(ValueError, match=r"training images of class 'b' .*: 3\. Expected at "
                                         r"least 4"):
        make_judge((0, 1), "folder", three)


def test_disturbances_of_colour_images_keep_their_colours():
    images, labels = load_mnist((3, 7), data_dir=TEST_DATA)
    grey = np.round((images[..., 0] + 1.0) * 127.5).astype(np.uint8)
    rgb = cwgan.coloured_digits(grey, labels).astype(np.float32) / 127.5 - 1.0
    for kind, strengths in DISTURBANCES.items():
        same = disturb(rgb, labels, kind, 0, (3, 7))
        np.testing.assert_array_equal(same[0], rgb)
        changed, changed_labels = disturb(rgb, labels, kind, strengths[-1], (3, 7))
        assert changed.shape == rgb.shape and changed.dtype == np.float32
        assert -1 <= changed.min() and changed.max() <= 1
        assert not np.array_equal(changed, rgb) or not np.array_equal(changed_labels,
                                                                      labels), kind
    speckled, _ = disturb(rgb, labels, "speckle", 0.1, (3, 7))
    hit = np.any(speckled != rgb, -1)
    assert 0.05 < hit.mean() < 0.15  # a share of pixels, each black or white in all channels
    assert set(np.unique(speckled[hit])) <= {-1.0, 1.0}
    assert np.all(speckled[hit].min(-1) == speckled[hit].max(-1))
    # Blur and holes use each image's paper colour: the corners keep theirs.
    paper = np.median(rgb.reshape(len(rgb), -1, 3), 1)
    for kind, strength in (("blur", 1.5), ("broken_strokes", 8)):
        out, _ = disturb(rgb, labels, kind, strength, (3, 7))
        np.testing.assert_allclose(out[:, 0, 0], rgb[:, 0, 0], atol=1e-5)
    holes, _ = disturb(rgb, labels, "broken_strokes", 8, (3, 7))
    cut = np.any(holes != rgb, -1)
    assert cut.any()
    np.testing.assert_array_equal(holes[cut], np.broadcast_to(
        paper[:, None, None], holes.shape)[cut])


def test_the_classifier_takes_any_shape_and_keeps_mnists():
    from cwgan.evaluation.judge import FEATURE_LAYERS, build_classifier

    mnist = build_classifier()
    assert mnist.input_shape == (None, 28, 28, 1) and mnist.output_shape == (None, 10)
    assert [layer.name for layer in mnist.layers if layer.name.startswith("block")] == [
        "block1", "block2"]
    big = build_classifier((128, 128, 3), 4)
    assert big.output_shape == (None, 4)
    assert all(big.get_layer(name) for name in FEATURE_LAYERS + ("block3", "block4"))
    # Blocks until the map is 8x8: the dense layer's input stays small.
    assert big.get_layer("features").input.shape[-1] == 8 * 8 * 128


def test_real_vs_generated_draws_colour_rows_from_the_runs_own_folder(colour_checkpoint,
                                                                     tmp_path):
    from matplotlib.image import imread

    from cwgan.evaluation.report import real_vs_generated

    path = real_vs_generated(colour_checkpoint, str(tmp_path / "rvg.png"), n=2)
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 10 * 32 and image.shape[1] > 4 * 32
    # The real half is in colour: its pixels are not all grey.
    assert np.abs(image[..., 0] - image[..., 1]).max() > 0.2
