r"""Step-size tuning with an equal budget for every method (GUIDE section 3; AlgoPerf, Dahl et al. 2023).

:func:`tune` runs ``score = run(step_size, seed)`` for every step size of a grid and every tuning seed (>= 100, apart
from the claim seeds 0-4), so each method gets ``len(grid) * len(seeds)`` trials. With :math:`s_{ij}` the score of
step size :math:`i` on seed :math:`j` (lower is better: a final loss, or steps / seconds to a target), a diverged
or missing trial scores :math:`+\infty` (it is never dropped), and

.. math::
    \bar s_i = \operatorname{median}_j s_{ij},\qquad i^\star = \arg\min_i \bar s_i,\qquad
    \text{best} = \bar s_{i^\star},\qquad \text{median} = \operatorname{median}_{i} \bar s_i ,

so ``best`` is the tuned method and ``median`` how much it depends on the tuning. :func:`compare` tunes several
methods on the same grid and seeds.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..checks import check_choice, check_positive

__all__ = ["TuneResult", "compare", "tune"]


@dataclass
class TuneResult:
    grid: np.ndarray          # (G,) step sizes
    seeds: tuple[int, ...]
    scores: np.ndarray        # (G, S) one score per trial, +inf (-inf for mode="max") where it diverged
    per_step_size: np.ndarray  # (G,) median over seeds
    best_step_size: float
    best: float               # the best step size's median score
    median: float             # median over the grid of the per-step-size medians

    @property
    def trials(self) -> int:
        return self.scores.size


def tune(run: Callable[[float, int], float], grid: Sequence[float], seeds: Sequence[int] = (100, 101, 102), *,
         mode: str = "min") -> TuneResult:
    """Score ``run(step_size, seed)`` on every grid point and tuning seed; pick the best median (``mode``: whether
    lower or higher scores are better)."""
    check_choice("mode", mode, ("min", "max"))
    grid = np.asarray([check_positive("step size", float(g)) for g in grid])
    if grid.size == 0 or len(seeds) == 0:
        raise ValueError(f"invalid grid {list(grid)} or seeds {list(seeds)}: expected at least one of each")
    if min(seeds) < 100:
        raise ValueError(f"invalid seeds {list(seeds)}: expected tuning seeds >= 100 (0-4 are the claim seeds)")
    worst = math.inf if mode == "min" else -math.inf
    scores = np.empty((grid.size, len(seeds)))
    for i, lr in enumerate(grid):
        for j, seed in enumerate(seeds):
            s = run(float(lr), int(seed))
            scores[i, j] = s if s is not None and math.isfinite(s) else worst
    per = np.median(scores, axis=1)
    i = int(np.argmin(per) if mode == "min" else np.argmax(per))
    return TuneResult(grid, tuple(int(s) for s in seeds), scores, per, float(grid[i]), float(per[i]),
                      float(np.median(per)))


def compare(runs: Mapping[str, Callable[[float, int], float]], grid: Sequence[float],
            seeds: Sequence[int] = (100, 101, 102), *, mode: str = "min") -> dict[str, TuneResult]:
    """:func:`tune` each method of ``runs`` ({name: run}) on the same grid and seeds: the same number of trials."""
    return {name: tune(run, grid, seeds, mode=mode) for name, run in runs.items()}
