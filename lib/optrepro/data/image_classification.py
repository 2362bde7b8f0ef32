"""Flattened image classification sets for small networks: scikit-learn's bundled 8x8 digits (read from its data
file, no scikit-learn import) and MNIST from ``<data_dir>/mnist.npz``.

Used by notebooks/pjax-projection-training.ipynb.
"""
from __future__ import annotations

import torch
from torch import Tensor

from optrepro.checks import check_choice, check_int

__all__ = ["DATASETS", "classification_data"]


DATASETS = ("digits", "mnist")


def classification_data(dataset: str, n_train: int, *, seed: int = 0, data_dir: str | None = None,
                        dtype=torch.float32, device=None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)``, pixels scaled to [0, 1] and flattened.

    ``digits``: scikit-learn's bundled 8x8 digits (1797 images), the first ``n_train`` of a permutation drawn with
    ``seed`` for training and the rest for testing. ``mnist``: ``<data_dir>/mnist.npz`` (the first ``n_train``
    training images, all 10000 test images); a missing file is a one-line error naming the expected path."""
    dataset = check_choice("dataset", dataset, DATASETS)
    n_train = check_int("n_train", n_train, 1)
    if dataset == "digits":
        X, Y = _digits()
        if n_train >= len(Y):
            raise ValueError(f"invalid n_train {n_train}: expected 1 <= n_train < {len(Y)} for digits")
        perm = torch.randperm(len(Y), generator=torch.Generator().manual_seed(seed))
        X = torch.as_tensor(X / 16.0, dtype=dtype)[perm]
        Y = torch.as_tensor(Y, dtype=torch.long)[perm]
        xs = (X[:n_train], Y[:n_train], X[n_train:], Y[n_train:])
    else:
        from optrepro.data.vision import load_mnist

        if data_dir is None:
            raise ValueError("invalid data_dir None: the mnist dataset needs data_dir (the folder of mnist.npz)")
        m = load_mnist(data_dir)

        def flat(a):
            return torch.as_tensor(a.reshape(len(a), -1) / 255.0, dtype=dtype)

        xs = (flat(m.x_train[:n_train]), torch.as_tensor(m.y_train[:n_train], dtype=torch.long),
              flat(m.x_test), torch.as_tensor(m.y_test, dtype=torch.long))
    return tuple(t.to(device) for t in xs)


def _digits() -> tuple:
    """scikit-learn's bundled digits, read from its data file without importing scikit-learn (about a second of
    imports saved); the same arrays as ``sklearn.datasets.load_digits(return_X_y=True)``."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("scikit-learn is needed for the digits dataset: pip install scikit-learn")
    data = np.loadtxt(Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz", delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)
