"""Tests of optrepro.models.proximal_network: LPN monotonicity, the Laplace denoisers, the losses (ICNN: test_icnn)."""
import math

import numpy as np
import optrepro.models.proximal_network as pn
import optrepro.problems.laplace_denoising as ld
import pytest
import torch


def test_lpn_is_gradient_and_monotone():
    torch.manual_seed(0)
    lpn = pn.LPN(2, hidden=10, layers=2, beta=2.0, alpha=0.1).double()
    y = torch.randn(300, 2, dtype=torch.float64)
    f = lpn(y).detach()
    h = 1e-6  # central finite differences of the potential
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = h
        with torch.no_grad():
            fd = (lpn.potential(y + e) - lpn.potential(y - e)) / (2 * h)
        assert torch.allclose(f[:, i], fd, atol=1e-6)
    y2 = torch.randn(300, 2, dtype=torch.float64)
    inner = ((f - lpn(y2).detach()) * (y - y2)).sum(1)
    assert inner.min() >= 0.1 * ((y - y2) ** 2).sum(1).min() - 1e-12  # alpha-strongly monotone


def test_lpn_1d_nondecreasing_on_grid():
    torch.manual_seed(3)
    lpn = pn.LPN(1, hidden=16, layers=3, beta=10.0).double()
    f = lpn(torch.linspace(-5, 5, 5001, dtype=torch.float64)[:, None])[:, 0]
    assert pn.max_decrease(f) == 0.0
    assert pn.max_decrease([0.0, 1.0, 0.5, 2.0]) == pytest.approx(0.5)


def test_soft_threshold_closed_form():
    y = np.array([-3.0, -1.0, -0.4, 0.0, 0.7, 2.5])
    assert np.allclose(ld.soft_threshold(y, 1.0), [-2.0, 0.0, 0.0, 0.0, 0.0, 1.5])
    t = ld.soft_threshold(torch.tensor(y), 0.5)
    assert torch.allclose(t, torch.tensor([-2.5, -0.5, 0.0, 0.0, 0.2, 2.0], dtype=torch.float64))
    # it is the prox of t|x|: minimizes 0.5 (x - y)^2 + t |x| over a fine grid
    xs = np.linspace(-5, 5, 200001)
    for yi in y:
        obj = 0.5 * (xs - yi) ** 2 + 0.8 * np.abs(xs)
        assert ld.soft_threshold(yi, 0.8) == pytest.approx(xs[np.argmin(obj)], abs=1e-4)
    with pytest.raises(ValueError, match="threshold"):
        ld.soft_threshold(y, -1.0)


def test_mmse_denoiser_against_monte_carlo():
    b, sigma = 1.0, 1.0
    ys = np.array([-2.5, -1.0, 0.0, 0.3, 1.0, 2.0, 4.0])
    q = ld.laplace_mmse_denoiser(ys, b, sigma)
    rng = np.random.default_rng(0)
    x = rng.laplace(0.0, b, 1_000_000)
    for yi, qi in zip(ys, q):  # self-normalized importance sampling from the prior
        w = np.exp(-((yi - x) ** 2) / (2 * sigma**2))
        assert qi == pytest.approx((w * x).sum() / w.sum(), abs=6e-3)
    assert q[2] == pytest.approx(0.0, abs=1e-12)  # odd function
    assert np.allclose(ld.laplace_mmse_denoiser(-ys, b, sigma), -q)
    # large |y|: E[x|y] -> y - sigma^2 / b (the Gaussian posterior on the far side of the kink)
    assert ld.laplace_mmse_denoiser(12.0, b, sigma) == pytest.approx(11.0, abs=1e-6)
    # more nodes change nothing: the quadrature has converged
    assert np.allclose(ld.laplace_mmse_denoiser(ys, b, sigma, nodes=400), q, atol=1e-10)
    with pytest.raises(ValueError, match="sigma"):
        ld.laplace_mmse_denoiser(ys, b, 0.0)


def test_proximal_matching_loss_values():
    pred = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    target = torch.zeros(3, 2)
    expected = np.mean([0.0, 1 - math.exp(-1 / 0.25), 1 - math.exp(-25 / 0.25)])
    assert pn.proximal_matching_loss(pred, target, 0.5).item() == pytest.approx(expected, rel=1e-6)
    # small residuals: 1 - exp(-r^2/g^2) ~ r^2 / g^2 (the MSE regime of a large gamma)
    r = torch.tensor([1e-3, -2e-3], dtype=torch.float64)
    assert pn.proximal_matching_loss(r, torch.zeros(2, dtype=torch.float64), 1.0).item() == pytest.approx(2.5e-6, rel=1e-3)
    with pytest.raises(ValueError, match="gamma"):
        pn.proximal_matching_loss(pred, target, 0.0)
    with pytest.raises(ValueError, match="shapes"):
        pn.proximal_matching_loss(pred, target[:2], 1.0)


def test_gamma_schedule_and_train_errors():
    g = [pn.gamma_schedule(t, 5, 0.5, 0.05) for t in range(5)]
    assert g[0] == pytest.approx(0.5) and g[-1] == pytest.approx(0.05)
    assert np.allclose(np.diff(np.log(g)), np.log(0.1) / 4)
    with pytest.raises(ValueError, match="step"):
        pn.gamma_schedule(5, 5, 0.5, 0.05)
    with pytest.raises(ValueError, match="loss"):
        pn.train_denoiser(pn.LPN(), lambda n, g: ld.sample_laplace(n, 1.0, g), 1.0, loss="huber")


def test_sample_laplace_moments():
    x = ld.sample_laplace(400_000, 2.0, torch.Generator().manual_seed(0))[:, 0]
    assert x.mean().item() == pytest.approx(0.0, abs=0.02)
    assert x.abs().mean().item() == pytest.approx(2.0, rel=0.01)  # E|x| = b
    assert x.var().item() == pytest.approx(8.0, rel=0.02)  # 2 b^2


def test_mse_training_learns_posterior_mean_direction():
    """A short MSE training moves the LPN towards the MMSE denoiser (it shrinks, unlike the identity at init)."""
    torch.manual_seed(0)
    lpn = pn.LPN(1, hidden=8, layers=2).double()
    gen = torch.Generator().manual_seed(0)
    res = pn.train_denoiser(lpn, lambda n, g: ld.sample_laplace(n, 1.0, g), 1.0, loss="mse", steps=100,
                            batch=256, lr=3e-2, generator=gen)
    grid = np.linspace(-2, 2, 41)
    f = lpn(torch.tensor(grid)[:, None])[:, 0].detach().numpy()
    assert np.abs(f - ld.laplace_mmse_denoiser(grid, 1.0, 1.0)).mean() < 0.1
    assert res.loss[-1] < res.loss[0]
