"""optrepro.particles.displacement_convex: the planted sign network's loss, gradient, minima and PGD."""
import math

import numpy as np
import pytest
import torch

from optrepro.particles import displacement_convex as dc

pytestmark = pytest.mark.usefixtures("one_thread")
PROB = dc.PlantedSignNetwork(math.pi / 4, 3 * math.pi / 4)


def test_pairwise_mean_abs_matches_double_sum():
    theta = torch.rand(37, dtype=torch.float64)
    brute = (theta[:, None] - theta[None, :]).abs().mean()
    assert float(dc.pairwise_mean_abs(theta)) == pytest.approx(float(brute), rel=1e-12)


def test_potential_matches_numerical_integral():
    theta = torch.tensor([0.1, 0.9, 1.5, 2.3, 3.0], dtype=torch.float64)
    y = np.linspace(PROB.lo, PROB.hi, 200001)
    ref = [np.trapezoid(np.abs(t - y), y) / PROB.length for t in theta.numpy()]
    np.testing.assert_allclose(PROB.potential(theta).numpy(), ref, rtol=1e-8)


def test_loss_matches_network_quadrature():
    """L = E_x (f_mu - f_nu)^2 computed directly over inputs, f_nu by a fine rule over the planted angles."""
    g = torch.Generator().manual_seed(1)
    theta = math.pi * torch.rand(7, generator=g, dtype=torch.float64)
    phi = (torch.arange(4000, dtype=torch.float64) + 0.5) * (2 * math.pi / 4000)
    planted = PROB.lo + PROB.length * (torch.arange(8000, dtype=torch.float64) + 0.5) / 8000
    direct = float(((dc.network_output(theta, phi) - dc.network_output(planted, phi)) ** 2).mean())
    assert float(PROB.loss(theta)) == pytest.approx(direct, rel=2e-3)


def test_gradient_matches_autograd_and_finite_differences():
    g = torch.Generator().manual_seed(2)
    theta = math.pi * torch.rand(2, 11, generator=g, dtype=torch.float64)
    t = theta.clone().requires_grad_(True)
    PROB.loss(t).sum().backward()
    np.testing.assert_allclose(PROB.wasserstein_gradient(theta).numpy(), 11 * t.grad.numpy(), rtol=1e-10, atol=1e-12)
    h, i = 1e-6, 3
    e = torch.zeros(11, dtype=torch.float64)
    e[i] = h
    fd = (PROB.loss(theta[0] + e) - PROB.loss(theta[0] - e)) / (2 * h)
    assert 11 * float(fd) == pytest.approx(float(PROB.wasserstein_gradient(theta[0])[i]), rel=1e-6)


def test_particle_minimum_is_attained_and_local():
    n = 9
    best = PROB.particle_optimum(n)
    assert float(PROB.loss(best)) == pytest.approx(PROB.particle_minimum(n), rel=1e-12)
    assert float(PROB.wasserstein_gradient(best).abs().max()) < 1e-12
    g = torch.Generator().manual_seed(3)
    for _ in range(20):  # any perturbation raises the loss
        assert float(PROB.loss(best + 0.05 * torch.randn(n, generator=g, dtype=torch.float64))) > PROB.particle_minimum(n)


def test_particle_minimum_matches_scipy():
    from scipy.optimize import minimize
    n = 5
    rng = np.random.default_rng(0)
    f = lambda x: float(PROB.loss(torch.tensor(x)))  # noqa: E731
    best = min(minimize(f, rng.uniform(0, math.pi, n), method="Nelder-Mead",
                        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000}).fun for _ in range(3))
    assert best == pytest.approx(PROB.particle_minimum(n), rel=1e-4)


def test_iid_expected_loss_and_global_minimum():
    g = torch.Generator().manual_seed(4)
    draws = PROB.sample((4000, 10), generator=g)
    assert float(PROB.loss(draws).mean()) == pytest.approx(PROB.iid_expected_loss(10), rel=0.05)
    assert PROB.minimum == 0.0
    assert float(PROB.loss(PROB.particle_optimum(4000))) < 1e-7  # -> 0 = min over all measures


def test_displacement_convex_along_monotone_interpolation():
    g = torch.Generator().manual_seed(5)
    a = torch.sort(math.pi * torch.rand(30, generator=g, dtype=torch.float64)).values
    b = torch.sort(math.pi * torch.rand(30, generator=g, dtype=torch.float64)).values
    ts = torch.linspace(0, 1, 201, dtype=torch.float64)
    vals = PROB.loss((1 - ts[:, None]) * a + ts[:, None] * b)
    second = vals[2:] - 2 * vals[1:-1] + vals[:-2]
    assert float(second.min()) >= -1e-14
    # a non-monotone pairing (not a displacement interpolation) can bend down: the check can fail
    c = torch.flip(b, [0])
    vals = PROB.loss((1 - ts[:, None]) * a + ts[:, None] * c)
    assert float((vals[2:] - 2 * vals[1:-1] + vals[:-2]).min()) < -1e-8


def test_pgd_reaches_particle_minimum_and_batches():
    g = torch.Generator().manual_seed(6)
    theta0 = math.pi * torch.rand(3, 16, generator=g, dtype=torch.float64)
    res = dc.particle_gradient_descent(PROB, theta0, 0.5, 200, record_every=0)
    np.testing.assert_allclose(res.losses[-1].numpy(), PROB.particle_minimum(16), rtol=1e-8)
    assert len(res.losses) == 2
    single = dc.particle_gradient_descent(PROB, theta0[1], 0.5, 200)
    assert float(single.losses[-1]) == pytest.approx(float(res.losses[-1][1]), rel=1e-12)


@pytest.mark.parametrize("kwargs, word", [({"step": 0.0}, "step"), ({"steps": -1}, "steps"),
                                          ({"record_every": 1.5}, "record_every")])
def test_bad_arguments(kwargs, word):
    args = {"step": 0.5, "steps": 3, "record_every": 1} | kwargs
    with pytest.raises(ValueError, match=word):
        dc.particle_gradient_descent(PROB, torch.zeros(4, dtype=torch.float64), **args)


def test_bad_interval():
    with pytest.raises(ValueError, match="interval"):
        dc.PlantedSignNetwork(1.0, 4.0)
