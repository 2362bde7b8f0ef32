"""Synthetic monotone, non-convex regression targets on :math:`[-1, 1]^d` (:data:`TARGETS`, :func:`monotone_target`),
each non-decreasing in every input: the targets on which a convex monotone network (the sign-constrained ReLU
baseline of Runje & Shankaranarayana, ICML 2023; :mod:`optrepro.models.monotonic`) must fail.

Used by notebooks/constrained-monotonic-nn.ipynb.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["TARGETS", "monotone_target"]


def _sigmoid_steps(x: Tensor, centres: Sequence[float], sharpness: float) -> Tensor:
    return sum(torch.sigmoid(sharpness * (x - c)) for c in centres) / len(centres)


TARGETS: dict[str, tuple[int, Callable[[Tensor], Tensor]]] = {
    # name: (input dimension, f on [-1, 1]^d), each non-decreasing in every input and not convex
    "sigmoid": (1, lambda X: torch.sigmoid(6 * X[:, 0])),
    "log": (1, lambda X: torch.log1p(4 * (X[:, 0] + 1)) / math.log(9)),
    "staircase": (1, lambda X: _sigmoid_steps(X[:, 0], (-0.5, 0.0, 0.5), 25.0)),
    "sigmoid-2d": (2, lambda X: torch.sigmoid(3 * (X[:, 0] + X[:, 1])) + 0.5 * torch.sigmoid(6 * X[:, 1])),
}


def monotone_target(name: str, X: Tensor) -> Tensor:
    """The synthetic target ``name`` (one of :data:`TARGETS`) at the points ``X`` in :math:`[-1, 1]^d`."""
    if name not in TARGETS:
        raise ValueError(f"invalid target {name!r}: expected one of {', '.join(TARGETS)}")
    d, f = TARGETS[name]
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"invalid input shape {tuple(X.shape)} for target {name!r}: expected (n, {d})")
    return f(X)
