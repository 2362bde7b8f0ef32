"""Tests of optrepro.ot.gaussian against POT's Gaussian closed forms, a discretized Sinkhorn, an ODE solver and
torch.distributions."""
import math

import numpy as np
import ot
import pytest
import torch
from optrepro.ot import gaussian as G
from scipy.integrate import solve_ivp

pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(d, seed):
    g = torch.Generator().manual_seed(seed)
    m0, m1 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    return m0, G.random_spd(d, 10.0, generator=g), m1, G.random_spd(d, 10.0, generator=g)


@pytest.mark.parametrize("d", [1, 3, 6])
def test_w2_and_brenier_map_match_pot(d):
    m0, S0, m1, S1 = _pair(d, d)
    w = ot.gaussian.bures_wasserstein_distance(m0.numpy(), m1.numpy(), S0.numpy(), S1.numpy())
    assert G.w2_squared(m0, S0, m1, S1).item() == pytest.approx(float(w) ** 2, rel=1e-8)
    A, b = G.brenier_map(m0, S0, m1, S1)
    A_pot, b_pot = ot.gaussian.bures_wasserstein_mapping(m0.numpy(), m1.numpy(), S0.numpy(), S1.numpy())
    assert np.allclose(A.numpy(), A_pot, atol=1e-8) and np.allclose(b.numpy(), np.ravel(b_pot), atol=1e-8)
    assert torch.allclose(A @ S0 @ A, S1, atol=1e-8)  # T pushes N(m0, S0) to N(m1, S1)
    assert torch.linalg.eigvalsh(A).min() > 0  # the gradient of a convex potential


def test_w2_in_one_dimension_is_the_closed_form():
    got = G.w2_squared(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-1.0]), torch.tensor([[9.0]]))
    assert got.item() == pytest.approx(2.0 ** 2 + (2.0 - 3.0) ** 2)


@pytest.mark.parametrize("eps", [0.05, 1.0, 10.0])
def test_entropic_plan_satisfies_the_optimality_condition(eps):
    m0, S0, m1, S1 = _pair(4, 7)
    plan = G.entropic_plan(m0, S0, m1, S1, eps)
    precision = torch.linalg.inv(plan.cov)
    assert torch.allclose(precision[:4, 4:], -(2 / eps) * torch.eye(4, dtype=torch.float64), atol=1e-7)
    assert torch.allclose(plan.cov[:4, :4], S0) and torch.allclose(plan.cov[4:, 4:], S1)  # marginals
    assert torch.linalg.eigvalsh(plan.cov).min() > 0
    mean, cov = plan.conditional(m0[None] + 1.0)
    K = plan.cross_cov.T @ torch.linalg.inv(S0)
    assert torch.allclose(mean[0], m1 + K @ torch.ones(4, dtype=torch.float64))
    assert torch.allclose(cov, S1 - K @ plan.cross_cov)


def test_entropic_plan_tends_to_the_brenier_coupling():
    m0, S0, m1, S1 = _pair(3, 2)
    plan = G.entropic_plan(m0, S0, m1, S1, 1e-7)
    A, _ = G.brenier_map(m0, S0, m1, S1)
    assert torch.allclose(plan.cross_cov, S0 @ A, atol=1e-5)
    assert plan.cost.item() == pytest.approx(G.w2_squared(m0, S0, m1, S1).item(), abs=1e-4)


