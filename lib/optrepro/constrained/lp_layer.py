r"""A linear-programming layer whose gradient is the LP's dual solution (Lagrangian duality).

Reference: A. Rosemberg, A. Street, D. M. Valladão, P. Van Hentenryck. "Efficiently Training Deep-Learning Parametric
Policies using Lagrangian Duality" (TS-DDR), arXiv:2405.14973, 2024.

The layer solves, for a right-hand side parameter :math:`(b, h)`,

.. math::
    V(b, h) = \min_x\ c^\top x \quad\text{s.t.}\quad A_{eq}x = b,\ \ A_{ub}x \le h,\ \ \ell \le x \le u,

with HiGHS (``scipy.optimize.linprog(method="highs")``). :math:`V` is convex and piecewise linear in :math:`(b, h)`,
and by LP duality (the envelope theorem for the Lagrangian
:math:`L = c^\top x + \lambda^\top(b - A_{eq}x) + \mu^\top(h - A_{ub}x)`) its gradient, wherever it exists, is the
optimal dual solution:

.. math::
    \nabla_b V = \lambda^\star, \qquad \nabla_h V = \mu^\star \ (\le 0).

HiGHS returns exactly these sensitivities (``res.eqlin.marginals``, ``res.ineqlin.marginals``), so the backward
pass of :class:`LPValue` costs nothing beyond the forward solve: no implicit differentiation of the KKT system.
This is the closed-form gradient TS-DDR uses to train a policy whose output enters an LP's right-hand side.

A batch of :math:`B` problems with the same matrices and different right-hand sides is solved as **one**
block-diagonal LP (the blocks decouple, so the optimum and the duals are those of each block); this amortizes the
solver's per-call overhead, which dominates for tiny LPs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import linprog

from optrepro.checks import check_int

__all__ = ["LPSolution", "LPValue", "LinearProgram", "lp_value", "solve_lp"]


@dataclass
class LPSolution:
    x: np.ndarray           # (B, n) primal solutions
    value: np.ndarray       # (B,) optimal values
    eq_duals: np.ndarray    # (B, m_eq) dV/db
    ub_duals: np.ndarray    # (B, m_ub) dV/dh (<= 0)


@dataclass
class LinearProgram:
    """``min c^T x  s.t.  A_eq x = b, A_ub x <= h, lower <= x <= upper``; the right-hand sides are the parameters.

    ``lower``/``upper`` may hold ``-inf``/``inf``. Matrices may be dense arrays or scipy sparse matrices.
    """
    c: np.ndarray
    A_eq: object = None
    A_ub: object = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    _stacked: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.c = np.asarray(self.c, dtype=float).reshape(-1)
        n = self.c.size
        if n == 0:
            raise ValueError("invalid c of size 0: expected at least one variable")
        self.A_eq = sp.csr_matrix((0, n)) if self.A_eq is None else sp.csr_matrix(self.A_eq, dtype=float)
        self.A_ub = sp.csr_matrix((0, n)) if self.A_ub is None else sp.csr_matrix(self.A_ub, dtype=float)
        for name, A in (("A_eq", self.A_eq), ("A_ub", self.A_ub)):
            if A.shape[1] != n:
                raise ValueError(f"invalid {name} with {A.shape[1]} columns: expected {n} (the size of c)")
        self.lower = np.zeros(n) if self.lower is None else np.broadcast_to(np.asarray(self.lower, float), (n,)).copy()
        self.upper = np.full(n, np.inf) if self.upper is None else np.broadcast_to(np.asarray(self.upper, float), (n,)).copy()

    @property
    def n(self) -> int:
        return self.c.size

    @property
    def m_eq(self) -> int:
        return self.A_eq.shape[0]

    @property
    def m_ub(self) -> int:
        return self.A_ub.shape[0]

    def stacked(self, batch: int):
        """The block-diagonal LP of ``batch`` copies (cached): c, A_eq, A_ub, bounds."""
        if batch not in self._stacked:
            blocks = lambda A: sp.block_diag([A] * batch, format="csr") if A.shape[0] else None
            bounds = np.stack([np.tile(self.lower, batch), np.tile(self.upper, batch)], axis=1)
            self._stacked[batch] = (np.tile(self.c, batch), blocks(self.A_eq), blocks(self.A_ub), bounds)
        return self._stacked[batch]


def _as_batch(name: str, b, m: int) -> np.ndarray:
    b = np.asarray(b, dtype=float)
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != m:
        raise ValueError(f"invalid {name} of shape {tuple(b.shape)}: expected ({m},) or (batch, {m})")
    return b


def solve_lp(lp: LinearProgram, b_eq=None, b_ub=None) -> LPSolution:
    """Solve the batch of LPs with right-hand sides ``b_eq`` (B, m_eq) and ``b_ub`` (B, m_ub) by HiGHS (one call).

    Raises ``RuntimeError`` when HiGHS does not report an optimum (infeasible or unbounded instance).
    """
    b_eq = _as_batch("b_eq", np.zeros((1, 0)) if b_eq is None else b_eq, lp.m_eq)
    b_ub = _as_batch("b_ub", np.zeros((b_eq.shape[0], 0)) if b_ub is None else b_ub, lp.m_ub)
    if b_eq.shape[0] != b_ub.shape[0]:
        raise ValueError(f"invalid batch sizes {b_eq.shape[0]} (b_eq) and {b_ub.shape[0]} (b_ub): expected equal")
    B = check_int("batch", b_eq.shape[0], 1)
    c, A_eq, A_ub, bounds = lp.stacked(B)
    res = linprog(c, A_ub=A_ub, b_ub=b_ub.reshape(-1) if lp.m_ub else None, A_eq=A_eq,
                  b_eq=b_eq.reshape(-1) if lp.m_eq else None, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"HiGHS did not solve the LP (status {res.status}: {res.message})")
    x = res.x.reshape(B, lp.n)
    eq = res.eqlin.marginals.reshape(B, lp.m_eq) if lp.m_eq else np.zeros((B, 0))
    ub = res.ineqlin.marginals.reshape(B, lp.m_ub) if lp.m_ub else np.zeros((B, 0))
    return LPSolution(x=x, value=x @ lp.c, eq_duals=eq, ub_duals=ub)


class LPValue(torch.autograd.Function):
    """``V(b_eq, b_ub)`` for a batch of right-hand sides; backward: ``grad * duals`` (see the module docstring).

    Returns the values (B,) and, as a non-differentiable second output, the primal solutions (B, n).
    """

    @staticmethod
    def forward(ctx, b_eq, b_ub, lp):
        sol = solve_lp(lp, b_eq.detach().cpu().numpy(), b_ub.detach().cpu().numpy())
        kw = {"dtype": b_eq.dtype, "device": b_eq.device}
        ctx.save_for_backward(torch.as_tensor(sol.eq_duals, **kw), torch.as_tensor(sol.ub_duals, **kw))
        x = torch.as_tensor(sol.x, **kw)
        ctx.mark_non_differentiable(x)
        return torch.as_tensor(sol.value, **kw), x

    @staticmethod
    def backward(ctx, grad_value, grad_x):
        eq, ub = ctx.saved_tensors
        return grad_value[:, None] * eq, grad_value[:, None] * ub, None


def lp_value(lp: LinearProgram, b_eq: torch.Tensor, b_ub: torch.Tensor | None = None):
    """Differentiable optimal values ``V`` (B,) and primal solutions (B, n) of a batch of LPs (1-D input: B = 1)."""
    if b_eq is None:
        b_eq = torch.zeros(1 if b_ub is None else b_ub.reshape(-1, lp.m_ub).shape[0], 0, dtype=torch.float64)
    b_eq = b_eq.reshape(-1, lp.m_eq) if b_eq.dim() < 2 else b_eq
    if b_ub is None:
        if lp.m_ub:
            raise ValueError(f"missing b_ub: the LP has {lp.m_ub} inequality rows, expected b_ub of shape (batch, {lp.m_ub})")
        b_ub = b_eq.new_zeros(b_eq.shape[0], 0)
    return LPValue.apply(b_eq, b_ub.reshape(b_eq.shape[0], lp.m_ub), lp)
