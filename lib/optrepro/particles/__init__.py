"""Optimization over probability measures with particles.

* :mod:`.displacement_convex` -- particle gradient descent on a displacement-convex functional: the planted
  sign-activation network on two-dimensional inputs of Daneshmand, Lee & Jin (ICML 2023; arXiv:2302.04753), whose
  population loss is an energy distance between neuron-angle measures, with its exact minima.

Modules are imported by their module path, e.g. ``from optrepro.particles import displacement_convex as dc``.
"""
