r"""Preconditioned conjugate gradient for :math:`Ax = b`, :math:`A` symmetric positive (semi-)definite, given only
through a product ``matvec(v) = A v``.

With a preconditioner :math:`M \approx A` (``precond(r)`` applies :math:`M^{-1}`), from :math:`x_0`:
:math:`r_0 = b - Ax_0`, :math:`z_0 = M^{-1}r_0`, :math:`p_0 = z_0`, then for :math:`k = 0, 1, \dots`

.. math::  \alpha_k = \frac{r_k^\top z_k}{p_k^\top A p_k},\quad x_{k+1} = x_k + \alpha_k p_k,\quad
           r_{k+1} = r_k - \alpha_k A p_k,\quad z_{k+1} = M^{-1}r_{k+1},\quad
           p_{k+1} = z_{k+1} + \frac{r_{k+1}^\top z_{k+1}}{r_k^\top z_k}\,p_k,

until :math:`\lVert r_k\rVert \le \mathrm{tol}\,\lVert b\rVert`. Without a preconditioner :math:`z = r` (plain CG).
The unknown may have any shape (inner products run over all its entries). A direction with
:math:`p^\top Ap \le 0` stops the iteration (``A`` singular along it, or not PSD).

Reference: J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Algorithm 5.3 (preconditioned CG);
M. R. Hestenes, E. Stiefel, "Methods of conjugate gradients for solving linear systems", J. Res. NBS 49 (1952).
"""
from __future__ import annotations

from typing import NamedTuple
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["CGResult", "conjugate_gradient", "jacobi"]


class CGResult(NamedTuple):
    x: Tensor
    iterations: int
    residual: float      # final ||r|| / ||b|| (0 when b = 0)
    converged: bool      # ||r|| <= tol ||b||


def _dot(u: Tensor, v: Tensor) -> Tensor:
    return torch.dot(u.reshape(-1), v.reshape(-1))


def jacobi(diag: Tensor) -> Callable[[Tensor], Tensor]:
    """The Jacobi preconditioner :math:`M^{-1}r = r / \\mathrm{diag}(A)` (entries with a zero diagonal left as is)."""
    dinv = torch.where(diag > 0, 1.0 / diag, torch.ones_like(diag))
    return lambda r: dinv * r


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, *, x0: Tensor | None = None,
                       precond: Callable[[Tensor], Tensor] | None = None, tol: float = 1e-10,
                       max_iter: int = 500) -> CGResult:
    """Solve ``A x = b`` by (preconditioned) CG (module docstring), from ``x0`` (default 0).

    Parameters
    ----------
    matvec : the product ``v -> A v``, ``A`` symmetric PSD, ``v`` of the shape of ``b``.
    precond : ``r -> M^{-1} r`` for a symmetric positive definite ``M`` (e.g. :func:`jacobi`), or None.
    tol, max_iter : stop when ``||r|| <= tol * ||b||`` or after ``max_iter`` iterations.

    Returns
    -------
    CGResult(x, iterations, residual, converged)
    """
    if x0 is None:
        x, r = torch.zeros_like(b), b.clone()
    else:
        x = x0.clone()
        r = b - matvec(x)
    z = r if precond is None else precond(r)
    p = z.clone()
    rz = _dot(r, z)
    b_norm = float(torch.linalg.vector_norm(b))
    stop = tol * b_norm
    it = 0
    while it < max_iter and float(torch.linalg.vector_norm(r)) > stop:
        Ap = matvec(p)
        pAp = _dot(p, Ap)
        if pAp <= 0:
            break
        alpha = rz / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        z = r if precond is None else precond(r)
        rz_new = _dot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
        it += 1
    r_norm = float(torch.linalg.vector_norm(r))
    return CGResult(x, it, r_norm / b_norm if b_norm > 0 else 0.0, r_norm <= stop)
