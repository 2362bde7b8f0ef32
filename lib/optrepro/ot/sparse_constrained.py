r"""Sparsity-constrained optimal transport (Liu, Puigcerver, Blondel; ICLR 2023; arXiv:2209.15466).

For histograms :math:`a \in \Delta_n`, :math:`b \in \Delta_m`, cost :math:`C \in \mathbb R^{n\times m}`,
regularization :math:`\gamma > 0` and a cardinality :math:`k`, the primal problem is the (non-convex)

.. math::  \min_{T \ge 0,\ T1 = a,\ T^\top 1 = b}\ \langle T, C\rangle + \sum_{j=1}^m \Omega_k(t_j),\qquad
           \Omega_k(t) = \tfrac\gamma2\lVert t\rVert_2^2 + \iota[\lVert t\rVert_0 \le k],

so every column :math:`t_j` of the plan (every target) has at most :math:`k` nonzeros. Its **semi-dual** is a
concave, unconstrained problem in the row potential :math:`\alpha \in \mathbb R^n`:

.. math::  S_k(\alpha) = \langle \alpha, a\rangle - \sum_{j=1}^m \max_{\Omega_k}(\alpha - c_j;\ b_j),\qquad
           \max_{\Omega_k}(s; \beta) = \max_{y \in \beta\Delta_n,\ \lVert y\rVert_0 \le k}\ \langle y, s\rangle
           - \tfrac\gamma2\lVert y\rVert^2 .

The maximizer is the **top-k sparse projection** of :math:`s/\gamma` onto the scaled simplex
:math:`\beta\Delta_n` (Kyrillidis et al. 2013): keep the :math:`k` largest entries, project them onto
:math:`\beta\Delta_k`, zero the rest (:func:`sparse_simplex_projection`). By Danskin's theorem
:math:`\nabla S_k(\alpha) = a - \sum_j y_j(\alpha)`, and the plan is recovered column by column,
:math:`t_j = y_j(\alpha^\star)` (:func:`plan_from_alpha`). :func:`sparse_constrained_ot` maximizes :math:`S_k` with
L-BFGS (scipy's L-BFGS-B on the dual vector; values and gradients in torch on any device).

Limit cases (the paper's method section): with :math:`k = 1`,
:math:`\max_{\Omega_1}(s;\beta) = \beta\max_i s_i - \gamma\beta^2/2`, so
:math:`\max_\alpha S_1 = \mathrm{OT}(a, b) + \tfrac\gamma2\lVert b\rVert^2` (unregularized OT shifted by a constant);
with :math:`k \ge n` (or :math:`k` at least the column support of the quadratically regularized plan),
:math:`S_k` is the semi-dual of **quadratically regularized OT** (Blondel, Seguy, Rolet 2018), which POT solves as
``ot.smooth.smooth_ot_semi_dual(a, b, C, reg=gamma, reg_type="l2")``. :math:`\max_{\Omega_k}` grows with
:math:`k`, so the optimal value :math:`\max_\alpha S_k` is non-increasing in :math:`k` between those two ends.

Argument names follow POT (``a``, ``b``, ``C``, ``gamma`` for POT's ``reg``, ``k`` for POT's ``max_nz``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import torch
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from optrepro.checks import check_int, check_positive

__all__ = [
    "SparseOTResult",
    "column_nnz",
    "max_omega",
    "plan_from_alpha",
    "primal_objective",
    "quadratic_ot",
    "semi_dual",
    "simplex_projection",
    "sparse_constrained_ot",
    "sparse_simplex_projection",
]


def simplex_projection(x: torch.Tensor, mass: torch.Tensor | float = 1.0, dim: int = 0) -> torch.Tensor:
    r"""Euclidean projection of each slice of ``x`` along ``dim`` onto :math:`\{y \ge 0,\ \sum y = \text{mass}\}`.

    Sort-based (Held, Wolfe, Crowder 1974): :math:`y = \max(x - \theta, 0)` with
    :math:`\theta = (\sum_{i \le \rho} u_i - \text{mass})/\rho`, :math:`u` sorted decreasingly and :math:`\rho` the
    largest index with :math:`u_\rho > (\sum_{i\le\rho} u_i - \text{mass})/\rho`. ``mass`` broadcasts against ``x``
    with ``dim`` removed (one mass per slice).
    """
    x = x.movedim(dim, -1)
    mass = torch.as_tensor(mass, dtype=x.dtype, device=x.device)
    if bool((mass <= 0).any()):
        raise ValueError(f"invalid mass {mass.min().item()!r}: expected every mass > 0")
    mass = mass.expand(x.shape[:-1]).unsqueeze(-1)
    u, _ = torch.sort(x, dim=-1, descending=True)
    css = torch.cumsum(u, dim=-1) - mass
    idx = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
    rho = (u - css / idx > 0).sum(dim=-1, keepdim=True)          # >= 1 always
    theta = css.gather(-1, rho - 1) / rho.to(x.dtype)
    return torch.clamp(x - theta, min=0).movedim(-1, dim)


def sparse_simplex_projection(x: torch.Tensor, k: int, mass: torch.Tensor | float = 1.0, dim: int = 0) -> torch.Tensor:
    r"""Projection onto :math:`\{y \ge 0,\ \sum y = \text{mass},\ \lVert y\rVert_0 \le k\}` along ``dim``.

    Top-k then project (Kyrillidis, Becker, Cevher, Koch 2013, "Sparse projections onto the simplex"): the optimal
    support is the :math:`k` largest entries; those are projected onto the simplex, the others set to zero.
    """
    k = check_int("k", k, 1)
    x = x.movedim(dim, -1)
    if k >= x.shape[-1]:
        return simplex_projection(x, mass, dim=-1).movedim(-1, dim)
    vals, idx = torch.topk(x, k, dim=-1)
    y = torch.zeros_like(x).scatter(-1, idx, simplex_projection(vals, mass, dim=-1))
    return y.movedim(-1, dim)


def _check_problem(a: torch.Tensor, b: torch.Tensor, C: torch.Tensor) -> None:
    if C.dim() != 2:
        raise ValueError(f"invalid cost shape {tuple(C.shape)}: expected (n, m)")
    n, m = C.shape
    if a.shape != (n,) or b.shape != (m,):
        raise ValueError(f"invalid marginal shapes {tuple(a.shape)}, {tuple(b.shape)}: expected ({n},) and ({m},)")
    if bool((a < 0).any()) or bool((b <= 0).any()):
        raise ValueError("invalid marginals: expected a >= 0 and b > 0 entrywise")


def max_omega(S: torch.Tensor, b: torch.Tensor, gamma: float, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Column-wise :math:`\max_{\Omega_k}(s_j; b_j)` of ``S`` (n, m) and its maximizers :math:`Y` (n, m).

    :math:`y_j` = top-k projection of :math:`s_j/\gamma` onto :math:`b_j\Delta_n`;
    value :math:`\langle y_j, s_j\rangle - \tfrac\gamma2\lVert y_j\rVert^2`.
    """
    Y = sparse_simplex_projection(S / gamma, k, mass=b, dim=0)
    return (Y * S).sum(0) - 0.5 * gamma * (Y * Y).sum(0), Y


