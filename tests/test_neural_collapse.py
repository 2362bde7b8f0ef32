"""Tests for optrepro.metrics.neural_collapse: NC1-NC4 on constructed collapsed and non-collapsed features, and
against straightforward numpy re-computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from optrepro.metrics import (
    between_class_covariance,
    class_counts,
    class_means,
    collapse_metrics,
    frame_distance,
    frame_separation,
    gram_distance,
    nc1,
    nc3,
    nc4,
    orthogonal_frame_gram,
    simplex_etf_gram,
    within_class_covariance,
)


def orthonormal_rows(k, d, seed=0):
    """k orthonormal vectors in R^d, as the rows of a (k, d) array."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, k)))
    return q.T


def etf_rows(k, d, seed=0, scale=1.0):
    """The rows of a simplex ETF (unit length, centred) in R^d, rotated at random."""
    u = orthonormal_rows(k, d, seed)
    return scale * np.sqrt(k / (k - 1)) * (np.eye(k) - 1 / k) @ u


def collapsed(means, sizes):
    """Every sample equals its class mean: features (N, d) and labels, classes in blocks."""
    y = np.repeat(np.arange(len(sizes)), sizes)
    return means[y], y


# ------------------------------------------------------------------- numpy references (written independently)

def np_nc1(H, y):
    k = y.max() + 1
    mu = np.stack([H[y == c].mean(0) for c in range(k)])
    mg = H.mean(0)
    sw = sum(np.outer(h - mu[c], h - mu[c]) for h, c in zip(H, y)) / len(H)
    sb = sum(np.outer(m - mg, m - mg) for m in mu) / k
    return np.trace(sw @ np.linalg.pinv(sb)) / k


def np_gram_distance(V, target):
    g = V @ V.T
    return np.linalg.norm(g / np.linalg.norm(g) - target / np.linalg.norm(target))


def np_nc4(H, W, b, mu):
    agree = 0
    for h in H:
        cls = np.argmax(W @ h + b)
        ncc = np.argmin([np.linalg.norm(h - m) for m in mu])
        agree += cls == ncc
    return agree / len(H)


# ------------------------------------------------------------------- collapsed geometry: every metric at its ideal

@pytest.mark.parametrize("k, d", [(2, 3), (4, 8), (10, 12)])
def test_exact_simplex_etf_collapse_gives_zero(k, d):
    means = etf_rows(k, d, seed=k) * 3.0 + 0.0  # centred, so the global mean is 0 for balanced classes
    H, y = collapsed(means, [5] * k)
    W = 0.7 * means
    m = collapse_metrics(H, y, W)
    assert m.nc1 == pytest.approx(0, abs=1e-20)
    assert m.nc2_means_etf == pytest.approx(0, abs=1e-12)
    assert m.nc2_classifier_etf == pytest.approx(0, abs=1e-12)
    assert m.nc3 == pytest.approx(0, abs=1e-12)
    assert m.nc4 == 1.0
    # ... and an ETF is clearly not an orthogonal frame
    assert m.nc2_classifier_orthogonal == pytest.approx(frame_separation(k), rel=1e-12)
    assert m.nc2_classifier_orthogonal > 0.3


def test_exact_orthogonal_frame_collapse():
    k, d = 5, 9
    means = 2.0 * orthonormal_rows(k, d, seed=1)
    H, y = collapsed(means, [4] * k)
    m = collapse_metrics(H, y, 0.5 * means, center=False)
    assert m.nc1 == pytest.approx(0, abs=1e-20)
    assert m.nc2_means_orthogonal == pytest.approx(0, abs=1e-12)
    assert m.nc2_classifier_orthogonal == pytest.approx(0, abs=1e-12)
    assert m.nc3 == pytest.approx(0, abs=1e-12)  # uncentred self-duality
    assert m.nc4 == 1.0
    # centring an equal-length orthogonal frame gives a simplex ETF ...
    assert m.nc2_means_etf == pytest.approx(0, abs=1e-12)
    # ... but the (uncentred) classifier rows are not one
    assert m.nc2_classifier_etf == pytest.approx(frame_separation(k), rel=1e-12)


