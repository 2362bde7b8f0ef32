r"""Backtracking (Armijo) line search.

For a step :math:`d` from :math:`x` with directional derivative :math:`s = \nabla\phi(x)^\top d < 0`, return the
first :math:`\alpha \in \{\alpha_0, \rho\alpha_0, \rho^2\alpha_0, \dots\}` with the sufficient decrease

.. math::  \phi(x + \alpha d) \le \phi(x) + c_1\,\alpha\, s + \text{slack}

(``slack`` >= 0 lets through steps whose decrease is below the rounding error of :math:`\phi`). After
``max_steps`` failed tests it returns :math:`\rho^{\,\text{max\_steps}}\alpha_0`. To maximise a concave
:math:`L`, apply it to :math:`\phi = -L` (and :math:`s = -\nabla L^\top d`).

Reference: J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Algorithm 3.1 (backtracking line search).
"""
from __future__ import annotations

from collections.abc import Callable

__all__ = ["backtracking"]


def backtracking(phi: Callable[[float], float], phi0: float, slope: float, *, c1: float = 1e-4,
                 shrink: float = 0.5, alpha0: float = 1.0, max_steps: int = 30, slack: float = 0.0) -> float:
    """The Armijo step (module docstring) of ``phi(alpha) = f(x + alpha d)``, ``phi0 = f(x)``, ``slope = f'(x) d``."""
    alpha = alpha0
    for _ in range(max_steps):
        if phi(alpha) <= phi0 + c1 * alpha * slope + slack:
            return alpha
        alpha *= shrink
    return alpha
