r"""Log-domain Sinkhorn for entropic optimal transport (Cuturi, NeurIPS 2013; Peyre & Cuturi 2019, Sec. 4.4).

The entropic OT problem between histograms :math:`a \in \Delta_n`, :math:`b \in \Delta_m` with cost :math:`C`,

.. math::  \min_{P \ge 0,\ P1 = a,\ P^\top 1 = b} \langle P, C\rangle - \varepsilon H(P), \qquad
           H(P) = -\sum_{ij} P_{ij}(\log P_{ij} - 1),

has the concave dual (the "Lyapunov potential" of Tang et al. 2024, up to the scaling by :math:`\varepsilon`)

.. math::  L(f, g) = \langle f, a\rangle + \langle g, b\rangle - \varepsilon\sum_{ij} e^{(f_i + g_j - C_{ij})/\varepsilon},
           \qquad P_{ij} = e^{(f_i + g_j - C_{ij})/\varepsilon}.

Sinkhorn is exact block-coordinate ascent on :math:`L`, written with log-sum-exp so that small :math:`\varepsilon`
does not underflow:

.. math::  f_i \leftarrow \varepsilon\log a_i - \varepsilon\,\mathrm{LSE}_j\big((g_j - C_{ij})/\varepsilon\big),\qquad
           g_j \leftarrow \varepsilon\log b_j - \varepsilon\,\mathrm{LSE}_i\big((f_i - C_{ij})/\varepsilon\big).

After the :math:`g` update the column marginal is exact; the marginal error
:math:`\lVert P1 - a\rVert_1 + \lVert P^\top 1 - b\rVert_1` is recorded after every iteration (one iteration = one
:math:`f` and one :math:`g` update, as POT counts). Every function takes a leading batch dimension (or none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from optrepro.checks import check_int, check_nonnegative, check_positive
from optrepro.timing import clock as get_clock

__all__ = ["SinkhornResult", "sinkhorn", "plan_from_potentials", "marginal_error", "dual_objective"]


@dataclass
class SinkhornResult:
    plan: torch.Tensor               # (..., n, m)
    f: torch.Tensor                  # (..., n) dual potentials
    g: torch.Tensor                  # (..., m)
    errors: list[float] = field(default_factory=list)   # marginal error after each iteration (max over the batch)
    iterations: int = 0
    cost: torch.Tensor | None = None  # <P, C> per problem
    seconds: float = 0.0              # time of the iterations on ``clock`` (the plan and cost excluded)
    converged: bool = False           # every problem reached ``tol`` (False for tol = 0)
    checked_at: list[int] = field(default_factory=list)        # iteration of each entry of ``errors``
    checked_seconds: list[float] = field(default_factory=list)  # time on ``clock`` of each entry of ``errors``


def _batched(a: torch.Tensor, b: torch.Tensor, C: torch.Tensor):
    if C.dim() not in (2, 3):
        raise ValueError(f"invalid cost shape {tuple(C.shape)}: expected (n, m) or (batch, n, m)")
    single = C.dim() == 2
    if single:
        C = C.unsqueeze(0)
    B, n, m = C.shape
    a = a.to(C).expand(B, n) if a.dim() == 1 else a.to(C)
    b = b.to(C).expand(B, m) if b.dim() == 1 else b.to(C)
    if a.shape != (B, n) or b.shape != (B, m):
        raise ValueError(f"invalid marginal shapes {tuple(a.shape)}, {tuple(b.shape)}: expected ({B}, {n}) and ({B}, {m})")
    return a, b, C, single


def plan_from_potentials(f: torch.Tensor, g: torch.Tensor, C: torch.Tensor, eps: float) -> torch.Tensor:
    """:math:`P_{ij} = \\exp((f_i + g_j - C_{ij})/\\varepsilon)` (any leading batch dimensions)."""
    return torch.exp((f.unsqueeze(-1) + g.unsqueeze(-2) - C) / eps)


def marginal_error(P: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:math:`\\lVert P1 - a\\rVert_1 + \\lVert P^\\top 1 - b\\rVert_1` per problem."""
    return (P.sum(-1) - a).abs().sum(-1) + (P.sum(-2) - b).abs().sum(-1)


def dual_objective(f: torch.Tensor, g: torch.Tensor, a: torch.Tensor, b: torch.Tensor, C: torch.Tensor,
                   eps: float) -> torch.Tensor:
    """The concave dual :math:`L(f, g)` of the module docstring, per problem."""
    return (f * a).sum(-1) + (g * b).sum(-1) - eps * plan_from_potentials(f, g, C, eps).sum((-2, -1))


