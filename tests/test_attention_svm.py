"""Tests for optrepro.models.attention_svm: softmax attention, its risk gradient and the Att-SVM.

References: a per-sample numpy loop for the forward pass, torch.autograd and central finite differences for the
gradients, a two-token closed form for the saturated regime, closed-form SVM solutions for orthogonal constraints,
and the KKT conditions (non-negative multipliers on the active constraints) for random instances.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from optrepro.models.attention_svm import (
    att_svm,
    att_svm_batch,
    attention_gd,
    attention_output,
    attention_probs,
    correlation,
    empirical_risk,
    is_locally_optimal,
    kq_gradients,
    local_optimality_gap,
    optimal_tokens,
    random_attention_data,
    risk_gradient,
    support_tokens,
    token_scores,
    uniform_init,
)

DT = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: extra threads only add overhead


def small_problem(seed=0, R=3, n=4, T=5, d=3):
    X, z, Y, v = random_attention_data(R, n, T, d, seed)
    W = uniform_init((R, d, d), d, seed + 7) * 3
    return X, z, Y, v, W


# ------------------------------------------------------------------------------------------------ forward pass

def test_forward_matches_numpy_loop():
    X, z, Y, v, W = small_problem()
    out = attention_output(X, z, W, v).numpy()
    Xn, zn, vn, Wn = X.numpy(), z.numpy(), v.numpy(), W.numpy()
    for r in range(X.shape[0]):
        for i in range(X.shape[1]):
            a = Xn[r, i] @ Wn[r] @ zn[r, i]
            s = np.exp(a - a.max()) / np.exp(a - a.max()).sum()
            assert out[r, i] == pytest.approx(vn[r] @ Xn[r, i].T @ s, abs=1e-13)
    p = attention_probs(X, z, W)
    assert torch.allclose(p.sum(-1), torch.ones_like(p[..., 0]))


def test_token_scores_and_optimal_tokens():
    X = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]], dtype=DT)   # n = 1, T = 3, d = 2
    v = torch.tensor([1.0, 0.5], dtype=DT)
    assert token_scores(X, torch.tensor([1.0], dtype=DT), v).tolist() == [[1.0, 0.5, -1.0]]
    assert optimal_tokens(X, torch.tensor([1.0], dtype=DT), v).tolist() == [0]
    assert optimal_tokens(X, torch.tensor([-1.0], dtype=DT), v).tolist() == [2]   # a negative label flips scores


def test_data_shapes_norms_and_determinism():
    X, z, Y, v = random_attention_data(2, 6, 8, 10, seed=3)
    assert X.shape == (2, 6, 8, 10) and z.shape == (2, 6, 10) and Y.shape == (2, 6) and v.shape == (2, 10)
    assert torch.allclose(X.norm(dim=-1), torch.ones(2, 6, 8, dtype=DT))
    assert torch.allclose(z.norm(dim=-1), torch.ones(2, 6, dtype=DT))
    assert set(Y.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(random_attention_data(2, 6, 8, 10, seed=3)[0], X)
    assert not torch.equal(random_attention_data(2, 6, 8, 10, seed=4)[0], X)


# ------------------------------------------------------------------------------------------------ gradients

@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_gradient_matches_autograd(loss):
    X, z, Y, v, W = small_problem(seed=1)
    Wg = W.clone().requires_grad_(True)
    empirical_risk(Wg, X, z, Y, v, loss).sum().backward()
    assert torch.allclose(risk_gradient(W, X, z, Y, v, loss), Wg.grad, rtol=1e-10, atol=1e-14)


def test_gradient_matches_finite_differences():
    X, z, Y, v, W = small_problem(seed=2, R=1)
    G = risk_gradient(W, X, z, Y, v)[0]
    h = 1e-6
    for (a, b) in [(0, 0), (1, 2), (2, 1)]:
        E = torch.zeros_like(W)
        E[0, a, b] = h
        fd = (empirical_risk(W + E, X, z, Y, v) - empirical_risk(W - E, X, z, Y, v))[0] / (2 * h)
        assert G[a, b].item() == pytest.approx(fd.item(), rel=1e-6, abs=1e-11)


def test_gradient_accurate_when_attention_saturates():
    """Two tokens, logit gap 40: the exact gradient is l'(f) Y s1 s2 (h2 - h1) (x2 - x1) z^T with s2 = e^-40."""
    x1, x2 = torch.tensor([1.0, 0.0], dtype=DT), torch.tensor([0.6, 0.8], dtype=DT)
    zq = torch.tensor([1.0, 0.0], dtype=DT)
    X, z = torch.stack([x1, x2])[None], zq[None]                       # n = 1
    W = torch.tensor([[100.0, 0.0], [0.0, 0.0]], dtype=DT)             # logits 100 and 60
    v, Y = torch.tensor([0.3, -0.7], dtype=DT), torch.tensor([1.0], dtype=DT)
    h1, h2 = (x1 @ v).item(), (x2 @ v).item()
    s2 = 1 / (1 + np.exp(40.0))
    f = h1 + s2 * (h2 - h1)
    lprime = -1 / (1 + np.exp(f))
    exact = lprime * (1 - s2) * s2 * (h2 - h1) * torch.outer(x2 - x1, zq)
    got = risk_gradient(W, X, z, Y, v)
    assert torch.allclose(got, exact, rtol=1e-9, atol=0)


