r"""Classification problems: logistic and softmax regression, MLP classifiers (no download).

Data sets (:data:`DATASETS`): scikit-learn's bundled ``digits`` (1797 8x8 images, 10 classes), ``breast_cancer``
(569 x 30, 2 classes), ``iris`` (150 x 4, 3 classes) and ``wine`` (178 x 13, 3 classes), split by a permutation
from ``seed`` (``test_fraction`` held out) and standardized with the training mean and standard deviation; and
``mnist1d`` (Greydanus 2020, :func:`optrepro.data.load_mnist1d`: generated from ``seed``, ``num_samples`` in all,
40 features, 10 classes), a CPU-sized stand-in for MNIST.

* :func:`logistic` -- binary L2-regularized logistic regression,
  :math:`\ell(f, y) = \log(1 + e^{-(2y-1) f})`, :math:`f = w^\top x + b`: convex, and strongly convex in
  :math:`w` for ``l2 > 0``; the same objective as scikit-learn's ``LogisticRegression(C=1 / (l2 * n))``.
* :func:`softmax` -- multinomial logistic (softmax) regression, :math:`\ell(f, y) = -\log \mathrm{softmax}(f)_y`,
  :math:`f = Wx + b`: L2-regularized multi-class logistic regression on MNIST is the convex experiment of Adam
  (Kingma & Ba, ICLR 2015, Sec. 6.1) and of AMSGrad (Reddi, Kale & Kumar, ICLR 2018, Sec. 5), a common convex
  workload of adaptive-method comparisons.
* :func:`mlp_classifier` -- :func:`optrepro.models.mlp` with the softmax loss: the nonconvex workload (AMSGrad's
  one-hidden-layer network on MNIST, Sec. 5; Adam's multilayer networks on MNIST, Sec. 6.2).

For the convex two, :meth:`Classification.optimum` gives :math:`F^\star` (float64 L-BFGS) for suboptimality plots.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_choice, check_int, check_nonnegative, check_positive
from ..models.mlp import ACTIVATIONS, mlp
from ..threads import one_cpu_thread_if
from .suite import Problem, seeded_generator

__all__ = ["DATASETS", "Classification", "load_dataset", "logistic", "mlp_classifier", "softmax"]

SKLEARN = ("digits", "breast_cancer", "iris", "wine")
DATASETS = (*SKLEARN, "mnist1d")


@functools.lru_cache(maxsize=8)
def _sklearn_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, seed: int, test_fraction: float) -> tuple[np.ndarray, ...]:
    from ..data import load_mnist1d

    d = load_mnist1d(num_samples, seed=seed, train_split=1.0 - test_fraction, dtype=torch.float64)
    return tuple(t.numpy() for t in d)


def load_dataset(dataset: str, *, seed: int = 0, test_fraction: float = 0.2, num_samples: int | None = None,
                 dtype: torch.dtype = torch.float32, device: Any = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)`` of ``dataset`` (inputs in ``dtype``, int64 labels), as described in
    the module docstring; ``num_samples`` is MNIST-1D's size (default 5000) and only applies to it."""
    check_choice("dataset", dataset, DATASETS)
    seed = check_int("seed", seed, 0)
    test_fraction = check_positive("test_fraction", test_fraction)
    if not test_fraction < 1:
        raise ValueError(f"invalid test_fraction {test_fraction!r}: expected 0 < test_fraction < 1")
    if dataset == "mnist1d":
        num_samples = check_int("num_samples", 5000 if num_samples is None else num_samples, 10)
        xtr, ytr, xte, yte = _mnist1d_arrays(num_samples, seed, test_fraction)
    else:
        if num_samples is not None:
            raise ValueError(f"invalid num_samples {num_samples!r}: only mnist1d takes num_samples, not {dataset}")
        x, y = _sklearn_arrays(dataset)
        perm = torch.randperm(len(y), generator=seeded_generator(seed)).numpy()
        n_test = max(1, round(test_fraction * len(y)))
        test, train = perm[:n_test], perm[n_test:]
        mean, std = x[train].mean(0), x[train].std(0)
        std[std == 0] = 1.0                              # constant features (digits' border pixels) stay 0
        x = (x - mean) / std
        xtr, ytr, xte, yte = x[train], y[train], x[test], y[test]

    def tensor(a: np.ndarray, dt: torch.dtype) -> Tensor:
        return torch.as_tensor(a, dtype=dt).to(device)

    return tensor(xtr, dtype), tensor(ytr, torch.long), tensor(xte, dtype), tensor(yte, torch.long)


