"""Tests of optrepro.ot.divergence against POT's Sinkhorn plan, finite differences and the divergence's axioms."""
import numpy as np
import ot
import pytest
import torch
from optrepro.ot.divergence import entropic_ot, sinkhorn_divergence, squared_distances

pytestmark = pytest.mark.usefixtures("one_thread")


def _clouds(n, m, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), 0.5 + torch.randn(m, d, generator=g, dtype=torch.float64)


def test_squared_distances_match_cdist():
    x, y = _clouds(30, 20, 3, 0)
    assert torch.allclose(squared_distances(x, y), torch.cdist(x, y) ** 2, atol=1e-12)


def test_entropic_ot_matches_pot_plan_value():
    x, y = _clouds(40, 30, 2, 1)
    eps = 0.5
    a, b = np.full(40, 1 / 40), np.full(30, 1 / 30)
    M = ot.dist(x.numpy(), y.numpy())
    P = ot.bregman.sinkhorn_log(a, b, M, eps, numItermax=5000, stopThr=1e-13)
    expected = (P * M).sum() + eps * (P * np.log(P / np.outer(a, b))).sum()
    got = entropic_ot(x, y, eps, max_iter=5000, tol=1e-13)
    assert got.item() == pytest.approx(expected, rel=1e-8)


def test_gradient_matches_finite_differences():
    x, y = _clouds(12, 10, 2, 2)
    eps = 0.3
    x = x.requires_grad_(True)
    value = sinkhorn_divergence(x, y, eps, max_iter=2000, tol=1e-11)
    (grad,) = torch.autograd.grad(value, x)
    h = 1e-5
    for i, k in [(0, 0), (3, 1), (7, 0)]:
        e = torch.zeros_like(x)
        e[i, k] = h
        with torch.no_grad():
            fd = (sinkhorn_divergence(x + e, y, eps, max_iter=2000, tol=1e-11)
                  - sinkhorn_divergence(x - e, y, eps, max_iter=2000, tol=1e-11)) / (2 * h)
        assert grad[i, k].item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-9)


def test_divergence_is_zero_on_equal_clouds_positive_otherwise_and_tends_to_w2():
    x, y = _clouds(50, 50, 2, 3)
    assert abs(sinkhorn_divergence(x, x, 0.1).item()) < 1e-8
    assert sinkhorn_divergence(x, y, 0.1).item() > 0
    w2 = ot.emd2(np.full(50, 0.02), np.full(50, 0.02), ot.dist(x.numpy(), y.numpy()))
    small = sinkhorn_divergence(x, y, 0.01, max_iter=2000, tol=1e-9).item()
    assert small == pytest.approx(w2, rel=0.02)


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"\(5, 2\) and \(4, 3\)"):
        squared_distances(torch.zeros(5, 2), torch.zeros(4, 3))
