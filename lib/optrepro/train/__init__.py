"""Training: one loop and one tuner for the "train a model with optimizer X vs Y" notebooks.

* :func:`fit` -- steps of a ``torch.optim`` optimizer or a functional update on a loss closure; a :class:`Trace` of
  the loss, metrics and CUDA-synchronized wall time every ``every`` steps; stops at a step budget, a target, a callback.
* :func:`tune` / :func:`compare` -- a step-size grid on tuning seeds >= 100, the same trials for every method; the
  best and the median score.

A loop that *is* a paper's algorithm (alternating primal-dual steps, an inner solver) stays in its family module.
"""
from .fit import STOPS, Trace, fit
from .tune import TuneResult, compare, tune

__all__ = ["STOPS", "Trace", "TuneResult", "compare", "fit", "tune"]
