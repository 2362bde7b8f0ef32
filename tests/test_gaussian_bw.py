"""FB-GVI and BW gradient descent (optrepro.vi.gaussian_bw) against closed forms and independent references."""

import pytest
import torch
from scipy.optimize import minimize

from optrepro.problems.bures_wasserstein import bw_squared
from optrepro.ot.gaussian import kl, random_spd, sample
from optrepro.vi import gaussian_bw as gbw

pytestmark = pytest.mark.usefixtures("one_thread")
DT = torch.float64


def gaussian_problem(d=5, cond=20.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = random_spd(d, cond, generator=g)
    b = torch.randn(d, generator=g, dtype=DT)
    return gbw.QuadraticPotential(A, b), g


def test_entropy_jko_solves_its_optimality_condition():
    g = torch.Generator().manual_seed(1)
    S_half, h = random_spd(6, 50.0, generator=g), 0.3
    S = gbw.entropy_jko(S_half, h)
    eye = torch.eye(6, dtype=DT)
    # S_half = (I - h S^{-1}) S (I - h S^{-1}) with S >= h I (the OT map from S to S_half is then I - h S^{-1})
    assert torch.allclose(S - 2 * h * eye + h * h * torch.linalg.inv(S), S_half, atol=1e-12)
    assert torch.linalg.eigvalsh(S).min() >= h


def test_entropy_jko_matches_numerical_minimisation():
    g = torch.Generator().manual_seed(2)
    d, h = 3, 0.5
    S_half = random_spd(d, 10.0, generator=g)
    idx = torch.tril_indices(d, d)

    def f(x):
        L = torch.zeros(d, d, dtype=DT)
        L[idx[0], idx[1]] = torch.as_tensor(x)
        S = L @ L.T + 1e-12 * torch.eye(d, dtype=DT)
        return float(-0.5 * torch.logdet(S) + bw_squared(S, S_half) / (2 * h))

    x0 = torch.linalg.cholesky(S_half)[idx[0], idx[1]].numpy()
    res = minimize(f, x0, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
    L = torch.zeros(d, d, dtype=DT)
    L[idx[0], idx[1]] = torch.as_tensor(res.x)
    S_closed = gbw.entropy_jko(S_half, h)
    assert torch.allclose(L @ L.T, S_closed, atol=1e-4)
    L_c = torch.linalg.cholesky(S_closed)[idx[0], idx[1]].numpy()
    assert f(L_c) <= res.fun + 1e-10


def test_quadratic_expectations_match_monte_carlo():
    pot, g = gaussian_problem()
    m = torch.randn(5, generator=g, dtype=DT)
    S = random_spd(5, 5.0, generator=g)
    x = sample(m, S, 200_000, generator=g)
    r = x - pot.b
    EV, grad, _ = pot.expectations(m, S)
    assert abs(float(0.5 * ((r @ pot.A) * r).sum(1).mean() - EV)) < 0.03 * float(EV)
    assert torch.allclose((r @ pot.A).mean(0), grad, atol=0.05)


def test_logistic_expectations_match_monte_carlo_and_stein():
    g = torch.Generator().manual_seed(3)
    n, d = 40, 4
    X = torch.randn(n, d, generator=g, dtype=DT)
    y = torch.where(torch.rand(n, generator=g, dtype=DT) < 0.5, 1.0, -1.0).to(DT)
    pot = gbw.LogisticPotential(X, y, prior_var=2.0, nodes=30)
    m = torch.randn(d, generator=g, dtype=DT) * 0.5
    S = random_spd(d, 4.0, generator=g) * 0.5
    EV, grad, H = pot.expectations(m, S)
    th = sample(m, S, 200_000, generator=g).requires_grad_(True)
    V = torch.nn.functional.softplus(-(th @ (X * y[:, None]).T)).sum(1) + (th ** 2).sum(1) / 4.0
    assert abs(float(V.detach().mean()) - float(EV)) < 0.05
    gs = torch.autograd.grad(V.sum(), th)[0]
    assert torch.allclose(gs.mean(0), grad, atol=0.05)
    # Bonnet/Price: d E[V]/dm = E[grad V], d E[V]/dS = E[hess V]/2 (on the quadrature itself)
    m_, S_ = m.clone().requires_grad_(True), S.clone().requires_grad_(True)
    dm, dS = torch.autograd.grad(pot.expectations(m_, S_)[0], (m_, S_))
    assert torch.allclose(dm, grad, atol=1e-8)
    assert torch.allclose(dS + dS.T, H, rtol=1e-4, atol=1e-4)   # Price holds for the quadrature up to its error


@pytest.mark.parametrize("method, frac", [("fb-gvi", 1.0), ("bw-gd", 0.5)])
def test_both_methods_converge_to_a_gaussian_target(method, frac):
    pot, g = gaussian_problem(d=4, cond=10.0)
    m0, S0 = torch.zeros(4, dtype=DT), torch.eye(4, dtype=DT)
    tr = gbw.run(method, pot, m0, S0, frac / pot.beta, 400)
    m_star, S_star = pot.minimizer()
    assert float(kl(tr.m, tr.S, m_star, S_star)) < 1e-12
    gap = tr.objective - gbw.objective(pot, m_star, S_star)
    assert abs(float(gap[-1] - kl(tr.m, tr.S, m_star, S_star))) < 1e-12   # F - F* = KL for a Gaussian target
    assert bool((gap[1:] <= gap[:-1] + 1e-12).all())                     # monotone at these steps


def test_contraction_factors_match_linearisation():
    d, h = 3, 0.2
    lam = torch.tensor([0.5, 2.0, 4.0], dtype=DT)
    pot = gbw.QuadraticPotential(torch.diag(lam), torch.zeros(d, dtype=DT))
    eps = 1e-7
    for method, factor in (("fb-gvi", (1 - h * lam) / (1 + h * lam)), ("bw-gd", 1 - 2 * h * lam)):
        S0 = torch.diag(1 / lam + eps)
        m0 = eps * torch.ones(d, dtype=DT)
        tr = gbw.run(method, pot, m0, S0, h, 1)
        assert torch.allclose((tr.S.diagonal() - 1 / lam) / eps, factor, atol=1e-5)
        assert torch.allclose(tr.m / m0, 1 - h * lam, atol=1e-12)


def test_bw_gd_stalls_at_one_over_beta_while_fb_gvi_converges():
    pot, _ = gaussian_problem(d=4, cond=10.0, seed=4)
    m0, S0 = torch.zeros(4, dtype=DT), torch.eye(4, dtype=DT)
    m_star, S_star = pot.minimizer()
    fb = gbw.run("fb-gvi", pot, m0, S0, 1 / pot.beta, 300)
    bw = gbw.run("bw-gd", pot, m0, S0, 1 / pot.beta, 300)
    assert float(kl(fb.m, fb.S, m_star, S_star)) < 1e-12
    assert float(kl(bw.m, bw.S, m_star, S_star)) > 1e-3


def test_batched_steps_equal_separate_runs():
    pot, _ = gaussian_problem(d=3)
    m0, S0 = torch.zeros(2, 3, dtype=DT), torch.eye(3, dtype=DT).expand(2, 3, 3)
    hs = torch.tensor([0.1, 0.3], dtype=DT) / pot.beta
    tr = gbw.run("fb-gvi", pot, m0, S0, hs, 20)
    for i in range(2):
        one = gbw.run("fb-gvi", pot, m0[i], S0[i], float(hs[i]), 20)
        assert torch.allclose(tr.S[i], one.S, atol=1e-13) and torch.allclose(tr.objective[:, i], one.objective)


def test_stationary_reference():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(60, 3, generator=g, dtype=DT)
    y = torch.where(torch.rand(60, generator=g, dtype=DT) < torch.sigmoid(X[:, 0]), 1.0, -1.0).to(DT)
    pot = gbw.LogisticPotential(X, y, prior_var=1.0)
    m, S, resid = gbw.stationary_gaussian(pot, torch.zeros(3, dtype=DT), torch.eye(3, dtype=DT), 50)
    assert resid < 1e-10
    tr = gbw.run("fb-gvi", pot, torch.zeros(3, dtype=DT), torch.eye(3, dtype=DT), 1 / pot.beta, 300)
    assert torch.allclose(tr.m, m, atol=1e-8) and torch.allclose(tr.S, S, atol=1e-8)


def test_bad_inputs():
    pot, _ = gaussian_problem(d=3)
    m, S = torch.zeros(3, dtype=DT), torch.eye(3, dtype=DT)
    with pytest.raises(ValueError, match="unknown method"):
        gbw.run("adam", pot, m, S, 0.1, 5)
    with pytest.raises(ValueError, match="invalid h"):
        gbw.fb_gvi_step(pot, m, S, -1.0)
    with pytest.raises(ValueError, match="invalid mean"):
        gbw.objective(pot, m, torch.eye(4, dtype=DT))
    with pytest.raises(ValueError, match="labels"):
        gbw.LogisticPotential(torch.ones(2, 3, dtype=DT), torch.tensor([0.0, 1.0], dtype=DT), 1.0)
    with pytest.raises(ValueError, match="positive definite"):
        gbw.QuadraticPotential(-torch.eye(3, dtype=DT), torch.zeros(3, dtype=DT))
