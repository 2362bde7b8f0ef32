r"""Convergence rates fitted to a sequence of errors :math:`e_k > 0` (suboptimality, residual, distance).

* :func:`geometric_rate` -- the factor :math:`q` of a linear (geometric) rate :math:`e_k \approx c\,q^k`;
* :func:`power_law_exponent` -- the exponent :math:`p` of a sublinear rate :math:`e_k \approx c\,k^{p}`;
* :func:`decade_growth` -- a test that tells the two apart (iterations per decade of decrease).

The fits are ordinary least squares on :math:`\log e_k`, in float64; a window is chosen by slicing ``values`` and
passing the matching ``steps``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from optrepro.checks import check_int

__all__ = ["geometric_rate", "power_law_exponent", "decade_growth"]


def _as_1d(name: str, x) -> Tensor:
    x = x.detach() if isinstance(x, Tensor) else x
    t = torch.as_tensor(x, dtype=torch.float64).cpu()
    if t.dim() != 1:
        raise ValueError(f"invalid {name} of shape {tuple(t.shape)}: expected a 1-D sequence")
    return t


def _slope(x: Tensor, y: Tensor) -> float:
    """Least-squares slope of ``y`` against ``x``."""
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def _steps(values: Tensor, steps, first: int) -> Tensor:
    if steps is None:
        return torch.arange(first, first + values.numel(), dtype=torch.float64)
    steps = _as_1d("steps", steps)
    if steps.shape != values.shape:
        raise ValueError(f"invalid steps of length {steps.numel()}: expected one per value ({values.numel()})")
    return steps


def geometric_rate(values, steps=None, *, low: float = 0.0, high: float = math.inf) -> float:
    r"""Per-step factor :math:`q` of :math:`e_k \approx c\,q^k`: :math:`\exp` of the least-squares slope of
    :math:`\ln e_k` against :math:`k`.

    ``steps`` are the iterations :math:`k` of ``values`` (default 0, 1, ...). Only the values with
    ``low < e_k < high`` are fitted (the band between the transient and the numerical floor); NaN when fewer than
    3 qualify. :math:`q < 1` is linear convergence, :math:`-\ln q` the rate :math:`\rho` of
    :math:`e_k \approx c\,e^{-\rho k}`, :math:`\log_{10} q` the decades gained per step.
    """
    e = _as_1d("values", values)
    k = _steps(e, steps, 0)
    keep = (e > low) & (e < high)
    if int(keep.sum()) < 3:
        return float("nan")
    return math.exp(_slope(k[keep], torch.log(e[keep])))


def power_law_exponent(values, steps=None) -> float:
    r"""Exponent :math:`p` of :math:`e_k \approx c\,k^{p}`: the least-squares slope of :math:`\ln e_k` against
    :math:`\ln k` (``steps`` :math:`k > 0`, default 1, 2, ...). :math:`p = -1` for an :math:`O(1/k)` rate."""
    e = _as_1d("values", values)
    k = _steps(e, steps, 1)
    if e.numel() < 3:
        raise ValueError(f"invalid values of length {e.numel()}: expected at least 3 points to fit")
    return _slope(torch.log(k), torch.log(e))


def decade_growth(values, decades: int = 2) -> float:
    r"""How much slower the last of ``decades`` complete decades of decrease was than the one before it.

    With :math:`m_k = \min_{j \le k} e_j` (the running minimum, so oscillations do not count) and :math:`k_j` the
    first iteration with :math:`m_k \le e_0 10^{-j}`, the iterations spent on decade ``j`` are
    :math:`\Delta_j = k_j - k_{j-1}`. Returns :math:`\Delta_J / \Delta_{J-1}` for the last complete decade ``J``
    (with ``decades > 2`` the largest ratio over the last ``decades - 1`` pairs).

    A **linear** (geometric) rate :math:`e_k \approx c q^k` spends the same number of iterations on every decade:
    ratio about 1 (below 1 when the rate improves). A **sublinear** :math:`e_k \approx c k^{-p}` spends
    :math:`10^{1/p}` times more on each decade than on the one before: 10 for :math:`1/k`, 100 for
    :math:`1/\sqrt k`. A slope-only test (":math:`\log e_k` decreases") cannot tell the two apart; this one can.
    Returns NaN when the sequence covers fewer than ``decades`` complete decades (no evidence either way).
    """
    decades = check_int("decades", decades, 2)
    e = torch.as_tensor(list(values), dtype=torch.float64)
    if e.numel() < 3 or not torch.isfinite(e).all() or (e <= 0).any():
        return float("nan")
    running = torch.cummin(e, dim=0).values
    total = math.floor(math.log10(float(e[0] / running[-1])))
    if total < decades:
        return float("nan")
    hits = [0] + [int(torch.nonzero(running <= e[0] * 10.0 ** (-j))[0]) for j in range(1, total + 1)]
    steps = [hits[j] - hits[j - 1] for j in range(1, total + 1)]
    last = steps[-decades:]
    return max(b / max(a, 1) for a, b in zip(last[:-1], last[1:]))