@dataclasses.dataclass(eq=False)
class Classification(Problem):
    """Inputs (N, D), labels (N,); the model ``mlp(D, hidden, out)`` with ``out = 1`` (a logit, for ``binary``)
    or the number of classes."""
    n_classes: int = 2
    hidden: tuple[int, ...] = ()
    activation: str = "relu"
    binary: bool = False

    def build(self) -> nn.Module:
        out = 1 if self.binary else self.n_classes
        return mlp(self.x_train.shape[1], self.hidden, out, activation=self.activation, dtype=self.dtype)

    def criterion(self, out: Tensor, y: Tensor) -> Tensor:
        if self.binary:
            return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.to(out.dtype))
        return F.cross_entropy(out, y)

    def correct(self, out: Tensor, y: Tensor) -> Tensor:
        return (out.squeeze(-1) > 0) == y.bool() if self.binary else out.argmax(-1) == y

    def optimum(self, gtol: float = 1e-9) -> float:
        """:math:`F^\\star = \\min F` of a convex problem (no hidden layer), by L-BFGS in float64 on the CPU."""
        from scipy.optimize import minimize

        if self.hidden:
            raise ValueError(f"invalid problem {self.name!r} for optimum(): the objective is convex only without "
                             f"hidden layers (hidden={self.hidden})")
        cpu = dataclasses.replace(self, x_train=self.x_train.cpu().double(), y_train=self.y_train.cpu(),
                                  x_test=self.x_test.cpu().double(), y_test=self.y_test.cpu())
        model = cpu.model(0)
        params = list(model.parameters())
        sizes = [p.numel() for p in params]

        def value_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
            with torch.no_grad():
                for p, chunk in zip(params, torch.from_numpy(w).split(sizes)):
                    p.copy_(chunk.view_as(p))
            f = cpu.objective(model)
            grads = torch.autograd.grad(f, params)
            return float(f.detach()), torch.cat([g.reshape(-1) for g in grads]).numpy()

        w0 = torch.cat([p.detach().reshape(-1) for p in params]).numpy()
        with one_cpu_thread_if(True, "cpu"):
            res = minimize(value_and_grad, w0, jac=True, method="L-BFGS-B",
                           options={"maxiter": 20000, "maxcor": 30, "gtol": gtol, "ftol": 0.0})
        return float(res.fun)


def _classification(name: str, dataset: str, hidden: Sequence[int], activation: str, binary: bool, l2: float,
                    batch_size: int | None, test_fraction: float, num_samples: int | None, seed: int,
                    dtype: torch.dtype, device: Any) -> Classification:
    data = load_dataset(dataset, seed=seed, test_fraction=test_fraction, num_samples=num_samples, dtype=dtype,
                        device=device)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    n_classes = int(max(data[1].max(), data[3].max())) + 1
    if binary and n_classes != 2:
        raise ValueError(f"invalid dataset {dataset!r} for logistic: it has {n_classes} classes, expected 2 "
                         f"(use softmax)")
    info = {"dataset": dataset, "seed": seed, "n_train": len(data[1]), "n_test": len(data[3]),
            "n_features": data[0].shape[1], "n_classes": n_classes}
    return Classification(name, *data, batch_size=batch_size, l2=check_nonnegative("l2", l2), info=info,
                          n_classes=n_classes, hidden=tuple(hidden), activation=activation, binary=binary)


def logistic(dataset: str = "breast_cancer", *, l2: float = 1e-3, batch_size: int | None = None,
             test_fraction: float = 0.2, seed: int = 0, dtype: torch.dtype = torch.float32,
             device: Any = None) -> Classification:
    """Binary logistic regression (a two-class ``dataset``: ``breast_cancer``), penalty ``l2 / 2 * ||w||^2``."""
    return _classification("logistic", dataset, (), "relu", True, l2, batch_size, test_fraction, None, seed,
                           dtype, device)


def softmax(dataset: str = "digits", *, l2: float = 1e-3, batch_size: int | None = None, test_fraction: float = 0.2,
            num_samples: int | None = None, seed: int = 0, dtype: torch.dtype = torch.float32,
            device: Any = None) -> Classification:
    """Softmax (multinomial logistic) regression on ``dataset``, penalty ``l2 / 2 * ||W||_F^2``."""
    return _classification("softmax", dataset, (), "relu", False, l2, batch_size, test_fraction, num_samples, seed,
                           dtype, device)


def mlp_classifier(dataset: str = "digits", *, hidden: int | Sequence[int] = (32,), activation: str = "relu",
                   l2: float = 0.0, batch_size: int | None = None, test_fraction: float = 0.2,
                   num_samples: int | None = None, seed: int = 0, dtype: torch.dtype = torch.float32,
                   device: Any = None) -> Classification:
    """An MLP classifier (:func:`optrepro.models.mlp`, hidden widths ``hidden``) with the softmax loss."""
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    if not hidden:
        raise ValueError("invalid hidden (): expected at least one hidden width (softmax is the linear model)")
    hidden = tuple(check_int("hidden width", h, 1) for h in hidden)
    check_choice("activation", activation, tuple(ACTIVATIONS))
    return _classification("mlp", dataset, hidden, activation, False, l2, batch_size, test_fraction, num_samples,
                           seed, dtype, device)
