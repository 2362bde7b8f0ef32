"""Tests for optrepro.convex_nn.admm: the ADMM of Bai, Gautam & Sojoudi against cvxpy, and its pieces."""

from __future__ import annotations

import pytest
import torch
from optrepro.convex_nn.admm import (
    admm,
    first_below,
    group_soft_threshold,
    logistic_prox,
)
from optrepro.convex_nn.arrangements import enumerate_patterns, sample_patterns
from optrepro.convex_nn.convex_program import cone_violation, solve_cvxpy


def test_group_soft_threshold_is_the_prox_of_the_group_norm():
    A = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    A[2] *= 0.1                                               # one group below the threshold
    t = 0.7
    Z = group_soft_threshold(A, t)
    assert torch.equal(Z[2], torch.zeros(3, dtype=torch.float64))
    f = lambda Y: t * Y.norm(dim=1).sum() + 0.5 * ((Y - A) ** 2).sum()
    for _ in range(50):                                       # no perturbation does better
        E = 1e-3 * torch.randn(5, 3, dtype=torch.float64)
        assert f(Z + E) >= f(Z) - 1e-12


def test_logistic_prox_solves_its_optimality_condition():
    c = torch.randn(20, dtype=torch.float64) * 3
    y = torch.where(torch.randn(20) > 0, 1.0, -1.0).to(torch.float64)
    t = logistic_prox(c, y, rho=0.3)
    grad = -y * torch.sigmoid(-y * t) + 0.3 * (t - c)
    assert grad.abs().max() < 1e-10


@pytest.mark.parametrize("loss,rho", [("squared", 0.1), ("logistic", 0.1)])
def test_admm_reaches_the_cvxpy_optimum(loss, rho, one_thread):
    g = torch.Generator().manual_seed(0)
    n = 10
    z = torch.linspace(-1, 1, n, dtype=torch.float64) + 0.05 * torch.randn(n, generator=g, dtype=torch.float64)
    y = torch.sin(3 * z) + 0.2 * torch.randn(n, generator=g, dtype=torch.float64)
    if loss == "logistic":
        y = torch.where(y >= 0, 1.0, -1.0).to(torch.float64)
    X = torch.stack([z, torch.ones(n, dtype=torch.float64)], 1)
    D = enumerate_patterns(X)
    beta = 0.1
    ref = solve_cvxpy(X, y, D, beta, loss)
    res = admm(X, y, D, beta, rho=rho, iters=1000, loss=loss, newton_steps=5)
    assert abs(res.objective[-1] - ref.value) / ref.value < 1e-3
    assert cone_violation(X, D, res.V, res.W) < 1e-4
    assert res.residual[-1] < 1e-2 * res.residual[0]


def test_admm_on_sampled_patterns_in_higher_dimension(one_thread):
    g = torch.Generator().manual_seed(1)
    X = torch.cat([torch.randn(30, 4, generator=g, dtype=torch.float64), torch.ones(30, 1, dtype=torch.float64)], 1)
    y = torch.relu(X[:, 0]) - torch.relu(X[:, 1] - 0.5) + 0.1 * torch.randn(30, generator=g, dtype=torch.float64)
    D = sample_patterns(X, 8, g)
    ref = solve_cvxpy(X, y, D, 0.1)
    res = admm(X, y, D, 0.1, rho=0.1, iters=1500)
    assert abs(res.objective[-1] - ref.value) / ref.value < 1e-3


def test_first_below():
    assert first_below([5, 0.5, 2, 0.4, 0.3], 1.0) == 3
    assert first_below([5, 4], 1.0) is None


def test_bad_arguments():
    X, y, D = torch.ones(3, 2), torch.ones(3), torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="gamma"):
        admm(X, y, D, 0.1, gamma=2.0)
    with pytest.raises(ValueError, match="rho"):
        admm(X, y, D, 0.1, rho=0.0)
    with pytest.raises(ValueError, match="loss"):
        admm(X, y, D, 0.1, loss="hinge")