def test_orthogonal_frame_with_lengths():
    k, d = 4, 6
    lengths = np.array([0.5, 1.0, 2.0, 3.0])
    V = lengths[:, None] * orthonormal_rows(k, d, seed=2)
    assert frame_distance(V, "orthogonal", lengths=lengths) == pytest.approx(0, abs=1e-12)
    assert frame_distance(V, "orthogonal", lengths=lengths * 7) == pytest.approx(0, abs=1e-12)  # scale-free
    assert frame_distance(V, "orthogonal") > 0.2  # unequal lengths are not the equal-length frame
    assert frame_distance(V / lengths[:, None], "orthogonal") == pytest.approx(0, abs=1e-12)


def test_frame_separation_closed_form():
    # E/||E|| has diagonal (1 - 1/K)/sqrt(K-1) and off-diagonal -1/(K sqrt(K-1)); I/sqrt(K) has diagonal 1/sqrt(K)
    for k in (2, 3, 4, 10):
        diag = (1 - 1 / k) / np.sqrt(k - 1) - 1 / np.sqrt(k)
        off = 1 / (k * np.sqrt(k - 1))
        assert frame_separation(k) == pytest.approx(np.sqrt(k * diag**2 + k * (k - 1) * off**2), rel=1e-12)
    assert frame_separation(4) == pytest.approx(0.5176, abs=1e-4)


# ------------------------------------------------------------------- non-collapsed features: metrics clearly > 0

def test_random_features_are_far_from_collapse():
    rng = np.random.default_rng(3)
    k, d, n = 4, 10, 30
    y = np.repeat(np.arange(k), n)
    H = rng.standard_normal((k * n, d)) + 0.3 * rng.standard_normal((k, d))[y]
    W = rng.standard_normal((k, d))
    m = collapse_metrics(H, y, W, bias=rng.standard_normal(k))
    assert m.nc1 > 1.0
    assert m.nc2_means_etf > 0.1 and m.nc2_means_orthogonal > 0.1
    assert m.nc2_classifier_etf > 0.1 and m.nc2_classifier_orthogonal > 0.1
    assert m.nc3 > 0.5
    assert m.nc4 < 0.9


def test_nc1_grows_with_within_class_spread():
    means = etf_rows(3, 5, seed=4)
    y = np.repeat(np.arange(3), 20)
    noise = np.random.default_rng(5).standard_normal((60, 5))
    noise -= np.stack([noise[y == c].mean(0) for c in range(3)])[y]  # zero-mean in every class: means stay put
    values = [nc1(means[y] + s * noise, y) for s in (0.0, 0.01, 0.1, 1.0)]
    assert values[0] < 1e-25 and 0 < values[1] < values[2] < values[3]
    assert values[2] / values[1] == pytest.approx(100, rel=1e-9)  # NC1 is quadratic in the spread
    assert nc1(5.0 * (means[y] + 0.1 * noise), y) == pytest.approx(values[2], rel=1e-12)  # and scale invariant


# ------------------------------------------------------------------- against numpy re-computations

