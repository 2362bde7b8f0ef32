"""Tests of optrepro.ot.jko: the exact Gaussian JKO step (against a numerical minimization, the 1-D root and the
OU flow as h -> 0), the variational KL estimate (against the closed-form KL of Gaussians), the log-det Jacobian
(against autograd's jacobian) and one network JKO step (against the exact Gaussian step)."""
import math

import pytest
import torch
from optrepro.ot.gaussian import kl, ou_marginal, random_spd, sample, w2_squared
from optrepro.ot.jko import (ICNNMap, fit_gaussian, gaussian_free_energy, gaussian_jko_step, jko_step,
                             log_det_jacobian, quadratic_potential, symmetric_kl, variational_kl)

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64


def _problem(d, seed):
    g = torch.Generator().manual_seed(seed)
    A = random_spd(d, 5.0, generator=g)
    S = random_spd(d, 3.0, generator=g)  # does not commute with A
    return A, torch.randn(d, generator=g, dtype=F64), torch.randn(d, generator=g, dtype=F64), S


def test_gaussian_jko_step_matches_numerical_minimization():
    d, h, D = 3, 0.3, 0.7
    A, b, m, S = _problem(d, 0)
    m_new, S_new = gaussian_jko_step(m, S, A, b, h, D)
    # minimize F(N(m', S')) + W2^2(N(m, S), N(m', S')) / 2h over m' and S' = L L^T with L-BFGS
    mu = m.clone().requires_grad_(True)
    L = torch.linalg.cholesky(S).clone(memory_format=torch.contiguous_format).requires_grad_(True)
    opt = torch.optim.LBFGS([mu, L], lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        Sp = L @ L.T
        loss = gaussian_free_energy(mu, Sp, A, b, D) + w2_squared(m, S, mu, Sp) / (2 * h)
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.allclose(mu.detach(), m_new, atol=1e-6)
    assert torch.allclose((L @ L.T).detach(), S_new, atol=1e-5)
    # and the closed form is a minimizer: a perturbation raises the objective
    J = lambda mm, SS: gaussian_free_energy(mm, SS, A, b, D) + w2_squared(m, S, mm, SS) / (2 * h)
    assert J(m_new, S_new) < J(m_new, S_new + 1e-2 * torch.eye(d, dtype=F64))


def test_gaussian_jko_step_scalar_root():
    """In 1-D the step solves (a + 1/h) s^2 - (sigma/h) s - D = 0 for the new standard deviation s."""
    a, var, h, D = 2.0, 0.7, 0.1, 1.3
    one = lambda v: torch.tensor([[v]], dtype=F64)
    _, S_new = gaussian_jko_step(torch.zeros(1, dtype=F64), one(var), one(a), torch.zeros(1, dtype=F64), h, D)
    sigma, q = math.sqrt(var), a + 1 / h
    s = (sigma / h + math.sqrt(sigma ** 2 / h ** 2 + 4 * q * D)) / (2 * q)
    assert S_new.item() == pytest.approx(s ** 2, rel=1e-12)


def test_gaussian_jko_converges_to_ou_marginal_first_order():
    d, t, D = 3, 0.6, 0.5
    A, b, m0, S0 = _problem(d, 1)
    errors = []
    for steps in (6, 12, 24, 48):
        m, S = m0, S0
        for _ in range(steps):
            m, S = gaussian_jko_step(m, S, A, b, t / steps, D)
        mt, St = ou_marginal(m0, S0, A, b, t, D)
        errors.append(w2_squared(m, S, mt, St).sqrt().item())
    ratios = [e1 / e0 for e0, e1 in zip(errors, errors[1:])]
    assert errors[-1] < 1e-2
    assert all(0.4 < r < 0.6 for r in ratios), ratios  # backward Euler: first order in h


def test_variational_kl_matches_closed_form():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    m0, m1 = torch.tensor([0.5, -0.3], dtype=F64), torch.zeros(2, dtype=F64)
    S0, S1 = random_spd(2, 3.0, generator=g), random_spd(2, 2.0, generator=g)
    x, z = sample(m0, S0, 4000, generator=g), sample(m1, S1, 4000, generator=g)
    est = variational_kl(x, z, steps=400, lr=2e-2, hidden=8).item()
    exact = kl(m0, S0, m1, S1).item()
    assert exact > 0.2
    assert est == pytest.approx(exact, abs=0.05)
    same = variational_kl(x, sample(m0, S0, 4000, generator=g), steps=200, lr=2e-2, hidden=8).item()
    assert abs(same) < 0.02  # KL(rho || rho) = 0


def test_log_det_jacobian_matches_autograd():
    torch.manual_seed(0)
    net = ICNNMap(3, hidden=8, layers=2).double()
    with torch.no_grad():
        net.icnn.out_raw.fill_(0.5)  # a clearly non-affine map
        net.L.add_(0.3 * torch.randn(3, 3, dtype=F64))
    x = torch.randn(5, 3, dtype=F64)
    y, logdet = log_det_jacobian(net, x)
    for i in range(5):
        J = torch.autograd.functional.jacobian(lambda v: net(v[None])[0], x[i])
        assert torch.allclose(J, J.T, atol=1e-10)  # a gradient map has a symmetric Jacobian
        assert logdet[i].item() == pytest.approx(torch.logdet(J).item(), abs=1e-8)
    assert torch.allclose(y, net(x))


@pytest.mark.parametrize("entropy", ["variational", "logdet"])
def test_network_jko_step_matches_exact_gaussian_step(entropy):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    d, h = 2, 0.2
    A, b = torch.diag(torch.tensor([0.5, 2.0], dtype=F64)), torch.tensor([1.0, -1.0], dtype=F64)
    x = sample(torch.zeros(d, dtype=F64), torch.eye(d, dtype=F64), 2000, generator=g).float()
    res = jko_step(x, quadratic_potential(A.float(), b.float()), h, outer=100, inner=1, batch=256, hidden=8,
                   lr_map=2e-2, lr_critic=2e-2, map_net=ICNNMap(d, hidden=8, layers=1), entropy=entropy, generator=g)
    m_emp, S_emp = fit_gaussian(x.double())
    m_ex, S_ex = gaussian_jko_step(m_emp, S_emp, A, b, h)
    m_net, S_net = fit_gaussian(res.particles.double())
    moved = symmetric_kl(m_emp, S_emp, m_ex, S_ex).item()
    assert moved > 0.1  # the step is not trivial
    assert symmetric_kl(m_net, S_net, m_ex, S_ex).item() < 0.02


def test_bad_input():
    A, b = torch.eye(2, dtype=F64), torch.zeros(2, dtype=F64)
    with pytest.raises(ValueError, match="entropy"):
        jko_step(torch.randn(10, 2), quadratic_potential(A, b), 0.1, entropy="exact")
    with pytest.raises(ValueError, match="h"):
        gaussian_jko_step(b, A, A, b, -1.0)
    with pytest.raises(ValueError, match="potential"):
        gaussian_jko_step(b, A, torch.eye(3, dtype=F64), b, 0.1)
