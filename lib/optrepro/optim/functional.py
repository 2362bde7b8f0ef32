r"""Functional optimizer steps on plain tensors, for training loops that do not build a ``torch.optim.Optimizer``.

``torch.optim``'s first ``Optimizer.step`` imports ``torch._dynamo`` (seconds in a fresh notebook kernel), which
matters for notebooks with a smoke budget of seconds; these steps do the same arithmetic without it.

* :func:`adam_step` -- one Adam step (Kingma & Ba, ICLR 2015), equal to ``torch.optim.Adam`` (``amsgrad=False``,
  no weight decay) step for step.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["adam_step"]


def adam_step(params: list[Tensor], grads, m1: list[Tensor], m2: list[Tensor], t: int, lr: float,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    r"""One Adam step in place (the update of ``torch.optim.Adam``, written out: it avoids torch.optim's seconds of
    import time in a notebook): :math:`m \leftarrow \beta_1 m + (1-\beta_1)g`, :math:`v \leftarrow \beta_2 v +
    (1-\beta_2)g^2`, :math:`\theta \leftarrow \theta - \eta\,\hat m/(\sqrt{\hat v} + \epsilon)` with the bias
    corrections :math:`\hat m = m/(1-\beta_1^t)`, :math:`\hat v = v/(1-\beta_2^t)`."""
    b1, b2 = betas
    with torch.no_grad():
        for p, g, m, v in zip(params, grads, m1, m2):
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v / (1 - b2 ** t)).sqrt_().add_(eps)
            p.addcdiv_(m, denom, value=-lr / (1 - b1 ** t))
