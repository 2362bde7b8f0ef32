r"""Functional optimizer steps on plain tensors, for training loops that do not build a ``torch.optim.Optimizer``.

``torch.optim``'s first ``Optimizer.step`` imports ``torch._dynamo`` (seconds in a fresh notebook kernel), which
matters for notebooks with a smoke budget of seconds; these steps do the same arithmetic without it.

* :func:`adam_step` -- one Adam step (Kingma & Ba, ICLR 2015), equal to ``torch.optim.Adam`` (``amsgrad=False``,
  no weight decay) step for step.
* :class:`LeanAdam` -- the same step behind ``torch.optim``'s ``zero_grad()`` / ``step()`` interface (``p.grad``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["LeanAdam", "adam_step"]


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


class LeanAdam:
    """Adam over ``params`` with the ``zero_grad()`` / ``step()`` interface of ``torch.optim.Adam`` (same update,
    no weight decay, no AMSGrad), built on :func:`adam_step`."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.m1 = [torch.zeros_like(p) for p in self.params]
        self.m2 = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (always set to None, as torch.optim does by default)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.t += 1
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        adam_step([self.params[i] for i in live], [self.params[i].grad for i in live], [self.m1[i] for i in live],
                  [self.m2[i] for i in live], self.t, self.lr, self.betas, self.eps)
