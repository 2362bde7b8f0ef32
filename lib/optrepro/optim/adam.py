r"""Adam (Kingma & Ba, 2015) and AMSGrad (Reddi, Kale & Kumar, 2018) as ``torch.optim`` optimizers.

Both apply :func:`optrepro.optim.functional.adam_step` (the update rule is written out there):

    m_t = beta1 m_{t-1} + (1 - beta1) g_t,   v_t = beta2 v_{t-1} + (1 - beta2) g_t^2,
    Adam: \hat v_t = v_t;   AMSGrad: \hat v_t = max(\hat v_{t-1}, v_t)   (state "max_exp_avg_sq"),
    x_{t+1} = x_t - lr / (1 - beta1^t) * m_t / (sqrt(\hat v_t) / sqrt(1 - beta2^t) + eps),

or, with ``bias_correction=False`` (the paper's Algorithms 1 and 2), x_{t+1} = x_t - lr m_t / (sqrt(\hat v_t) + eps).
With ``bias_correction=True`` they equal ``torch.optim.Adam(amsgrad=False / True)`` step for step, bitwise.
Adam's denominator uses the current v_t, which can shrink from one step to the next; Reddi et al. (Theorems 1-3)
show rare large gradients are then forgotten too quickly and Adam can fail to converge even on one-dimensional
convex problems. AMSGrad's \hat v_t never decreases, which restores the O(sqrt(T)) regret bound (Theorem 4).
L2 weight decay is coupled, as ``torch.optim.Adam``'s: g_t <- g_t + weight_decay x_t. Projection onto a feasible
set (the paper's Pi_F) is left to the caller.

References
----------
* D. P. Kingma, J. Ba. "Adam: A Method for Stochastic Optimization." ICLR 2015.
* S. J. Reddi, S. Kale, S. Kumar. "On the Convergence of Adam and Beyond." ICLR 2018, arXiv:1904.09237.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from .base import Optimizer
from .functional import adam_step

__all__ = ["AMSGrad", "Adam"]


def _check_hyperparameters(lr: Any, betas: Any, eps: Any, weight_decay: Any, bias_correction: Any) -> None:
    """Raise ValueError (one line, naming the bad value and the valid range) for bad settings."""
    if not lr >= 0.0:  # written this way so that NaN is rejected too
        raise ValueError(f"invalid lr {lr!r}: expected lr >= 0")
    if not isinstance(betas, Sequence) or isinstance(betas, str) or len(betas) != 2:
        raise ValueError(f"invalid betas {betas!r}: expected a pair (beta1, beta2) with 0 <= beta < 1")
    for name, beta in zip(("beta1", "beta2"), betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"invalid {name} {beta!r}: expected 0 <= {name} < 1")
    if not eps >= 0.0:
        raise ValueError(f"invalid eps {eps!r}: expected eps >= 0")
    if not weight_decay >= 0.0:
        raise ValueError(f"invalid weight_decay {weight_decay!r}: expected weight_decay >= 0")
    if not isinstance(bias_correction, bool):
        raise ValueError(f"invalid bias_correction {bias_correction!r}: expected True or False")


class Adam(Optimizer):
    """Adam: the denominator uses the current second-moment average, \\hat v_t = v_t.

    Args:
        params: iterable of tensors or of param-group dicts.
        lr: step size (alpha). Default 1e-3.
        betas: (beta1, beta2), decay rates of the moment averages, each in [0, 1). Default (0.9, 0.999).
        eps: added to the denominator. Default 1e-8.
        weight_decay: L2 penalty coefficient, added to the gradient. Default 0.
        bias_correction: divide by (1 - beta^t) as Kingma & Ba and torch.optim.Adam do (True, default), or use
            the uncorrected update of Reddi et al. (False).

    Per-parameter state: ``step`` (a Python int: no device synchronisation for the bias corrections),
    ``exp_avg`` (m_t), ``exp_avg_sq`` (v_t) and, for AMSGrad, ``max_exp_avg_sq`` (\\hat v_t).
    """

    amsgrad = False

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 bias_correction: bool = True) -> None:
        _check_hyperparameters(lr, betas, eps, weight_decay, bias_correction)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      bias_correction=bias_correction))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (filled in from the defaults), validating its hyperparameters."""
        super().add_param_group(param_group)
        g = self.param_groups[-1]
        _check_hyperparameters(g["lr"], g["betas"], g["eps"], g["weight_decay"], g["bias_correction"])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one update; if ``closure`` is given, re-evaluate the loss with it and return it."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse or torch.is_complex(p):
                    raise RuntimeError(f"{type(self).__name__} supports neither sparse gradients nor complex parameters")
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                                 exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format))
                    if self.amsgrad:
                        state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                adam_step([p], [p.grad], [state["exp_avg"]], [state["exp_avg_sq"]], state["step"], group["lr"],
                          group["betas"], group["eps"], weight_decay=group["weight_decay"],
                          max_exp_avg_sqs=[state["max_exp_avg_sq"]] if self.amsgrad else None,
                          bias_correction=group["bias_correction"])
        return loss


class AMSGrad(Adam):
    """AMSGrad: the denominator uses the running maximum of v_t, \\hat v_t = max_s v_s (Reddi et al., Algorithm 2).

    Same arguments as :class:`Adam`; with ``bias_correction=True`` it matches ``torch.optim.Adam(amsgrad=True)``.
    """

    amsgrad = True
