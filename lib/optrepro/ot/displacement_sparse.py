r"""Displacement sparsity for neural OT maps (Chen, Xie, Zhang, "Displacement-Sparse Neural Optimal Transport", 2025,
arXiv:2502.01889).

For a map :math:`T` the displacement is :math:`\Delta(x) = T(x) - x`. The paper adds :math:`\lambda\,R(\Delta(x))` to
the map's objective in the minimax W2 dual (:func:`optrepro.ot.neural_dual.train_neural_dual`) with

* the **smoothed** :math:`\ell_0` penalty (:func:`smoothed_l0`), their proposal,

  .. math::  R_{\ell_0,\sigma}(\Delta) = \sum_{k=1}^d \Big(1 - e^{-\Delta_k^2 / (2\sigma^2)}\Big),

  which tends to the count :math:`\#\{k: \Delta_k \ne 0\}` as :math:`\sigma\to0`, is about
  :math:`\Delta_k^2/(2\sigma^2)` for :math:`|\Delta_k|\ll\sigma` and saturates at 1 for :math:`|\Delta_k|\gg\sigma`
  (a large displacement costs a constant, so it is not shrunk);
* the :math:`\ell_1` penalty :math:`R_{\ell_1}(\Delta) = \sum_k|\Delta_k|` (:func:`l1`), the elastic cost of
  Cuturi, Klein, Ablin (ICML 2023) that the paper compares against; it shrinks every coordinate by the same force.

The sparsity of a map is measured as in the paper's code: the mean over samples of the number of coordinates with
:math:`|\Delta_k(x)| > \tau` (:func:`active_count`). The **adaptive control** of :math:`\lambda`
(:class:`SparsityController`) targets a dimensionality :math:`\ell`: while the measured count exceeds :math:`\ell`,
:math:`\lambda \leftarrow 1.5\lambda` (the paper's phase 2); once a feasible and an infeasible :math:`\lambda` are
known, it bisects between them geometrically, looking for the smallest feasible :math:`\lambda` (the paper's aim:
the most feasible map among those meeting the constraint, which it searches by simulated annealing; the bisection is
our deterministic stand-in for that search).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..checks import check_choice, check_positive

__all__ = ["PENALTIES", "SparsityController", "active_count", "activity_threshold", "l1", "penalty", "smoothed_l0"]

PENALTIES = ("none", "l1", "smoothed_l0")


def _rows(delta: Tensor) -> Tensor:
    if delta.ndim != 2:
        raise ValueError(f"invalid displacement of shape {tuple(delta.shape)}: expected (n, d)")
    return delta


def smoothed_l0(delta: Tensor, sigma: float) -> Tensor:
    """Per-row smoothed l0 penalty sum_k 1 - exp(-delta_k^2 / (2 sigma^2)), shape (n,)."""
    sigma = check_positive("sigma", sigma)
    return (1 - torch.exp(-_rows(delta) ** 2 / (2 * sigma ** 2))).sum(1)


def l1(delta: Tensor) -> Tensor:
    """Per-row l1 penalty sum_k |delta_k|, shape (n,)."""
    return _rows(delta).abs().sum(1)


def penalty(name: str, sigma: float = 1.0) -> Callable[[Tensor], Tensor] | None:
    """The penalty called ``name`` (one of PENALTIES) as a function of the displacement rows; None for "none"."""
    name = check_choice("penalty", name, PENALTIES)
    if name == "none":
        return None
    if name == "l1":
        return l1
    sigma = check_positive("sigma", sigma)
    return lambda delta: smoothed_l0(delta, sigma)


def active_count(delta: Tensor, tau: float) -> float:
    """Mean over rows of the number of coordinates with |delta_k| > tau (the paper's "avg_dim")."""
    tau = check_positive("tau", tau)
    return float((_rows(delta).abs() > tau).sum(1).double().mean())


def activity_threshold(delta: Tensor, fraction: float) -> float:
    """tau = fraction x the largest per-coordinate mean |delta_k| (a threshold relative to the main displacement)."""
    fraction = check_positive("fraction", fraction)
    return fraction * float(_rows(delta).abs().mean(0).max())


class SparsityController:
    r"""Adaptive penalty weight aiming at ``target`` active coordinates (module docstring).

    ``update(measured)`` takes the active count measured at the current ``lam`` and returns the next ``lam``:
    multiply by ``grow`` while infeasible (count > target) and no feasible weight is known, divide by ``grow``
    while feasible and no infeasible weight is known, else the geometric midpoint of the bracket. ``best`` is the
    smallest weight found feasible (None until one is).
    """

    def __init__(self, lam0: float, target: float, grow: float = 1.5):
        self.lam = check_positive("lam0", lam0)
        self.target = check_positive("target", target)
        self.grow = check_positive("grow", grow)
        if self.grow <= 1:
            raise ValueError(f"invalid grow {grow}: expected a factor > 1")
        self.lo: float | None = None  # largest weight seen infeasible
        self.hi: float | None = None  # smallest weight seen feasible
        self.history: list[tuple[float, float]] = []  # (lam, measured count)

    @property
    def best(self) -> float | None:
        return self.hi

    def update(self, measured: float) -> float:
        self.history.append((self.lam, float(measured)))
        if measured > self.target:
            self.lo = self.lam if self.lo is None else max(self.lo, self.lam)
            if self.hi is not None and self.hi <= self.lo:  # a noisy response: forget the stale feasible weight
                self.hi = None
        else:
            self.hi = self.lam if self.hi is None else min(self.hi, self.lam)
            if self.lo is not None and self.lo >= self.hi:
                self.lo = None
        if self.hi is None:
            self.lam *= self.grow
        elif self.lo is None:
            self.lam /= self.grow
        else:
            self.lam = math.sqrt(self.lo * self.hi)
        return self.lam
