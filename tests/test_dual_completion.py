"""DLL dual completion: feasibility for any prediction, strong duality at HiGHS duals, weak duality, gradients."""
import numpy as np
import pytest
import torch
from optrepro.constrained.dual_completion import (BoxLP, DualNet, complete_duals, dual_bound, dual_violation,
                                                  highs_reference, project_duals, train_dll)
from optrepro.problems.knapsack import multi_knapsack, sample_knapsack_instances

pytestmark = pytest.mark.usefixtures("one_thread")


def mixed_lp(seed, n=12, m_eq=2, m_ub=4):
    """Equality and <= rows, box bounds; feasible by construction (x0 inside the box)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m_eq + m_ub, n, generator=g, dtype=torch.float64)
    lp = BoxLP(A, -torch.ones(n, dtype=torch.float64), 2 * torch.ones(n, dtype=torch.float64), m_eq=m_eq)
    x0 = torch.rand(5, n, generator=g, dtype=torch.float64)
    b = x0 @ A.T
    b[:, m_eq:] += torch.rand(5, m_ub, generator=g, dtype=torch.float64)
    c = torch.randn(5, n, generator=g, dtype=torch.float64)
    return lp, c, b, g


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["relu", "softplus"])
def test_completed_duals_feasible_for_random_predictions(seed, kind):
    lp, c, b, g = mixed_lp(seed)
    raw = 10 * torch.randn(5, lp.m, generator=g, dtype=torch.float64)
    y = project_duals(raw, lp.m_eq, kind)
    z_l, z_u = complete_duals(lp, y, c)
    assert dual_violation(lp, y, z_l, z_u, c).max() <= 1e-9
    assert torch.equal(y[:, : lp.m_eq], raw[:, : lp.m_eq]) and (y[:, lp.m_eq:] <= 0).all()
    # an infeasible y (positive <= dual) is detected
    y_bad = y.clone()
    y_bad[:, -1] = 1.0
    assert (dual_violation(lp, y_bad, *complete_duals(lp, y_bad, c), c) >= 1.0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strong_duality_at_highs_duals_and_weak_duality(seed):
    lp, c, b, g = mixed_lp(seed)
    ref = highs_reference(lp, c, b)
    bound = dual_bound(lp, torch.tensor(ref.duals), c, b).numpy()
    np.testing.assert_allclose(bound, ref.value, rtol=1e-7, atol=1e-7)
    for _ in range(20):
        y = project_duals(3 * torch.randn(5, lp.m, generator=g, dtype=torch.float64), lp.m_eq)
        assert (dual_bound(lp, y, c, b).numpy() <= ref.value + 1e-9).all()


def test_knapsack_strong_duality():
    g = torch.Generator().manual_seed(0)
    lp = multi_knapsack(4, 30, g)
    c, b = sample_knapsack_instances(lp, 6, g)
    ref = highs_reference(lp, c, b)
    assert (ref.duals <= 1e-12).all()
    np.testing.assert_allclose(dual_bound(lp, torch.tensor(ref.duals), c, b).numpy(), ref.value, rtol=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_bound_gradient_matches_finite_differences(seed):
    lp, c, b, g = mixed_lp(seed)
    y = torch.randn(5, lp.m, generator=g, dtype=torch.float64).requires_grad_(True)
    dual_bound(lp, y, c, b).sum().backward()
    eps = 1e-7
    for i in range(lp.m):
        e = torch.zeros_like(y)
        e[:, i] = eps
        with torch.no_grad():
            fd = (dual_bound(lp, y + e, c, b) - dual_bound(lp, y - e, c, b)) / (2 * eps)
        np.testing.assert_allclose(y.grad[:, i].numpy(), fd.numpy(), rtol=1e-6, atol=1e-6)


def test_training_raises_the_bound():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    lp = multi_knapsack(3, 20, g)
    c, b = sample_knapsack_instances(lp, 500, g)
    X = torch.cat([c, b], 1)
    net = DualNet(lp, 32, 1, "relu", X.mean(0), X.std(0))
    bounds, _ = train_dll(net, lp, c, b, 60, 64, 1e-2, g)
    assert bounds[-10:].mean() > bounds[:10].mean()


def test_bad_arguments():
    g = torch.Generator().manual_seed(0)
    lp = multi_knapsack(2, 3, g)
    with pytest.raises(ValueError, match="projection"):
        project_duals(torch.zeros(1, 2), 0, "abs")
    with pytest.raises(ValueError, match="bounds"):
        BoxLP(torch.ones(1, 2), torch.zeros(2), torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="m_eq"):
        BoxLP(torch.ones(1, 2), torch.zeros(2), torch.ones(2), m_eq=2)
    with pytest.raises(ValueError, match="shapes"):
        dual_bound(lp, torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64),
                   torch.zeros(1, 2, dtype=torch.float64))


def test_adam_matches_torch_optim():
    """train_dll's written-out Adam with a constant-lr reference: torch.optim.Adam + CosineAnnealingLR."""
    g = torch.Generator().manual_seed(1)
    lp = multi_knapsack(3, 10, g)
    c, b = sample_knapsack_instances(lp, 8, g)
    torch.manual_seed(0)
    net = DualNet(lp, 8, 1, "softplus")
    ref = DualNet(lp, 8, 1, "softplus")
    ref.load_state_dict(net.state_dict())
    train_dll(net, lp, c, b, 5, 8, 1e-2, torch.Generator().manual_seed(0))   # batch = N: idx a permutation-free draw
    with torch.no_grad():
        scale = dual_bound(lp, ref(c, b), c, b).abs().mean()
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        idx = torch.randint(0, 8, (8,), generator=gen)
        loss = -dual_bound(lp, ref(c[idx], b[idx]), c[idx], b[idx]).mean() / scale
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    for p, q in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-12)