def test_kq_gradients_match_autograd():
    X, z, Y, v, _ = small_problem(seed=4)
    K = uniform_init((3, 3, 2), 3, 11).requires_grad_(True)           # m = 2 < d: a rank-2 W
    Q = uniform_init((3, 3, 2), 3, 12).requires_grad_(True)
    empirical_risk(K @ Q.transpose(-1, -2), X, z, Y, v).sum().backward()
    GK, GQ = kq_gradients(K.detach(), Q.detach(), X, z, Y, v)
    assert torch.allclose(GK, K.grad, rtol=1e-10, atol=1e-14)
    assert torch.allclose(GQ, Q.grad, rtol=1e-10, atol=1e-14)


def test_correlation():
    A = torch.randn(4, 3, 3, dtype=DT)
    assert torch.allclose(correlation(A, 5 * A), torch.ones(4, dtype=DT))
    assert torch.allclose(correlation(A, -A), -torch.ones(4, dtype=DT))
    B = torch.zeros(3, 3, dtype=DT)
    B[0, 1] = 1
    C = torch.zeros(3, 3, dtype=DT)
    C[1, 0] = 2
    assert correlation(B, C).item() == 0


# ------------------------------------------------------------------------------------------------ gradient descent

def test_normalized_and_plain_steps():
    X, z, Y, v, W0 = small_problem(seed=5)
    G = risk_gradient(W0, X, z, Y, v)
    one = attention_gd(X, z, Y, v, 1, 0.3, W0=W0)
    expected = W0 - 0.3 * G / torch.linalg.matrix_norm(G)[..., None, None]
    assert torch.allclose(one.W_final, expected, atol=1e-14)
    assert one.steps.tolist() == [0, 1] and one.W.shape == (2, 3, 3, 3)
    plain = attention_gd(X, z, Y, v, 1, 0.3, W0=W0, normalized=False)
    assert torch.allclose(plain.W_final, W0 - 0.3 * G, atol=1e-14)
    # Plain GD with a small step decreases the risk at every step.
    run = attention_gd(X, z, Y, v, 50, 0.5, W0=W0, normalized=False, record_every=1)
    assert torch.all(run.loss[1:] <= run.loss[:-1] + 1e-15)


def test_normalized_gd_keeps_its_direction_past_underflow():
    """Logits 800 apart: the gradient underflows to exactly zero, its direction -(h2 - h1)(x2 - x1) z^T does not."""
    X = torch.tensor([[[[1.0, 0.0], [0.6, 0.8]]]], dtype=DT)
    z = torch.tensor([[[1.0, 0.0]]], dtype=DT)
    Y, v = torch.tensor([[1.0]], dtype=DT), torch.tensor([[0.3, -0.7]], dtype=DT)     # h1 = 0.3 > h2 = -0.38
    W0 = torch.tensor([[[2000.0, 0.0], [0.0, 0.0]]], dtype=DT)                        # logits 2000 and 1200
    assert torch.all(risk_gradient(W0, X, z, Y, v) == 0)
    direction = torch.outer(X[0, 0, 1] - X[0, 0, 0], z[0, 0])
    direction = direction / direction.norm()          # the gradient is a positive multiple of this (h2 < h1)
    step = attention_gd(X, z, Y, v, 1, 0.1, W0=W0)
    assert not step.frozen.item()
    assert torch.allclose(step.W_final[0], W0[0] - 0.1 * direction, atol=1e-12)
    plain = attention_gd(X, z, Y, v, 1, 0.1, W0=W0, normalized=False)
    assert plain.frozen.item() and torch.equal(plain.W_final, W0)