@pytest.mark.parametrize("eps", [1.0, 3.0])
def test_entropic_cost_matches_a_discretized_sinkhorn_in_1d(eps):
    """On a fine grid the discrete plan's E|x-y|^2 + eps KL(P | a b^T) converges to the Gaussian closed form."""
    m0, s0, m1, s1 = 0.3, 1.2, -0.5, 0.7
    x = np.linspace(m0 - 8 * s0, m0 + 8 * s0, 300)
    y = np.linspace(m1 - 8 * s1, m1 + 8 * s1, 300)
    a = np.exp(-0.5 * ((x - m0) / s0) ** 2)
    a /= a.sum()
    b = np.exp(-0.5 * ((y - m1) / s1) ** 2)
    b /= b.sum()
    M = (x[:, None] - y[None]) ** 2
    P = ot.bregman.sinkhorn_log(a, b, M, eps, numItermax=3000, stopThr=1e-11)
    mask = P > 0
    discrete = (P * M).sum() + eps * (P[mask] * np.log(P[mask] / np.outer(a, b)[mask])).sum()
    t = lambda v: torch.tensor([v], dtype=torch.float64)
    plan = G.entropic_plan(t(m0), t(s0 ** 2)[None], t(m1), t(s1 ** 2)[None], eps)
    assert plan.cost.item() == pytest.approx(discrete, rel=2e-3)
    assert plan.transport.item() == pytest.approx((P * M).sum(), rel=2e-3)


def test_ou_marginal_solves_the_covariance_ode():
    m0, S0, b, A = _pair(3, 5)
    D, t = 0.7, 0.8
    mean, cov = G.ou_marginal(m0, S0, A, b, t, diffusion=D)
    An, bn = A.numpy(), b.numpy()

    def rhs(_, z):
        m, S = z[:3], z[3:].reshape(3, 3)
        return np.concatenate([-An @ (m - bn), (-An @ S - S @ An + 2 * D * np.eye(3)).ravel()])

    sol = solve_ivp(rhs, (0, t), np.concatenate([m0.numpy(), S0.numpy().ravel()]), rtol=1e-10, atol=1e-12)
    assert np.allclose(mean.numpy(), sol.y[:3, -1], atol=1e-7)
    assert np.allclose(cov.numpy(), sol.y[3:, -1].reshape(3, 3), atol=1e-7)
    mean_inf, cov_inf = G.ou_marginal(m0, S0, A, b, 200.0, diffusion=D)  # stationary law N(b, D A^{-1})
    assert torch.allclose(mean_inf, b) and torch.allclose(cov_inf, D * torch.linalg.inv(A), atol=1e-8)


def test_kl_matches_torch_distributions():
    m0, S0, m1, S1 = _pair(5, 11)
    N = torch.distributions.MultivariateNormal
    assert G.kl(m0, S0, m1, S1).item() == pytest.approx(torch.distributions.kl_divergence(N(m0, S0), N(m1, S1)).item(), rel=1e-10)
    assert G.kl(m0, S0, m0, S0).item() == pytest.approx(0.0, abs=1e-10)


def test_bw2_uvp_and_samples():
    m, S, _, _ = _pair(4, 3)
    assert G.bw2_uvp(m, S, m, S).item() == pytest.approx(0.0, abs=1e-6)
    shifted = m + torch.tensor([1.0, 0, 0, 0], dtype=torch.float64)
    assert G.bw2_uvp(shifted, S, m, S).item() == pytest.approx(100 / (0.5 * S.trace().item()))
    X = G.sample(m, S, 200_000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(X.mean(0), m, atol=0.03) and torch.allclose(torch.cov(X.T), S, atol=0.1)
    evals = torch.linalg.eigvalsh(G.random_spd(6, 100.0, generator=torch.Generator().manual_seed(1)))
    assert evals.min() >= 0.1 - 1e-12 and evals.max() <= 10 + 1e-12 and evals.max() / evals.min() > 2


def test_bad_inputs_name_the_value():
    m0, S0, m1, S1 = _pair(2, 0)
    with pytest.raises(ValueError, match="eps"):
        G.entropic_plan(m0, S0, m1, S1, 0.0)
    with pytest.raises(ValueError, match="dimensions 2 and 3"):
        G.w2_squared(m0, S0, torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="smallest eigenvalue"):
        G.brenier_map(m0, torch.zeros(2, 2, dtype=torch.float64), m1, S1)
    with pytest.raises(ValueError, match="condition 0.5"):
        G.random_spd(3, 0.5)
    assert math.isfinite(G.kl(m0, S0, m1, S1).item())
