"""The quality metrics: Fréchet distance, memorisation, the evaluator and the report."""

import json

import numpy as np
import pytest

import cwgan
from cwgan import load_mnist
from cwgan.evaluate_lib import frechet_distance, make_judge, nearest_distances
from cwgan.report_lib import report
from cwgan.data import write_idx
from conftest import TEST_DATA


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3)) * [1.0, 2.0, 0.5]
    b = rng.standard_normal((20000, 3)) * [2.0, 2.0, 0.5] + [1.0, 0.0, 0.0]
    # |mu|^2 + sum (sigma_a - sigma_b)^2 = 1 + 1
    assert frechet_distance(a, b) == pytest.approx(2.0, abs=0.1)
    assert abs(frechet_distance(a, a)) < 1e-6


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(1)
    q, r = rng.standard_normal((7, 28, 28)), rng.standard_normal((30, 28, 28))
    brute = np.sqrt(((q[:, None] - r[None]) ** 2).sum((2, 3))).min(1)
    np.testing.assert_allclose(nearest_distances(q, r, chunk=3), brute, rtol=1e-4)


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
    assert result["generator"]["n"] == 40
    # Which real images each part uses, named: the test split's halves and the training set.
    sources = result["real_images"]
    assert sources["classifier"].startswith(f"50 images: the first half of the test split "
                                            f"({data_dir}/t10k-images")
    assert sources["reference"].startswith(f"21 training images of classes [3, 7] "
                                           f"({data_dir}/train-images")
    assert sources["floor"].startswith(f"the second half of the test split ({data_dir}/t10k")
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


def test_report_without_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No metrics.jsonl"):
        report(str(tmp_path))
