"""Tests for optrepro.problems.bures_wasserstein: the Bures-Wasserstein distance (exact and smoothed), its
gradients, the deep linear generator, its balanced initialisation and GD training, and the critical points of
Brechet et al. (2023). References: scipy.linalg.sqrtm, closed forms (commuting matrices, 1-D Gaussians), finite
differences, brute-force minimisation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from optrepro.problems.bures_wasserstein import (
    BWTarget,
    balanced_factorization,
    balanced_init,
    balancedness,
    bw_squared,
    end_to_end,
    flatten,
    layer_gradients,
    parameter_hessian,
    psd_sqrt,
    train_gd,
    unflatten,
)

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: extra threads only add overhead


def random_spd(n, seed, rank=None):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, rank or n, generator=g, dtype=D)
    return X @ X.T + (0 if rank else 0.1 * torch.eye(n, dtype=D))


def target(seed=0, lam=(3.0, 2.0, 1.5, 1.0, 0.6, 0.3)):
    return BWTarget.random(lam, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------- the distance

def test_bw_matches_scipy_sqrtm():
    for seed in range(3):
        A, B = random_spd(5, seed), random_spd(5, seed + 10)
        An, Bn = A.numpy(), B.numpy()
        rA = scipy.linalg.sqrtm(An).real
        ref = np.trace(An) + np.trace(Bn) - 2 * np.trace(scipy.linalg.sqrtm(rA @ Bn @ rA).real)
        assert float(bw_squared(A, B)) == pytest.approx(ref, rel=1e-9)
        assert float(bw_squared(B, A)) == pytest.approx(ref, rel=1e-9)  # symmetric


def test_bw_closed_forms():
    # 1-D Gaussians: W_2^2(N(0, a), N(0, b)) = (sqrt a - sqrt b)^2
    a, b = torch.tensor([[2.0]], dtype=D), torch.tensor([[0.5]], dtype=D)
    assert float(bw_squared(a, b)) == pytest.approx((2**0.5 - 0.5**0.5) ** 2, rel=1e-12)
    # commuting matrices: ||A^{1/2} - B^{1/2}||_F^2
    Q = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=D))[0]
    la, lb = torch.tensor([4.0, 1.0, 0.25, 0.0], dtype=D), torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=D)
    A, B = (Q * la) @ Q.T, (Q * lb) @ Q.T
    # A is singular: a zero eigenvalue known to ~1e-16 has a square root known to ~1e-8 (sqrt of eps), hence rel 1e-7
    assert float(bw_squared(A, B)) == pytest.approx(float(((la.sqrt() - lb.sqrt()) ** 2).sum()), rel=1e-7)
    assert float(bw_squared(A[:3, :3] + torch.eye(3, dtype=D), B[:3, :3])) == pytest.approx(
        float(bw_squared(B[:3, :3], A[:3, :3] + torch.eye(3, dtype=D))), rel=1e-12)
    # a distance: zero on the diagonal
    assert float(bw_squared(A, A)) == pytest.approx(0.0, abs=1e-10)


def test_psd_sqrt_and_batching():
    A = torch.stack([random_spd(4, s) for s in range(3)])
    R = psd_sqrt(A)
    assert torch.allclose(R @ R, A, atol=1e-10)
    B = torch.stack([random_spd(4, s + 5) for s in range(3)])
    batched = bw_squared(A, B)
    assert batched.shape == (3,)
    assert torch.allclose(batched, torch.stack([bw_squared(a, b) for a, b in zip(A, B)]))


def test_bad_inputs():
    with pytest.raises(ValueError, match="square"):
        bw_squared(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="positive definite"):
        BWTarget(torch.diag(torch.tensor([1.0, 0.0], dtype=D)))
    T = target()
    with pytest.raises(ValueError, match="tau"):
        T.loss(torch.zeros(6, 6, dtype=D), tau=1.0)
    with pytest.raises(ValueError, match="subset"):
        T.subset_covariance([0, 0])
    with pytest.raises(ValueError, match="widths"):
        balanced_factorization(torch.zeros(6, 6, dtype=D), [5, 2, 6])


# ------------------------------------------------------------------- the loss of the end-to-end matrix

@pytest.mark.parametrize("tau", [0.0, 1e-2])
def test_loss_is_bw_of_generated_covariance(tau):
    T = target()
    W = torch.randn(6, 4, generator=torch.Generator().manual_seed(2), dtype=D)
    Sigma = W @ W.T + tau * torch.eye(6, dtype=D)
    Sn = Sigma.numpy()
    rS = scipy.linalg.sqrtm(Sn).real
    ref = np.trace(Sn) + np.trace(T.sigma0.numpy()) - 2 * np.trace(scipy.linalg.sqrtm(rS @ T.sigma0.numpy() @ rS).real)
    # tau = 0: W W^T is singular and scipy's sqrtm of a singular matrix is accurate only to ~sqrt(eps)
    assert float(T.loss(W, tau)) == pytest.approx(ref, rel=1e-9 if tau > 0 else 1e-6)


@pytest.mark.parametrize("tau", [0.0, 1e-2])
def test_gradient_matches_finite_differences(tau):
    T = target()
    W = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=D)
    G = T.gradient(W, tau)
    h = 1e-6
    num = torch.zeros_like(W)
    for i in range(6):
        for j in range(4):
            E = torch.zeros_like(W)
            E[i, j] = h
            num[i, j] = (T.loss(W + E, tau) - T.loss(W - E, tau)) / (2 * h)
    assert torch.allclose(G, num, atol=1e-7)


def test_layer_gradients_match_autograd():
    T = target()
    g = torch.Generator().manual_seed(4)
    ws = [torch.randn(*s, generator=g, dtype=D) for s in [(3, 5), (2, 3), (6, 2)]]
    grads = layer_gradients(ws, T.gradient(end_to_end(ws), 1e-2))
    leaves = [w.clone().requires_grad_() for w in ws]
    W = end_to_end(leaves)
    M = T.root @ (W @ W.T + 1e-2 * torch.eye(6, dtype=D)) @ T.root
    loss = (W**2).sum() + 6e-2 + T.sigma0.trace() - 2 * torch.linalg.eigvalsh(M).sqrt().sum()
    loss.backward()
    for a, b in zip(grads, leaves):
        assert torch.allclose(a, b.grad, atol=1e-9)


# ------------------------------------------------------------------- critical points

@pytest.mark.parametrize("tau", [0.0, 5e-2])
def test_subset_critical_points(tau):
    T = target()
    for J in [(0, 1), (0, 2), (3, 5), (1,)]:
        W = T.subset_factor(J, tau)
        assert torch.allclose(W @ W.T, T.subset_covariance(J, tau), atol=1e-12)
        assert float(T.loss(W, tau)) == pytest.approx(T.subset_loss(J, tau), abs=1e-10)
        assert float(T.gradient(W, tau).norm()) < 1e-9   # critical
    # tau = 0: the minimum over rank 2 is the sum of the discarded eigenvalues
    assert T.min_loss(2) == pytest.approx(1.5 + 1.0 + 0.6 + 0.3)


def test_truncation_is_the_rank_k_minimum_brute_force():
    """No rank-2 matrix found by many local searches beats the top-2 eigen-truncation (tau = 0 and tau > 0)."""
    T = target(lam=(2.0, 1.2, 0.7, 0.3))
    for tau in [0.0, 1e-2]:
        w0 = torch.randn(20, 4, 2, generator=torch.Generator().manual_seed(5), dtype=D)
        W = w0.clone()
        for _ in range(800):
            W = W - 0.15 * T.gradient(W, tau)
        best = float(T.loss(W, tau).min())
        assert best >= T.min_loss(2, tau) - 1e-9
        assert best == pytest.approx(T.min_loss(2, tau), abs=1e-6)


def test_other_subsets():
    T = target()
    allJ = T.other_subsets(2, 100)
    assert len(allJ) == math.comb(6, 2) - 1 and (0, 1) not in allJ
    nb = T.neighbour_subsets(3)
    assert len(nb) == 3 * 3 and all(len(set(J) & {0, 1, 2}) == 2 for J in nb)
    some = T.other_subsets(3, 12, generator=torch.Generator().manual_seed(0))
    assert len(set(some)) == 12 and (0, 1, 2) not in some and set(nb) <= set(some)
    with pytest.raises(ValueError, match="neighbours"):
        T.other_subsets(3, 5)


# ------------------------------------------------------------------- the network

def test_balanced_factorization():
    g = torch.Generator().manual_seed(6)
    W = torch.randn(2, 6, 5, generator=g, dtype=D)
    ws = balanced_factorization(W, [5, 4, 3, 6], generator=g)
    assert [tuple(w.shape) for w in ws] == [(2, 4, 5), (2, 3, 4), (2, 6, 3)]
    assert float(balancedness(ws).max()) < 1e-12
    U, S, Vh = torch.linalg.svd(W)
    trunc = (U[..., :3] * S[..., None, :3]) @ Vh[..., :3, :]   # rank-3 truncation (bottleneck 3)
    assert torch.allclose(end_to_end(ws), trunc, atol=1e-12)
    unbalanced = [ws[0] * 2, ws[1] / 2, ws[2]]
    assert float(balancedness(unbalanced).min()) > 0.1


def test_init_scale_and_flatten():
    ws = balanced_init([8, 3, 3, 8], 1e-2, batch=4, generator=torch.Generator().manual_seed(0))
    assert float(end_to_end(ws).norm(dim=(-2, -1)).max()) < 0.1
    theta = flatten(ws)
    back = unflatten(theta, [tuple(w.shape[-2:]) for w in ws])
    assert all(torch.equal(a, b) for a, b in zip(ws, back))


def test_gd_converges_to_truncation_and_loss_decreases():
    T = target()
    ws = balanced_init([6, 2, 2, 6], 0.05, batch=3, generator=torch.Generator().manual_seed(1))
    tr = train_gd(ws, T, 1e-2, lr=0.05, steps=1500, record_every=50)
    losses = tr.losses
    assert bool((losses[1:] <= losses[:-1] + 1e-12).all())   # monotone at this small step
    assert float(losses[-1].max()) == pytest.approx(T.min_loss(2, 1e-2), abs=1e-8)
    E = end_to_end(tr.weights)
    assert torch.allclose(E @ E.transpose(-1, -2), T.truncation(2, 1e-2).expand(3, 6, 6), atol=1e-5)


def test_hessian_matches_autograd_and_classifies_critical_points():
    T = target(lam=(2.0, 1.2, 0.7, 0.3))
    tau = 1e-2
    widths = [4, 2, 4]
    g = torch.Generator().manual_seed(2)
    ws = balanced_factorization(torch.randn(4, 4, generator=g, dtype=D), widths, generator=g)
    H = parameter_hessian(ws, T, tau)
    shapes = [tuple(w.shape) for w in ws]

    def f(theta):
        W = end_to_end(unflatten(theta, shapes))
        return T.loss(W, tau)

    ref = torch.autograd.functional.hessian(f, flatten(ws))
    assert torch.allclose(H, ref, atol=1e-6)
    # the optimum: PSD Hessian; another eigen-subset: a negative eigenvalue (a saddle)
    opt = balanced_factorization(T.subset_factor((0, 1), tau), widths, generator=g)
    sad = balanced_factorization(T.subset_factor((0, 2), tau), widths, generator=g)
    assert float(torch.linalg.eigvalsh(parameter_hessian(opt, T, tau))[0]) > -1e-6
    assert float(torch.linalg.eigvalsh(parameter_hessian(sad, T, tau))[0]) < -1e-2
    with pytest.raises(ValueError, match="tau"):
        parameter_hessian(ws, T, 0.0)