def test_kq_step_with_regularization_matches_autograd():
    X, z, Y, v, _ = small_problem(seed=6)
    K0, Q0 = uniform_init((3, 3, 3), 3, 21), uniform_init((3, 3, 3), 3, 22)
    lam = 1e-3
    K, Q = K0.clone().requires_grad_(True), Q0.clone().requires_grad_(True)
    (empirical_risk(K @ Q.transpose(-1, -2), X, z, Y, v) + lam * (K.square().sum((-2, -1)) + Q.square().sum((-2, -1)))).sum().backward()
    step = attention_gd(X, z, Y, v, 1, 0.1, parameterization="KQ", K0=K0, Q0=Q0, reg=lam)
    K1 = K0 - 0.1 * K.grad / torch.linalg.matrix_norm(K.grad)[..., None, None]
    Q1 = Q0 - 0.1 * Q.grad / torch.linalg.matrix_norm(Q.grad)[..., None, None]
    assert torch.allclose(step.K, K1, atol=1e-13) and torch.allclose(step.Q, Q1, atol=1e-13)
    assert torch.allclose(step.W_final, K1 @ Q1.transpose(-1, -2), atol=1e-13)


def test_two_tokens_from_zero_stay_on_the_svm_direction():
    """With T = 2 and one sample every gradient is a multiple of (x1 - x2) z^T, which is W^mm's direction."""
    X = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]], dtype=DT)
    z = torch.tensor([[[0.6, 0.8]]], dtype=DT)
    Y, v = torch.tensor([[1.0]], dtype=DT), torch.tensor([[1.0, 0.0]], dtype=DT)    # token 0 is optimal
    run = attention_gd(X, z, Y, v, 30, 0.1, W0=torch.zeros(1, 2, 2, dtype=DT))
    Wmm = att_svm(X[0], z[0], [0]).W
    assert correlation(run.W_final[0], torch.tensor(Wmm)).item() == pytest.approx(1.0, abs=1e-12)
    assert run.norm[-1, 0].item() == pytest.approx(3.0, abs=1e-12)                  # 30 steps of length 0.1
    assert run.selected.tolist() == [[0]]


def test_gd_converges_to_the_svm_of_the_selected_tokens():
    """The paper's local-convergence experiment in miniature (normalized GD, eta = 0.1)."""
    X, z, Y, v = random_attention_data(1, 3, 4, 6, seed=0)
    run = attention_gd(X, z, Y, v, 1500, 0.1, W0=uniform_init((1, 6, 6), 6, 1), record_every=500)
    W, (sol,) = att_svm_batch(X, z, run.selected, "fro")
    assert correlation(run.W_final, W).item() > 0.99
    assert run.probs.max(-1).values.min().item() > 0.99
    assert is_locally_optimal(X[0], Y[0], v[0], z[0], run.selected[0], sol.W)


# ------------------------------------------------------------------------------------------------ the Att-SVM

def test_svm_single_constraint_closed_form():
    """One constraint <a b^T, W> >= 1: both norms give W = a b^T / (|a|^2 |b|^2)."""
    X = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    z = np.array([[0.0, 0.6, 0.8]])
    a = X[0, 0] - X[0, 1]
    expected = np.outer(a, z[0]) / (a @ a)
    for norm in ("fro", "nuc"):
        sol = att_svm(X, z, [0], norm)
        assert np.allclose(sol.W, expected, atol=1e-6)
        assert sol.min_margin == pytest.approx(1.0, abs=1e-6)


