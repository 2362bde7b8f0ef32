"""Tests for optrepro.models.input_convex_lstm: convexity of the IC-LSTM, shapes, bad inputs, control optimization."""

from __future__ import annotations

import pytest
import torch
from conftest import scramble_parameters
from optrepro.problems.hammerstein import hammerstein_plant, plant_dataset
from optrepro.models.input_convex_lstm import (
    ICLSTM,
    PlainLSTM,
    economic_objective,
    make_surrogate,
    midpoint_convexity_gap,
    optimize_controls,
    train_surrogate,
)

D64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: extra threads only add overhead


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_iclstm_is_midpoint_convex_for_random_weights(seed):
    torch.manual_seed(seed)
    m = scramble_parameters(ICLSTM(2, 8, 2).to(D64), seed, 1.5)
    g = torch.Generator().manual_seed(10 + seed)
    a, b = (2 * torch.randn(500, 6, 2, generator=g, dtype=D64) for _ in range(2))
    with torch.no_grad():
        scale = float(m(a).abs().max()) + 1.0
    assert midpoint_convexity_gap(m, a, b) <= 1e-12 * scale


def test_plain_lstm_is_not_convex():
    torch.manual_seed(0)
    m = scramble_parameters(PlainLSTM(2, 8, 1).to(D64), 0, 1.5)
    g = torch.Generator().manual_seed(1)
    a, b = (2 * torch.randn(500, 6, 2, generator=g, dtype=D64) for _ in range(2))
    assert midpoint_convexity_gap(m, a, b) > 1e-3


def test_midpoint_gap_on_known_functions():
    a, b = torch.tensor([[-1.0], [0.0]], dtype=D64), torch.tensor([[1.0], [2.0]], dtype=D64)
    assert midpoint_convexity_gap(lambda x: x**2, a, b) == pytest.approx(-1.0)
    assert midpoint_convexity_gap(lambda x: -(x**2), a, b) == pytest.approx(1.0)


def test_shapes_and_nonnegative_constraint():
    m = ICLSTM(3, 5, 2)
    assert m(torch.randn(4, 7, 3)).shape == (4, 7, 2)
    assert PlainLSTM(3, 5, 2)(torch.randn(4, 7, 3)).shape == (4, 7, 2)
    h, c = m.cell(torch.randn(4, 6), (torch.zeros(4, 5), torch.zeros(4, 5)))
    assert (h >= 0).all() and (c >= 0).all()


def test_plant_matches_hand_recursion():
    u, x0 = torch.tensor([[0.5, -1.0]], dtype=D64), torch.tensor([2.0], dtype=D64)
    y = hammerstein_plant(u, x0, a=0.5, gain=1.0, curvature=1.0)
    x1 = 0.5 * 2.0 + (0.5 + 0.25)
    assert torch.allclose(y, torch.tensor([[x1, 0.5 * x1 + 0.0]], dtype=D64))


def test_bad_inputs():
    with pytest.raises(ValueError, match="kind"):
        make_surrogate("gru", 2, 4)
    with pytest.raises(ValueError, match="input shape"):
        ICLSTM(2, 4)(torch.randn(3, 5, 3))
    with pytest.raises(ValueError, match="hidden"):
        ICLSTM(2, 0)
    with pytest.raises(ValueError, match="box"):
        plant_dataset(4, 3, 1.0, -1.0, 1.0, torch.Generator())
    with pytest.raises(ValueError, match="a "):
        hammerstein_plant(torch.zeros(1, 2), torch.zeros(1), a=1.5)
    with pytest.raises(ValueError, match="weight"):
        economic_objective(torch.zeros(2, 3), torch.zeros(2, 3), 0.0, -1.0)


def test_training_and_control_optimization_decrease_objective():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    X, Y = plant_dataset(64, 5, -1.0, 1.0, 1.0, g)
    m = ICLSTM(2, 8)
    res = train_surrogate(m, X, Y, 15, 1e-2, 32, g)
    assert res.loss[-1] < res.loss[0]
    cr = optimize_controls(m, 0.0, 5, 8, -1.0, 1.0, 0.5, 0.5, 100, 0.05, g)
    assert cr.u.shape == (8, 5) and cr.u.min() >= -1.0 and cr.u.max() <= 1.0
    assert (cr.history[-1] < cr.history[0]).all()
    # convex strongly-regularized problem: every start ends near the same value
    assert float(cr.objective.max() - cr.objective.min()) < 1e-2


def test_plant_model_matches_plant_and_true_problem_has_several_optima():
    from optrepro.models.input_convex_lstm import surrogate_input
    from optrepro.problems.hammerstein import PlantModel
    g = torch.Generator().manual_seed(0)
    u, x0 = torch.rand(3, 4, generator=g, dtype=D64), torch.randn(3, generator=g, dtype=D64)
    m = PlantModel(ripple=0.15).to(D64)
    assert torch.allclose(m(surrogate_input(u, x0))[..., 0], hammerstein_plant(u, x0, ripple=0.15))
    cr = optimize_controls(m, 0.0, 6, 16, -1.0, 1.0, 0.5, 0.1, 300, 0.05, g)
    assert float(cr.objective.max() - cr.objective.min()) > 1e-2   # the ripple makes local minima
