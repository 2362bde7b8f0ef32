r"""Learned proximal networks and proximal matching (Fang, Buchanan, Sulam; ICLR 2024, arXiv:2310.14344).

**Learned proximal network (LPN).** A function :math:`f` is the proximal operator of *some* (possibly nonconvex)
function :math:`R` iff :math:`f = \nabla\psi` for a convex :math:`\psi` (Gribonval & Nikolova). The LPN is
therefore the input gradient of an input-convex neural network (ICNN) :math:`\psi_\theta`:

.. math::

    z_1 = g(H_1 y + b_1),\qquad z_{k+1} = g(W_k z_k + H_{k+1} y + b_{k+1}),\qquad
    \psi_\theta(y) = w^\top z_L + a^\top y + c + \tfrac{\alpha}{2}\|y\|^2,

    f_\theta(y) = \nabla_y \psi_\theta(y)\quad\text{(torch.autograd)},

with :math:`W_k \ge 0`, :math:`w \ge 0` elementwise (here by the parameterization :math:`W = \mathrm{softplus}(V)`)
and :math:`g` convex and non-decreasing (softplus with sharpness :math:`\beta`). Then :math:`\psi_\theta` is convex
(non-negative combinations of convex non-decreasing functions of convex functions), :math:`f_\theta` is monotone,
:math:`\langle f(y)-f(y'), y-y'\rangle \ge 0`, and :math:`f_\theta = \mathrm{prox}_{R_\theta}` for some
:math:`R_\theta`. With :math:`\alpha > 0` the potential is strongly convex.

**Proximal matching.** For clean :math:`x \sim p_x` and a noisy observation :math:`y = x + \sigma v`,
:math:`v \sim \mathcal N(0, I)`, training :math:`f` on

.. math:: \ell_{\mathrm{PM}}(f(y), x; \gamma) = 1 - \exp\!\big(-\|f(y) - x\|_2^2/\gamma^2\big)

with :math:`\gamma \to 0` drives :math:`f(y)` to the posterior **mode** :math:`\arg\max_x p(x \mid y)` (the
paper normalizes the Gaussian kernel by :math:`(\pi\gamma^2)^{-n/2}`; at fixed :math:`\gamma` that is an affine
change of the loss and has the same minimizer). The MAP denoiser is a proximal operator:
:math:`\arg\max_x p(x\mid y) = \mathrm{prox}_{-\sigma^2\log p_x}(y)`. Training on the mean squared error instead
gives the posterior **mean** (MMSE denoiser) :math:`\mathbb E[x \mid y]`, which is not the prox of
:math:`-\sigma^2 \log p_x`.

The 1-D Laplace denoising problem of the paper's Sec. 5.1 (samples, MAP and MMSE denoisers) is
:mod:`optrepro.problems.laplace_denoising`.

* :class:`~optrepro.models.icnn.ICNN` -- the convex potential :math:`\psi_\theta`; :class:`LPN` -- its gradient :math:`f_\theta`;
  :func:`proximal_matching_loss`, :func:`gamma_schedule` (geometric annealing of :math:`\gamma`);
  :func:`train_denoiser` -- Adam on fresh noisy Laplace (or any sampler's) batches with loss ``"pm"``, ``"mse"``
  or ``"l1"``; :func:`max_decrease`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..checks import check_int, check_positive
from ..threads import one_cpu_thread_if
from ..train import fit as train
from .icnn import ICNN
from ..optim import Adam
from ..metrics.monotonicity import max_decrease

__all__ = [
    "ICNN",
    "LOSSES",
    "LPN",
    "TrainResult",
    "gamma_schedule",
    "max_decrease",
    "proximal_matching_loss",
    "train_denoiser",
]

LOSSES = ("pm", "mse", "l1")


class LPN(nn.Module):
    r"""Learned proximal network :math:`f_\theta(y) = \nabla\psi_\theta(y)`, the input gradient of an :class:`ICNN`.

    The gradient keeps its graph (``create_graph=True``) so that a loss on :math:`f_\theta` can be trained.
    """

    def __init__(self, dim: int = 1, hidden: int = 32, layers: int = 2, beta: float = 10.0, alpha: float = 0.0):
        super().__init__()
        self.potential = ICNN(dim, hidden, layers, beta, alpha)

    def forward(self, y: Tensor) -> Tensor:
        return self.potential.gradient(y, create_graph=True)


def proximal_matching_loss(pred: Tensor, target: Tensor, gamma: float) -> Tensor:
    r"""Mean over the batch of :math:`1 - \exp(-\|\mathrm{pred}_i - \mathrm{target}_i\|_2^2/\gamma^2)` (rows are
    samples; a 1-D tensor is a batch of scalars)."""
    gamma = check_positive("gamma", gamma)
    if pred.shape != target.shape:
        raise ValueError(f"invalid shapes {tuple(pred.shape)} and {tuple(target.shape)}: expected equal shapes")
    r2 = (pred - target).pow(2)
    r2 = r2.reshape(r2.shape[0], -1).sum(1) if r2.ndim > 1 else r2
    return (1 - torch.exp(-r2 / gamma**2)).mean()


def gamma_schedule(step: int, steps: int, gamma_start: float, gamma_end: float) -> float:
    r"""Geometric annealing :math:`\gamma_t = \gamma_0 (\gamma_{\mathrm{end}}/\gamma_0)^{t/(T-1)}`, :math:`t < T`."""
    steps = check_int("steps", steps, 1)
    step = check_int("step", step, 0)
    if step >= steps:
        raise ValueError(f"invalid step {step}: expected 0 <= step < steps = {steps}")
    g0, g1 = check_positive("gamma_start", gamma_start), check_positive("gamma_end", gamma_end)
    return g0 * (g1 / g0) ** (step / max(steps - 1, 1))


@dataclass
class TrainResult:
    loss: list[float] = field(default_factory=list)
    gamma: list[float] = field(default_factory=list)


def train_denoiser(model: nn.Module, sample: Callable[[int, torch.Generator], Tensor], sigma: float, *,
                   loss: str = "pm", steps: int = 1000, batch: int = 1000, lr: float = 1e-3,
                   gamma_start: float = 1.0, gamma_end: float = 0.1, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu", dtype=torch.float64) -> TrainResult:
    r"""Adam on fresh batches :math:`x \sim` ``sample(batch, generator)``, :math:`y = x + \sigma v`, minimizing
    ``loss`` of ``model(y)`` against ``x``: ``"pm"`` (:func:`proximal_matching_loss` with :math:`\gamma`
    annealed by :func:`gamma_schedule` from ``gamma_start`` to ``gamma_end``), ``"mse"`` or ``"l1"``.
    The learning rate is cosine-decayed to 0 over the ``steps`` (the loop: :func:`optrepro.train.fit`)."""
    if loss not in LOSSES:
        raise ValueError(f"invalid loss {loss!r}: expected one of {', '.join(LOSSES)}")
    sigma = check_positive("sigma", sigma)
    steps, batch = check_int("steps", steps, 1), check_int("batch", batch, 1)
    lr = check_positive("lr", lr)
    opt = Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def objective(step):
        x = sample(batch, generator)
        y = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x, y = x.to(device, dtype), y.to(device, dtype)
        out = model(y)
        if loss == "pm":
            gamma = gamma_schedule(step, steps, gamma_start, gamma_end)
            return proximal_matching_loss(out, x, gamma), {"gamma": gamma}
        if loss == "mse":
            return (out - x).pow(2).sum(1).mean()
        return (out - x).abs().sum(1).mean()

    with one_cpu_thread_if(batch <= 20000, device):
        trace = train(objective, opt, steps, scheduler=sched, stop_on_nonfinite=False)
    return TrainResult(trace.loss, trace.metrics.get("gamma", []))


