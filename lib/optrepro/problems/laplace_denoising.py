r"""Denoising a 1-D Laplace signal in Gaussian noise, :math:`y = x + \sigma v`, :math:`x \sim \mathrm{Laplace}(0, b)`:
the test problem of learned proximal networks (Fang, Buchanan & Sulam, ICLR 2024, Sec. 5.1;
:mod:`optrepro.models.proximal_network`), with its samples and closed-form reference denoisers.

**The 1-D Laplace case** (the paper's Sec. 5.1). With :math:`p_x(x) = e^{-|x|/b}/(2b)` the MAP denoiser is
soft-thresholding at :math:`\sigma^2/b`, :math:`\mathrm{soft}(y; t) = \mathrm{sign}(y)\max(|y| - t, 0)`
(:func:`soft_threshold`); the MMSE denoiser :func:`laplace_mmse_denoiser` is computed by Gauss-Legendre
quadrature of :math:`\int x\,p_x(x)\,\varphi((y-x)/\sigma)\,dx / \int p_x(x)\,\varphi((y-x)/\sigma)\,dx`
split at the prior's kink :math:`x = 0`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from optrepro.checks import check_int, check_nonnegative, check_positive

__all__ = ["laplace_mmse_denoiser", "sample_laplace", "soft_threshold"]


def soft_threshold(y, threshold: float):
    r""":math:`\mathrm{sign}(y)\max(|y| - t, 0)`, the prox of :math:`t|\cdot|` (NumPy array or torch tensor)."""
    t = check_nonnegative("threshold", threshold)
    if isinstance(y, Tensor):
        return torch.sign(y) * torch.clamp(y.abs() - t, min=0)
    y = np.asarray(y, dtype=float)
    return np.sign(y) * np.maximum(np.abs(y) - t, 0.0)


def laplace_mmse_denoiser(y, b: float, sigma: float, nodes: int = 200, width: float = 12.0) -> np.ndarray:
    r"""Posterior mean :math:`\mathbb E[x \mid y]` for :math:`x \sim \mathrm{Laplace}(0, b)`, :math:`y = x + \sigma v`.

    Gauss-Legendre quadrature (``nodes`` per piece) over :math:`x \in [y - w\sigma, y + w\sigma]`
    (:math:`w` = ``width``; the Gaussian factor outside is below :math:`e^{-w^2/2}`), split at the kink
    :math:`x = 0` when it lies inside, so that each piece has a smooth integrand.
    """
    b, sigma = check_positive("b", b), check_positive("sigma", sigma)
    nodes = check_int("nodes", nodes, 2)
    width = check_positive("width", width)
    y = np.asarray(y, dtype=float)
    t, w = np.polynomial.legendre.leggauss(nodes)
    lo, hi = (y - width * sigma).reshape(-1, 1), (y + width * sigma).reshape(-1, 1)
    yy = y.reshape(-1, 1)
    num = np.zeros_like(yy)
    den = np.zeros_like(yy)
    # pieces [lo, min(hi, 0)] and [max(lo, 0), hi]; an empty piece has zero length and adds nothing
    for a, c in ((lo, np.minimum(hi, 0.0)), (np.maximum(lo, 0.0), hi)):
        half = np.maximum(c - a, 0.0) / 2
        x = (a + c) / 2 + half * t
        # log of p_x(x) phi((y - x)/sigma), shifted by the Gaussian's and prior's constants (they cancel)
        logk = -np.abs(x) / b - (yy - x) ** 2 / (2 * sigma**2)
        k = np.exp(logk + np.abs(yy) / b)  # |x| >= |y| - |y - x|: keeps the exponent bounded for large |y|
        num += (half * w * x * k).sum(1, keepdims=True)
        den += (half * w * k).sum(1, keepdims=True)
    return (num / den).reshape(y.shape)


def sample_laplace(n: int, b: float, generator: torch.Generator | None = None, dtype=torch.float64) -> Tensor:
    """``n`` draws of Laplace(0, ``b``) (inverse CDF of a uniform), as an ``(n, 1)`` tensor on the CPU."""
    n, b = check_int("n", n, 1), check_positive("b", b)
    u = torch.rand(n, 1, generator=generator, dtype=dtype) - 0.5
    return -b * torch.sign(u) * torch.log1p(-2 * u.abs())