def semi_dual(alpha: torch.Tensor, a: torch.Tensor, b: torch.Tensor, C: torch.Tensor, gamma: float,
              k: int) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`S_k(\alpha) = \langle\alpha, a\rangle - \sum_j \max_{\Omega_k}(\alpha - c_j; b_j)` and its gradient
    :math:`a - Y1` (concave; maximize it)."""
    vals, Y = max_omega(alpha[:, None] - C, b, gamma, k)
    return alpha @ a - vals.sum(), a - Y.sum(1)


def plan_from_alpha(alpha: torch.Tensor, b: torch.Tensor, C: torch.Tensor, gamma: float, k: int) -> torch.Tensor:
    """The plan :math:`T` whose column :math:`j` is the maximizer of :math:`\\max_{\\Omega_k}(\\alpha - c_j; b_j)`:
    at most ``k`` nonzeros per column, column sums exactly ``b``."""
    return max_omega(alpha[:, None] - C, b, gamma, k)[1]


def primal_objective(T: torch.Tensor, C: torch.Tensor, gamma: float) -> torch.Tensor:
    r""":math:`\langle T, C\rangle + \tfrac\gamma2\lVert T\rVert_F^2` (the cardinality term: 0 for a feasible plan)."""
    return (T * C).sum() + 0.5 * gamma * (T * T).sum()


def column_nnz(T: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Number of entries ``> threshold`` in each column of ``T``."""
    return (T > threshold).sum(0)


