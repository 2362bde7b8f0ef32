"""Test problems.

* :mod:`optrepro.problems.online_linear` -- the online linear counterexamples of Reddi, Kale
  & Kumar (2018) on [-1, 1], and :func:`run_online` to run any optimizer on them.
* :mod:`optrepro.problems.equality_constrained` -- Hock-Schittkowski problems with equality constraints and their
  published optima, constrained logistic regression, Poisson (PDE-constrained) control.
* :mod:`optrepro.problems.hydrothermal` -- a synthetic multi-stage hydrothermal dispatch with stage LPs.

The last two are imported by their module path.
"""

from .online_linear import (
    LinearLossSequence,
    OnlineRunResult,
    PeriodicLinearLosses,
    StochasticLinearLosses,
    record_steps,
    run_online,
)

__all__ = [
    "LinearLossSequence",
    "OnlineRunResult",
    "PeriodicLinearLosses",
    "StochasticLinearLosses",
    "record_steps",
    "run_online",
]
