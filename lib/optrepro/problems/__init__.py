"""Test problems.

* :mod:`optrepro.problems.suite` -- the learning-problem suite for optimizer comparisons: :func:`get_problem` by name
  (``logistic``, ``softmax``, ``mlp`` from :mod:`.classification` on scikit-learn's bundled data and MNIST-1D;
  ``char_lm``, a tiny transformer on synthetic text, :mod:`.char_lm`), each a :class:`Problem` with data, a seeded
  model, a loss closure for :func:`optrepro.train.fit` and metrics.

* :mod:`optrepro.problems.online_linear` -- the online linear counterexamples of Reddi, Kale
  & Kumar (2018) on [-1, 1], and :func:`run_online` to run any optimizer on them.
* :mod:`optrepro.problems.equality_constrained` -- Hock-Schittkowski problems with equality constraints and their
  published optima, constrained logistic regression, Poisson (PDE-constrained) control.
* :mod:`optrepro.problems.hydrothermal` -- a synthetic multi-stage hydrothermal dispatch with stage LPs and its
  baselines (the TS-DDR policy trained on it: :mod:`optrepro.constrained.ts_ddr`).
* :mod:`optrepro.problems.hammerstein` -- a nonlinear first-order (Hammerstein) plant for control through
  surrogates, and its training sequences.
* :mod:`optrepro.problems.laplace_denoising` -- a 1-D Laplace signal in Gaussian noise: samples, the MAP
  (soft-threshold) and MMSE denoisers.
* :mod:`optrepro.problems.knapsack` -- the LP relaxation of the multi-dimensional knapsack as a family of boxed LPs.

The last five are imported by their module path.

Problems from learning theory, also imported by their module path:

* :mod:`optrepro.problems.matrix_sensing` -- low-rank matrix sensing by factorized gradient descent, symmetric
  :math:`XX^T` and asymmetric :math:`FG^T` (Xiong, Ding & Du, ICLR 2024).
* :mod:`optrepro.problems.ufm` -- the unconstrained feature model with a deep linear head (Dang et al., ICML 2023),
  its full-batch gradient-descent training, per-layer features and classifiers, and the closed-form minimiser for
  imbalanced (and balanced) classes.
* :mod:`optrepro.problems.collapse_perturbation` -- the unconstrained feature model with features tied to input
  features (Tirer, Huang & Niles-Weed, ICML 2023): exact minimiser, central-path flow, linear response.
* :mod:`optrepro.problems.supcon` -- the supervised contrastive loss in the unconstrained feature model with and
  without a final ReLU, and the batching (batch-binding) schemes of Kini et al. (ICLR 2024).
* :mod:`optrepro.problems.bures_wasserstein` -- the Bures-Wasserstein distance, and generative deep linear networks
  trained with the (smoothed) Bures-Wasserstein loss: critical points, gradient descent (Brechet et al., ICML 2023).
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
