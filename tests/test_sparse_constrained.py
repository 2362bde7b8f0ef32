"""Tests for optrepro.ot.sparse_constrained against independent references: brute force over supports with cvxpy,
finite differences, POT (ot.emd2, ot.smooth with reg_type 'l2' and 'sparsity_constrained') and closed forms."""
import contextlib
import io
import itertools

import cvxpy as cp
import numpy as np
import ot
import pytest
import torch
from optrepro.ot.sparse_constrained import (
    column_nnz,
    max_omega,
    plan_from_alpha,
    primal_objective,
    quadratic_ot,
    semi_dual,
    simplex_projection,
    sparse_constrained_ot,
    sparse_simplex_projection,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _problem(n=12, m=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g, dtype=torch.float64)
    y = torch.rand(m, 2, generator=g, dtype=torch.float64)
    C = torch.cdist(x, y) ** 2
    a = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    b = torch.rand(m, generator=g, dtype=torch.float64) + 0.5
    return a / a.sum(), b / b.sum(), C / C.max()


def _cvxpy_projection(x, mass):
    y = cp.Variable(len(x))
    cp.Problem(cp.Minimize(cp.sum_squares(y - x)), [y >= 0, cp.sum(y) == mass]).solve(solver=cp.CLARABEL)
    return y.value


def test_simplex_projection_matches_cvxpy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4))
    mass = np.array([1.0, 0.3, 2.0, 0.05])
    Y = simplex_projection(torch.from_numpy(X), torch.from_numpy(mass), dim=0).numpy()
    for j in range(4):
        np.testing.assert_allclose(Y[:, j], _cvxpy_projection(X[:, j], mass[j]), atol=1e-7)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_sparse_projection_matches_brute_force(k):
    """Best over every support of size k (each projected by cvxpy): the top-k rule must attain it."""
    rng = np.random.default_rng(k)
    for _ in range(3):
        x, mass = rng.normal(size=6), 0.7
        y = sparse_simplex_projection(torch.from_numpy(x), k, mass).numpy()
        best = np.inf
        for S in itertools.combinations(range(6), k):
            z = np.zeros(6)
            z[list(S)] = _cvxpy_projection(x[list(S)], mass)
            best = min(best, np.sum((z - x) ** 2))
        assert np.count_nonzero(y) <= k and abs(y.sum() - mass) < 1e-12 and (y >= 0).all()
        assert np.sum((y - x) ** 2) == pytest.approx(best, abs=1e-7)


def test_sparse_projection_matches_pot():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(9, 5))
    with contextlib.redirect_stdout(io.StringIO()):
        ref = ot.utils.projection_sparse_simplex(X, 3, axis=0)
    np.testing.assert_allclose(sparse_simplex_projection(torch.from_numpy(X), 3).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 12])
def test_semi_dual_gradient_finite_differences(k):
    a, b, C = _problem()
    alpha = torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.1
    _val, grad = semi_dual(alpha, a, b, C, 0.5, k)
    h = 1e-6
    fd = torch.stack([(semi_dual(alpha + h * e, a, b, C, 0.5, k)[0] - semi_dual(alpha - h * e, a, b, C, 0.5, k)[0])
                      / (2 * h) for e in torch.eye(12, dtype=torch.float64)])
    torch.testing.assert_close(grad, fd, atol=1e-6, rtol=0)


def test_max_omega_k1_closed_form():
    """k = 1: max_{y in b*simplex, one nonzero} <y, s> - gamma/2 |y|^2 = b max_i s_i - gamma b^2 / 2."""
    S = torch.randn(7, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    b = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    vals, Y = max_omega(S, b, 2.0, 1)
    torch.testing.assert_close(vals, b * S.max(0).values - 2.0 * b ** 2 / 2)
    assert (column_nnz(Y) == 1).all()


def test_k1_equals_exact_ot_and_large_k_equals_quadratic_ot():
    n, gamma = 10, 0.5
    _, _, C = _problem(n, n, seed=4)
    a = torch.full((n,), 1.0 / n, dtype=torch.float64)
    emd = ot.emd2(a.numpy(), a.numpy(), C.numpy())
    r1 = sparse_constrained_ot(a, a, C, gamma, 1)
    assert r1.value == pytest.approx(emd + gamma / 2 * float(a @ a), rel=1e-8)
    assert (column_nnz(r1.plan) == 1).all() and r1.row_error < 1e-10     # a permutation: an optimal assignment
    assert float((r1.plan * C).sum()) == pytest.approx(emd, rel=1e-8)
    q = quadratic_ot(a, a, C, gamma, tol=1e-12)
    ref = ot.smooth.smooth_ot_semi_dual(a.numpy(), a.numpy(), C.numpy(), gamma, reg_type="l2", stopThr=1e-14)
    np.testing.assert_allclose(q.plan.numpy(), ref, atol=1e-6)
    assert q.value == pytest.approx(float(primal_objective(torch.from_numpy(ref), C, gamma)), rel=1e-6)
    assert q.value < r1.value


def test_solver_matches_pot_sparsity_constrained_and_is_monotone_in_k():
    a, b, C = _problem(12, 10, seed=5)
    gamma, values = 0.3, []
    emd = ot.emd2(a.numpy(), b.numpy(), C.numpy())
    for k in [2, 4, 12]:   # k = 1 (a non-smooth semi-dual) is tested on an assignment problem above
        r = sparse_constrained_ot(a, b, C, gamma, k)
        with contextlib.redirect_stdout(io.StringIO()):
            _, log = ot.smooth.smooth_ot_semi_dual(a.numpy(), b.numpy(), C.numpy(), gamma, log=True,
                                                   reg_type="sparsity_constrained", max_nz=k)
        pot_value = float(semi_dual(torch.from_numpy(log["alpha"]), a, b, C, gamma, k)[0])
        assert r.value >= pot_value - 1e-9 and r.value == pytest.approx(pot_value, rel=1e-3)
        assert int(column_nnz(r.plan).max()) <= k
        torch.testing.assert_close(r.plan.sum(0), b)
        torch.testing.assert_close(r.plan, plan_from_alpha(r.alpha, b, C, gamma, k))
        values.append(r.value)
    assert emd + gamma / 2 * float(b @ b) >= values[0]   # the k = 1 value, OT + gamma/2 |b|^2, bounds them all
    assert all(v1 >= v2 - 1e-9 for v1, v2 in itertools.pairwise(values))


def test_bad_input():
    a, b, C = _problem()
    with pytest.raises(ValueError, match="k"):
        sparse_constrained_ot(a, b, C, 1.0, 0)
    with pytest.raises(ValueError, match="gamma"):
        sparse_constrained_ot(a, b, C, -1.0, 2)
    with pytest.raises(ValueError, match="marginal shapes"):
        sparse_constrained_ot(b, a, C, 1.0, 2)
    with pytest.raises(ValueError, match="mass"):
        simplex_projection(torch.ones(3), 0.0)
