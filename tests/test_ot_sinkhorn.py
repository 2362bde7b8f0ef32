"""Tests for optrepro.ot: log-domain Sinkhorn against POT, and Sinkhorn-Newton-Sparse against dense Newton,
finite differences and Sinkhorn."""

from __future__ import annotations

import importlib

import numpy as np
import ot
import pytest
import torch
from optrepro.ot import (dense_newton_direction, dual_gradient, dual_objective, marginal_error, sinkhorn,
                         sinkhorn_newton_sparse, sparse_newton_direction, sparsify_plan)

pytestmark = pytest.mark.usefixtures("one_thread")


def clouds(n, m, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, 2, generator=g, dtype=dtype), torch.rand(m, 2, generator=g, dtype=dtype)
    C = torch.cdist(x, y) ** 2
    a = torch.rand(n, generator=g, dtype=dtype) + 0.5
    b = torch.rand(m, generator=g, dtype=dtype) + 0.5
    return a / a.sum(), b / b.sum(), C / C.max()


@pytest.mark.parametrize("eps", [0.1, 0.02])
def test_sinkhorn_matches_pot_sinkhorn_log(eps):
    a, b, C = clouds(30, 25, 0)
    res = sinkhorn(a, b, C, eps, max_iter=5000, tol=1e-13)
    P_pot = ot.sinkhorn(a.numpy(), b.numpy(), C.numpy(), eps, method="sinkhorn_log", numItermax=5000, stopThr=1e-14)
    assert np.abs(res.plan.numpy() - P_pot).max() < 1e-6 * P_pot.max()
    assert abs(float(res.cost) - float((P_pot * C.numpy()).sum())) < 1e-6
    assert res.errors[-1] <= 1e-13 and float(marginal_error(res.plan, a, b)) < 1e-12


def test_sinkhorn_batched_equals_one_by_one():
    probs = [clouds(12, 10, s) for s in range(3)]
    A, B, C = (torch.stack(t) for t in zip(*probs))
    res = sinkhorn(A, B, C, 0.05, max_iter=300)
    for k, (a, b, c) in enumerate(probs):
        single = sinkhorn(a, b, c, 0.05, max_iter=300)
        torch.testing.assert_close(res.plan[k], single.plan, rtol=1e-12, atol=1e-14)
    assert res.plan.shape == (3, 12, 10) and res.iterations == 300


def test_sinkhorn_cost_approaches_emd_as_eps_shrinks():
    a, b, C = clouds(20, 20, 1)
    exact = ot.emd2(a.numpy(), b.numpy(), C.numpy())
    gaps = [float(sinkhorn(a, b, C, eps, max_iter=20000, tol=1e-11).cost) - exact for eps in (0.05, 0.01, 0.002)]
    assert gaps[0] > gaps[1] > gaps[2] >= -1e-9 and gaps[2] < 0.01 * exact


def test_dual_gradient_matches_finite_differences():
    a, b, C = clouds(7, 6, 2)
    eps = 0.1
    g0 = torch.Generator().manual_seed(3)
    f, g = torch.randn(7, generator=g0, dtype=torch.float64) * 0.1, torch.randn(6, generator=g0, dtype=torch.float64) * 0.1
    grad, _ = dual_gradient(f, g, a, b, C, eps)
    z = torch.cat([f, g])
    h = 1e-6
    fd = torch.stack([(dual_objective((z + h * e)[:7], (z + h * e)[7:], a, b, C, eps)
                       - dual_objective((z - h * e)[:7], (z - h * e)[7:], a, b, C, eps)) / (2 * h)
                      for e in torch.eye(13, dtype=torch.float64)])
    torch.testing.assert_close(grad, fd, rtol=1e-7, atol=1e-9)


