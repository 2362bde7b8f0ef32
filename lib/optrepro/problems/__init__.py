"""Test problems.

* :mod:`optrepro.problems.suite` -- the learning-problem suite for optimizer comparisons: :func:`get_problem` by name
  (``logistic``, ``softmax``, ``mlp`` from :mod:`.classification` on scikit-learn's bundled data and MNIST-1D;
  ``char_lm``, a tiny transformer on synthetic text, :mod:`.char_lm`), each a :class:`Problem` with data, a seeded
  model, a loss closure for :func:`optrepro.train.fit` and metrics.

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
from .suite import PROBLEMS, Problem, batch_indices, get_problem

__all__ = [
    "PROBLEMS",
    "Problem",
    "batch_indices",
    "get_problem",
    "LinearLossSequence",
    "OnlineRunResult",
    "PeriodicLinearLosses",
    "StochasticLinearLosses",
    "record_steps",
    "run_online",
]