@dataclass
class SparseOTResult:
    plan: torch.Tensor                 # (n, m), at most k nonzeros per column
    alpha: torch.Tensor                # (n,) optimal row potential
    value: float                       # max_alpha S_k(alpha)
    iterations: int                    # L-BFGS iterations
    evaluations: int                   # semi-dual value-and-gradient evaluations (line searches included)
    values: list[float] = field(default_factory=list)  # S_k after each L-BFGS iteration
    seconds: float = 0.0
    row_error: float = 0.0             # ||T 1 - a||_1 (columns are exact by construction)
    converged: bool = False


def sparse_constrained_ot(a: torch.Tensor, b: torch.Tensor, C: torch.Tensor, gamma: float, k: int,
                          max_iter: int = 1000, tol: float = 1e-10, ftol: float = 1e-15,
                          history: int = 20, restarts: int = 10) -> SparseOTResult:
    r"""Maximize the semi-dual :math:`S_k` with L-BFGS (scipy L-BFGS-B, no bounds) from :math:`\alpha = 0`.

    Values and gradients are computed in torch on ``C``'s device and dtype; only the :math:`n`-vector crosses to
    NumPy. ``tol`` is L-BFGS-B's ``gtol`` (max-abs gradient, i.e. row-marginal error) and ``ftol`` its
    relative-decrease stop. The semi-dual is non-smooth where top-k sets tie (always at :math:`k = 1`), where
    L-BFGS-B's line search can fail; the run is then restarted from its last point with a fresh memory, up to
    ``restarts`` times, while it still gains. ``max_iter`` counts the iterations of all runs together.
    ``k >= n`` gives quadratically regularized OT.
    """
    _check_problem(a, b, C)
    gamma = check_positive("gamma", gamma)
    k = check_int("k", k, 1)
    max_iter = check_int("max_iter", max_iter, 1)
    tol = check_positive("tol", tol)
    ftol = check_positive("ftol", ftol)
    restarts = check_int("restarts", restarts, 0)
    a, b = a.to(C), b.to(C)

    def fun(x: np.ndarray):
        alpha = torch.as_tensor(x, dtype=C.dtype, device=C.device)
        val, grad = semi_dual(alpha, a, b, C, gamma, k)
        return -float(val), -grad.double().cpu().numpy()

    values: list[float] = []
    start = time.perf_counter()
    x, iterations, evaluations = np.zeros(C.shape[0]), 0, 0
    for _ in range(restarts + 1):   # a line search that fails at a kink ends a run; a fresh memory often goes on
        with threadpool_limits(1, user_api="blas"):   # L-BFGS-B's BLAS calls are tiny; extra threads cost 5x
            res = scipy.optimize.minimize(fun, x, jac=True, method="L-BFGS-B",
                                          callback=lambda intermediate_result: values.append(-intermediate_result.fun),
                                          options={"maxiter": max_iter - iterations, "gtol": tol, "ftol": ftol,
                                                   "maxcor": history, "maxls": 50})
        gain = -res.fun - (values[-res.nit - 1] if len(values) > res.nit else -fun(x)[0])
        x, iterations, evaluations = res.x, iterations + int(res.nit), evaluations + int(res.nfev)
        if np.abs(res.jac).max() <= tol or iterations >= max_iter or gain <= ftol * abs(res.fun):
            break
    seconds = time.perf_counter() - start
    alpha = torch.as_tensor(res.x, dtype=C.dtype, device=C.device)
    T = plan_from_alpha(alpha, b, C, gamma, k)
    return SparseOTResult(plan=T, alpha=alpha, value=-float(res.fun), iterations=iterations, evaluations=evaluations,
                          values=values, seconds=seconds, row_error=float((T.sum(1) - a).abs().sum()),
                          converged=bool(np.abs(res.jac).max() <= tol))


def quadratic_ot(a: torch.Tensor, b: torch.Tensor, C: torch.Tensor, gamma: float, **kwargs) -> SparseOTResult:
    r"""Quadratically regularized OT, :math:`\min_{T\in U(a,b)} \langle T, C\rangle + \tfrac\gamma2\lVert T\rVert^2`
    (Blondel, Seguy, Rolet 2018), by the same semi-dual with no cardinality constraint (:math:`k = n`)."""
    return sparse_constrained_ot(a, b, C, gamma, k=C.shape[0], **kwargs)
