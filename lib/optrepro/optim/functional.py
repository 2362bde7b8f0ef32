r"""The update rules, written once: in-place steps on lists of tensors (optax style: the rule in the docstring).

The :mod:`optrepro.optim` classes call these; training loops that hold gradients from ``torch.autograd.grad``
(rather than in ``p.grad``) call them directly with their own state lists.

* :func:`adam_step` -- Adam (Kingma & Ba, 2015) and AMSGrad (Reddi et al., 2018), with or without bias correction.
* :func:`sgd_step` -- gradient descent with heavy-ball (Polyak, 1964) or Nesterov momentum.

Both do the arithmetic of ``torch.optim.Adam`` / ``torch.optim.SGD`` (single-tensor path, ``foreach=False``) in the
same order, so they agree with them bitwise (tests/test_optim.py checks this step for step).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["adam_step", "sgd_step"]


@torch.no_grad()
def adam_step(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
              exp_avg_sqs: Sequence[Tensor], step: int, lr: float, betas: tuple[float, float] = (0.9, 0.999),
              eps: float = 1e-8, *, weight_decay: float = 0.0, max_exp_avg_sqs: Sequence[Tensor] | None = None,
              bias_correction: bool = True) -> None:
    r"""One Adam (or AMSGrad) step ``step`` (t = 1, 2, ...), in place on ``params`` and the state lists.

    For each parameter x with gradient g (elementwise; ``weight_decay`` > 0 first sets g <- g + weight_decay x):

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

        \hat v_t = v_t \ \text{(Adam)} \quad\text{or}\quad \hat v_t = \max(\hat v_{t-1}, v_t)
        \ \text{(AMSGrad: pass ``max_exp_avg_sqs``)},

        x_{t+1} = x_t - \frac{\alpha}{1-\beta_1^t}\,\frac{m_t}{\sqrt{\hat v_t}/\sqrt{1-\beta_2^t} + \epsilon}
        \quad\text{or, with ``bias_correction=False``,}\quad
        x_{t+1} = x_t - \alpha\,\frac{m_t}{\sqrt{\hat v_t} + \epsilon}.

    The running max is over the uncorrected :math:`v_t` (as ``torch.optim.Adam(amsgrad=True)``); the uncorrected
    form is Algorithms 1 and 2 of Reddi et al. with constant :math:`\beta_1` and :math:`\epsilon` added.

    References: D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Algorithm 1.
    S. J. Reddi, S. Kale, S. Kumar, "On the Convergence of Adam and Beyond", ICLR 2018, arXiv:1904.09237.
    """
    beta1, beta2 = betas
    if bias_correction:
        step_size, c2 = lr / (1 - beta1 ** step), (1 - beta2 ** step) ** 0.5
    else:
        step_size, c2 = lr, None
    for i, (x, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        if weight_decay != 0:
            g = g.add(x, alpha=weight_decay)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        if max_exp_avg_sqs is not None:
            v = torch.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
        denom = (v.sqrt() / c2 if c2 is not None else v.sqrt()).add_(eps)
        x.addcdiv_(m, denom, value=-step_size)


@torch.no_grad()
def sgd_step(params: Sequence[Tensor], grads: Sequence[Tensor], momentum_buffers: Sequence[Tensor] | None,
             lr: float, momentum: float = 0.0, *, weight_decay: float = 0.0, nesterov: bool = False) -> None:
    r"""One step of gradient descent with momentum, in place on ``params`` and ``momentum_buffers``.

    For each parameter x with gradient g (``weight_decay`` > 0 first sets g <- g + weight_decay x) and buffer u
    (start it at zero; it may be ``None`` when ``momentum == 0``):

    .. math::
        u_{t+1} = \mu u_t + g_t, \qquad x_{t+1} = x_t - \eta\, u_{t+1}
        \quad\text{(heavy ball)}\qquad\text{or}\qquad x_{t+1} = x_t - \eta\,(g_t + \mu u_{t+1})
        \quad\text{(``nesterov=True``)},

    the update of ``torch.optim.SGD(lr=eta, momentum=mu, dampening=0)`` (from a zero buffer its first step is
    u_1 = g_1, as torch's). ``momentum=0`` is plain gradient descent.

    References: B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", USSR Comput.
    Math. Math. Phys. 4(5), 1964. I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of
    initialization and momentum in deep learning", ICML 2013 (the Nesterov form).
    """
    for i, (x, g) in enumerate(zip(params, grads)):
        if weight_decay != 0:
            g = g.add(x, alpha=weight_decay)
        if momentum != 0:
            u = momentum_buffers[i].mul_(momentum).add_(g)
            g = g.add(u, alpha=momentum) if nesterov else u
        x.add_(g, alpha=-lr)
