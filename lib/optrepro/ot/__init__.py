"""Entropic optimal transport: log-domain Sinkhorn and Sinkhorn-Newton-Sparse.

* :mod:`.sinkhorn` -- log-domain Sinkhorn (Cuturi 2013; stabilised form of Peyre & Cuturi 2019), batched.
* :mod:`.sinkhorn_newton` -- Sinkhorn-Newton-Sparse (Tang, Shavlovsky, Rahmanian, Tardini, Thekumparampil, Xiao,
  Ying; ICLR 2024; arXiv:2401.12253): Sinkhorn warm-up, then Newton steps with a sparsified Hessian, CG and a line
  search on the concave dual objective.
* :mod:`.divergence` -- entropic OT between point clouds and the debiased Sinkhorn divergence, as differentiable losses.
* :mod:`.gaussian` -- closed forms for Gaussians (W2, Brenier map, entropic plan, Ornstein-Uhlenbeck flow, KL).

The last two, and the modules of single papers, are imported by their module path.

The first two use the same argument names as POT (``a``, ``b``, ``C``, ``eps`` for POT's ``reg``) and the same plan
convention ``P_ij = exp((f_i + g_j - C_ij) / eps)``.
"""

from .sinkhorn import SinkhornResult, dual_objective, marginal_error, plan_from_potentials, sinkhorn
from .sinkhorn_newton import (SNSResult, dense_newton_direction, dual_gradient,
                              sinkhorn_newton_sparse, sparse_newton_direction, sparsify_plan)

__all__ = ["SinkhornResult", "sinkhorn", "plan_from_potentials", "marginal_error", "dual_objective",
           "SNSResult", "sinkhorn_newton_sparse", "sparsify_plan", "sparse_newton_direction",
           "dense_newton_direction", "dual_gradient"]
