"""Tests for optrepro.models.input_convex_rnn: the ICLRNN's constraints, convexity and Lipschitz bound, the
baselines, the training helper and the simulated reactor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import scramble_parameters
from optrepro.data.cstr import cstr_dataset, standardize
from optrepro.models.input_convex_rnn import (
    ICLRNN,
    fit,
    lipschitz_bound,
    midpoint_violation,
    noisy_mse,
    recurrent_baseline,
)

D64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: extra threads only add overhead


def _pairs(n, T, d, seed, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, T, d, generator=g, dtype=D64), scale * torch.randn(n, T, d, generator=g, dtype=D64)


@pytest.mark.parametrize("layers,k", [(1, 1.0), (2, 1.0), (1, 0.5), (2, None)])
def test_weights_nonnegative_and_normalized(layers, k):
    m = scramble_parameters(ICLRNN(3, 8, 2, num_layers=layers, lipschitz=k).double(), 0, 1.0)
    Us, Ws, V = (w.detach() if torch.is_tensor(w) else [u.detach() for u in w] for w in m.weights())
    for M in (*Us, *Ws, V):
        assert bool((M >= 0).all())
        if k is not None:
            assert abs(float(torch.linalg.matrix_norm(M, ord=2)) - k) < 1e-10
    assert Us[0].shape == (8, 6) and (layers == 1 or Us[1].shape == (8, 8))


@pytest.mark.parametrize("layers,k", [(1, 1.0), (2, 1.0), (2, None)])
def test_iclrnn_is_midpoint_convex_on_random_pairs(layers, k):
    m = scramble_parameters(ICLRNN(3, 16, 2, num_layers=layers, lipschitz=k).double(), 1, 1.0)
    A, B = _pairs(400, 7, 3, 2)
    gap = midpoint_violation(m, A, B)
    assert gap.shape == (400,)
    with torch.no_grad():
        scale = float(m(A).abs().max() + m(B).abs().max())   # round-off is relative to the output's size
    assert float(gap.max()) <= 1e-13 * scale
    assert float(gap.min()) < -1e-3           # strictly convex somewhere: the check sees curvature


def test_plain_rnn_and_lstm_violate_midpoint_convexity():
    A, B = _pairs(400, 7, 3, 3)
    for kind in ("rnn", "lstm"):
        torch.manual_seed(0)
        m = scramble_parameters(recurrent_baseline(kind, 3, 16, 2).double(), 4, 1.0)
        assert float(midpoint_violation(m, A, B).max()) > 1e-2


def test_midpoint_violation_matches_a_hand_computed_case():
    """One unit, T = 1: y = v * relu(u1 x - u2 x + b) + c with the constrained weights; the gap is explicit."""
    m = ICLRNN(1, 1, 1).double()
    with torch.no_grad():
        m.U[0].copy_(torch.tensor([[2.0, 0.0]]))   # normalized to [[1, 0]]: h = relu(x + b)
        m.b[0].fill_(0.0)
    a, b = torch.tensor([[[-1.0]]], dtype=D64), torch.tensor([[[3.0]]], dtype=D64)
    # f(x) = relu(x): f(1) - (0 + 3) / 2 = -0.5
    assert float(midpoint_violation(m, a, b)) == pytest.approx(-0.5)


@pytest.mark.parametrize("layers", [1, 2])
def test_lipschitz_bound_holds_empirically(layers):
    m = scramble_parameters(ICLRNN(3, 16, 2, num_layers=layers).double(), 5, 1.0)
    T = 6
    L = lipschitz_bound(m, T)
    A, B = _pairs(1000, T, 3, 6)
    B = A + 1e-2 * (B - A)                      # near pairs too (local slopes)
    with torch.no_grad():
        for P, Q in ((A, B), _pairs(1000, T, 3, 7)):
            ratio = (m(P) - m(Q)).flatten(1).norm(dim=1) / (P - Q).flatten(1).norm(dim=1)
            assert float(ratio.max()) <= L * (1 + 1e-12)
    assert float(ratio.max()) > 1e-3 * L        # not vacuous by orders of magnitude


def test_lipschitz_bound_is_tight_for_a_linear_one_unit_model():
    """One unit with positive pre-activations stays linear: y_t = sum_s x_s, T = 3. The bound is
    sigma_V * sigma_U * (1 + 1 + 1) = 3; the true operator (lower-triangular ones) has norm 2.247 (numpy)."""
    m = ICLRNN(1, 1, 1).double()
    with torch.no_grad():
        m.U[0].copy_(torch.tensor([[1.0, 0.0]]))
        m.W[0].fill_(1.0)
        m.V.fill_(1.0)
        m.b[0].fill_(100.0)                    # keeps relu in its linear part on small inputs
    assert lipschitz_bound(m, 3) == pytest.approx(3.0)
    J = torch.autograd.functional.jacobian(lambda x: m(x.reshape(1, 3, 1)).reshape(3), torch.zeros(3, dtype=D64))
    assert torch.allclose(J, torch.tril(torch.ones(3, 3, dtype=D64)))
    assert float(torch.linalg.matrix_norm(J, ord=2)) == pytest.approx(np.linalg.norm(np.tril(np.ones((3, 3))), 2))


def test_shapes_and_bad_inputs():
    m = ICLRNN(4, 8, 2)
    assert m(torch.randn(5, 7, 4)).shape == (5, 7, 2)
    for kind in ("rnn", "lstm"):
        assert recurrent_baseline(kind, 4, 8, 2)(torch.randn(5, 7, 4)).shape == (5, 7, 2)
    with pytest.raises(ValueError, match=r"invalid input shape \(5, 4\)"):
        m(torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"invalid input shape"):
        recurrent_baseline("rnn", 4, 8, 2)(torch.randn(5, 7, 3))
    with pytest.raises(ValueError, match="invalid kind 'gru': expected one of rnn, lstm"):
        recurrent_baseline("gru", 4, 8, 2)
    with pytest.raises(ValueError, match="invalid lipschitz -1"):
        ICLRNN(4, 8, 2, lipschitz=-1.0)
    with pytest.raises(ValueError, match="invalid hidden_size 0"):
        ICLRNN(4, 0, 2)
    with pytest.raises(ValueError, match="invalid steps 0"):
        lipschitz_bound(m, 0)
    with pytest.raises(ValueError, match="invalid model"):
        lipschitz_bound(recurrent_baseline("rnn", 4, 8, 2), 3)
    with pytest.raises(ValueError, match="invalid shapes"):
        midpoint_violation(m, torch.randn(2, 3, 4), torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match="invalid sigma -0.1"):
        noisy_mse(m, torch.randn(2, 3, 4), torch.randn(2, 3, 2), -0.1)
    with pytest.raises(ValueError, match="invalid shapes"):
        fit(m, torch.randn(2, 3, 4), torch.randn(2, 4, 2), 1, 1e-2)
    with pytest.raises(ValueError, match="invalid n 0"):
        cstr_dataset(0)


def test_fit_reduces_the_error_and_noisy_mse_is_the_clean_error_at_zero():
    torch.manual_seed(0)
    X, Y = cstr_dataset(100, steps=5, seed=0)
    X, Y = standardize(X)[0].float(), standardize(Y)[0].float()
    m = ICLRNN(4, 16, 2)
    with torch.no_grad():
        before = float(((m(X) - Y) ** 2).mean())
    res = fit(m, X, Y, 60, 3e-2)
    assert len(res.loss) == 60 and res.final < 0.2 * before
    assert noisy_mse(m, X, Y, 0.0) == pytest.approx(res.final, rel=1e-5)
    assert noisy_mse(m, X, Y, 1.0, torch.Generator().manual_seed(0)) > res.final


def test_cstr_matches_a_scipy_euler_reference_and_stays_in_region():
    X, Y = cstr_dataset(50, steps=4, seed=3)
    assert X.shape == (50, 4, 4) and Y.shape == (50, 4, 2) and X.dtype == D64
    assert torch.equal(X[:, 0], X[:, 3])                      # constant inputs, repeated
    ca, T = X[:, 0, 1].numpy(), X[:, 0, 0].numpy()
    P = np.array([[1060.0, 22.0], [22.0, 0.52]])
    assert (P[0, 0] * ca ** 2 + 2 * P[0, 1] * ca * T + P[1, 1] * T ** 2 < 372).all()
    # independent reference: scipy's explicit solve_ivp (RK45) of the same ODE for one trajectory; Euler with
    # step 1e-4 h agrees to a small fraction of the state change
    from scipy.integrate import solve_ivp
    i = 7
    T_dev, ca_dev, u2, u1 = X[i, 0].tolist()

    def rhs(t, s):
        CA, TT = s
        r = 8.46e6 * np.exp(-5e4 / (8.314 * TT)) * CA ** 2
        return [5 * (u1 + 4 - CA) - r, 5 * (300 - TT) + 1.15e4 / 231 * r + u2 / 231]

    sol = solve_ivp(rhs, (0, 20e-4), [ca_dev + 1.9537, T_dev + 401.8727], t_eval=[5e-4, 10e-4, 15e-4, 20e-4],
                    rtol=1e-10, atol=1e-10)
    ref = np.stack([sol.y[1] - 401.8727, sol.y[0] - 1.9537], 1)
    change = np.abs(ref - np.array([T_dev, ca_dev])).max(0)
    assert np.all(np.abs(Y[i].numpy() - ref).max(0) <= 0.02 * change + 1e-6)


def test_standardize_uses_train_statistics():
    a, b = torch.randn(10, 3, 2, dtype=D64) * 5 + 2, torch.randn(4, 3, 2, dtype=D64)
    sa, sb = standardize(a, b)
    flat = sa.reshape(-1, 2)
    assert torch.allclose(flat.mean(0), torch.zeros(2, dtype=D64), atol=1e-12)
    assert torch.allclose(flat.std(0), torch.ones(2, dtype=D64))
    mu, sd = a.reshape(-1, 2).mean(0), a.reshape(-1, 2).std(0)
    assert torch.allclose(sb, (b - mu) / sd)