@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_match_numpy(seed):
    rng = np.random.default_rng(seed)
    k, d, sizes = 4, 7, [9, 5, 3, 6]  # imbalanced
    y = np.repeat(np.arange(k), sizes)
    rng.shuffle(y)
    H = rng.standard_normal((len(y), d)) + 2 * rng.standard_normal((k, d))[y]
    W, b = rng.standard_normal((k, d)), rng.standard_normal(k)
    mu = np.stack([H[y == c].mean(0) for c in range(k)])
    centred = mu - H.mean(0)

    np.testing.assert_allclose(class_means(H, y).numpy(), mu, rtol=1e-12)
    np.testing.assert_array_equal(class_counts(y).numpy(), np.bincount(y))
    sw = sum(np.outer(h - mu[c], h - mu[c]) for h, c in zip(H, y)) / len(H)
    np.testing.assert_allclose(within_class_covariance(H, y).numpy(), sw, rtol=1e-10, atol=1e-13)
    sb = centred.T @ centred / k
    np.testing.assert_allclose(between_class_covariance(H, y).numpy(), sb, rtol=1e-10, atol=1e-13)
    assert nc1(H, y) == pytest.approx(np_nc1(H, y), rel=1e-9)

    etf = k / (k - 1) * (np.eye(k) - np.ones((k, k)) / k)
    np.testing.assert_allclose(simplex_etf_gram(k).numpy(), etf, rtol=1e-14)
    assert frame_distance(centred, "etf") == pytest.approx(np_gram_distance(centred, etf), rel=1e-10)
    assert frame_distance(mu, "orthogonal") == pytest.approx(np_gram_distance(mu, np.eye(k)), rel=1e-10)
    assert frame_distance(W, "etf") == pytest.approx(np_gram_distance(W, etf), rel=1e-10)
    r = rng.uniform(0.5, 2, k)
    assert frame_distance(W, "orthogonal", r) == pytest.approx(np_gram_distance(W, np.diag(r**2)), rel=1e-10)
    assert gram_distance(W, etf) == pytest.approx(np_gram_distance(W, etf), rel=1e-10)

    ref_nc3 = np.linalg.norm(W / np.linalg.norm(W) - centred / np.linalg.norm(centred))
    assert nc3(W, centred) == pytest.approx(ref_nc3, rel=1e-10)
    assert nc4(H, W, mu, b) == pytest.approx(np_nc4(H, W, b, mu))

    m = collapse_metrics(torch.tensor(H, dtype=torch.float32), torch.tensor(y), torch.tensor(W), bias=b, center=False)
    assert m.nc3 == pytest.approx(np.linalg.norm(W / np.linalg.norm(W) - mu / np.linalg.norm(mu)), rel=1e-5)
    assert set(m.as_dict()) == {"nc1", "nc2_means_etf", "nc2_means_orthogonal", "nc2_classifier_etf",
                                "nc2_classifier_orthogonal", "nc3", "nc4"}


def test_rotation_and_scale_invariance():
    rng = np.random.default_rng(7)
    k, d = 3, 5
    y = np.repeat(np.arange(k), 6)
    H, W = rng.standard_normal((18, d)), rng.standard_normal((k, d))
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a = collapse_metrics(H, y, W).as_dict()
    b = collapse_metrics(3.0 * H @ q, y, 0.2 * W @ q).as_dict()
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), key


# ------------------------------------------------------------------- bad input

def test_bad_input_raises_one_line_value_errors():
    H, y, W = np.zeros((6, 3)), np.array([0, 0, 1, 1, 2, 2]), np.ones((3, 3))
    cases = [
        (lambda: nc1(np.zeros(6), y), "expected a 2-D array"),
        (lambda: nc1(H, y[:5]), "expected shape (6,)"),
        (lambda: nc1(H, y.astype(float)), "integer class indices"),
        (lambda: nc1(H, y - 1), "invalid label -1"),
        (lambda: nc1(H, y, num_classes=2), "labels must be in 0..1"),
        (lambda: class_means(H, np.array([0, 0, 2, 2, 2, 2])), "class 1 has no samples"),
        (lambda: frame_distance(W, "tetrahedron"), "choose one of etf, orthogonal"),
        (lambda: frame_distance(W, "etf", lengths=[1, 2, 3]), "only meaningful for frame='orthogonal'"),
        (lambda: frame_distance(W, "orthogonal", lengths=[1, 2]), "one length per class"),
        (lambda: frame_distance(np.zeros((3, 3)), "etf"), "all zero"),
        (lambda: simplex_etf_gram(1), "integer >= 2"),
        (lambda: orthogonal_frame_gram(2.5), "invalid num_classes"),
        (lambda: nc3(W, np.ones((3, 4))), "does not match"),
        (lambda: nc4(H, W, W, bias=[1, 2]), "expected (3,)"),
        (lambda: collapse_metrics(H + np.eye(3)[y], y, np.ones((3, 4))), "does not match"),
        (lambda: collapse_metrics(H + np.eye(3)[y], y, np.ones((4, 3))), "class 3 has no samples"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert message in str(err.value) and "\n" not in str(err.value)
