"""Constrained optimization and Lagrangian duality (each module imported by its path; its docstring gives the
equations and the paper it comes from).

* :mod:`.kkt` -- Lagrangian, KKT residual, the exact augmented Lagrangian merit function and its gradient.
* :mod:`.sketching` -- randomized sketch-and-project (Kaczmarz) solves of a linear system with an accuracy test.
* :mod:`.exact_auglag` -- SQP with an exact-augmented-Lagrangian line search and sketched Newton-KKT solves.
* :mod:`.lp_layer` -- LPs solved by HiGHS with their duals, and an autograd function whose gradient is the dual.
* :mod:`.ts_ddr` -- TS-DDR: a policy proposing stage targets, trained through its stage LPs' duals.
* :mod:`.dual_completion` -- closed-form dual completion for boxed LPs and self-supervised dual learning.
* :mod:`.primal_dual` -- primal-dual (dual ascent) constrained learning (the generic loop and its pieces).
* :mod:`.project_forget` -- Project and Forget for metric nearness.
* :mod:`.manifold_smooth` -- point-wise Lipschitz-constrained learning on kNN graphs by primal-dual updates.
* :mod:`.projection_training` -- gradient-free network training by projections (Douglas-Rachford).
"""