def test_svm_orthogonal_constraints_closed_form():
    """Two samples with orthogonal constraint matrices A_k: W_fro = sum_k A_k / |A_k|^2."""
    X = np.array([[[2.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, -1.0]]])
    z = np.array([[1.0, 0.0], [0.0, 1.0]])
    A1, A2 = np.outer([2.0, 0.0], [1.0, 0.0]), np.outer([0.0, -1.0], [0.0, 1.0])
    sol = att_svm(X, z, [0, 1], "fro")
    assert np.allclose(sol.W, A1 / 4 + A2 / 1, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_svm_kkt_and_norm_ordering(seed):
    X, z, Y, v = random_attention_data(1, 3, 4, 4, seed)
    alpha = optimal_tokens(X, Y, v)[0]
    fro = att_svm(X[0], z[0], alpha, "fro")
    nuc = att_svm(X[0], z[0], alpha, "nuc")
    # Feasibility of both.
    assert fro.min_margin >= 1 - 1e-6 and nuc.min_margin >= 1 - 1e-6
    # KKT for min |W|_F^2 / 2: W = sum over active constraints of lambda_k A_k with lambda_k >= 0.
    Xn, zn, a = X[0].numpy(), z[0].numpy(), alpha.numpy()
    active = support_tokens(Xn, zn, a, fro.W, tol=1e-5)
    A = np.array([np.outer(Xn[i, a[i]] - Xn[i, t], zn[i]).ravel() for i, t in zip(*np.nonzero(active))])
    lam, resid = nnls(A.T, fro.W.ravel())
    assert resid < 1e-6 * np.linalg.norm(fro.W)
    # Each solution is the better one in its own norm.
    nucnorm = lambda W: np.linalg.svd(W, compute_uv=False).sum()
    assert np.linalg.norm(fro.W) <= np.linalg.norm(nuc.W) + 1e-6
    assert nucnorm(nuc.W) <= nucnorm(fro.W) + 1e-6


def test_svm_infeasible_raises():
    X = np.array([[[1.0, 0.0], [1.0, 0.0]]])                            # two identical tokens cannot be separated
    with pytest.raises(ValueError, match="infeasible"):
        att_svm(X, np.array([[1.0, 0.0]]), [0])


def test_support_tokens_and_local_optimality():
    X = np.array([[[1.0, 0.0], [0.0, 1.0], [-2.0, 0.0]]])               # n = 1, T = 3, d = 2
    z = np.array([[1.0, 0.0]])
    sol = att_svm(X, z, [0], "fro")     # W11 - W21 >= 1 (active), 3 W11 >= 1 (inactive at W11 = 1/2)
    assert np.allclose(sol.W, [[0.5, 0.0], [-0.5, 0.0]], atol=1e-6)
    assert support_tokens(X, z, [0], sol.W).tolist() == [[False, True, False]]
    Y = np.array([1.0])
    # Selected token 0 scores 1, its support token 1 scores 0.5: locally optimal with gap 0.5.
    assert local_optimality_gap(X, Y, [1.0, 0.5], z, [0], sol.W).tolist() == pytest.approx([0.5])
    assert is_locally_optimal(X, Y, [1.0, 0.5], z, [0], sol.W)
    # With v = (0, 1) the support token scores higher (1 > 0): not locally optimal.
    assert local_optimality_gap(X, Y, [0.0, 1.0], z, [0], sol.W).tolist() == pytest.approx([-1.0])
    assert not is_locally_optimal(X, Y, [0.0, 1.0], z, [0], sol.W)


# ------------------------------------------------------------------------------------------------ bad input

def test_bad_input_raises_one_line_errors():
    X, z, Y, v, W = small_problem()
    with pytest.raises(ValueError, match="unknown loss 'hinge': choose one of logistic, exponential"):
        empirical_risk(W, X, z, Y, v, "hinge")
    with pytest.raises(ValueError, match="unknown parameterization 'QK'"):
        attention_gd(X, z, Y, v, 1, 0.1, parameterization="QK", W0=W)
    with pytest.raises(ValueError, match="unknown norm 'l1'"):
        att_svm(X[0], z[0], [0, 0, 0, 0], "l1")
    with pytest.raises(ValueError, match="invalid lr -1"):
        attention_gd(X, z, Y, v, 1, -1, W0=W)
    with pytest.raises(ValueError, match="invalid steps"):
        attention_gd(X, z, Y, v, 1.5, 0.1, W0=W)
    with pytest.raises(ValueError, match="invalid z of shape"):
        attention_gd(X, z[:, :2], Y, v, 1, 0.1, W0=W)
    with pytest.raises(ValueError, match="needs W0"):
        attention_gd(X, z, Y, v, 1, 0.1)
    with pytest.raises(ValueError, match="invalid alpha"):
        att_svm(X[0], z[0], [0, 0, 0, 9])
    with pytest.raises(ValueError, match="invalid reg"):
        attention_gd(X, z, Y, v, 1, 0.1, W0=W, reg=-1.0)
