r"""Entropic OT between point clouds as a differentiable loss, and the debiased Sinkhorn divergence.

For weighted point clouds :math:`\alpha = \sum_i a_i\delta_{x_i}`, :math:`\beta = \sum_j b_j\delta_{y_j}` and the
cost :math:`C_{ij} = \|x_i - y_j\|^2`,

.. math::  \mathrm{OT}_\varepsilon(\alpha, \beta) = \min_{P\in\Pi(a, b)} \langle P, C\rangle
           + \varepsilon\,\mathrm{KL}(P \,\|\, a b^\top),

and the Sinkhorn divergence (Genevay, Peyré, Cuturi 2018; Feydy et al., AISTATS 2019)

.. math::  S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
           - \tfrac12\mathrm{OT}_\varepsilon(\alpha, \alpha) - \tfrac12\mathrm{OT}_\varepsilon(\beta, \beta) \;\ge 0,

which is zero iff :math:`\alpha = \beta` and interpolates between :math:`W_2^2` (:math:`\varepsilon\to0`) and an
MMD (:math:`\varepsilon\to\infty`). The optimal plan :math:`P^\star` comes from the log-domain
:func:`optrepro.ot.sinkhorn.sinkhorn` without a graph; the value is then re-evaluated as
:math:`\langle P^\star, C(x, y)\rangle + \varepsilon\,\mathrm{KL}(P^\star\|ab^\top)`, whose gradient in the points is
exact at the optimum by the envelope theorem (:math:`\partial\,\mathrm{OT}_\varepsilon/\partial C = P^\star`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_int, check_positive
from .sinkhorn import sinkhorn

__all__ = ["entropic_ot", "sinkhorn_divergence", "squared_distances"]


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """C_ij = |x_i - y_j|^2 for rows x (n, d), y (m, d), clamped at 0 against round-off."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"invalid point clouds of shapes {tuple(x.shape)} and {tuple(y.shape)}: expected (n, d), (m, d)")
    return ((x * x).sum(1)[:, None] + (y * y).sum(1)[None] - 2 * x @ y.T).clamp_min(0)


def _uniform(n: int, like: Tensor) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)


def entropic_ot(x: Tensor, y: Tensor, eps: float, a: Tensor | None = None, b: Tensor | None = None, *,
                max_iter: int = 200, tol: float = 1e-6) -> Tensor:
    """OT_eps between the clouds (uniform weights unless given), differentiable in x and y (envelope theorem)."""
    eps = check_positive("eps", eps)
    max_iter = check_int("max_iter", max_iter, 1)
    C = squared_distances(x, y)
    a = _uniform(x.shape[0], C) if a is None else a.to(C)
    b = _uniform(y.shape[0], C) if b is None else b.to(C)
    with torch.no_grad():
        P = sinkhorn(a, b, C.detach(), eps, max_iter=max_iter, tol=tol, record=False).plan
        ratio = P / (a[:, None] * b[None])
        entropy_term = (P * torch.log(torch.where(P > 0, ratio, torch.ones_like(ratio)))).sum()
    return (P * C).sum() + eps * entropy_term


def sinkhorn_divergence(x: Tensor, y: Tensor, eps: float, a: Tensor | None = None, b: Tensor | None = None, *,
                        max_iter: int = 200, tol: float = 1e-6) -> Tensor:
    """The debiased Sinkhorn divergence S_eps between the clouds (module docstring), differentiable in x and y."""
    kw = dict(max_iter=max_iter, tol=tol)
    return (entropic_ot(x, y, eps, a, b, **kw) - 0.5 * entropic_ot(x, x, eps, a, a, **kw)
            - 0.5 * entropic_ot(y, y, eps, b, b, **kw))
