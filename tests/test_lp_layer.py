"""LP layer: HiGHS values against cvxpy, dual gradients against finite differences, batching, argument checks."""
import cvxpy as cp
import numpy as np
import pytest
import torch
from optrepro.constrained.lp_layer import LinearProgram, lp_value, solve_lp

pytestmark = pytest.mark.usefixtures("one_thread")


def random_lp(seed, n=8, m_eq=3, m_ub=4):
    """A feasible, bounded LP: x0 in the box is feasible for b = A_eq x0, h = A_ub x0 + slack."""
    rng = np.random.default_rng(seed)
    A_eq, A_ub = rng.normal(size=(m_eq, n)), rng.normal(size=(m_ub, n))
    x0 = rng.uniform(0.5, 1.5, n)
    lp = LinearProgram(rng.normal(size=n), A_eq=A_eq, A_ub=A_ub, lower=np.zeros(n), upper=np.full(n, 3.0))
    return lp, A_eq @ x0, A_ub @ x0 + rng.uniform(0.1, 1.0, m_ub)


def cvxpy_value(lp, b, h):
    x = cp.Variable(lp.n)
    cons = [lp.A_eq.toarray() @ x == b, lp.A_ub.toarray() @ x <= h, x >= lp.lower, x <= lp.upper]
    prob = cp.Problem(cp.Minimize(lp.c @ x), cons)
    prob.solve(solver=cp.CLARABEL)
    return prob.value


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_value_matches_cvxpy(seed):
    lp, b, h = random_lp(seed)
    sol = solve_lp(lp, b, h)
    assert sol.value[0] == pytest.approx(cvxpy_value(lp, b, h), rel=1e-6, abs=1e-6)
    x = sol.x[0]
    assert np.allclose(lp.A_eq @ x, b, atol=1e-7) and np.all(lp.A_ub @ x <= h + 1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dual_gradient_matches_finite_differences(seed):
    lp, b, h = random_lp(seed)
    bt = torch.tensor(b[None], requires_grad=True)
    ht = torch.tensor(h[None], requires_grad=True)
    value, _ = lp_value(lp, bt, ht)
    value.sum().backward()
    eps = 1e-6
    for i in range(lp.m_eq):
        e = np.eye(lp.m_eq)[i] * eps
        fd = (solve_lp(lp, b + e, h).value[0] - solve_lp(lp, b - e, h).value[0]) / (2 * eps)
        assert bt.grad[0, i].item() == pytest.approx(fd, rel=1e-5, abs=1e-6)
    for i in range(lp.m_ub):
        e = np.eye(lp.m_ub)[i] * eps
        fd = (solve_lp(lp, b, h + e).value[0] - solve_lp(lp, b, h - e).value[0]) / (2 * eps)
        assert ht.grad[0, i].item() == pytest.approx(fd, rel=1e-5, abs=1e-6)
    assert np.all(ht.grad.numpy() <= 1e-9)  # relaxing a <= constraint never raises the minimum


def test_batch_equals_separate_solves():
    lp, b, h = random_lp(3)
    rng = np.random.default_rng(0)
    B = np.stack([b, b + 0.01 * rng.normal(size=b.size), b])
    H = np.stack([h, h, h + 0.2])
    batched = solve_lp(lp, B, H)
    for k in range(3):
        single = solve_lp(lp, B[k], H[k])
        assert batched.value[k] == pytest.approx(single.value[0], rel=1e-8, abs=1e-8)
        assert np.allclose(batched.eq_duals[k], single.eq_duals[0], atol=1e-6)


def test_known_dual_of_a_tiny_lp():
    # min 2 x1 + 3 x2 s.t. x1 + x2 = b, x1 <= 1: V(b) = 2 + 3 (b - 1) for b > 1, so dV/db = 3
    lp = LinearProgram([2.0, 3.0], A_eq=[[1.0, 1.0]], upper=[1.0, np.inf])
    value, x = lp_value(lp, torch.tensor([[2.5]], requires_grad=True))
    assert value.item() == pytest.approx(6.5)
    assert np.allclose(x.numpy(), [[1.0, 1.5]])
    b = torch.tensor([[2.5]], requires_grad=True)
    lp_value(lp, b)[0].sum().backward()
    assert b.grad.item() == pytest.approx(3.0)


def test_bad_input():
    lp, b, h = random_lp(0)
    with pytest.raises(ValueError, match="b_eq"):
        solve_lp(lp, b[:-1], h)
    with pytest.raises(ValueError, match="columns"):
        LinearProgram([1.0, 2.0], A_eq=[[1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="b_ub"):
        lp_value(lp, torch.tensor(b[None]))
    infeasible = LinearProgram([1.0], A_eq=[[1.0]], upper=[1.0])
    with pytest.raises(RuntimeError, match="HiGHS"):
        solve_lp(infeasible, [2.0])
