r"""Sample-quality measures on feature vectors (numpy only), as the field reports them.

Each function takes the real set first and the generated set second, as `(n, d)` arrays
(features of a classifier, or flattened images), and returns plain floats:

  - `frechet_distance`: distance between Gaussian fits (FID without Inception).
  - `precision_recall`: fidelity and diversity from k-NN balls (Kynkäänniemi et al. 2019).
  - `density_coverage`: the same, robust to outliers (Naeem et al. 2020).
  - `kernel_inception_distance`: unbiased MMD^2, cubic kernel (Binkowski et al. 2018).
  - `nearest_distances`: distance from each query to its nearest reference (memorisation).

Two more take images, not features, and one set: `roughness` (fine texture: speckle, a
checkerboard) and `tone_spread` (how much a class's images differ in overall colour);
compare a generator's with real images' (the judge's floor), where 1x is as real.

Precision, recall, density and coverage depend on the sample sizes: compare a generator
with real images only at equal sizes (as `cwgan.evaluation.judge.Judge` does).
"""

import numpy as np


def frechet_distance(a, b):
    """Fréchet distance between Gaussian fits of feature sets `a` (n, d) and `b` (m, d).

    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2) (Dowson & Landau
    1982; as FID, Heusel et al. 2017), with the matrix square roots from symmetric
    eigendecompositions (no scipy needed). Range [0, inf); 0 for identical distributions,
    but biased upwards at small sample sizes, so a perfect generator scores the real floor
    at the same size, not 0.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b)
                 - 2 * np.sum(np.sqrt(np.clip(cross, 0, None))))


def _flat(x):
    x = np.asarray(x, np.float32)
    return x.reshape(len(x), -1)


def _pairwise_distances(a, b, chunk=1024):
    """Yields `(start, distances)`: L2 distances of rows `a[start:start+chunk]` to all of `b`."""
    b_sq = np.sum(b * b, 1)
    for start in range(0, len(a), chunk):
        block = a[start:start + chunk]
        d2 = np.sum(block * block, 1)[:, None] + b_sq[None, :] - 2 * block @ b.T
        yield start, np.sqrt(np.clip(d2, 0, None))


def nearest_distances(queries, reference, chunk=1024):
    """L2 distance from each query (image or vector) to its nearest reference, shape (n,)."""
    q, r = _flat(queries), _flat(reference)
    out = np.empty(len(q), np.float32)
    for start, d in _pairwise_distances(q, r, chunk):
        out[start:start + len(d)] = d.min(1)
    return out


def knn_radii(x, k, chunk=1024):
    """The distance from each row of `x` (n, d) to its k-th nearest other row, shape (n,)."""
    x = _flat(x)
    if not 1 <= k < len(x):
        raise ValueError(f"Invalid value for argument `k`. Received: k={k}. Expected "
                         f"1 <= k < the number of points ({len(x)}).")
    out = np.empty(len(x), np.float32)
    for start, d in _pairwise_distances(x, x, chunk):
        # Column k, not k - 1: each point is its own nearest neighbour, at distance 0.
        out[start:start + len(d)] = np.partition(d, k, axis=1)[:, k]
    return out


def _ball_counts(queries, centres, radii, chunk=1024):
    """For each query, in how many of the balls B(centres[i], radii[i]) it lies, shape (n,)."""
    out = np.empty(len(queries), np.int64)
    for start, d in _pairwise_distances(queries, centres, chunk):
        out[start:start + len(d)] = np.sum(d <= radii[None, :], 1)
    return out


def precision_recall(real, fake, k=3, real_radii=None):
    """Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019, arXiv:1904.06991).

    The real manifold is the union of balls around each real point with the radius to its
    k-th nearest real neighbour, the generated manifold likewise. Precision is the share
    of generated points inside the real manifold (fidelity: are samples realistic?),
    recall the share of real points inside the generated manifold (diversity: is every
    kind of real image produced?). Both in [0, 1]; a perfect generator scores about what a
    second real sample of the same size does (near 1 for identical sets, somewhat less
    for independent ones). A collapsed generator keeps precision and loses recall.

    Args:
        real: (n, d) real features.
        fake: (m, d) generated features.
        k: the neighbour that sets each ball's radius. Defaults to 3 (the paper's choice).
        real_radii: the real points' k-NN radii, if already computed (`knn_radii(real, k)`).

    Returns:
        `(precision, recall)`, floats.
    """
    real, fake = _flat(real), _flat(fake)
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    precision = np.mean(_ball_counts(fake, real, real_radii) > 0)
    recall = np.mean(_ball_counts(real, fake, knn_radii(fake, k)) > 0)
    return float(precision), float(recall)


def density_coverage(real, fake, k=5, real_radii=None):
    """Density and coverage (Naeem et al., ICML 2020, arXiv:2002.09797).

    With balls around the real points only (radius: the k-th nearest real neighbour),
    density is the number of real balls each generated point lies in, averaged and divided
    by k: about 1 when the generated points are spread like the real ones, above 1 when
    they crowd where real data is dense, in [0, inf). Coverage is the share of real balls
    that hold at least one generated point, in [0, 1]; it falls when modes are missed.
    A perfect generator scores about 1 on both (at the real floor's sizes). Unlike
    precision and recall, neither is swayed by a few outliers.

    Args:
        real: (n, d) real features.
        fake: (m, d) generated features.
        k: the neighbour that sets each ball's radius. Defaults to 5 (the paper's choice).
        real_radii: the real points' k-NN radii, if already computed (`knn_radii(real, k)`).

    Returns:
        `(density, coverage)`, floats.
    """
    real, fake = _flat(real), _flat(fake)
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    density = np.sum(_ball_counts(fake, real, real_radii)) / (k * len(fake))
    covered = np.zeros(len(real), bool)
    for start, d in _pairwise_distances(real, fake):
        covered[start:start + len(d)] = d.min(1) <= real_radii[start:start + len(d)]
    return float(density), float(np.mean(covered))


def _polynomial_mmd2(x, y):
    """Unbiased MMD^2 of `x` and `y` (equal sizes) under k(a, b) = (a.b / d + 1)^3."""
    d = x.shape[1]
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return ((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
            + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
            - 2 * k_xy.mean())


def kernel_inception_distance(real, fake, n_subsets=100, subset_size=1000, seed=0):
    """Kernel (Inception) distance, KID (Binkowski et al., ICLR 2018, arXiv:1801.01401).

    The squared maximum mean discrepancy between the two sets under the cubic polynomial
    kernel k(a, b) = (a.b / d + 1)^3, with its unbiased estimator, averaged over
    `n_subsets` random subsets of `subset_size` points of each set (as the paper and
    StyleGAN's metrics do). Unbiased: for two samples of one distribution its expectation
    is 0 at any sample size, so single estimates can be negative. A perfect generator
    scores about 0; larger is worse; range (-small, inf).

    Args:
        real: (n, d) real features.
        fake: (m, d) generated features.
        n_subsets: how many subset pairs to average. Defaults to 100.
        subset_size: points per subset, capped at the smaller set's size (at least 2).
            Defaults to 1000.
        seed: draws the subsets. Defaults to 0.

    Returns:
        `(mean, std)` of the estimates over the subsets, floats.
    """
    real, fake = _flat(real).astype(np.float64), _flat(fake).astype(np.float64)
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError(f"KID needs at least 2 points in each set. Received: "
                         f"{len(real)} real and {len(fake)} generated.")
    rng = np.random.default_rng(seed)
    estimates = [_polynomial_mmd2(real[rng.choice(len(real), size, replace=False)],
                                  fake[rng.choice(len(fake), size, replace=False)])
                 for _ in range(n_subsets)]
    return float(np.mean(estimates)), float(np.std(estimates))


def roughness(images):
    """Mean absolute difference between neighbouring pixels (right and below neighbours),
    over images, positions and channels, for images `(n, height, width[, channels])` in
    [-1, 1]: 0 for flat images, 2 for a one-pixel checkerboard of -1 and 1.

    The fine texture the classifier's features may not weigh: speckle and the regular
    pattern of transposed convolutions raise it above real images', blur lowers it.
    """
    x = np.asarray(images, np.float32)
    return float((np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()) / 2)


def tone_spread(images, labels):
    """How much images of a class differ in overall tone: the standard deviation over a
    class's images of each image's mean value in each channel, averaged over channels and
    then over classes (those with two images or more), for images `(n, height,
    width[, channels])` in [-1, 1] and their labels `(n,)`.

    A generator that draws every image of a class in the same colours (or, in grey, with
    the same amount of ink) scores below real images; 0 when each class is one image.
    """
    x = np.asarray(images, np.float32)
    means = x.reshape(len(x), -1, x.shape[-1] if x.ndim == 4 else 1).mean(1)
    labels = np.asarray(labels)
    spreads = [means[labels == c].std(0).mean() for c in np.unique(labels)
               if np.sum(labels == c) > 1]
    return float(np.mean(spreads)) if spreads else 0.0
