"""Monotonicity of a function sampled on an ordered grid."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["max_decrease"]


def max_decrease(values, dim: int = -1) -> float:
    """The largest decrease :math:`\\max_k \\max(v_k - v_{k+1}, 0)` of ``values`` (a tensor, array or sequence) along
    ``dim``, an ordered grid: 0 for a non-decreasing function. Computed in float64; fewer than two points give 0."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    v = torch.as_tensor(np.asarray(values, dtype=np.float64))
    if v.ndim == 0 or v.shape[dim] < 2:
        return 0.0
    return float(torch.clamp(-torch.diff(v, dim=dim), min=0).max())
