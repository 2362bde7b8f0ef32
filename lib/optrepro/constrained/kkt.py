r"""Lagrangian, KKT residual and the exact augmented Lagrangian of an equality-constrained problem.

For :math:`\min_x f(x)` subject to :math:`c(x) = 0` (:math:`c:\mathbb R^d\to\mathbb R^m`, Jacobian :math:`G(x)`),

.. math::  \mathcal L(x, \lambda) = f(x) + \lambda^\top c(x),\qquad
           \mathrm{KKT}(x,\lambda) = \bigl\lVert(\nabla_x\mathcal L(x,\lambda),\ c(x))\bigr\rVert_2 .

The Newton (SQP) system at :math:`(x, \lambda)` with Hessian :math:`H = \nabla^2_{xx}\mathcal L` is

.. math::  K\begin{pmatrix}\Delta x\\ \Delta\lambda\end{pmatrix} = -\begin{pmatrix}\nabla_x\mathcal L\\ c\end{pmatrix},
           \qquad K = \begin{pmatrix} H + \delta I & G^\top\\ G & 0\end{pmatrix}

(:math:`\delta \ge 0` a regularization used only when the direction is not a descent direction).

The **exact augmented Lagrangian** merit function (Lucidi 1990; Na, Anitescu & Kolar 2022; Hong, Na, Mahoney &
Kolar, ICML 2023, arXiv:2305.18379) is

.. math::  \mathcal L_{\mu,\nu}(x,\lambda) = \mathcal L(x,\lambda) + \frac\mu2\lVert c(x)\rVert^2
           + \frac\nu2\lVert\nabla_x\mathcal L(x,\lambda)\rVert^2,

with gradient :math:`\nabla_x\mathcal L_{\mu,\nu} = \nabla_x\mathcal L + \mu G^\top c + \nu H\nabla_x\mathcal L`,
:math:`\nabla_\lambda\mathcal L_{\mu,\nu} = c + \nu G\nabla_x\mathcal L`. For :math:`\mu` large enough its
stationary points near a KKT point are that KKT point, so a line search on it globalizes SQP in the primal-dual pair.
Derivatives come from ``torch.func`` (float64 recommended).
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import torch

from optrepro.checks import check_nonnegative

__all__ = ["Derivatives", "lagrangian", "derivatives", "kkt_residual", "kkt_system", "merit", "merit_gradient",
           "least_squares_multipliers"]

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Derivatives:
    f: torch.Tensor        # f(x)
    c: torch.Tensor        # c(x), shape (m,)
    grad_f: torch.Tensor   # (d,)
    jac: torch.Tensor      # G(x), (m, d)
    grad_L: torch.Tensor   # grad_x L = grad_f + G^T lambda
    hess_L: torch.Tensor   # Hessian of the Lagrangian in x, (d, d)


def lagrangian(f: Fn, c: Fn, x: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """L(x, lambda) = f(x) + lambda^T c(x)."""
    return f(x) + lam @ c(x)


def derivatives(f: Fn, c: Fn, x: torch.Tensor, lam: torch.Tensor) -> Derivatives:
    """Values, first and second derivatives needed by one SQP iteration."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        fx, cx = f(x), c(x)
        gf = torch.autograd.grad(fx, x, create_graph=True)[0]
        G = _jacobian(cx, x, create_graph=True)
        gL = gf + G.T @ lam
        H = _jacobian(gL, x, create_graph=False)
    return Derivatives(fx.detach(), cx.detach(), gf.detach(), G.detach(), gL.detach(), H.detach())


def _jacobian(y: torch.Tensor, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """Rows dy_i/dx by reverse mode (one batched backward pass)."""
    zeros = torch.zeros(y.numel(), x.numel(), dtype=x.dtype, device=x.device)
    if not y.requires_grad:
        return zeros
    if y.numel() <= 64:   # a few backward passes beat vmap's overhead
        rows = [torch.autograd.grad(yi, x, retain_graph=True, create_graph=create_graph, allow_unused=True)[0]
                for yi in y]
        return torch.stack([zeros[0] if r is None else r for r in rows])
    eye = torch.eye(y.numel(), dtype=y.dtype, device=y.device)
    (J,) = torch.autograd.grad(y, x, eye, is_grads_batched=True, retain_graph=True, create_graph=create_graph,
                               allow_unused=True)
    return zeros if J is None else J


def kkt_residual(d: Derivatives) -> float:
    """||(grad_x L, c)||_2."""
    return float(torch.sqrt(d.grad_L.square().sum() + d.c.square().sum()))


def kkt_system(d: Derivatives, delta: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The Newton-KKT matrix K (with H + delta I) and right side -(grad_x L, c)."""
    delta = check_nonnegative("delta", delta)
    n, m = d.grad_L.numel(), d.c.numel()
    K = d.hess_L.new_zeros(n + m, n + m)
    K[:n, :n] = d.hess_L + delta * torch.eye(n, dtype=d.hess_L.dtype, device=d.hess_L.device)
    K[:n, n:] = d.jac.T
    K[n:, :n] = d.jac
    return K, -torch.cat([d.grad_L, d.c])


def merit(f: Fn, c: Fn, x: torch.Tensor, lam: torch.Tensor, mu: float, nu: float) -> torch.Tensor:
    """The exact augmented Lagrangian L_{mu,nu}(x, lambda)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        L = lagrangian(f, c, x, lam)
        (gL,) = torch.autograd.grad(L, x)
    cx = c(x).detach()
    return L.detach() + 0.5 * mu * cx @ cx + 0.5 * nu * gL @ gL


def merit_gradient(d: Derivatives, mu: float, nu: float) -> torch.Tensor:
    """(grad_x, grad_lambda) of L_{mu,nu}, stacked, from the derivatives at (x, lambda)."""
    gx = d.grad_L + mu * d.jac.T @ d.c + nu * d.hess_L @ d.grad_L
    gl = d.c + nu * d.jac @ d.grad_L
    return torch.cat([gx, gl])


def least_squares_multipliers(f: Fn, c: Fn, x: torch.Tensor) -> torch.Tensor:
    """lambda minimizing ||grad f(x) + G(x)^T lambda||: the usual starting multipliers."""
    d = derivatives(f, c, x, torch.zeros_like(c(x)))
    return torch.linalg.lstsq(d.jac.T, -d.grad_f.unsqueeze(1)).solution.squeeze(1)
