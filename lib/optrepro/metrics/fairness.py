r"""Group-fairness measures of a classifier's predictions.

* :func:`demographic_parity_gaps` -- the two one-sided demographic-parity gaps
  :math:`\pm(\mathbb E[p \mid z = 1] - \mathbb E[p \mid z = 0])`, the constraint functions of fairness-constrained
  learning (a constraint :math:`\text{gaps} \le c` bounds :math:`|\bar p_1 - \bar p_0|`).
"""
from __future__ import annotations

import torch

__all__ = ["demographic_parity_gaps"]


def demographic_parity_gaps(prob: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""The two gaps :math:`(\bar p_1 - \bar p_0,\ \bar p_0 - \bar p_1)` of mean predicted probability per group.

    ``prob`` is ``(n,)`` or a batch ``(K, n)``; the result is ``(2,)`` or ``(K, 2)``.
    """
    if prob.shape[-1:] != z.shape:
        raise ValueError(f"invalid z shape {tuple(z.shape)}: expected (n,) with n = {prob.shape[-1]} predictions")
    mask = z == 1
    if mask.all() or (~mask).all():
        raise ValueError("invalid z: both groups (z = 0 and z = 1) must be present")
    gap = prob[..., mask].mean(-1) - prob[..., ~mask].mean(-1)
    return torch.stack([gap, -gap], -1)
