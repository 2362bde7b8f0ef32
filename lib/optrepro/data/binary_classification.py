"""Binary classification data (used by the convex-network notebooks and benchmarks/admm_vs_pyscnn.py): scikit-learn's breast cancer and a binary MNIST
subset read from the project's data folder (no download).

Features are standardized on the chosen subset, a constant column is appended (the network's hidden-layer bias:
:math:`x^\\top u` then includes an offset), and the labels are :math:`\\pm 1`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..checks import check_int
from .vision import load_mnist

__all__ = ["binary_mnist", "breast_cancer", "with_bias"]



def with_bias(Z: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """Standardize the columns of ``Z`` (with given or own statistics) and append a column of ones."""
    Z = np.asarray(Z, dtype=np.float64)
    mean = Z.mean(0) if mean is None else mean
    std = Z.std(0) if std is None else std
    std = np.where(std > 0, std, 1.0)
    Zs = (Z - mean) / std
    return torch.from_numpy(np.hstack([Zs, np.ones((len(Z), 1))])), mean, std


def breast_cancer(n: int, features: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` random samples (of 569) and the first ``features`` (of 30) of the Wisconsin breast-cancer data."""
    from sklearn.datasets import load_breast_cancer

    n, features = check_int("n", n, 2), check_int("features", features, 1)
    Xa, ya = load_breast_cancer(return_X_y=True)
    if n > len(ya) or features > Xa.shape[1]:
        raise ValueError(f"invalid breast_cancer subset n={n}, features={features}: at most n=569, features=30")
    idx = np.random.default_rng(seed).permutation(len(ya))[:n]
    X, _, _ = with_bias(Xa[idx, :features])
    return X, torch.from_numpy(2.0 * ya[idx] - 1)


def binary_mnist(data_dir: str | Path, classes: tuple[int, int], n_train: int, n_test: int, seed: int):
    """A two-class MNIST subset: ``(X_train, y_train, X_test, y_test)``, pixels in [0, 1] standardized, labels +-1."""
    n_train, n_test = check_int("n_train", n_train, 2), check_int("n_test", n_test, 1)
    arrays = load_mnist(data_dir)  # one-line error naming <data_dir>/mnist.npz when absent
    a, b = classes
    rng = np.random.default_rng(seed)
    out = []
    for x, y, n in ((arrays.x_train, arrays.y_train, n_train), (arrays.x_test, arrays.y_test, n_test)):
        x = x.reshape(len(y), -1) / 255.0
        keep = rng.permutation(np.flatnonzero((y == a) | (y == b)))[:n]
        out.append((x[keep], np.where(y[keep] == a, 1.0, -1.0)))
    (xtr, ytr), (xte, yte) = out
    Xtr, mean, std = with_bias(xtr)
    Xte, _, _ = with_bias(xte, mean, std)
    return Xtr, torch.from_numpy(ytr), Xte, torch.from_numpy(yte)
