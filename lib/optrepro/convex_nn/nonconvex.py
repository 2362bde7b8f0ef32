r"""The non-convex baseline: a two-layer ReLU network trained by a local method (Adam or SGD) with weight decay.

Reference: the baseline of Y. Bai, T. Gautam, S. Sojoudi, arXiv:2201.01965 (and of Pilanci & Ergen 2020): back-
propagation training of :math:`f(x) = \sum_j (x^\top u_j)_+\alpha_j` on the *same* objective the convex program
solves globally,

.. math:: \ell\Big(\sum_{j=1}^m (Xu_j)_+\alpha_j,\ y\Big) + \frac\beta2\sum_{j=1}^m\big(\|u_j\|_2^2 + \alpha_j^2\big),

full batch, ``runs`` independent random initializations side by side (batched tensors), with
:class:`optrepro.optim.Adam` or heavy-ball :class:`optrepro.optim.SGD` (the updates of ``torch.optim.Adam`` and
``torch.optim.SGD``). The initialization is PyTorch's default for ``nn.Linear`` (uniform,
:math:`\pm 1/\sqrt{\text{fan-in}}`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int, check_nonnegative, check_positive
from ..optim import SGD, Adam
from ..train import fit as train
from .convex_program import check_loss, loss_value

__all__ = ["OPTIMIZERS", "NonconvexResult", "objective_and_grad", "train_relu_networks"]

OPTIMIZERS = ("adam", "sgd")


@dataclass
class NonconvexResult:
    U: Tensor              # (runs, m, d)
    alpha: Tensor          # (runs, m)
    objective: Tensor      # (steps, runs) objective before each step
    final: Tensor          # (runs,) objective at the end


def _objective(X, y, U, alpha, beta, loss):
    pred = torch.einsum("rnm,rm->rn", torch.relu(torch.einsum("nd,rmd->rnm", X, U)), alpha)
    return loss_value(pred, y, loss) + 0.5 * beta * ((U ** 2).sum((1, 2)) + (alpha ** 2).sum(1))


def objective_and_grad(X: Tensor, y: Tensor, U: Tensor, alpha: Tensor, beta: float, loss: str = "squared"):
    r"""Objective per run ``(runs,)`` and its gradients in ``U`` ``(runs, m, d)`` and ``alpha`` ``(runs, m)``,
    written out (back-propagation by hand: cheaper than autograd on these small tensors).

    With :math:`H = XU^\top`, :math:`A = H_+`, :math:`\hat y = A\alpha` and :math:`g = \partial\ell/\partial\hat y`:
    :math:`\nabla_\alpha = A^\top g + \beta\alpha`, :math:`\nabla_U = ((g\alpha^\top)\odot\mathbb 1[H > 0])^\top X + \beta U`.
    """
    H = torch.matmul(U, X.T).transpose(1, 2)              # (runs, n, m)
    A = torch.relu(H)
    pred = torch.matmul(A, alpha[:, :, None])[:, :, 0]     # (runs, n)
    if loss == "squared":
        g = pred - y
    else:
        g = -y * torch.sigmoid(-y * pred)
    obj = loss_value(pred, y, loss) + 0.5 * beta * ((U ** 2).sum((1, 2)) + (alpha ** 2).sum(1))
    grad_alpha = torch.matmul(A.transpose(1, 2), g[:, :, None])[:, :, 0] + beta * alpha
    grad_U = torch.matmul(((g[:, :, None] * alpha[:, None, :]) * (H > 0)).transpose(1, 2), X) + beta * U
    return obj, grad_U, grad_alpha


def train_relu_networks(X: Tensor, y: Tensor, width: int, beta: float, loss: str = "squared", runs: int = 5,
                        steps: int = 2000, lr: float = 1e-2, optimizer: str = "adam", momentum: float = 0.9,
                        generator: torch.Generator | None = None,
                        init: tuple[Tensor, Tensor] | None = None) -> NonconvexResult:
    """Train ``runs`` width-``width`` networks from independent random initializations on the full batch.

    ``init = (U, alpha)`` (shapes ``(m, d)`` and ``(m,)``) starts every run from that network instead (e.g. the
    global optimum read off the convex program: a control that a local method should not leave). The loop is
    :func:`optrepro.train.fit` with a functional update that hands the written-out gradients to the optimizer."""
    check_loss(loss)
    width, runs, steps = check_int("width", width, 1), check_int("runs", runs, 1), check_int("steps", steps, 1)
    beta, lr = check_nonnegative("beta", beta), check_positive("lr", lr)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    d = X.shape[1]
    bu, ba = 1 / d ** 0.5, 1 / width ** 0.5
    if init is not None:
        U0, a0 = init
        if tuple(U0.shape) != (width, d) or tuple(a0.shape) != (width,):
            raise ValueError(f"invalid init of shapes {tuple(U0.shape)}, {tuple(a0.shape)}: expected ({width}, {d}) and ({width},)")
        U = U0.to(X.device, X.dtype).expand(runs, width, d).clone()
        alpha = a0.to(X.device, X.dtype).expand(runs, width).clone()
    else:
        U = ((torch.rand(runs, width, d, generator=generator, dtype=torch.float64) * 2 - 1) * bu).to(X.device, X.dtype)
        alpha = ((torch.rand(runs, width, generator=generator, dtype=torch.float64) * 2 - 1) * ba).to(X.device, X.dtype)
    opt = Adam([U, alpha], lr=lr) if optimizer == "adam" else SGD([U, alpha], lr=lr, momentum=momentum)
    trace, grads = [], []

    def objective(k: int) -> Tensor:   # each run's objective and own gradient, written out (no autograd graph)
        obj, grad_U, grad_alpha = objective_and_grad(X, y, U, alpha, beta, loss)
        grads[:] = grad_U, grad_alpha
        trace.append(obj)                # (runs,): fit's trace holds scalars
        return obj.sum()

    def update(k: int, value: Tensor) -> None:
        U.grad, alpha.grad = grads
        opt.step()

    train(objective, update, steps, every=steps, stop_on_nonfinite=False)
    with torch.no_grad():
        final = _objective(X, y, U, alpha, beta, loss)
    return NonconvexResult(U.detach(), alpha.detach(), torch.stack(trace), final)
