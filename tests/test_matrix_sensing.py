"""Tests for optrepro.problems.matrix_sensing: symmetric and asymmetric factorized GD for matrix sensing
(Xiong, Ding & Du, ICLR 2024)."""

from __future__ import annotations

import math

import pytest
import torch
from optrepro.analysis.rates import power_law_exponent
from optrepro.problems.matrix_sensing import (
    SensingProblem,
    adjoint,
    asymmetric_grad,
    asymmetric_loss,
    asymptotic_rate,
    gaussian_measurements,
    imbalanced_init,
    make_problem,
    measure,
    planted_psd,
    rebalance,
    run_asymmetric_gd,
    run_symmetric_gd,
    small_init,
    symmetric_grad,
    symmetric_loss,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def problem():
    return make_problem(6, 2, 150, cond=2.0, generator=gen(1))


# ------------------------------------------------------------------------------ measurement operator
def test_measure_and_adjoint_match_explicit_loops():
    A = gaussian_measurements(7, 4, 3, generator=gen())
    Z = torch.randn(2, 4, 3, dtype=torch.float64)        # a batch of two matrices
    v = torch.randn(2, 7, dtype=torch.float64)
    loop_measure = torch.tensor([[float((A[i] * Z[b]).sum()) for i in range(7)] for b in range(2)], dtype=torch.float64)
    loop_adjoint = torch.stack([sum(v[b, i] * A[i] for i in range(7)) for b in range(2)])
    torch.testing.assert_close(measure(A, Z), loop_measure)
    torch.testing.assert_close(adjoint(A, v), loop_adjoint)
    # adjointness: <A(Z), v> = <Z, A*(v)>
    torch.testing.assert_close((measure(A, Z) * v).sum(), (Z * adjoint(A, v)).sum())


def test_symmetric_measurements_and_isotropy():
    A = gaussian_measurements(20000, 3, symmetric=True, generator=gen(2))
    assert torch.equal(A, A.transpose(-1, -2))
    Z = torch.randn(3, 3, dtype=torch.float64, generator=gen(3))
    Z = Z + Z.T
    # E <A_i, Z>^2 = ||Z||_F^2 for symmetric Z (also for the unsymmetrized ensemble)
    for ens in (A, gaussian_measurements(20000, 3, generator=gen(4))):
        ratio = (measure(ens, Z) ** 2).mean() / (Z * Z).sum()
        assert abs(ratio.item() - 1) < 0.05
    with pytest.raises(ValueError, match="square"):
        gaussian_measurements(5, 3, 4, symmetric=True)


def test_gram_shortcuts_match_the_operator(problem):
    Z = torch.randn(3, 6, 6, dtype=torch.float64, generator=gen(5))
    direct = adjoint(problem.A, measure(problem.A, Z) - problem.y) / problem.m
    torch.testing.assert_close(problem.normal_residual(Z), direct)
    res = torch.linalg.vector_norm(measure(problem.A, Z) - problem.y, dim=-1) / torch.linalg.vector_norm(problem.y)
    torch.testing.assert_close(problem.relative_residual(Z), res)
    assert problem.relative_residual(problem.M_star).item() < 1e-6
    assert torch.allclose(measure(problem.A, problem.M_star), problem.y)


def test_planted_psd_spectrum():
    M, X = planted_psd(10, 3, cond=4.0, generator=gen(6))
    torch.testing.assert_close(M, X @ X.T)
    evals = torch.linalg.eigvalsh(M)
    torch.testing.assert_close(evals[-3:], torch.tensor([0.25, 0.625, 1.0], dtype=torch.float64))
    assert evals[:-3].abs().max() < 1e-12


# ------------------------------------------------------------------------------ losses and gradients
def test_symmetric_gradient_matches_autograd_and_finite_differences(problem):
    X = torch.randn(6, 3, dtype=torch.float64, generator=gen(7)) * 0.5
    Xg = X.clone().requires_grad_(True)
    symmetric_loss(problem, Xg).backward()
    g = symmetric_grad(problem, X)
    torch.testing.assert_close(g, Xg.grad)
    D = torch.randn(6, 3, dtype=torch.float64, generator=gen(8))
    h = 1e-6
    fd = (symmetric_loss(problem, X + h * D) - symmetric_loss(problem, X - h * D)) / (2 * h)
    assert abs(fd.item() - (g * D).sum().item()) < 1e-6 * max(1.0, abs(fd.item()))


def test_asymmetric_gradient_matches_autograd_and_finite_differences():
    A = gaussian_measurements(40, 5, 4, generator=gen(9))       # rectangular, unsymmetrized
    M = torch.randn(5, 4, dtype=torch.float64, generator=gen(10))
    P = SensingProblem(A, M, measure(A, M))
    F = torch.randn(5, 3, dtype=torch.float64, generator=gen(11))
    G = torch.randn(4, 3, dtype=torch.float64, generator=gen(12))
    Fg, Gg = F.clone().requires_grad_(True), G.clone().requires_grad_(True)
    asymmetric_loss(P, Fg, Gg).backward()
    gF, gG = asymmetric_grad(P, F, G)
    torch.testing.assert_close(gF, Fg.grad)
    torch.testing.assert_close(gG, Gg.grad)
    DF = torch.randn(5, 3, dtype=torch.float64, generator=gen(13))
    DG = torch.randn(4, 3, dtype=torch.float64, generator=gen(14))
    h = 1e-6
    fd = (asymmetric_loss(P, F + h * DF, G + h * DG) - asymmetric_loss(P, F - h * DF, G - h * DG)) / (2 * h)
    assert abs(fd.item() - ((gF * DF).sum() + (gG * DG).sum()).item()) < 1e-6 * max(1.0, abs(fd.item()))


def test_batched_gradients_equal_one_at_a_time(problem):
    X = torch.randn(3, 6, 4, dtype=torch.float64, generator=gen(15))
    batched = symmetric_grad(problem, X)
    for b in range(3):
        torch.testing.assert_close(batched[b], symmetric_grad(problem, X[b]))


# ------------------------------------------------------------------------------ initialization, the one step
def test_small_and_imbalanced_init_scales():
    X = small_init(4000, 3, 0.5, generator=gen(16))
    # entries of X^T X have standard deviation <= alpha^2 sqrt(2 / n) = 0.0056: allow 6 of them
    torch.testing.assert_close(X.T @ X, 0.25 * torch.eye(3, dtype=torch.float64), atol=0.034, rtol=0)
    F, G = imbalanced_init(4000, 3000, 2, 0.9, batch=(2,), generator=gen(17))
    assert F.shape == (2, 4000, 2) and G.shape == (2, 3000, 2)
    ratio = torch.linalg.matrix_norm(F) / torch.linalg.matrix_norm(G)
    assert torch.all((ratio - 3).abs() < 0.15)


def test_rebalance_keeps_the_product_and_whitens_F():
    F = torch.randn(2, 7, 3, dtype=torch.float64, generator=gen(18)) * torch.tensor([1.0, 0.1, 0.01], dtype=torch.float64)
    G = torch.randn(2, 7, 3, dtype=torch.float64, generator=gen(19))
    F2, G2 = rebalance(F, G)
    torch.testing.assert_close(F2 @ G2.transpose(-1, -2), F @ G.transpose(-1, -2))
    s2 = torch.linalg.matrix_norm(F @ G.transpose(-1, -2), ord=2)
    torch.testing.assert_close(F2.transpose(-1, -2) @ F2, s2[:, None, None] * torch.eye(3, dtype=torch.float64))
    F3, _ = rebalance(F[0], G[0], scale=2.0)
    torch.testing.assert_close(F3.T @ F3, 4.0 * torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="column rank"):
        rebalance(torch.zeros(5, 2, dtype=torch.float64), G[0, :5, :2])


# ------------------------------------------------------------------------------ runs with known answers
def test_exact_parameterization_converges_linearly_at_the_local_rate(problem):
    lr = 0.25
    res = run_symmetric_gd(problem, small_init(6, 2, 0.3, generator=gen(20)), lr, 500)
    assert res.relative_error[-1] < 1e-10
    sigma_r = torch.linalg.eigvalsh(problem.M_star)[-2].item()  # = 0.5
    rho = asymptotic_rate(res.relative_error).item()
    assert 0.5 * lr * sigma_r < rho < 1.5 * lr * sigma_r     # population theory: rho = lr * sigma_r


def test_overparameterized_symmetric_gd_is_sublinear(problem):
    res = run_symmetric_gd(problem, small_init(6, 4, 0.3, generator=gen(21)), 0.25, 2000)
    slope = 2 * power_law_exponent(res.error[200:], steps=torch.arange(200, len(res.error)))   # of ||XX^T - M*||_F^2
    assert -2.2 < slope < -1.5                                  # ~ 1/T^2, not linear
    assert res.relative_error[-1] > 1e-4


def test_asymmetric_modification_keeps_the_error_and_removes_the_alpha_dependence(problem):
    F0, G0 = imbalanced_init(6, 6, 4, 0.3, generator=gen(22))
    F0, G0 = torch.stack([F0, F0 / 2]), torch.stack([G0, G0 / 2])
    plain = run_asymmetric_gd(problem, F0, G0, 0.25, 1500)
    mod = run_asymmetric_gd(problem, F0, G0, 0.25, 1500, modify_below=1e-2)
    assert plain.modified_at is None and torch.all(mod.modified_at > 0)
    for b in range(2):
        t = int(mod.modified_at[b])
        torch.testing.assert_close(mod.error[: t + 1, b], plain.error[: t + 1, b])  # same path up to the step
    r_plain, r_mod = asymptotic_rate(plain.relative_error), asymptotic_rate(mod.relative_error)
    assert r_plain[0] / r_plain[1] > 2                  # plain: rate ~ alpha^2
    assert 0.5 < (r_mod[0] / r_mod[1]).item() < 2       # modified: independent of alpha
    assert torch.all(r_mod > 5 * r_plain)


# ------------------------------------------------------------------------------ rate fits
def test_asymptotic_rate_recovers_known_curves():
    t = torch.arange(3000, dtype=torch.float64)
    e = torch.stack([2 * torch.exp(-0.01 * t), 5 * torch.exp(-0.03 * t), torch.full_like(t, 0.5)], dim=1)
    e = e.clamp_min(1e-14)  # a numerical floor the fit must stop at
    rho = asymptotic_rate(e)
    torch.testing.assert_close(rho[:2], torch.tensor([0.01, 0.03], dtype=torch.float64))
    assert math.isnan(rho[2])


def test_bad_inputs_raise_one_line_value_errors(problem):
    with pytest.raises(ValueError, match="invalid lr"):
        run_symmetric_gd(problem, small_init(6, 2, 0.1), -1.0, 10)
    with pytest.raises(ValueError, match="invalid steps"):
        run_symmetric_gd(problem, small_init(6, 2, 0.1), 0.1, 0)
    with pytest.raises(ValueError, match="invalid alpha"):
        small_init(6, 2, 0.0)
    with pytest.raises(ValueError, match="invalid r"):
        planted_psd(3, 4)
    with pytest.raises(ValueError, match="invalid cond"):
        planted_psd(3, 2, cond=0.5)
    with pytest.raises(ValueError, match="invalid shapes"):
        measure(problem.A, torch.zeros(5, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="invalid tail"):
        asymptotic_rate(torch.ones(10, 1), tail=0)
