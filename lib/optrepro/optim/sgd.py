r"""Gradient descent with heavy-ball (Polyak) or Nesterov momentum as a ``torch.optim`` optimizer.

Applies :func:`optrepro.optim.functional.sgd_step`: u_{t+1} = mu u_t + g_t, x_{t+1} = x_t - lr u_{t+1}
(Nesterov: x_{t+1} = x_t - lr (g_t + mu u_{t+1})), g_t <- g_t + weight_decay x_t first. Equal to
``torch.optim.SGD(lr, momentum, weight_decay=..., nesterov=...)`` (dampening 0) step for step, bitwise, without
its first-construction cost (see :mod:`optrepro.optim.base`).

Reference: B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from .base import Optimizer
from .functional import sgd_step

__all__ = ["SGD"]


class SGD(Optimizer):
    """Heavy-ball SGD. Args: ``params``, ``lr`` (> 0), ``momentum`` mu in [0, 1), ``weight_decay`` >= 0 (coupled
    L2), ``nesterov``. State per parameter: ``momentum_buffer`` (u_t, from zero) when ``momentum`` > 0."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if not lr > 0:
            raise ValueError(f"invalid lr {lr!r}: expected lr > 0")
        if not 0 <= momentum < 1:
            raise ValueError(f"invalid momentum {momentum!r}: expected 0 <= momentum < 1")
        if not weight_decay >= 0:
            raise ValueError(f"invalid weight_decay {weight_decay!r}: expected weight_decay >= 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov))

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one update; if ``closure`` is given, re-evaluate the loss with it and return it."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            bufs = None
            if group["momentum"] != 0:
                for p in params:
                    if "momentum_buffer" not in self.state[p]:
                        self.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                bufs = [self.state[p]["momentum_buffer"] for p in params]
            sgd_step(params, [p.grad for p in params], bufs, group["lr"], group["momentum"],
                     weight_decay=group["weight_decay"], nesterov=group["nesterov"])
        return loss
