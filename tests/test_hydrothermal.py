"""Hydrothermal dispatch: stage LP against its definition and finite differences, perfect foresight against an
independent cvxpy model and as a lower bound, the scenario tree against the deterministic case, TS-DDR training."""
import cvxpy as cp
import numpy as np
import pytest
import torch
from optrepro.constrained.lp_layer import lp_value, solve_lp
from optrepro.constrained.ts_ddr import TargetPolicy, policy_rollout, realized_storage, train_policy
from optrepro.problems.hydrothermal import (
    make_system,
    myopic_rollout,
    perfect_foresight,
    resolve_decision,
    sample_inflows,
    stage_lp,
    tree_lp,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def cvxpy_horizon(sys, w):
    """The full-horizon dispatch written out independently in cvxpy (w: (T, R) known inflows)."""
    T, R, J = sys.T, sys.R, sys.J
    v, q, s = cp.Variable((T, R)), cp.Variable((T, R)), cp.Variable((T, R))
    g, d = cp.Variable((T, J)), cp.Variable(T)
    cons = [v >= 0, q >= 0, s >= 0, g >= 0, d >= 0]
    for t in range(T):
        prev = sys.v0 if t == 0 else v[t - 1]
        cons += [v[t] == prev + w[t] - q[t] - s[t], v[t] <= sys.v_max, q[t] <= sys.q_max, g[t] <= sys.g_max,
                 sys.rho @ q[t] + cp.sum(g[t]) + d[t] == sys.demand[t]]
    cost = cp.sum(g @ sys.g_cost) + sys.deficit_cost * cp.sum(d) + sys.spill_cost * cp.sum(s)
    prob = cp.Problem(cp.Minimize(cost), cons)
    prob.solve(solver=cp.CLARABEL)
    return prob.value


def test_perfect_foresight_matches_cvxpy():
    sys = make_system()
    w = sample_inflows(sys, 3, torch.Generator().manual_seed(0))
    pf = perfect_foresight(sys, w).numpy()
    for k in range(3):
        assert pf[k] == pytest.approx(cvxpy_horizon(sys, w[k].numpy()), rel=1e-5)


def test_stage_lp_meets_a_reachable_target():
    sys = make_system()
    lp = stage_lp(sys)
    v_in, w = sys.v0, sys.inflow_mean[0]
    target = v_in * 0.9  # reachable: releases a little water, no spillage needed
    b = np.concatenate([v_in + w, [sys.demand[0]], target])
    sol = solve_lp(lp, b)
    x = sol.x[0]
    assert np.allclose(x[:sys.R], target, atol=1e-8)
    assert np.allclose(x[-2 * sys.R:], 0, atol=1e-8)  # no target slack
    hydro = sys.rho @ x[sys.R:2 * sys.R]
    assert hydro == pytest.approx(np.sum(v_in + w - target), abs=1e-7)
    # the thermal units are dispatched in merit order for the remaining load
    rest, cost = sys.demand[0] - hydro, 0.0
    for cap, c in zip(sys.g_max, sys.g_cost):
        use = min(cap, max(rest, 0))
        cost, rest = cost + c * use, rest - use
    assert sol.value[0] == pytest.approx(cost + sys.deficit_cost * max(rest, 0), rel=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_stage_dual_gradient_matches_finite_differences(seed):
    sys = make_system()
    lp = stage_lp(sys)
    rng = np.random.default_rng(seed)
    v_in = rng.uniform(0.2, 0.8) * sys.v_max
    w = sys.inflow_mean[2] * rng.uniform(0.5, 1.5, sys.R)
    target = rng.uniform(0.2, 0.8, sys.R) * sys.v_max
    b = torch.tensor(np.concatenate([v_in + w, [sys.demand[2]], target])[None], requires_grad=True)
    value, _ = lp_value(lp, b)
    value.sum().backward()
    eps = 1e-6
    for i in list(range(sys.R)) + list(range(sys.R + 1, 2 * sys.R + 1)):
        e = np.zeros(b.shape[1])
        e[i] = eps
        fd = (solve_lp(lp, b.detach().numpy() + e).value[0] - solve_lp(lp, b.detach().numpy() - e).value[0]) / (2 * eps)
        assert b.grad[0, i].item() == pytest.approx(fd, rel=1e-5, abs=1e-5)


def test_perfect_foresight_is_a_lower_bound():
    sys = make_system()
    w = sample_inflows(sys, 20, torch.Generator().manual_seed(1))
    pf = perfect_foresight(sys, w)
    my = myopic_rollout(sys, w)
    torch.manual_seed(0)
    _, pol = policy_rollout(sys, TargetPolicy(sys), w)
    assert torch.all(pf <= my + 1e-6) and torch.all(pf <= pol + 1e-6)
    assert my.mean() > 1.2 * pf.mean()  # the instance rewards storing water: myopic is clearly worse


def test_tree_with_one_branch_and_no_noise_is_perfect_foresight():
    sys = make_system(inflow_cv=0.0)
    gen = torch.Generator().manual_seed(0)
    w = sample_inflows(sys, 1, gen)
    lp, b, nodes = tree_lp(sys, 0, sys.v0, w[0, 0].numpy(), 1, gen)
    assert nodes == sys.T
    assert solve_lp(lp, b).value[0] == pytest.approx(perfect_foresight(sys, w).item(), rel=1e-8)
    _, _, nodes3 = tree_lp(sys, 0, sys.v0, w[0, 0].numpy(), 3, gen)
    assert nodes3 == sum(3 ** k for k in range(sys.T))
    decision, seconds, _ = resolve_decision(sys, sys.T - 1, sys.v0, w[0, -1].numpy(), 3, gen)
    assert decision.shape == (sys.R,) and seconds > 0


def test_training_lowers_the_cost():
    sys = make_system()
    torch.manual_seed(0)
    policy = TargetPolicy(sys)
    test = sample_inflows(sys, 32, torch.Generator().manual_seed(5))
    with torch.no_grad():
        before = policy_rollout(sys, policy, test)[1].mean()
    train_policy(sys, policy, steps=8, batch=8, lr=3e-2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = policy_rollout(sys, policy, test)[1].mean()
    assert after < 0.9 * before


def test_reachable_targets_are_met_and_realized_storage_gradient():
    sys = make_system()
    torch.manual_seed(1)
    policy = TargetPolicy(sys)
    w = sample_inflows(sys, 8, torch.Generator().manual_seed(2))
    v_in = torch.as_tensor(sys.v0).expand(8, -1) * torch.rand(8, 1, dtype=torch.float64)
    target = policy(3, v_in, w[:, 3])
    assert torch.all(target <= torch.minimum(torch.as_tensor(sys.v_max), v_in + w[:, 3]) + 1e-6)
    b = torch.cat([v_in + w[:, 3], torch.full((8, 1), sys.demand[3], dtype=torch.float64), target.detach()], 1)
    sol = solve_lp(stage_lp(sys), b.numpy())
    assert np.allclose(sol.x[:, :sys.R], target.detach().numpy(), atol=1e-7)  # reachable targets are met
    # a target above what is reachable is missed: the storage does not follow it, its derivative is zero
    high = torch.as_tensor(sys.v_max).expand(8, -1).clone().requires_grad_(True)
    x = torch.as_tensor(solve_lp(stage_lp(sys), torch.cat([b[:, :sys.R + 1], high.detach()], 1).numpy()).x)
    v = realized_storage(sys, x, high)
    missed = (x[:, -2 * sys.R:].sum(1) > 1e-9)
    v.sum().backward()
    assert missed.any()
    assert torch.all(high.grad[missed].sum(1) < 2) and torch.all(high.grad[~missed] == 1)


def test_bad_input():
    with pytest.raises(ValueError, match="reservoirs"):
        make_system(reservoirs=0)
    with pytest.raises(ValueError, match="inflow_cv"):
        make_system(inflow_cv=-1.0)
    sys = make_system()
    with pytest.raises(ValueError, match="branching"):
        tree_lp(sys, 0, sys.v0, sys.inflow_mean[0], 0, torch.Generator())
    with pytest.raises(ValueError, match="steps"):
        train_policy(sys, TargetPolicy(sys), steps=0, batch=4, lr=1e-2, generator=torch.Generator())
