"""Two interleaving half circles (scikit-learn's ``make_moons`` construction), without importing scikit-learn.

Used by notebooks/globally-smooth-manifold.ipynb.
"""
from __future__ import annotations

import numpy as np

from optrepro.checks import check_int, check_nonnegative

__all__ = ["two_moons"]


def two_moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, the construction of scikit-learn's ``make_moons`` (``n // 2`` points on the
    upper moon, label 0; the rest on the lower one, label 1; shuffled; Gaussian noise of standard deviation ``noise``).
    Written out because importing ``sklearn.datasets`` costs seconds on a busy CPU."""
    n, noise = check_int("n", n, 2), check_nonnegative("noise", noise)
    n_out = n // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n - n_out)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], 1)])
    y = np.concatenate([np.zeros(n_out, int), np.ones(n - n_out, int)])
    perm = rng.permutation(n)
    return x[perm] + rng.normal(scale=noise, size=(n, 2)), y[perm]
