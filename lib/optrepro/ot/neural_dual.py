r"""Neural optimal transport by the minimax W2 dual with two input-convex potentials (Makkuva, Taghvaei, Oh, Lee;
ICML 2020, arXiv:1908.10962), with an optional penalty on the map's displacement (Chen, Xie, Zhang 2025,
arXiv:2502.01889; :mod:`.displacement_sparse`).

For a source :math:`\mu` (samples :math:`x`) and a target :math:`\nu` (samples :math:`y`), with convex :math:`f`
(target side) and convex :math:`g` (source side, :class:`optrepro.models.icnn.ICNN`),

.. math::

    \tfrac12 W_2^2(\mu, \nu) = \tfrac12\mathbb E_\mu\|x\|^2 + \tfrac12\mathbb E_\nu\|y\|^2
    - \min_f \max_g\ \Big\{\mathbb E_\nu f(y) + \mathbb E_\mu\big[\langle x, \nabla g(x)\rangle
    - f(\nabla g(x))\big]\Big\},

because the inner maximum over :math:`g` is :math:`\mathbb E_\mu f^*(x)` (the conjugate potential). At the saddle point
the transport map is :math:`T = \nabla g` (Brenier). Training alternates ``inner`` Adam steps on :math:`g`, minimizing

.. math::  L_g = \mathbb E_\mu\big[f(\nabla g(x)) - \langle x, \nabla g(x)\rangle\big]
           + \lambda\,\mathbb E_\mu\,R(\nabla g(x) - x),

with one Adam step on :math:`f`, minimizing :math:`L_f = \mathbb E_\nu f(y) - \mathbb E_\mu f(\nabla g(x))`.
:math:`R` is a displacement penalty (the "biased minimax" of Chen et al.; :math:`\lambda = 0` is Makkuva et al.).
Convexity holds by construction (non-negative :math:`z`-path weights), so no weight-clipping term is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..checks import check_int, check_nonnegative, check_positive
from ..models.icnn import ICNN
from ..optim import Adam

__all__ = ["NeuralDualResult", "dual_losses", "w2_estimate", "train_neural_dual"]

Penalty = Callable[[Tensor], Tensor]  # displacement rows (n, d) -> per-row penalty (n,)


def dual_losses(f: ICNN, g: ICNN, x: Tensor, y: Tensor, penalty: Penalty | None = None,
                lam: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """(L_f, L_g, T(x)) of the module docstring on the minibatches x ~ mu, y ~ nu; T(x) = grad g(x) keeps its graph."""
    Tx = g.gradient(x, create_graph=True)
    f_Tx = f(Tx)
    loss_g = (f_Tx - (x * Tx).sum(1)).mean()
    if penalty is not None and lam:
        loss_g = loss_g + lam * penalty(Tx - x).mean()
    loss_f = f(y).mean() - f(Tx.detach()).mean()
    return loss_f, loss_g, Tx


def w2_estimate(f: ICNN, g: ICNN, x: Tensor, y: Tensor) -> Tensor:
    """The dual estimate of W2^2 from the potentials: E|x|^2 + E|y|^2 - 2 (E f(y) + E[<x, grad g> - f(grad g)])."""
    Tx = g.gradient(x)
    with torch.no_grad():
        inner = f(y).mean() + ((x * Tx).sum(1) - f(Tx)).mean()
        return (x * x).sum(1).mean() + (y * y).sum(1).mean() - 2 * inner


@dataclass
class NeuralDualResult:
    """The trained potentials (the map is ``g.gradient``) and what was recorded every ``check_every`` outer steps."""
    f: ICNN
    g: ICNN
    steps: list[int] = field(default_factory=list)
    lam: list[float] = field(default_factory=list)
    loss_g: list[float] = field(default_factory=list)

    def map(self, x: Tensor) -> Tensor:
        """T(x) = grad g(x), without a graph."""
        return self.g.gradient(x).detach()


def train_neural_dual(x: Tensor, y: Tensor, f: ICNN, g: ICNN, *, steps: int, inner: int = 5, batch: int = 128,
                      lr: float = 1e-3, betas: tuple[float, float] = (0.5, 0.9), penalty: Penalty | None = None,
                      lam: float = 0.0, check_every: int = 0, on_check: Callable[[int, ICNN], float | None] | None = None,
                      generator: torch.Generator | None = None) -> NeuralDualResult:
    """Train (f, g) on the sample clouds x ~ mu, y ~ nu (rows) by the alternating scheme of the module docstring.

    ``steps`` outer iterations, each ``inner`` Adam steps on g (fresh minibatches of ``batch`` rows) and one on f.
    Every ``check_every`` outer steps (0: never) ``on_check(step, g)`` returns the new penalty weight lambda (the
    adaptive sparsity control of :class:`optrepro.ot.displacement_sparse.SparsityController`), and the step, lambda
    and the last L_g are recorded; ``on_check`` returning None stops the training there (the adaptive control
    has settled). ``f`` and ``g`` are trained in place and returned in the result.
    """
    steps, inner, batch = check_int("steps", steps, 1), check_int("inner", inner, 1), check_int("batch", batch, 1)
    lr, lam = check_positive("lr", lr), check_nonnegative("lam", lam)
    check_every = check_int("check_every", check_every, 0)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or x.shape[1] != g.dim or f.dim != g.dim:
        raise ValueError(f"invalid clouds {tuple(x.shape)}, {tuple(y.shape)} for potentials of dimension "
                         f"{f.dim}, {g.dim}: expected (n, d), (m, d) with the same d")
    opt_f = Adam(f.parameters(), lr=lr, betas=betas)
    opt_g = Adam(g.parameters(), lr=lr, betas=betas)
    result = NeuralDualResult(f, g)

    def draw(cloud: Tensor) -> Tensor:
        idx = torch.randint(cloud.shape[0], (min(batch, cloud.shape[0]),), generator=generator)
        return cloud[idx.to(cloud.device)]

    for step in range(1, steps + 1):
        for _ in range(inner):
            _, loss_g, _ = dual_losses(f, g, draw(x), draw(y), penalty, lam)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
        xb, yb = draw(x), draw(y)
        loss_f = f(yb).mean() - f(g.gradient(xb).detach()).mean()  # L_f; T(x) needs no graph here
        opt_f.zero_grad(set_to_none=True)
        loss_f.backward()
        opt_f.step()
        if check_every and step % check_every == 0:
            new = on_check(step, g) if on_check is not None else lam
            result.steps.append(step)
            result.lam.append(float(lam))
            result.loss_g.append(float(loss_g.detach()))
            if new is None:
                break
            lam = check_nonnegative("lam", new)
    return result
