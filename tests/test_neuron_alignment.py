"""Tests for optrepro.papers.early_neuron_alignment: the two-layer ReLU network, its gradients, the alignment and
stable-rank metrics and the small-initialization GD run (Min, Mallada & Vidal, ICLR 2024)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from optrepro.papers import early_neuron_alignment as na


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def data():
    return na.separated_data(12, 5, angle=120.0, spread=12.0, generator=gen(3))


# ------------------------------------------------------------------------------ model, loss, gradients

def test_forward_matches_explicit_sum(data):
    X, y = data
    W, v = torch.randn(7, 5, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    explicit = torch.stack([sum(v[j] * max(float(W[j] @ x), 0.0) for j in range(7)) for x in X])
    torch.testing.assert_close(na.forward(W, v, X), explicit.to(torch.float64))


@pytest.mark.parametrize("kind", na.LOSSES)
def test_gradients_match_autograd(data, kind):
    X, y = data
    W = torch.randn(3, 7, 5, dtype=torch.float64, generator=gen(1)).requires_grad_()   # batch of 3 runs
    v = torch.randn(3, 7, dtype=torch.float64, generator=gen(2)).requires_grad_()
    L_auto = na.loss(W, v, X, y, kind)
    gW_auto, gv_auto = torch.autograd.grad(L_auto.sum(), (W, v))
    L, gW, gv = na.gradients(W.detach(), v.detach(), X, y, kind)
    torch.testing.assert_close(L, L_auto.detach())
    torch.testing.assert_close(gW, gW_auto)
    torch.testing.assert_close(gv, gv_auto)


def test_gradient_matches_finite_differences(data):
    X, y = data
    W, v = torch.randn(4, 5, dtype=torch.float64, generator=gen(5)), torch.randn(4, dtype=torch.float64, generator=gen(6))
    _, gW, gv = na.gradients(W, v, X, y, "logistic")
    h = 1e-6
    for (j, k) in [(0, 0), (2, 3), (3, 4)]:
        E = torch.zeros_like(W)
        E[j, k] = h
        fd = (na.loss(W + E, v, X, y, "logistic") - na.loss(W - E, v, X, y, "logistic")) / (2 * h)
        assert abs(float(fd) - float(gW[j, k])) < 1e-6
    e = torch.zeros_like(v)
    e[1] = h
    fd = (na.loss(W, v + e, X, y, "logistic") - na.loss(W, v - e, X, y, "logistic")) / (2 * h)
    assert abs(float(fd) - float(gv[1])) < 1e-6


def test_loss_at_zero_output_and_slope(data):
    X, y = data
    W, v = torch.zeros(3, 5, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    assert float(na.loss(W, v, X, y, "exp")) == pytest.approx(len(y))
    assert float(na.loss(W, v, X, y, "logistic")) == pytest.approx(len(y) * math.log(2))
    assert na.loss_slope_at_zero("exp") == 1.0 and na.loss_slope_at_zero("logistic") == 0.5


def test_bad_inputs_raise(data):
    X, y = data
    W, v = torch.zeros(3, 5, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        na.loss(W, v, X, y, "hinge")
    with pytest.raises(ValueError, match="labels"):
        na.class_directions(X, (y > 0).to(torch.float64))
    with pytest.raises(ValueError, match="eps"):
        na.balanced_init(3, 5, -1.0)
    with pytest.raises(ValueError, match="angle"):
        na.separated_data(10, 5, angle=100.0, spread=10.0)
    with pytest.raises(ValueError, match="threshold"):
        na.aligned_fraction(torch.ones(3), torch.ones(3, dtype=torch.bool), threshold=1.5)


# ------------------------------------------------------------------------------ initialization and data

def test_balanced_init_scales_and_balance():
    eps = torch.tensor([1e-2, 1e-4])
    W, v = na.balanced_init(20, 6, eps, generator=gen(0))
    assert W.shape == (2, 20, 6) and v.shape == (2, 20)
    torch.testing.assert_close(v.abs(), W.norm(dim=-1))                  # |v_j| = ||w_j||
    torch.testing.assert_close(W[1] / 1e-4, W[0] / 1e-2)                 # the same directions at every scale
    assert (v > 0).any() and (v < 0).any()


def test_separated_data_satisfies_assumption_1():
    X, y = na.separated_data(60, 8, angle=120.0, spread=12.0, generator=gen(7))
    mu = na.separation(X, y)
    bound = min(math.cos(math.radians(24)), -math.cos(math.radians(96)))
    assert mu >= bound - 1e-12
    assert int((y > 0).sum()) == 30
    norms = X.norm(dim=1)
    assert float(norms.min()) >= 0.5 and float(norms.max()) <= 1.5


def test_separation_detects_a_violation():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2]], dtype=torch.float64)
    y = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    # the worst pair is (x_2, x_3): opposite labels but positively correlated, y_2 y_3 cos = -0.2 / sqrt(1.04)
    assert na.separation(X, y) == pytest.approx(-0.2 / math.sqrt(1.04))


# ------------------------------------------------------------------------------ metrics on constructed cases

def test_stable_rank_constructed():
    u = torch.randn(6, dtype=torch.float64, generator=gen(1))
    a = torch.randn(9, dtype=torch.float64, generator=gen(2))
    assert float(na.stable_rank(torch.outer(a, u))) == pytest.approx(1.0)          # rank one
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64, generator=gen(3)))
    assert float(na.stable_rank(Q[:4])) == pytest.approx(4.0)                       # 4 orthonormal rows
    D = torch.diag(torch.tensor([3.0, 4.0], dtype=torch.float64))
    assert float(na.stable_rank(D)) == pytest.approx(25 / 16)
    batch = torch.stack([torch.outer(a, u), torch.cat([Q[:4], torch.zeros(5, 6, dtype=torch.float64)])])
    torch.testing.assert_close(na.stable_rank(batch), torch.tensor([1.0, 4.0], dtype=torch.float64))


def test_predicted_cosines_and_aligned_fraction_constructed():
    x_plus = torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64)
    x_minus = torch.tensor([0.0, 3.0, 0.0], dtype=torch.float64)
    c, s = math.cos(0.3), math.sin(0.3)
    W = torch.tensor([[5.0, 0.0, 0.0],          # v > 0, along x_+: cos 1
                      [0.0, 0.1, 0.0],          # v < 0, along x_-: cos 1
                      [c, 0.0, s],              # v > 0, 0.3 rad away from x_+
                      [0.0, 1.0, 0.0],          # v > 0 but along x_-: cos 0
                      [-1.0, -1.0, 0.0]], dtype=torch.float64)   # v < 0, dead on the data below
    v = torch.tensor([1.0, -1.0, 2.0, 1.0, -1.0], dtype=torch.float64)
    cos = na.predicted_cosines(W, v, x_plus, x_minus)
    torch.testing.assert_close(cos, torch.tensor([1.0, 1.0, c, 0.0, -math.sqrt(0.5)], dtype=torch.float64))
    X = torch.stack([x_plus, x_minus])
    on = na.alive(W, X)
    assert on.tolist() == [True, True, True, True, False]
    # alive: 4 neurons, of which cos >= 0.95 for the first two and the third (cos 0.3 = 0.955)
    assert float(na.aligned_fraction(cos, on, 0.95)) == pytest.approx(3 / 4)
    assert float(na.aligned_fraction(cos, on, 0.96)) == pytest.approx(2 / 4)


def test_first_time_and_crossing_time():
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    cond = torch.stack([t >= 0.35, t > 2], dim=1)
    ft = na.first_time(t, cond)
    assert float(ft[0]) == pytest.approx(0.4) and math.isinf(float(ft[1]))
    vals = torch.stack([1 - t, 1 - t / 2, 1 + t], dim=1)                  # cross 0.5 at t = 0.5, 1.0, never
    ct = na.crossing_time(t, vals, 0.5)
    assert float(ct[0]) == pytest.approx(0.5) and float(ct[1]) == pytest.approx(1.0) and math.isinf(float(ct[2]))
    assert float(na.crossing_time(t, 0.5 - 0.04 * torch.arange(11.0)[:, None] ** 2, 0.3)[0]) == pytest.approx(0.2 + 0.1 * 0.04 / 0.2)


# ------------------------------------------------------------------------------ training

def test_gd_keeps_balance_and_aligns(data):
    X, y = data
    lam = na.growth_rate(X, y, "exp")
    W0, v0 = na.balanced_init(16, 5, torch.tensor([1e-4]), generator=gen(4))
    tr = na.train(X, y, W0, v0, lr=0.02 / lam, steps=1500, record_every=50)
    # gradient flow conserves v_j^2 - ||w_j||^2 = 0; small-step GD nearly so (relative to the grown norms)
    imbalance = (tr.v ** 2 - (tr.W ** 2).sum(-1)).abs().max() / (tr.W ** 2).sum(-1).max()
    assert float(imbalance) < 1e-2
    assert bool((torch.sign(tr.v) == torch.sign(v0)).all())                # v_j never changes sign
    assert float(tr.loss[-1, 0]) < 0.2 * float(tr.loss[0, 0])              # the loss fell
    assert float(tr.aligned[-1, 0]) == 1.0                                  # every alive neuron aligned
    assert float(tr.stable_rank[-1, 0]) <= 2.0 < float(tr.stable_rank[0, 0])
    assert tr.t[-1] == pytest.approx(1500 * 0.02 / lam)


def test_load_mnist_pair(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist.npz"):
        na.load_mnist_pair(tmp_path)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    labels = np.arange(50) % 3
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels)
    X, y = na.load_mnist_pair(tmp_path, (0, 2), n=10, generator=gen(0))
    assert X.shape == (10, 784) and y.tolist() == [1.0] * 5 + [-1.0] * 5
    torch.testing.assert_close(X.mean(0), torch.zeros(784, dtype=torch.float64))
    assert float(X.norm(dim=1).mean()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="only 17 training images of digit 0"):
        na.load_mnist_pair(tmp_path, (0, 2), n=40)
    with pytest.raises(ValueError, match="digits"):
        na.load_mnist_pair(tmp_path, (1, 1))
