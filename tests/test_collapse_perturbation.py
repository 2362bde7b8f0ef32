"""Tests for optrepro.problems.collapse_perturbation: the model of features tied to input features H0 (Tirer, Huang,
Niles-Weed 2023), its solver, the central-path flow and the perturbation (linear-response) predictions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch
from optrepro.metrics import nc1
from optrepro.problems.collapse_perturbation import (
    central_path_flow,
    class_block_spectrum,
    collapsed_minimizer,
    gradients,
    large_beta_response,
    linear_response,
    nc1_trace,
    near_collapse_nc1_ratio,
    near_collapse_spectrum,
    objective,
    one_hot,
    optimal_classifier,
    response_matrix,
    tied_minimizer,
    ufm_minimizer,
)

LW, LH = 0.05, 0.2


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: extra threads only add overhead


def noisy(k=3, n=4, d=5, noise=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(k).repeat_interleave(n)
    M = torch.randn(k, d, generator=g, dtype=torch.float64)
    return M[y] + noise * torch.randn(k * n, d, generator=g, dtype=torch.float64), y


# ------------------------------------------------------------------- objective and gradients

def test_objective_matches_numpy_formula():
    H0, y = noisy()
    g = torch.Generator().manual_seed(1)
    H = torch.randn(H0.shape, generator=g, dtype=torch.float64)
    W = torch.randn(3, 5, generator=g, dtype=torch.float64)
    Hn, H0n, Wn, Y = H.numpy().T, H0.numpy().T, W.numpy(), np.eye(3)[y.numpy()].T
    N, K, beta = 12, 3, 0.7
    ref = (0.5 / N * np.sum((Wn @ Hn - Y) ** 2) + LW / (2 * K) * np.sum(Wn**2) + LH / (2 * N) * np.sum(Hn**2)
           + beta / (2 * N) * np.sum((Hn - H0n) ** 2))
    assert objective(W, H, H0, y, LW, LH, beta) == pytest.approx(ref, rel=1e-12)


def test_gradients_match_finite_differences():
    H0, y = noisy()
    g = torch.Generator().manual_seed(2)
    H = torch.randn(H0.shape, generator=g, dtype=torch.float64)
    W = torch.randn(3, 5, generator=g, dtype=torch.float64)
    gw, gh = gradients(W, H, H0, y, LW, LH, 0.7)
    h = 1e-6
    for (i, j) in [(0, 0), (2, 4), (1, 3)]:
        E = torch.zeros_like(W)
        E[i, j] = h
        fd = (objective(W + E, H, H0, y, LW, LH, 0.7) - objective(W - E, H, H0, y, LW, LH, 0.7)) / (2 * h)
        assert fd == pytest.approx(float(gw[i, j]), rel=1e-6, abs=1e-10)
    for (i, j) in [(0, 0), (11, 4), (5, 2)]:
        E = torch.zeros_like(H)
        E[i, j] = h
        fd = (objective(W, H + E, H0, y, LW, LH, 0.7) - objective(W, H - E, H0, y, LW, LH, 0.7)) / (2 * h)
        assert fd == pytest.approx(float(gh[i, j]), rel=1e-6, abs=1e-10)


def test_optimal_classifier_zeroes_the_w_gradient():
    H0, y = noisy()
    W = optimal_classifier(H0, y, LW)
    gw, _ = gradients(W, H0, H0, y, LW, LH, 1.0)
    assert float(gw.abs().max()) < 1e-13


# ------------------------------------------------------------------- the minimiser

@pytest.mark.parametrize("beta", [0.3, 5.0])
def test_tied_minimizer_matches_scipy(beta):
    H0, y = noisy()
    sol = tied_minimizer(H0, y, LW, LH, beta)
    assert sol.converged and sol.grad_norm < 1e-12

    def fun(x):
        W = torch.as_tensor(x[:15].reshape(3, 5))
        H = torch.as_tensor(x[15:].reshape(12, 5))
        gw, gh = gradients(W, H, H0, y, LW, LH, beta)
        return objective(W, H, H0, y, LW, LH, beta), np.concatenate([gw.numpy().ravel(), gh.numpy().ravel()])

    x0 = np.concatenate([optimal_classifier(H0, y, LW).numpy().ravel(), H0.numpy().ravel()])
    ref = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12,
                                                                                  "maxiter": 20000})
    assert sol.objective == pytest.approx(ref.fun, rel=1e-9)
    np.testing.assert_allclose(sol.H.numpy().ravel(), ref.x[15:], atol=1e-5)


def test_collapsed_minimizer_is_a_ufm_minimum_and_a_fixed_point():
    W, H, y = collapsed_minimizer(3, 4, 5, LW, LH)
    gw, gh = gradients(W, H, H, y, LW, LH, 0.0)          # plain UFM: stationary
    assert float(gw.abs().max()) < 1e-14 and float(gh.abs().max()) < 1e-14
    c = math.sqrt(LW * LH)
    np.testing.assert_allclose((H[::4] @ H[::4].T).numpy(), (1 - c) * math.sqrt(LW / LH) * np.eye(3), atol=1e-14)
    sol = tied_minimizer(H, y, LW, LH, 2.0)                # Corollary 2.2: H0 = H* gives back (W*, H*)
    assert float((sol.H - H).abs().max()) < 1e-13 and float((sol.W - W).abs().max()) < 1e-13
    # the UFM from a noisy start reaches the same objective value (every minimiser is a rotated H*)
    H0, y0 = noisy(noise=0.3)
    base = ufm_minimizer(H0, y0, LW, LH)
    assert base.objective == pytest.approx(objective(W, H, H, y, LW, LH, 0.0), rel=1e-10)
    assert nc1(base.H, y0) < 1e-20


def test_minimizer_reduces_nc1_below_the_input():
    H0, y = noisy(noise=1.0)
    for beta in [10.0, 1.0, 0.1]:
        sol = tied_minimizer(H0, y, LW, LH, beta)
        assert 0 < nc1(sol.H, y) < nc1(H0, y)
        assert 0 < nc1_trace(sol.H, y) < nc1_trace(H0, y)


# ------------------------------------------------------------------- the flow

def test_central_path_flow_is_monotone_and_matches_the_proximal_step():
    H0, y = noisy(noise=1.0)
    tr = central_path_flow(H0, y, LW, LH, 2.0, 400)
    assert all(b < a for a, b in zip(tr.nc1_trace, tr.nc1_trace[1:]))
    sb = [math.exp(2 * LH * t) * v for t, v in zip(tr.t, tr.tr_between)]
    assert all(b > a for a, b in zip(sb, sb[1:]))
    # for a short time the flow and the minimiser at beta = 1/t agree to O(t^2)
    short = central_path_flow(H0, y, LW, LH, 0.01, 200)
    prox = tied_minimizer(H0, y, LW, LH, 100.0)
    assert float((short.H - prox.H).norm() / (prox.H - H0).norm()) < 0.05


# ------------------------------------------------------------------- linear response

def test_linear_response_matches_finite_differences_of_the_solver():
    H0, y = noisy(noise=0.5)
    beta = 2.0
    sol = tied_minimizer(H0, y, LW, LH, beta)
    dH0 = torch.randn(H0.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    h = 1e-5
    plus = tied_minimizer(H0 + h * dH0, y, LW, LH, beta).H
    minus = tied_minimizer(H0 - h * dH0, y, LW, LH, beta).H
    fd = (plus - minus) / (2 * h)
    pred = linear_response(sol.W, sol.H, H0, y, LW, LH, beta, dH0)
    assert float((pred - fd).norm() / fd.norm()) < 1e-6


def test_large_beta_response_is_the_first_order_expansion():
    W, H, y = collapsed_minimizer(3, 2, 5, LW, LH)
    dH0 = torch.randn(H.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    errs = []
    for beta in [100.0, 1000.0]:
        exact = linear_response(W, H, H, y, LW, LH, beta, dH0)
        approx = large_beta_response(W, H, H, y, LW, LH, beta, dH0)
        errs.append(float((exact - approx).norm() / dH0.norm()))
    assert errs[0] / errs[1] == pytest.approx(100, rel=0.05)   # O(beta^-2)


def test_theorem_4_2_spectrum():
    W, H, y = collapsed_minimizer(3, 2, 5, LW, LH)
    for beta in [50.0, 500.0]:
        F = response_matrix(W, H, H, y, LW, LH, beta)
        got, want = class_block_spectrum(F, y, 5), near_collapse_spectrum(LW, LH, beta)
        for key in ("intra_max", "intra_min", "inter_max"):
            assert got[key] == pytest.approx(want[key], rel=1e-9)
        assert got["inter_rank"] == 1
    # the matrix agrees with the operator
    dH0 = torch.randn(H.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    F = response_matrix(W, H, H, y, LW, LH, 50.0)
    vec = (F @ dH0.reshape(-1)).reshape(6, 5)  # vec of the d x N matrix = the (N, d) rows in order
    np.testing.assert_allclose(vec.numpy(), large_beta_response(W, H, H, y, LW, LH, 50.0, dH0).numpy(), atol=1e-14)


def test_near_collapse_nc1_ratio_matches_the_solver():
    W, H, y = collapsed_minimizer(3, 4, 6, LW, LH)
    G = torch.randn(H.shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    H0 = H + 1e-5 * G * H.norm() / G.norm()
    for beta in [1.0, 20.0]:
        sol = tied_minimizer(H0, y, LW, LH, beta)
        ratio = nc1(sol.H, y) / nc1(H0, y)
        assert ratio == pytest.approx(near_collapse_nc1_ratio(LW, LH, beta), rel=1e-3)


# ------------------------------------------------------------------- bad input

def test_bad_inputs_raise_one_line_value_errors():
    H0, y = noisy()
    with pytest.raises(ValueError, match="beta"):
        tied_minimizer(H0, y, LW, LH, -1.0)
    with pytest.raises(ValueError, match="balanced"):
        tied_minimizer(H0[:-1], y[:-1], LW, LH, 1.0)
    with pytest.raises(ValueError, match="lam_w"):
        optimal_classifier(H0, y, 0.0)
    with pytest.raises(ValueError, match="sqrt"):
        collapsed_minimizer(3, 2, 5, 2.0, 2.0)
    with pytest.raises(ValueError, match="dim"):
        collapsed_minimizer(3, 2, 2, LW, LH)
    with pytest.raises(ValueError, match="method"):
        from optrepro.problems.collapse_perturbation import predicted_features
        W, H, yy = collapsed_minimizer(3, 2, 5, LW, LH)
        predicted_features(W, H, H, yy, LW, LH, 1.0, H, method="exact")
    assert one_hot(torch.tensor([1, 0, 1])).tolist() == [[0, 1, 0], [1, 0, 1]]
