r"""The LP relaxation of the multi-dimensional knapsack, as a family of boxed LPs
(:class:`optrepro.constrained.dual_completion.BoxLP`): the linear experiment of Tanneau & Van Hentenryck,
"Dual Lagrangian Learning for Conic Optimization", NeurIPS 2024.

.. math::
    \max_x\ p^\top x \quad\text{s.t.}\quad Ax \le b,\ \ 0 \le x \le 1,

written as a minimization with :math:`c = -p`; the weights :math:`A` are fixed, the instances are :math:`(c, b)`.
"""
from __future__ import annotations

import torch

from optrepro.checks import check_int
from optrepro.constrained.dual_completion import BoxLP

__all__ = ["multi_knapsack", "sample_knapsack_instances"]


def multi_knapsack(m: int, n: int, generator: torch.Generator, dtype=torch.float64) -> BoxLP:
    """The LP relaxation structure of a multi-dimensional knapsack: weights ``A`` ~ U(0, 1) (m, n), ``0 <= x <= 1``."""
    m, n = check_int("m", m, 1), check_int("n", n, 1)
    A = torch.rand(m, n, generator=generator, dtype=torch.float64).to(dtype)
    return BoxLP(A, torch.zeros(n, dtype=dtype), torch.ones(n, dtype=dtype), m_eq=0)


def sample_knapsack_instances(lp: BoxLP, count: int, generator: torch.Generator, tightness=(0.2, 0.6),
                              correlation: float = 0.5):
    """``count`` instances ``(c, b)`` of the family: profits correlated with the weights, capacities a random fraction.

    Profit ``p_j = mean_i A_ij + correlation * U(0, 1)`` (``c = -p``), capacity ``b_i = t_i * sum_j A_ij`` with
    ``t_i ~ U(tightness)``. Returns ``c`` (count, n) and ``b`` (count, m) on ``lp``'s device.
    """
    count = check_int("count", count, 1)
    lo, hi = tightness
    if not 0 < lo <= hi < 1:
        raise ValueError(f"invalid tightness {tightness!r}: expected 0 < low <= high < 1")
    A = lp.A.detach().cpu().double()
    p = A.mean(0) + correlation * torch.rand(count, lp.n, generator=generator, dtype=torch.float64)
    t = lo + (hi - lo) * torch.rand(count, lp.m, generator=generator, dtype=torch.float64)
    b = t * A.sum(1)
    kw = {"dtype": lp.A.dtype, "device": lp.A.device}
    return (-p).to(**kw), b.to(**kw)
