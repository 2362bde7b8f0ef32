"""Tests of optrepro.ot.displacement_sparse: penalties against hand-computed values and their limits, the sparsity
measure, and the adaptive weight controller on a toy monotone response with a known answer."""
import math

import pytest
import torch
from optrepro.ot.displacement_sparse import (SparsityController, active_count, activity_threshold, l1, penalty,
                                             smoothed_l0)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_penalties_hand_computed():
    delta = torch.tensor([[0.0, 1.0, -2.0], [0.5, 0.0, 0.0]], dtype=torch.float64)
    # sigma = 1: 1 - exp(-d^2/2) per coordinate
    expected = [0 + (1 - math.exp(-0.5)) + (1 - math.exp(-2.0)), 1 - math.exp(-0.125)]
    assert torch.allclose(smoothed_l0(delta, 1.0), torch.tensor(expected, dtype=torch.float64), atol=1e-15)
    assert l1(delta).tolist() == [3.0, 0.5]
    assert penalty("none") is None
    assert torch.equal(penalty("l1")(delta), l1(delta))
    assert torch.allclose(penalty("smoothed_l0", 0.5)(delta), smoothed_l0(delta, 0.5))


def test_smoothed_l0_limits():
    delta = torch.tensor([[0.0, 1e-3, 0.3, -5.0]], dtype=torch.float64)
    # sigma -> 0: the count of nonzero coordinates
    assert smoothed_l0(delta, 1e-6).item() == pytest.approx(3.0, abs=1e-12)
    # |delta| << sigma: about delta^2 / (2 sigma^2); |delta| >> sigma: 1 (saturation)
    small = torch.tensor([[1e-3]], dtype=torch.float64)
    assert smoothed_l0(small, 1.0).item() == pytest.approx(0.5e-6, rel=1e-5)
    assert smoothed_l0(torch.tensor([[50.0]], dtype=torch.float64), 1.0).item() == pytest.approx(1.0, abs=1e-15)
    # gradient: l1 pulls every nonzero coordinate with force 1, smoothed l0 barely pulls a large one
    d = torch.tensor([[0.1, 3.0]], dtype=torch.float64, requires_grad=True)
    (g0,) = torch.autograd.grad(smoothed_l0(d, 0.5).sum(), d)
    (g1,) = torch.autograd.grad(l1(d).sum(), d)
    assert g1.tolist() == [[1.0, 1.0]]
    assert g0[0, 1] < 1e-6 < g0[0, 0]


def test_active_count_and_threshold():
    delta = torch.tensor([[0.0, 0.5, 2.0], [0.05, 0.0, -3.0]])
    assert active_count(delta, 0.1) == pytest.approx(1.5)  # 2 and 1 coordinates above 0.1
    assert activity_threshold(delta, 0.1) == pytest.approx(0.25)  # 0.1 x mean |delta_3| = 0.1 x 2.5


@pytest.mark.parametrize("lam0", [0.01, 50.0])
def test_controller_finds_smallest_feasible_weight(lam0):
    # toy monotone response: count(lam) = 10 / (1 + lam); target 2.5 -> smallest feasible lam* = 3
    response = lambda lam: 10.0 / (1.0 + lam)
    ctrl = SparsityController(lam0, target=2.5, grow=1.5)
    for _ in range(40):
        ctrl.update(response(ctrl.lam))
    assert ctrl.best is not None and response(ctrl.best) <= 2.5
    assert ctrl.best == pytest.approx(3.0, rel=1e-3)
    assert ctrl.lo < 3.0 <= ctrl.hi


def test_controller_grows_by_the_factor_while_infeasible():
    ctrl = SparsityController(1.0, target=1.0, grow=1.5)
    assert [round(ctrl.update(5.0), 6) for _ in range(3)] == [1.5, 2.25, 3.375]
    assert ctrl.best is None


@pytest.mark.parametrize("bad", [dict(lam0=0.0), dict(target=-1.0), dict(grow=1.0)])
def test_controller_rejects_bad_arguments(bad):
    kw = dict(lam0=1.0, target=2.0, grow=1.5) | bad
    with pytest.raises(ValueError):
        SparsityController(**kw)


def test_bad_inputs():
    with pytest.raises(ValueError, match="penalty"):
        penalty("l2")
    with pytest.raises(ValueError, match="sigma"):
        smoothed_l0(torch.zeros(2, 2), 0.0)
    with pytest.raises(ValueError, match="displacement"):
        l1(torch.zeros(3))
