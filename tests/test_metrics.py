"""The sample-quality measures on Gaussians whose answers are known."""

import numpy as np
import pytest

from cwgan.evaluation.metrics import (density_coverage, frechet_distance,
                                      kernel_inception_distance, knn_radii, nearest_distances,
                                      precision_recall, roughness, tone_spread)

D = 8


def gaussian(n, seed, shift=0.0):
    return np.random.default_rng(seed).standard_normal((n, D)) + shift


@pytest.fixture(scope="module")
def real():
    return gaussian(1000, 0)


def test_identical_sets_score_perfect(real):
    assert precision_recall(real, real) == (1.0, 1.0)
    density, coverage = density_coverage(real, real)
    assert coverage == 1.0 and density == pytest.approx(1.2, abs=0.15)  # own ball + ~k
    # Not exactly 0: the unbiased estimator leaves out k(x, x) within a set but not across
    # the two (here the same), an O(1/n) offset; a shift by 1 scores about 8.
    mean, _ = kernel_inception_distance(real, real, n_subsets=5, subset_size=500)
    assert abs(mean) < 0.05


def test_a_second_sample_of_the_same_distribution_scores_near_perfect(real):
    other = gaussian(1000, 1)
    precision, recall = precision_recall(real, other)
    density, coverage = density_coverage(real, other)
    assert precision > 0.8 and recall > 0.8
    assert 0.8 < density < 1.2 and coverage > 0.9


def test_a_shifted_set_loses_precision_recall_and_gains_kid(real):
    near, far = gaussian(1000, 1), gaussian(1000, 1, shift=1.0)
    p_near, r_near = precision_recall(real, near)
    p_far, r_far = precision_recall(real, far)
    assert p_far < p_near - 0.2 and r_far < r_near - 0.2
    assert density_coverage(real, far)[1] < density_coverage(real, near)[1] - 0.2
    kid_near = kernel_inception_distance(real, near, n_subsets=20, subset_size=200)[0]
    kid_far = kernel_inception_distance(real, far, n_subsets=20, subset_size=200)[0]
    assert kid_far > 10 * abs(kid_near)


def test_a_collapsed_set_keeps_precision_and_loses_recall_and_coverage(real):
    collapsed = np.repeat(gaussian(1, 1) * 0.1, 1000, axis=0)  # one typical point
    precision, recall = precision_recall(real, collapsed)
    density, coverage = density_coverage(real, collapsed)
    assert precision == 1.0 and recall < 0.01 and coverage < 0.05
    assert density > 1  # piled up where the real data is densest


def test_kid_is_unbiased_at_small_sample_sizes():
    # Two samples of one distribution: the estimates centre on 0 and some are negative,
    # where FD (biased) would be clearly positive at 50 points in 8 dimensions.
    means = [kernel_inception_distance(gaussian(50, 2 * s), gaussian(50, 2 * s + 1),
                                       n_subsets=10, subset_size=50, seed=s)[0]
             for s in range(20)]
    assert min(means) < 0 < max(means)
    assert abs(np.mean(means)) < 2 * np.std(means) / np.sqrt(len(means))


def test_kid_reports_the_spread_over_subsets(real):
    mean, std = kernel_inception_distance(real, gaussian(1000, 1, shift=0.5), n_subsets=10,
                                          subset_size=100)
    assert mean > 0 and 0 < std < mean


def test_knn_radii_match_brute_force():
    x = gaussian(40, 3)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.testing.assert_allclose(knn_radii(x, 3, chunk=7), np.sort(d, 1)[:, 3], rtol=1e-4)


def test_k_beyond_the_set_is_refused():
    with pytest.raises(ValueError, match="k=3"):
        precision_recall(gaussian(3, 0), gaussian(3, 1))


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


def test_roughness_is_zero_when_flat_two_on_a_checkerboard_and_falls_with_blur():
    flat = np.full((3, 8, 8, 3), 0.4)
    checker = np.where(np.indices((8, 8)).sum(0) % 2 == 0, 1.0, -1.0)[None, :, :, None]
    assert roughness(flat) == 0.0
    assert roughness(np.repeat(checker, 2, 0)) == pytest.approx(2.0)
    noise = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16))
    blurred = (noise + np.roll(noise, 1, 1) + np.roll(noise, 1, 2)
               + np.roll(noise, (1, 1), (1, 2))) / 4
    assert 0 < roughness(blurred) < roughness(noise)


def test_tone_spread_measures_how_a_class_s_images_differ_in_colour():
    rng = np.random.default_rng(0)
    base = rng.uniform(-1, 1, (1, 6, 6, 3))
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    same = np.repeat(base, 8, 0)  # every image of a class alike: no spread
    assert tone_spread(same, labels) == 0.0
    # Shifting each image's colour by +-s gives a spread of s in every channel.
    shifts = np.array([1, -1, 1, -1, 1, -1, 1, -1])[:, None, None, None] * 0.1
    assert tone_spread(same + shifts, labels) == pytest.approx(0.1)
    # Grey images and a class of one image (no spread to measure) are taken too.
    assert tone_spread((same + shifts)[:5, ..., 0], labels[:5]) == pytest.approx(0.1)
