"""Constrained optimization and Lagrangian duality.

Modules are imported by their path (``from optrepro.constrained.<module> import ...``); each one's docstring gives
the equations and the paper it comes from.
"""
