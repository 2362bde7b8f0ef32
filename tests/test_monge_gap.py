"""Monge gap (Uscidda & Cuturi 2023): zero for monotone gradient maps, positive otherwise, entropic -> exact."""
import math

import numpy as np
import ot
import pytest
import torch

from optrepro.ot import gaussian as G
from optrepro.ot.divergence import entropic_ot, sinkhorn_divergence
from optrepro.ot.monge_gap import (EnsembleMLPMap, MLPMap, batched_entropic_ot, batched_sinkhorn_divergence, fit_map, fit_maps,
                                  l2_uvp, monge_gap, monge_gap_exact)

pytestmark = pytest.mark.usefixtures("one_thread")


def _problem(d=2, n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    S0, S1 = G.random_spd(d, 4.0, generator=g), G.random_spd(d, 10.0, generator=g)
    m0, m1 = torch.zeros(d, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    A, b = G.brenier_map(m0, S0, m1, S1)
    return G.sample(m0, S0, n, generator=g), A, b


def _rotation(theta):
    return torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=torch.float64)


def test_exact_gap_matches_pot_emd2():
    x, A, b = _problem()
    Tx = x @ _rotation(2.0).T + 1.0
    a = np.full(len(x), 1 / len(x))
    C = ot.dist(x.numpy(), Tx.numpy())
    reference = float(np.mean(np.diag(C)) - ot.emd2(a, a, C))
    assert monge_gap_exact(x, Tx) == pytest.approx(reference, abs=1e-9)
    assert reference > 0.1


def test_gap_is_zero_for_brenier_map_and_convex_gradients():
    x, A, b = _problem()
    assert abs(monge_gap_exact(x, x @ A.T + b)) < 1e-9
    # gradient of the convex function sum(softplus(x)) + |x|^2/2 + <c, x>
    grad = torch.sigmoid(3 * x) + x + 0.5
    assert abs(monge_gap_exact(x, grad)) < 1e-9


def test_gap_is_positive_for_a_rotation():
    x, _, _ = _problem()
    assert monge_gap_exact(x, x @ _rotation(math.pi / 2).T) > 0.5
    assert float(monge_gap(x, x @ _rotation(math.pi / 2).T, 0.01)) > 0.5


def test_entropic_gap_approaches_exact_as_eps_shrinks():
    x, _, _ = _problem(n=96)
    Tx = x @ _rotation(1.0).T
    exact = monge_gap_exact(x, Tx)
    errors = [abs(float(monge_gap(x, Tx, eps, max_iter=2000, tol=1e-9)) - exact) for eps in (1.0, 0.1, 0.01)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05 * exact


def test_entropic_gap_has_gradient_and_mlp_starts_at_identity():
    x, _, _ = _problem(n=32)
    T = MLPMap(2, (16,)).double()
    assert torch.equal(T(x), x)
    Tx = x @ _rotation(0.7).T
    Tx.requires_grad_(True)
    monge_gap(x, Tx, 0.1).backward()
    assert Tx.grad is not None and Tx.grad.abs().sum() > 0


def test_l2_uvp_and_bad_input():
    y = torch.zeros(10, 2, dtype=torch.float64)
    assert float(l2_uvp(y + 1, y, 4.0)) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="activation"):
        MLPMap(2, activation="sine")
    with pytest.raises(ValueError, match="shapes"):
        monge_gap(y, y[:5], 0.1)


def test_batched_entropic_ot_matches_one_at_a_time_values_and_gradients():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(3, 20, 2, generator=g, dtype=torch.float64, requires_grad=True)
    Y = torch.randn(3, 24, 2, generator=g, dtype=torch.float64) + 1.0
    batched = batched_entropic_ot(X, Y, 0.3, max_iter=500, tol=1e-10)
    single = torch.stack([entropic_ot(X[k], Y[k], 0.3, max_iter=500, tol=1e-10) for k in range(3)])
    assert torch.allclose(batched, single, atol=1e-8)
    (gb,) = torch.autograd.grad(batched.sum(), X)
    (gs,) = torch.autograd.grad(single.sum(), X)
    assert torch.allclose(gb, gs, atol=1e-8) and gb.abs().sum() > 0
    with pytest.raises(ValueError, match="batched clouds"):
        batched_entropic_ot(X[0], Y[0], 0.3)
    Y = Y[:, :20]   # the divergence's batched call stacks the clouds: equal sizes
    div = batched_sinkhorn_divergence(X.detach(), Y, 0.3, max_iter=500, tol=1e-10)
    ref = [float(sinkhorn_divergence(X[k].detach(), Y[k], 0.3, max_iter=500, tol=1e-10)) for k in range(3)]
    assert div.numpy() == pytest.approx(ref, abs=1e-8) and min(ref) > 0.1


def test_fit_map_reduces_the_gap_of_a_rotated_start():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    T = MLPMap(2, (16,)).double()
    with torch.no_grad():   # start from a non-monotone map: a quarter turn
        T.net[-1].weight.copy_(torch.randn(2, 16, generator=g, dtype=torch.float64))
    src = lambda n: torch.randn(n, 2, generator=g, dtype=torch.float64)
    res = fit_map(T, src, src, eps=0.1, lam=5.0, steps=40, batch=32, lr=1e-2, max_iter=50, tol=1e-4)
    assert np.mean(res.gap[-5:]) < 0.5 * np.mean(res.gap[:5])


def _random_maps(K, d=2, hidden=(8, 8), seed=0):
    torch.manual_seed(seed)
    maps = [MLPMap(d, hidden).double() for _ in range(K)]
    with torch.no_grad():   # non-identity members
        for T in maps:
            T.net[-1].weight.normal_(0, 0.3)
    return maps


def test_ensemble_members_compute_their_source_maps():
    maps = _random_maps(3)
    E = EnsembleMLPMap.from_maps(maps)
    x = torch.randn(3, 10, 2, dtype=torch.float64)
    ref = torch.stack([T(x[k]) for k, T in enumerate(maps)])
    assert torch.allclose(E(x), ref, atol=1e-12) and not torch.allclose(ref, x)
    with pytest.raises(ValueError, match="architecture"):
        EnsembleMLPMap.from_maps([MLPMap(2, (8,)), MLPMap(2, (4,))])


def test_fit_maps_equals_training_each_member_alone():
    K, n, steps, d = 3, 16, 6, 2
    g = torch.Generator().manual_seed(5)
    xs = torch.randn(steps, K, n, d, generator=g, dtype=torch.float64)
    ys = 0.5 * torch.randn(steps, K, n, d, generator=g, dtype=torch.float64) + torch.tensor([1.0, -1.0], dtype=torch.float64)
    lams = [0.0, 1.0, 3.0]
    kw = dict(eps=0.2, steps=steps, batch=n, lr=1e-2, max_iter=30, tol=0.0)
    maps = _random_maps(K)
    E = EnsembleMLPMap.from_maps(maps)
    it_x, it_y = iter(xs), iter(ys)
    res = fit_maps(E, lambda m: next(it_x), lambda m: next(it_y), lam=lams, **kw)
    for k, T in enumerate(maps):
        ix, iy = iter(xs[:, k]), iter(ys[:, k])
        single = fit_map(T, lambda m: next(ix), lambda m: next(iy), lam=lams[k], **kw)  # noqa: B023 (used here)
        assert np.allclose([r[k] for r in res.loss], single.loss, atol=1e-10)
        assert np.allclose([r[k] for r in res.gap], single.gap, atol=1e-10)
        x = xs[0, k]
        assert torch.allclose(E(xs[0])[k], T(x), atol=1e-10) and not torch.allclose(T(x), _random_maps(K)[k](x))
    with pytest.raises(ValueError, match="lam"):
        fit_maps(E, lambda m: xs[0], lambda m: ys[0], lam=[1.0, 2.0], **kw)
