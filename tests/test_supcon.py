"""Tests for optrepro.problems.supcon: the SupCon loss and its gradient against a naive loop, the projections, the
batching schemes' invariants, and the geometry of the trained unconstrained feature model (Kini et al., 2024)."""
from __future__ import annotations

import math

import pytest
import torch
from optrepro.metrics import frame_distance
from optrepro.problems.supcon import (
    SupConUFM,
    batching_condition,
    bind,
    binding_examples,
    collapsed_minimizer,
    collapsed_supcon_objective,
    full_batch,
    make_batches,
    project,
    random_batches,
    supcon_geometry,
    supcon_grad,
    supcon_loss,
    train_supcon_ufm,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: extra threads only add overhead


def naive_supcon(Z, y, tau, reduction="mean"):
    """Khosla et al.'s L_out written as loops over anchors, positives and the denominator set."""
    n = len(y)
    total, anchors = 0.0, 0
    for i in range(n):
        pos = [p for p in range(n) if p != i and y[p] == y[i]]
        if not pos:
            continue
        denom = sum(math.exp(float(Z[i] @ Z[a]) / tau) for a in range(n) if a != i)
        total += -sum(math.log(math.exp(float(Z[i] @ Z[p]) / tau) / denom) for p in pos) / len(pos)
        anchors += 1
    return total / anchors if reduction == "mean" else total


def data(n=9, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    Z = project(torch.randn(n, d, generator=g, dtype=torch.float64), False)
    y = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3, 1][:n])   # class 3 has a single sample: no positive
    return Z, y


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("tau", [0.1, 0.7])
def test_loss_matches_naive_loop(reduction, tau):
    Z, y = data()
    assert float(supcon_loss(Z, y, tau, reduction)) == pytest.approx(naive_supcon(Z, y.tolist(), tau, reduction),
                                                                      rel=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_closed_form_gradient_matches_finite_differences_of_naive_loop(reduction):
    Z, y = data(seed=1)
    tau, eps = 0.3, 1e-6
    grad = supcon_grad(Z, y, tau, reduction)
    fd = torch.zeros_like(Z)
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            Zp, Zm = Z.clone(), Z.clone()
            Zp[i, j] += eps
            Zm[i, j] -= eps
            fd[i, j] = (naive_supcon(Zp, y.tolist(), tau, reduction) - naive_supcon(Zm, y.tolist(), tau, reduction)) / (2 * eps)
    assert torch.allclose(grad, fd, atol=1e-6)
    Zr = Z.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(supcon_loss(Zr, y, tau, reduction), [Zr])
    assert torch.allclose(grad, auto, atol=1e-12)


def test_loss_without_positives_is_zero_and_bad_input_raises():
    Z, _ = data(n=3)
    assert float(supcon_loss(Z, torch.tensor([0, 1, 2]), 0.5)) == 0.0
    with pytest.raises(ValueError, match="reduction"):
        supcon_loss(Z, torch.tensor([0, 0, 1]), 0.5, "max")
    with pytest.raises(ValueError, match="temperature"):
        supcon_loss(Z, torch.tensor([0, 0, 1]), 0.0)
    with pytest.raises(ValueError, match="scheme"):
        make_batches("random", torch.tensor([0, 0, 1, 1]), 2)
    with pytest.raises(ValueError, match="class size"):
        SupConUFM([3, 1], 4, relu=True)


def test_projection_onto_nonnegative_sphere():
    Z = torch.tensor([[3.0, -4.0, 0.0], [-1.0, -2.0, -0.5], [1.0, 2.0, 2.0]])
    P = project(Z, True)
    assert torch.allclose(P, torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [1 / 3, 2 / 3, 2 / 3]]))
    assert torch.allclose(project(Z, False).norm(dim=1), torch.ones(3))


def test_collapsed_objective_equals_loss_of_collapsed_features():
    sizes = [5, 3, 2]
    M = project(torch.randn(3, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64), False)
    y = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    assert float(collapsed_supcon_objective(M, sizes, 0.4)) == pytest.approx(float(supcon_loss(M[y], y, 0.4)), rel=1e-12)


# ------------------------------------------------------------------------------------------------- batching

def test_random_batches_partition_and_binding_invariants():
    g = torch.Generator().manual_seed(0)
    labels = torch.repeat_interleave(torch.arange(4), torch.tensor([20, 20, 2, 2]))
    batches = random_batches(44, 8, g)
    assert sorted(torch.cat(batches).tolist()) == list(range(44))       # a partition: every sample exactly once
    assert max(len(b) for b in batches) <= 8 and len(batches) == 6
    binding = binding_examples(labels, g)
    assert labels[binding].tolist() == [0, 1, 2, 3]                      # one example of every class
    bound = bind(batches, binding)
    for b, bb in zip(batches, bound):
        assert set(binding.tolist()) <= set(bb.tolist())                  # binding examples in every batch
        assert len(set(bb.tolist())) == len(bb)                           # no repeats
        assert set(b.tolist()) <= set(bb.tolist())
    assert batching_condition(bound, labels)["ok"]
    assert batching_condition(full_batch(44), labels)["ok"]


def test_batching_condition_detects_violations():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    # class 0 split between batches that share no class-0 sample: not connected
    cond = batching_condition([torch.tensor([0, 2, 4, 5]), torch.tensor([1, 3, 2, 4])], labels)
    assert not cond["connected"] and cond["pairs"]
    # classes 0 and 2 never meet
    cond = batching_condition([torch.tensor([0, 1, 2, 3]), torch.tensor([2, 3, 4, 5])], labels)
    assert cond["connected"] and not cond["pairs"]


# ------------------------------------------------------------------------------------------------- geometry

def test_collapsed_minimizer_is_etf_balanced_without_relu_and_of_with_relu():
    g = torch.Generator().manual_seed(0)
    assert frame_distance(collapsed_minimizer([5] * 4, 0.5, 6, relu=False, steps=2000, generator=g), "etf") < 1e-3
    M = collapsed_minimizer([50, 50, 5, 5], 0.5, 6, relu=True, steps=2000, generator=g)
    assert frame_distance(M, "orthogonal") < 1e-3
    assert frame_distance(collapsed_minimizer([50, 50, 5, 5], 0.5, 6, relu=False, steps=2000, generator=g),
                          "etf") > 0.2


def test_full_batch_relu_training_reaches_an_orthogonal_frame_under_imbalance():
    g = torch.Generator().manual_seed(0)
    model = SupConUFM([20, 20, 2, 2], 6, relu=True, temperature=0.5, generator=g)
    trace = train_supcon_ufm(model, 100, 0.1, "full", generator=g)
    geo = supcon_geometry(model.Z.detach(), model.labels)
    assert geo.of_distance < 1e-3 and geo.nc1 < 1e-4 and geo.max_abs_cos < 1e-3
    assert bool((model.Z >= 0).all()) and torch.allclose(model.Z.norm(dim=1), torch.ones(44, dtype=model.Z.dtype))
    assert trace.loss[-1] < trace.loss[0]


def test_collapsed_minimizer_is_stationary():
    """At the returned vectors, the autograd gradient of the collapsed objective is normal to the feasible set."""
    g = torch.Generator().manual_seed(3)
    M = collapsed_minimizer([30, 30, 3, 3], 0.5, 6, relu=False, steps=3000, generator=g).requires_grad_(True)
    (grad,) = torch.autograd.grad(collapsed_supcon_objective(M, [30, 30, 3, 3], 0.5), [M])
    tangent = grad - (grad * M).sum(dim=1, keepdim=True) * M      # the part along the sphere
    assert float(tangent.detach().abs().max()) < 1e-6