def test_sparse_newton_step_without_sparsification_is_the_dense_newton_step():
    a, b, C = clouds(9, 8, 4)
    eps = 0.05
    w = sinkhorn(a, b, C, eps, max_iter=5)
    grad, P = dual_gradient(w.f, w.g, a, b, C, eps)
    dz, it, kept, dropped = sparse_newton_direction(P, grad, eps, rho=1.0, cg_tol=1e-13)
    # the Hessian is singular along (1, -1) (it leaves the plan unchanged): compare up to that direction
    null = torch.cat([torch.ones(9), -torch.ones(8)]).double() / 17 ** 0.5
    proj = lambda v: v - torch.dot(v, null) * null  # noqa: E731
    torch.testing.assert_close(proj(dz), proj(dense_newton_direction(P, grad, eps)), rtol=1e-7, atol=1e-9)
    assert kept == 1.0 and dropped < 1e-14
    # and sparsification changes the step (the test could fail)
    dz_sparse, *_ = sparse_newton_direction(P, grad, eps, rho=0.1, cg_tol=1e-13)
    assert (dz_sparse - dz).abs().max() > 1e-6 * dz.abs().max()


def test_sparsify_keeps_the_largest_entries():
    P = torch.arange(20, dtype=torch.float64).reshape(4, 5)
    vals, rows, cols = sparsify_plan(P, 0.2)
    assert sorted(vals.tolist()) == [16.0, 17.0, 18.0, 19.0]
    assert torch.equal(P[rows, cols], vals)
    with pytest.raises(ValueError, match="rho"):
        sparsify_plan(P, 0.0)


def test_sns_converges_to_the_sinkhorn_plan_in_few_iterations():
    a, b, C = clouds(60, 50, 5)
    eps = 0.005
    ref = sinkhorn(a, b, C, eps, max_iter=50000, tol=1e-12)
    res = sinkhorn_newton_sparse(a, b, C, eps, rho=0.1, n1=20, tol=1e-11)
    assert res.errors[-1] <= 1e-11
    assert (res.plan - ref.plan).abs().sum() < 1e-8
    assert res.iterations < ref.iterations / 5
    assert max(res.kept_fraction) <= 0.1


def test_bad_arguments_raise_one_line():
    a, b, C = clouds(5, 5, 0)
    with pytest.raises(ValueError, match="eps"):
        sinkhorn(a, b, C, 0.0)
    with pytest.raises(ValueError, match="rho"):
        sinkhorn_newton_sparse(a, b, C, 0.1, rho=1.5)
    with pytest.raises(ValueError, match="cost shape"):
        sinkhorn_newton_sparse(a, b, C.unsqueeze(0), 0.1)


def test_row_blocked_updates_equal_whole_matrix_updates(monkeypatch):
    """Large costs are processed a block of rows at a time; force tiny blocks and compare with one block."""
    sk = importlib.import_module("optrepro.ot.sinkhorn")  # the module (the package exports a function of that name)
    a, b, C = clouds(37, 23, 5)
    whole = sinkhorn(a, b, C, 0.05, max_iter=50)
    monkeypatch.setattr(sk, "CHUNK_ELEMENTS", 50)  # 2 rows per block: 19 blocks
    assert len(sk._row_blocks(C)) == 19
    blocked = sinkhorn(a, b, C, 0.05, max_iter=50)
    assert torch.allclose(blocked.f, whole.f, atol=1e-12) and torch.allclose(blocked.g, whole.g, atol=1e-12)
    assert blocked.errors == pytest.approx(whole.errors, rel=1e-9, abs=1e-15)


def test_sinkhorn_time_budget_stops_early_and_reports_convergence():
    a, b, C = clouds(40, 40, 6)
    capped = sinkhorn(a, b, C, 0.002, max_iter=10 ** 6, tol=1e-14, record=False, max_time=0.05)
    assert not capped.converged and capped.iterations < 10 ** 6 and capped.seconds >= 0.05
    assert capped.iterations % 10 == 0  # stops at a stopping test
    done = sinkhorn(a, b, C, 0.1, max_iter=5000, tol=1e-10, record=False, max_time=60.0)
    assert done.converged and done.errors[-1] <= 1e-10 and done.seconds < 60.0


def test_sns_records_cg_residuals_and_convergence():
    a, b, C = clouds(30, 30, 7)
    res = sinkhorn_newton_sparse(a, b, C, 0.01, rho=0.2, n1=10, tol=1e-10, cg_tol=1e-10)
    assert res.converged and len(res.cg_residuals) == res.newton_steps > 0
    assert max(res.cg_residuals) <= 1e-10 * 1.01
    short = sinkhorn_newton_sparse(a, b, C, 0.01, rho=0.2, n1=2, max_newton=0, tol=1e-10)
    assert not short.converged and short.iterations == 2
