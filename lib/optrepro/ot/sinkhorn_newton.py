r"""Sinkhorn-Newton-Sparse (SNS): Tang, Shavlovsky, Rahmanian, Tardini, Thekumparampil, Xiao, Ying,
"Accelerating Sinkhorn Algorithm with Sparse Newton Iterations", ICLR 2024, arXiv:2401.12253 (Algorithm 1).

Sinkhorn is block-coordinate ascent on the concave dual (see :mod:`optrepro.ot.sinkhorn`)

.. math::  L(z) = \langle f, a\rangle + \langle g, b\rangle - \varepsilon\sum_{ij} P_{ij},\qquad
           P_{ij} = e^{(f_i + g_j - C_{ij})/\varepsilon},\quad z = (f, g),

whose gradient and (negated) Hessian are

.. math::  \nabla L = \begin{pmatrix} a - P1 \\ b - P^\top 1\end{pmatrix},\qquad
           -\nabla^2 L = \frac1\varepsilon\begin{pmatrix}\mathrm{diag}(P1) & P\\ P^\top & \mathrm{diag}(P^\top 1)\end{pmatrix}.

SNS runs ``n1`` Sinkhorn iterations (stage 1), then Newton steps (stage 2):

1. :math:`M = \mathrm{Sparsify}(-\nabla^2 L, \rho)`: the diagonal blocks are kept and, of the coupling block
   :math:`P`, only its :math:`\lceil\rho nm\rceil` largest entries (the paper's insight: after the warm-up the plan,
   hence the Hessian, is close to sparse);
2. :math:`\Delta z` solves :math:`M\,\Delta z = \nabla L` by conjugate gradient (:mod:`optrepro.solvers.cg`,
   Jacobi-preconditioned here; the system is symmetric positive semi-definite, and the right side is orthogonal to
   its null direction :math:`(1, -1)` when :math:`\sum a = \sum b`);
3. :math:`z \leftarrow z + \alpha\Delta z` with :math:`\alpha` from a backtracking (Armijo) line search on :math:`L`
   (:mod:`optrepro.solvers.line_search`).

Each Newton step costs :math:`O(nm)` (one plan, one top-k, line-search evaluations) plus CG matrix-vector products
with :math:`O(n + m + \rho nm)` work, the same order as a Sinkhorn iteration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from optrepro.checks import check_int, check_nonnegative, check_positive
from optrepro.solvers import backtracking, conjugate_gradient, jacobi
from optrepro.timing import clock as get_clock

from .sinkhorn import _f_update, _g_update, _lse_over_columns, dual_objective, plan_from_potentials

__all__ = ["SNSResult", "sinkhorn_newton_sparse", "sparsify_plan", "sparse_newton_direction",
           "dense_newton_direction", "dual_gradient"]


@dataclass
class SNSResult:
    plan: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    errors: list[float] = field(default_factory=list)    # marginal error after each iteration (Sinkhorn, then Newton)
    seconds: list[float] = field(default_factory=list)   # time (on ``clock``) at the end of each iteration
    iterations: int = 0                                   # n1 Sinkhorn iterations + Newton steps, as the paper counts
    newton_steps: int = 0
    cg_iterations: list[int] = field(default_factory=list)   # CG iterations of each Newton step
    cg_residuals: list[float] = field(default_factory=list)  # CG's final relative residual ||r|| / ||rhs|| per step
    step_sizes: list[float] = field(default_factory=list)    # line-search step of each Newton step
    kept_fraction: list[float] = field(default_factory=list)  # nonzeros kept of the coupling block / (n m)
    dropped_mass: list[float] = field(default_factory=list)   # plan mass left out of the sparsified block / total
    cost: torch.Tensor | None = None
    converged: bool = False                               # the marginal error reached ``tol``


def dual_gradient(f, g, a, b, C, eps):
    """:math:`\\nabla L = (a - P1, b - P^\\top 1)` and the plan :math:`P`."""
    P = plan_from_potentials(f, g, C, eps)
    return torch.cat([a - P.sum(1), b - P.sum(0)]), P


def sparsify_plan(P: torch.Tensor, rho: float):
    """The ``ceil(rho * n * m)`` largest entries of ``P``: (values, rows, cols)."""
    if not (0 < rho <= 1):
        raise ValueError(f"invalid rho {rho!r}: expected a fraction 0 < rho <= 1")
    n, m = P.shape
    k = min(n * m, max(1, math.ceil(rho * n * m)))
    vals, idx = torch.topk(P.reshape(-1), k, sorted=False)
    return vals, idx // m, idx % m


def _sparse_hessian_matvec(vals, rows, cols, r, c, eps):
    n = r.shape[0]

    def mv(v):
        vf, vg = v[:n], v[n:]
        top = r * vf + torch.zeros_like(vf).index_add_(0, rows, vals * vg[cols])
        bot = c * vg + torch.zeros_like(vg).index_add_(0, cols, vals * vf[rows])
        return torch.cat([top, bot]) / eps
    return mv


def sparse_newton_direction(P, grad, eps, rho, *, cg_tol=1e-10, cg_max_iter=500, precondition=True, info=None):
    """Solve ``Sparsify(-Hessian, rho) dz = grad`` by CG; returns (dz, cg iterations, kept fraction, dropped mass).

    ``info`` (a dict) receives CG's final relative ``residual``.
    """
    n, m = P.shape
    vals, rows, cols = sparsify_plan(P, rho)
    r, c = P.sum(1), P.sum(0)
    mv = _sparse_hessian_matvec(vals, rows, cols, r, c, eps)
    cg = conjugate_gradient(mv, grad, precond=jacobi(torch.cat([r, c]) / eps) if precondition else None,
                            tol=cg_tol, max_iter=cg_max_iter)
    if info is not None:
        info["residual"] = cg.residual
    total = float(P.sum())
    return cg.x, cg.iterations, vals.numel() / (n * m), (total - float(vals.sum())) / total


def dense_newton_direction(P, grad, eps):
    """The exact Newton direction: minimum-norm solution of ``-Hessian dz = grad`` (the dense reference)."""
    r, c = P.sum(1), P.sum(0)
    H = torch.cat([torch.cat([torch.diag(r), P], 1), torch.cat([P.T, torch.diag(c)], 1)]) / eps
    return torch.linalg.pinv(H, hermitian=True) @ grad


def _line_search(f, g, df, dg, a, b, C, eps, L0, slope):
    """Backtracking (Armijo) on the concave dual, i.e. on ``-L``; a rounding allowance lets steps at machine
    precision through."""
    slack = 64 * torch.finfo(C.dtype).eps * (abs(L0) + eps * float(a.sum()))

    def neg_L(alpha):
        return -float(dual_objective(f + alpha * df, g + alpha * dg, a, b, C, eps))
    return backtracking(neg_L, -L0, -slope, c1=1e-4, shrink=0.5, max_steps=30, slack=slack)


def sinkhorn_newton_sparse(a: torch.Tensor, b: torch.Tensor, C: torch.Tensor, eps: float, *, rho: float = 0.05,
                           n1: int = 20, max_newton: int = 100, tol: float = 1e-10, cg_tol: float = 1e-10,
                           cg_max_iter: int = 500, precondition: bool = True, clock: str = "wall") -> SNSResult:
    """Algorithm 1 of Tang et al. (2024) on one problem (``C`` of shape (n, m)); stops at marginal error <= ``tol``.

    ``rho`` is the fraction of the coupling block kept in the sparsified Hessian, ``n1`` the Sinkhorn warm-up.
    ``clock`` (``wall`` or ``cpu``, see :mod:`optrepro.timing`) times ``seconds``.
    """
    eps = check_positive("eps", eps)
    n1 = check_int("n1", n1, 0)
    max_newton = check_int("max_newton", max_newton, 0)
    tol = check_nonnegative("tol", tol)
    if C.dim() != 2:
        raise ValueError(f"invalid cost shape {tuple(C.shape)}: expected (n, m) (one problem)")
    if not (0 < rho <= 1):
        raise ValueError(f"invalid rho {rho!r}: expected a fraction 0 < rho <= 1")
    now = get_clock(clock)
    a, b = a.to(C), b.to(C)
    n = a.shape[0]
    t0 = now()
    res = SNSResult(plan=C, f=a, g=b)
    # stage 1: Sinkhorn warm-up (timed per iteration, so that both stages share one clock)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    loga, logb, C_over_eps = torch.log(a), torch.log(b), C / eps
    for _ in range(n1):  # the iterations of `sinkhorn`, each followed by its marginal error (no plan formed)
        f = _f_update(g, loga, C_over_eps, eps)
        g = _g_update(f, logb, C_over_eps, eps)
        err = float((torch.exp(f / eps + _lse_over_columns(g / eps, C_over_eps)) - a).abs().sum())
        res.errors.append(err)
        res.seconds.append(now() - t0)
        if err <= tol:
            break
    # stage 2: sparse Newton
    grad, P = dual_gradient(f, g, a, b, C, eps)
    err = float(grad.abs().sum())
    while err > tol and res.newton_steps < max_newton:
        cg_info: dict = {}
        dz, it, kept, dropped = sparse_newton_direction(P, grad, eps, rho, cg_tol=cg_tol, cg_max_iter=cg_max_iter,
                                                        precondition=precondition, info=cg_info)
        L0 = float((f * a).sum() + (g * b).sum() - eps * P.sum())
        alpha = _line_search(f, g, dz[:n], dz[n:], a, b, C, eps, L0, float(torch.dot(grad, dz)))
        f, g = f + alpha * dz[:n], g + alpha * dz[n:]
        grad, P = dual_gradient(f, g, a, b, C, eps)
        err = float(grad.abs().sum())
        res.newton_steps += 1
        res.cg_iterations.append(it)
        res.cg_residuals.append(cg_info["residual"])
        res.step_sizes.append(alpha)
        res.kept_fraction.append(kept)
        res.dropped_mass.append(dropped)
        res.errors.append(err)
        res.seconds.append(now() - t0)
    res.plan, res.f, res.g = P, f, g
    res.iterations = len(res.errors)
    res.converged = res.errors[-1] <= tol if res.errors else False
    res.cost = (P * C).sum()
    return res