CHUNK_ELEMENTS = 2 ** 20  # rows per block so that one block's temporary is ~8 MB in float64 (stays in cache)


def _row_blocks(K: torch.Tensor):
    """Row ranges of K (..., n, m) whose blocks hold about CHUNK_ELEMENTS entries (all rows when K is small)."""
    n = K.shape[-2]
    rows = max(1, CHUNK_ELEMENTS // max(1, K[..., :1, :].numel()))
    return [(i, min(i + rows, n)) for i in range(0, n, rows)]


def _lse_over_columns(v: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{LSE}_j(v_j - K_{ij})` for every row i, one row block at a time."""
    return torch.cat([torch.logsumexp(v.unsqueeze(-2) - K[..., i:j, :], dim=-1) for i, j in _row_blocks(K)], dim=-1)


def _lse_over_rows(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{LSE}_i(u_i - K_{ij})` for every column j, accumulated over row blocks."""
    total = None
    for i, j in _row_blocks(K):
        part = torch.logsumexp(u[..., i:j].unsqueeze(-1) - K[..., i:j, :], dim=-2)
        total = part if total is None else torch.logaddexp(total, part)
    return total


def _f_update(g, loga, C_over_eps, eps):
    return eps * (loga - _lse_over_columns(g / eps, C_over_eps))


def _g_update(f, logb, C_over_eps, eps):
    return eps * (logb - _lse_over_rows(f / eps, C_over_eps))


def sinkhorn(a: torch.Tensor, b: torch.Tensor, C: torch.Tensor, eps: float, *, max_iter: int = 1000,
             tol: float = 0.0, f0: torch.Tensor | None = None, g0: torch.Tensor | None = None,
             record: bool = True, max_time: float | None = None, clock: str = "wall") -> SinkhornResult:
    """Log-domain Sinkhorn; stops after ``max_iter`` iterations or once every problem's marginal error is <= ``tol``.

    ``C`` is (n, m) or (batch, n, m); ``a``, ``b`` are (n,), (m,) or batched. Works on the device and dtype of
    ``C`` (use float64 for small ``eps``). ``f0``, ``g0`` warm-start the potentials (default zero).
    With ``record=False`` the stopping test runs every 10 iterations (as POT's) instead of after each one.
    ``max_time`` (seconds) also stops the run at the first stopping test after that much time (a time budget:
    ``converged`` then tells whether ``tol`` was reached). ``clock`` (``wall`` or ``cpu``, see
    :mod:`optrepro.timing`) measures ``seconds``, ``checked_seconds`` and ``max_time``.
    """
    eps = check_positive("eps", eps)
    max_iter = check_int("max_iter", max_iter, 0)
    tol = check_nonnegative("tol", tol)
    now = get_clock(clock)
    a, b, C, single = _batched(a, b, C)
    loga, logb = torch.log(a), torch.log(b)
    C_over_eps = C / eps  # once; each update then forms the exponent and its log-sum-exp block by block of rows
    f = torch.zeros_like(a) if f0 is None else f0.to(C).expand_as(a).clone()
    g = torch.zeros_like(b) if g0 is None else g0.to(C).expand_as(b).clone()
    errors: list[float] = []
    checked_at: list[int] = []
    checked_seconds: list[float] = []
    it = 0
    converged = False
    t0 = now()
    while it < max_iter:
        f = _f_update(g, loga, C_over_eps, eps)
        g = _g_update(f, logb, C_over_eps, eps)
        it += 1
        if record or ((tol > 0 or max_time is not None) and (it % 10 == 0 or it == max_iter)):
            # the column marginal is exact after the g update: only the row marginal needs P
            row = torch.exp(f / eps + _lse_over_columns(g / eps, C_over_eps))
            err = float((row - a).abs().sum(-1).max())
            errors.append(err)
            checked_at.append(it)
            checked_seconds.append(now() - t0)
            if err <= tol:
                converged = tol > 0
                break
            if max_time is not None and checked_seconds[-1] >= max_time:
                break
    seconds = now() - t0
    P = plan_from_potentials(f, g, C, eps)
    cost = (P * C).sum((-2, -1))
    if single:
        P, f, g, cost = P[0], f[0], g[0], cost[0]
    return SinkhornResult(plan=P, f=f, g=g, errors=errors, iterations=it, cost=cost, seconds=seconds,
                          converged=converged, checked_at=checked_at, checked_seconds=checked_seconds)