def test_stop_callback_ends_the_run():
    X = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [0.5, 1.0]], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    D = enumerate_patterns(X)
    res = admm(X, y, D, 0.1, iters=500, stop=lambda r: r.iterations >= 7)
    assert res.iterations == 7 == len(res.residual) == len(res.seconds)


def test_admm_stops_on_its_own_rule_near_the_cvxpy_optimum(one_thread):
    g = torch.Generator().manual_seed(3)
    n = 12
    z = torch.sort(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1).values
    y = torch.sin(3 * z) + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    X = torch.stack([z, torch.ones(n, dtype=torch.float64)], 1)
    D = enumerate_patterns(X)
    ref = solve_cvxpy(X, y, D, 0.1)
    res = admm(X, y, D, 0.1, rho=0.1, iters=20000, rel_tol=1e-5)          # no reference optimum given to it
    assert res.stopped_by == "rel_tol" and res.iterations < 20000
    assert abs(res.objective[-1] - ref.value) / ref.value < 1e-3
    assert len(res.primal) == len(res.dual) == res.iterations
    loose = admm(X, y, D, 0.1, rho=0.1, iters=20000, rel_tol=1e-2)
    assert loose.iterations < res.iterations                                # a looser rule stops earlier
    capped = admm(X, y, D, 0.1, rho=0.1, iters=5, rel_tol=1e-12)
    assert capped.stopped_by == "iters" and capped.iterations == 5


def test_adam_started_at_the_global_optimum_stays_there(one_thread):
    from optrepro.convex_nn import network_objective, recover_network, train_relu_networks

    g = torch.Generator().manual_seed(4)
    n = 10
    z = torch.sort(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1).values
    y = torch.sin(3 * z) + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    X = torch.stack([z, torch.ones(n, dtype=torch.float64)], 1)
    ref = solve_cvxpy(X, y, enumerate_patterns(X), 0.1)
    net = recover_network(ref.V, ref.W, 1e-6)
    p = network_objective(X, y, net, 0.1)
    res = train_relu_networks(X, y, net.width, 0.1, runs=2, steps=1, lr=1e-12, init=(net.U, net.alpha))
    assert float(res.objective[0, 0]) == pytest.approx(p, rel=1e-9)        # it starts at the optimum
    with pytest.raises(ValueError, match="init"):
        train_relu_networks(X, y, net.width + 1, 0.1, runs=1, steps=1, init=(net.U, net.alpha))


def test_recorded_infeasibility_is_the_cone_violation_of_the_iterate_and_costs_no_time():
    import itertools
    from optrepro.convex_nn import admm, cone_violation, enumerate_patterns
    x = torch.linspace(-1, 1, 8, dtype=torch.float64)
    X = torch.stack([x, torch.ones_like(x)], 1)
    y = torch.sin(3 * x)
    D = enumerate_patterns(X)
    for scale in (1.0, 3.0):
        res = admm(X, y, D, 0.1, rho=0.1, iters=30, record_infeasibility=True, cone_scale=scale)
        assert len(res.infeasibility) == 30
        assert res.infeasibility[-1] == pytest.approx(cone_violation(X, D, res.V, res.W), rel=1e-9, abs=1e-15)
    # a clock that moves one tick per reading: what lies between the two readings around a recording is paused out,
    # so each iteration costs 1 tick plus 1 for the second reading (without recording: 1)
    ticks = itertools.count()
    res = admm(X, y, D, 0.1, rho=0.1, iters=3, record_infeasibility=True, clock=lambda: float(next(ticks)))
    assert res.seconds == [2.0, 4.0, 6.0]
    ticks = itertools.count()
    assert admm(X, y, D, 0.1, rho=0.1, iters=3, clock=lambda: float(next(ticks))).seconds == [2.0, 3.0, 4.0]
