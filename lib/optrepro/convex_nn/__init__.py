"""Convex training of two-layer ReLU networks (Pilanci & Ergen 2020; Bai, Gautam & Sojoudi 2023).

* :mod:`optrepro.convex_nn.arrangements` -- activation patterns :math:`D_i = \\mathrm{diag}(1[Xu \\ge 0])`: sampled
  from Gaussian directions, or enumerated exactly for small ``d``.
* :mod:`optrepro.convex_nn.convex_program` -- the group-lasso convex program with cone constraints, its cvxpy
  reference solution, and the ReLU network recovered from a convex solution.
* :mod:`optrepro.convex_nn.admm` -- the ADMM of Bai, Gautam & Sojoudi (u-step matrix factorized once).
* :mod:`optrepro.convex_nn.nonconvex` -- the baseline: the same network trained by Adam/SGD with weight decay.
* :mod:`optrepro.convex_nn.optimal_sets` -- optimal sets and solution paths (Mishkin & Pilanci 2023): pruning to
  minimal models, the polytope of optimal models, the regularization path.
* :mod:`optrepro.convex_nn.parallel_linear` -- standard and parallel deep linear networks with weight decay, their
  closed-form optima and the convex (nuclear-norm) dual bound (Wang, Ergen & Pilanci 2023).

The last two are imported by their module path.
"""

from .admm import (
    ADMMResult,
    admm,
    first_below,
    group_soft_threshold,
    logistic_prox,
)
from .arrangements import (
    count_regions,
    enumerate_patterns,
    sample_patterns,
    unique_patterns,
)
from .convex_program import (
    LOSSES,
    ConvexSolution,
    ReLUNetwork,
    cone_violation,
    convex_objective,
    convex_predict,
    loss_value,
    network_objective,
    network_predict,
    recover_network,
    solve_cvxpy,
)
from .nonconvex import OPTIMIZERS, NonconvexResult, train_relu_networks

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "ADMMResult",
    "ConvexSolution",
    "NonconvexResult",
    "ReLUNetwork",
    "admm",
    "cone_violation",
    "convex_objective",
    "convex_predict",
    "count_regions",
    "enumerate_patterns",
    "first_below",
    "group_soft_threshold",
    "logistic_prox",
    "loss_value",
    "network_objective",
    "network_predict",
    "recover_network",
    "sample_patterns",
    "solve_cvxpy",
    "train_relu_networks",
    "unique_patterns",
]
