"""Tests for optrepro.solvers: conjugate gradient against dense and scipy solves, Armijo backtracking on a
quadratic whose accepted step is known in closed form."""
import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from optrepro.solvers import backtracking, conjugate_gradient, jacobi

pytestmark = pytest.mark.usefixtures("one_thread")
DT = torch.float64


def spd(n, seed, cond=1e3):
    """A random SPD matrix with eigenvalues spread over [1, cond] and a badly scaled diagonal."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    A = Q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=DT)) @ Q.T
    s = torch.logspace(-1, 1, n, dtype=DT)[torch.randperm(n, generator=g)]
    return s[:, None] * A * s[None, :], torch.randn(n, generator=g, dtype=DT)


@pytest.mark.parametrize("precondition", [False, True])
def test_cg_matches_dense_solve_and_scipy(precondition):
    A, b = spd(30, 0)
    M = jacobi(torch.diagonal(A)) if precondition else None
    res = conjugate_gradient(lambda v: A @ v, b, precond=M, tol=1e-12, max_iter=1000)
    assert res.converged and res.residual <= 1e-12
    assert float(torch.linalg.vector_norm(A @ res.x - b)) <= 1e-12 * float(torch.linalg.vector_norm(b))
    torch.testing.assert_close(res.x, torch.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
    An, bn = A.numpy(), b.numpy()
    Mn = None if not precondition else spla.LinearOperator(An.shape, matvec=lambda r: r / np.diag(An))
    ref, info = spla.cg(An, bn, rtol=1e-12, atol=0.0, maxiter=1000, M=Mn)
    assert info == 0
    np.testing.assert_allclose(res.x.numpy(), ref, rtol=1e-8, atol=1e-10)


def test_jacobi_preconditioning_cuts_iterations_on_a_badly_scaled_system():
    A, b = spd(60, 1, cond=10.0)
    plain = conjugate_gradient(lambda v: A @ v, b, tol=1e-10)
    pre = conjugate_gradient(lambda v: A @ v, b, precond=jacobi(torch.diagonal(A)), tol=1e-10)
    assert pre.converged and pre.iterations < plain.iterations


def test_cg_matrix_unknown_warm_start_and_exact_termination():
    A, _ = spd(8, 2, cond=10.0)
    B = torch.randn(8, 3, generator=torch.Generator().manual_seed(3), dtype=DT)   # A X = B, X a matrix
    ref = torch.linalg.solve(A, B)
    res = conjugate_gradient(lambda X: A @ X, B, tol=1e-13, max_iter=100)
    torch.testing.assert_close(res.x, ref, rtol=1e-9, atol=1e-11)
    warm = conjugate_gradient(lambda X: A @ X, B, x0=ref, tol=1e-10)
    assert warm.iterations == 0 and warm.converged                    # already solved: no iteration
    # in exact arithmetic CG ends in at most n steps; with 3 distinct eigenvalues, 3 steps
    D = torch.diag(torch.tensor([1.0, 1.0, 2.0, 2.0, 5.0, 5.0], dtype=DT))
    three = conjugate_gradient(lambda v: D @ v, torch.ones(6, dtype=DT), tol=1e-12)
    assert three.iterations == 3 and three.converged


def test_cg_stops_on_a_null_direction_and_on_zero_rhs():
    zero = conjugate_gradient(lambda v: v, torch.zeros(4, dtype=DT))
    assert zero.iterations == 0 and zero.residual == 0.0 and torch.all(zero.x == 0)
    singular = conjugate_gradient(lambda v: torch.zeros_like(v), torch.ones(4, dtype=DT))
    assert singular.iterations == 0 and not singular.converged


def test_armijo_step_on_a_quadratic_matches_the_closed_form():
    """phi(a) = f(x + a d) for f(x) = x^T A x / 2 - b^T x along d = -grad f: phi(a) = phi0 + a s + a^2 q / 2 with
    s = -|g|^2 and q = d^T A d; Armijo holds iff a <= 2 (1 - c1) |s| / q, so the step is the first power of
    `shrink` below that bound."""
    A, b = spd(10, 4, cond=50.0)
    x = torch.zeros(10, dtype=DT)
    g = A @ x - b
    d = -g
    s, q = float(g @ d), float(d @ A @ d)

    def f(v):
        return float(0.5 * v @ A @ v - b @ v)
    for c1, shrink in [(1e-4, 0.5), (0.3, 0.7), (0.9, 0.1)]:
        bound = 2 * (1 - c1) * -s / q
        expected = shrink ** max(0, math.ceil(math.log(bound) / math.log(shrink)))
        if expected > bound:                     # guard the ceil against round-off at an exact power
            expected *= shrink
        alpha = backtracking(lambda a: f(x + a * d), f(x), s, c1=c1, shrink=shrink)
        assert alpha == pytest.approx(expected, rel=1e-12)
        assert alpha <= bound < alpha / shrink
    # a step of 1 is taken when it already decreases enough; max_steps caps the halvings
    assert backtracking(lambda a: -a, 0.0, -1.0) == 1.0
    assert backtracking(lambda a: 1.0, 0.0, -1.0, max_steps=3) == 0.125
    # slack lets through a step whose decrease is within rounding
    assert backtracking(lambda a: 1e-17, 0.0, -1e-30, slack=1e-16) == 1.0
