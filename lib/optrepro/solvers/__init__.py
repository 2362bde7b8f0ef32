"""Numerical building blocks shared by the algorithm families.

* :mod:`optrepro.solvers.cg` -- (preconditioned) conjugate gradient on a matrix-vector product.
* :mod:`optrepro.solvers.line_search` -- backtracking (Armijo) line search.
"""
from .cg import CGResult, conjugate_gradient, jacobi
from .line_search import backtracking

__all__ = ["CGResult", "conjugate_gradient", "jacobi", "backtracking"]
