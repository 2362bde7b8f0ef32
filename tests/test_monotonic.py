"""Tests for optrepro.models.monotonic: the constrained monotone dense layer, its baseline and the convex floor."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import scramble_parameters
from optrepro.data.monotone_targets import TARGETS, monotone_target
from optrepro.models.monotonic import (
    MonotoneDense,
    concave,
    convex_monotone_floor,
    fit,
    max_decrease,
    monotonic_mlp,
    saturated,
    sign_constrained_relu_mlp,
    split_units,
    unconstrained_mlp,
)

D64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: extra threads only add overhead


def test_activations_of_relu_have_closed_forms():
    x = torch.linspace(-3, 3, 601, dtype=D64)
    assert torch.equal(concave(F.relu)(x), torch.minimum(x, torch.zeros_like(x)))
    assert torch.allclose(saturated(F.relu)(x), x.clamp(-1, 1))


@pytest.mark.parametrize("rho", [F.relu, F.elu])
def test_saturated_activation_is_monotone_bounded_and_continuous(rho):
    x = torch.linspace(-20, 20, 40001, dtype=D64)
    s = saturated(rho)(x)
    assert max_decrease(s) == 0.0
    assert s.abs().max() <= 2.0                              # bounded (rho lower-bounded)
    assert abs(float(saturated(rho)(torch.tensor([-1e-12], dtype=D64)))) < 1e-10   # continuous at 0, zero-centred
    h = concave(rho)(x)                                      # the reflection is concave: midpoint test
    assert bool((h[1:-1] >= 0.5 * (h[:-2] + h[2:]) - 1e-12).all())


def test_split_units():
    assert split_units(9, (1, 1, 1)) == (3, 3, 3)
    assert split_units(10, (1, 1, 1)) == (4, 3, 3)
    assert split_units(7, (1, 0, 0)) == (7, 0, 0)
    assert sum(split_units(16, (7, 7, 2))) == 16
    with pytest.raises(ValueError, match="activation_weights"):
        split_units(8, (1, 1))
    with pytest.raises(ValueError, match="activation_weights"):
        split_units(8, (0, 0, 0))
    with pytest.raises(ValueError, match="invalid units 0"):
        split_units(0, (1, 1, 1))


def test_layer_shapes_signs_and_bad_inputs():
    layer = MonotoneDense(3, 10, [1, -1, 0]).double()
    assert layer(torch.randn(5, 3, dtype=D64)).shape == (5, 10)
    assert layer(torch.randn(2, 4, 3, dtype=D64)).shape == (2, 4, 10)
    assert layer.counts == (4, 3, 3)
    W = layer.constrained_weight()
    assert bool((W[:, 0] >= 0).all()) and bool((W[:, 1] <= 0).all())
    assert torch.equal(W[:, 2], layer.linear.weight[:, 2])
    with pytest.raises(ValueError, match="monotonicity_indicator"):
        MonotoneDense(3, 4, [1, 2, 0])
    with pytest.raises(ValueError, match="monotonicity_indicator"):
        MonotoneDense(3, 4, [1, 1])
    with pytest.raises(ValueError, match="activation 'tanh'"):
        MonotoneDense(3, 4, 1, "tanh")
    with pytest.raises(ValueError, match="input shape"):
        layer(torch.randn(5, 2, dtype=D64))
    with pytest.raises(ValueError, match="invalid out_features 0"):
        MonotoneDense(3, 0)


@pytest.mark.parametrize("activation", ["relu", "elu"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_network_is_monotone_in_the_indicated_directions(activation, seed):
    net = scramble_parameters(monotonic_mlp(3, 16, 3, [1, -1, 0], activation).double(), seed, 2.0)
    g = torch.Generator().manual_seed(100 + seed)
    base = 2 * torch.rand(200, 3, generator=g, dtype=D64) - 1
    step = 1e-3 * torch.rand(200, 1, generator=g, dtype=D64)
    f0 = net(base)[:, 0]
    for i, sign in [(0, 1), (1, -1)]:                         # finite differences along inputs 0 and 1
        moved = base.clone()
        moved[:, i:i + 1] += step
        assert bool((sign * (net(moved)[:, 0] - f0) >= -1e-12).all())
    free = base.clone()                                       # input 2 is free: not monotone for random weights
    t = torch.linspace(-3, 3, 301, dtype=D64)
    along = torch.stack([net(free[k].repeat(301, 1).index_put_((torch.arange(301), torch.tensor(2)), t))[:, 0]
                         for k in range(20)])
    assert max_decrease(along) > 1e-6 and max_decrease(-along) > 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_baseline_is_convex_and_the_constrained_network_is_not(seed):
    g = torch.Generator().manual_seed(seed)
    a, b = 2 * torch.rand(2000, 2, generator=g, dtype=D64) - 1, 2 * torch.rand(2000, 2, generator=g, dtype=D64) - 1
    relu_net = scramble_parameters(sign_constrained_relu_mlp(2, 16, 3).double(), seed, 2.0)
    mid = relu_net((a + b) / 2)[:, 0]
    assert bool((mid <= 0.5 * (relu_net(a)[:, 0] + relu_net(b)[:, 0]) + 1e-10).all())
    cm_net = scramble_parameters(monotonic_mlp(2, 16, 3, 1, "relu").double(), seed, 2.0)
    gap = cm_net((a + b) / 2)[:, 0] - 0.5 * (cm_net(a)[:, 0] + cm_net(b)[:, 0])
    assert float(gap.detach().max()) > 1e-6                            # some midpoint above the chord: not convex


def test_convex_monotone_floor_known_cases():
    X = torch.tensor([[0.0], [1.0], [2.0]], dtype=D64).numpy()
    # concave data (0, 1, 1): projecting onto f0 + f2 >= 2 f1 gives the affine fit, MSE = 1/18
    assert convex_monotone_floor(X, [0.0, 1.0, 1.0]) == pytest.approx(1 / 18, rel=1e-5)
    # decreasing data (1, 0, 0): the best non-decreasing convex fit is the constant 1/3, MSE = 2/9
    assert convex_monotone_floor(X, [1.0, 0.0, 0.0]) == pytest.approx(2 / 9, rel=1e-5)
    g = torch.Generator().manual_seed(0)
    X2 = 2 * torch.rand(40, 2, generator=g, dtype=D64) - 1
    y2 = torch.relu(X2 @ torch.tensor([1.0, 0.5], dtype=D64)) + torch.exp(X2[:, 1])   # convex, non-decreasing
    assert convex_monotone_floor(X2.numpy(), y2.numpy()) < 1e-7
    with pytest.raises(ValueError, match="invalid shapes"):
        convex_monotone_floor(X2.numpy(), y2.numpy()[:5])
    with pytest.raises(ValueError, match="invalid method 'chain' for d = 2"):
        convex_monotone_floor(X2.numpy(), y2.numpy(), method="chain")


def test_chain_and_pairwise_floors_agree_in_1d():
    g = torch.Generator().manual_seed(1)
    x = 2 * torch.rand(60, 1, generator=g, dtype=D64) - 1
    y = torch.sigmoid(5 * x[:, 0]) + 0.05 * torch.randn(60, generator=g, dtype=D64)
    chain = convex_monotone_floor(x.numpy(), y.numpy(), method="chain")
    pairwise = convex_monotone_floor(x.numpy(), y.numpy(), method="pairwise")
    assert chain > 1e-3 and chain == pytest.approx(pairwise, rel=1e-4)


def test_fit_lowers_the_error_and_checks_its_arguments():
    torch.manual_seed(0)
    X = torch.linspace(-1, 1, 50, dtype=D64)[:, None]
    y = monotone_target("sigmoid", X)
    net = unconstrained_mlp(1, 16, 2).double()
    res = fit(net, X, y, 100, 1e-2)
    assert len(res.loss) == 100 and res.final < 0.5 * res.loss[0]
    res2 = fit(monotonic_mlp(1, 16, 2, activation="elu").double(), X, y, 10, 1.0, optimizer="lbfgs")
    assert res2.final < res2.loss[0]
    with pytest.raises(ValueError, match="optimizer 'sgd'"):
        fit(net, X, y, 10, 1e-2, optimizer="sgd")
    with pytest.raises(ValueError, match="invalid steps 0"):
        fit(net, X, y, 0, 1e-2)
    with pytest.raises(ValueError, match="invalid lr -1"):
        fit(net, X, y, 10, -1)


def test_max_decrease():
    assert max_decrease(torch.tensor([0.0, 1.0, 1.0, 3.0])) == 0.0
    assert max_decrease(torch.tensor([0.0, 2.0, 1.5, 3.0])) == pytest.approx(0.5)
    assert max_decrease(torch.tensor([[0.0, 1.0], [2.0, 0.5]]), dim=0) == pytest.approx(0.5)


@pytest.mark.parametrize("name", list(TARGETS))
def test_targets_are_monotone_and_not_convex(name):
    d = TARGETS[name][0]
    t = torch.linspace(-1, 1, 401, dtype=D64)
    if d == 1:
        v = monotone_target(name, t[:, None])[None]
    else:
        G = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
        v = monotone_target(name, G).reshape(401, 401)
    assert max_decrease(v, -1) == 0.0 and max_decrease(v, 0) == 0.0
    row = v[-1] if d == 2 else v[0]                          # along the last axis: somewhere above the chord
    assert float((row[1:-1] - 0.5 * (row[:-2] + row[2:])).max()) > 0
    with pytest.raises(ValueError, match="input shape"):
        monotone_target(name, torch.zeros(3, d + 1, dtype=D64))
    with pytest.raises(ValueError, match="invalid target 'cubic'"):
        monotone_target("cubic", t[:, None])
