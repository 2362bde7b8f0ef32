"""Energy-guided entropic OT (optrepro.ot.energy_guided) against closed forms: the Gaussian conditional of a quadratic
potential, the entropic Gaussian plan of optrepro.ot.gaussian, quadrature, and the exact stationary law of ULA."""
import math

import pytest
import scipy.optimize
import torch
from optrepro.ot.energy_guided import (
    QuadraticPotential,
    conditional_bw2_uvp,
    egeot_loss,
    langevin_conditional,
    maximize_quadratic_dual,
    optimal_quadratic_potential,
    plan_bw2_uvp,
    quadratic_conditional,
    quadratic_dual_objective,
    train_egeot,
)
from optrepro.ot.gaussian import bw2_uvp, entropic_plan, random_spd, sample

pytestmark = pytest.mark.usefixtures("one_thread")


def problem(d=2, eps=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    S0, S1 = random_spd(d, 8, generator=g), random_spd(d, 8, generator=g)
    m0 = torch.randn(d, generator=g, dtype=torch.float64)
    m1 = torch.randn(d, generator=g, dtype=torch.float64)
    return m0, S0, m1, S1, entropic_plan(m0, S0, m1, S1, eps)


def quadratic(A, b):
    return lambda y: -0.5 * ((y @ A) * y).sum(1) + y @ b


def test_langevin_matches_exact_ula_law_of_a_gaussian_conditional():
    # f quadratic: pi_f(.|x) = N(mu(x), Sigma); ULA with step h has the exact stationary covariance (P - h P^2/2)^{-1}
    A = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    b = torch.tensor([0.2, -0.4], dtype=torch.float64)
    eps, h, n = 1.0, 0.05, 20000
    x = torch.tensor([[1.0, -1.0]], dtype=torch.float64).repeat(n, 1)
    mean, cov = quadratic_conditional(A, b, x[:1], eps)
    P = torch.linalg.inv(cov)
    cov_ula = torch.linalg.inv(P - h * P @ P / 2)
    g = torch.Generator().manual_seed(1)
    y = langevin_conditional(quadratic(A, b), x, torch.zeros_like(x), eps, 200, h, generator=g)
    emp_mean, emp_cov = y.mean(0), torch.cov(y.T)
    se = (cov_ula.diagonal() / n).sqrt()
    assert ((emp_mean - mean[0]).abs() < 5 * se).all()
    assert torch.allclose(emp_cov, cov_ula, atol=0.05 * cov_ula.diagonal().max())
    assert not torch.allclose(cov_ula, cov, atol=0.05 * cov_ula.diagonal().max())  # h matters at this tolerance


def test_quadratic_conditional_of_the_optimal_potential_is_the_closed_form_plan():
    m0, S0, _m1, _S1, plan = problem(d=3, eps=0.7)
    A, b = optimal_quadratic_potential(plan)
    x = sample(m0, S0, 5, generator=torch.Generator().manual_seed(0))
    mean, cov = quadratic_conditional(A, b, x, plan.eps)
    true_mean, true_cov = plan.conditional(x)
    assert torch.allclose(mean, true_mean, atol=1e-10) and torch.allclose(cov, true_cov, atol=1e-12)
    # the precision of pi(y|x) times eps/2 is the regression matrix K: the off-diagonal block -(2/eps) I
    K = torch.linalg.solve(S0, plan.cross_cov).T
    assert torch.allclose(2 * cov / plan.eps, K, atol=1e-10)


@pytest.mark.parametrize("d,eps", [(2, 0.2), (4, 5.0)])
def test_maximizer_of_the_weak_dual_is_the_closed_form_potential(d, eps):
    m0, S0, m1, S1, plan = problem(d=d, eps=eps, seed=d)
    A_star, b_star = optimal_quadratic_potential(plan)
    f = QuadraticPotential(d)
    params = list(f.parameters())
    sizes = [p.numel() for p in params]

    def value_and_grad(z):  # scipy's L-BFGS on the flattened (L, b); torch.optim would import dynamo (seconds)
        with torch.no_grad():
            for p, chunk in zip(params, torch.from_numpy(z).split(sizes)):
                p.copy_(chunk.view_as(p))
        loss = -quadratic_dual_objective(f.A, f.b, m0, S0, m1, S1, eps)
        grads = torch.autograd.grad(loss, params)
        return loss.item(), torch.cat([g.reshape(-1) for g in grads]).numpy()

    z0 = torch.cat([p.detach().reshape(-1) for p in params]).numpy()
    out = scipy.optimize.minimize(value_and_grad, z0, jac=True, method="L-BFGS-B",
                                  options={"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-15})
    value_and_grad(out.x)
    A, b = f.A.detach(), f.b.detach()
    assert torch.allclose(A, A_star, atol=1e-5 * (1 + A_star.abs().max())), (A, A_star)
    assert torch.allclose(b, b_star, atol=1e-5 * (1 + b_star.abs().max()))
    A_newton, b_newton, _ = maximize_quadratic_dual(m0, S0, m1, S1, eps)
    assert torch.allclose(A_newton, A_star, atol=1e-9 * (1 + A_star.abs().max()))
    assert torch.allclose(b_newton, b_star, atol=1e-9 * (1 + b_star.abs().max()))
    J_star = quadratic_dual_objective(A_star, b_star, m0, S0, m1, S1, eps)
    for _ in range(5):  # concave: random perturbations only lower it
        dA = torch.randn(d, d, dtype=torch.float64) * 0.05
        assert quadratic_dual_objective(A_star + dA + dA.T, b_star + 0.05, m0, S0, m1, S1, eps) < J_star


def test_quadratic_dual_objective_against_quadrature_in_one_dimension():
    m0, S0, m1, S1 = (torch.tensor([0.3], dtype=torch.float64), torch.tensor([[0.8]], dtype=torch.float64),
                      torch.tensor([-0.5], dtype=torch.float64), torch.tensor([[1.7]], dtype=torch.float64))
    A, b, eps = torch.tensor([[0.6]], dtype=torch.float64), torch.tensor([0.4], dtype=torch.float64), 0.9
    grid = torch.linspace(-25, 25, 20001, dtype=torch.float64)
    nodes, weights = [torch.tensor(v, dtype=torch.float64) for v in
                      __import__("numpy").polynomial.hermite_e.hermegauss(60)]
    weights = weights / weights.sum()
    xs = m0 + S0[0, 0].sqrt() * nodes
    f = -0.5 * A[0, 0] * grid ** 2 + b[0] * grid
    logz = torch.stack([torch.logsumexp((f - (x - grid) ** 2) / eps, 0) + math.log(grid[1] - grid[0]) for x in xs])
    ys = m1 + S1[0, 0].sqrt() * nodes
    J = (weights * (-0.5 * A[0, 0] * ys ** 2 + b[0] * ys)).sum() - eps * (weights * logz).sum()
    assert torch.allclose(quadratic_dual_objective(A, b, m0, S0, m1, S1, eps), J, atol=1e-8)


def test_egeot_gradient_estimator_is_unbiased():
    # with exact samples of pi_f(.|x), grad of mean f(y~) - mean f(y) estimates -grad J (J exact, autograd)
    m0, S0, m1, S1, _plan = problem(d=2, eps=0.5, seed=3)
    A = torch.tensor([[0.7, 0.2], [0.2, 1.1]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    exact = torch.autograd.grad(-quadratic_dual_objective(A, b, m0, S0, m1, S1, 0.5), (A, b))
    g = torch.Generator().manual_seed(0)
    n = 400000
    x, y = sample(m0, S0, n, generator=g), sample(m1, S1, n, generator=g)
    with torch.no_grad():
        mean, cov = quadratic_conditional(A, b, x, 0.5)
        y_model = mean + torch.randn(n, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    est = torch.autograd.grad(egeot_loss(quadratic(A, b), y, y_model), (A, b))
    for e, t in zip(est, exact):
        assert torch.allclose(e, t, atol=0.02 * t.abs().max()), (e, t)
    assert max(t.abs().max() for t in exact) > 0.1  # not at the optimum: the check is not trivial


def test_train_egeot_with_a_quadratic_potential_approaches_the_plan():
    m0, S0, m1, S1, plan = problem(d=2, eps=1.0, seed=5)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    f = QuadraticPotential(2)
    res = train_egeot(f, lambda n: sample(m0, S0, n, generator=g), lambda n: sample(m1, S1, n, generator=g), 1.0,
                      steps=200, batch=128, lr=0.02, langevin_steps=10, langevin_step=0.02, generator=g)
    assert len(res.losses) == 200
    x = sample(m0, S0, 4000, generator=g)
    with torch.no_grad():
        mx, cov = quadratic_conditional(f.A.detach(), f.b.detach(), x, 1.0)
        y = mx + torch.randn(4000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    assert plan_bw2_uvp(x, y, plan) < 3.0  # the initial potential (A = I, b = 0) is far off
    f0 = QuadraticPotential(2)
    with torch.no_grad():
        mx0, cov0 = quadratic_conditional(f0.A, f0.b, x, 1.0)
        y0 = mx0 + torch.randn(4000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov0).T
    assert plan_bw2_uvp(x, y0, plan) > 10.0


def test_metrics_are_zero_on_the_true_plan_and_match_gaussian_bw2_uvp():
    m0, S0, _m1, S1, plan = problem(d=2, eps=0.5, seed=7)
    g = torch.Generator().manual_seed(0)
    xy = sample(plan.mean, plan.cov, 200000, generator=g)
    assert plan_bw2_uvp(xy[:, :2], xy[:, 2:], plan) < 0.05
    xk = sample(m0, S0, 3, generator=g)
    means, cov = plan.conditional(xk)
    ys = torch.stack([sample(means[j], cov, 50000, generator=g) for j in range(3)], 1)
    assert conditional_bw2_uvp(xk, ys, plan) < 0.05
    shifted = ys + 0.1
    expected = torch.stack([bw2_uvp(means[j] + 0.1, cov, means[j], cov) for j in range(3)]).mean() \
        * cov.trace() / S1.trace() / 2
    assert torch.allclose(conditional_bw2_uvp(xk, shifted, plan), expected, rtol=0.05)
    assert torch.allclose(plan_bw2_uvp(xy[:, :2], xy[:, 2:], plan, paper_scale=False),
                          2 * plan_bw2_uvp(xy[:, :2], xy[:, 2:], plan))


def test_bad_arguments_raise_one_line_value_errors():
    f = quadratic(torch.eye(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    x = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="invalid eps"):
        langevin_conditional(f, x, x, 0.0, 10, 0.1)
    with pytest.raises(ValueError, match="invalid shapes"):
        langevin_conditional(f, x, x[:, :1], 1.0, 10, 0.1)
    with pytest.raises(ValueError, match="A \\+ 2I"):
        quadratic_conditional(-3 * torch.eye(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64), x, 1.0)
    with pytest.raises(ValueError, match="invalid replay"):
        train_egeot(QuadraticPotential(2), lambda n: torch.zeros(n, 2, dtype=torch.float64),
                    lambda n: torch.zeros(n, 2, dtype=torch.float64), 1.0, steps=1, batch=2, lr=0.1,
                    langevin_steps=1, langevin_step=0.1, replay=1.5)
