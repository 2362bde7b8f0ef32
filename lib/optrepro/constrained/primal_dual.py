r"""Primal-dual (dual ascent) constrained learning and the final iterate's constraint violation.

Reference: J. Elenter, L. F. O. Chamon, A. Ribeiro. "Near-Optimal Solutions of Constrained Learning Problems",
ICLR 2024, arXiv:2403.11844.

The constrained learning problem over a parametrized model :math:`f_\theta`, with constraint levels :math:`c`,

.. math::
    P^\star = \min_\theta\ \ell_0(f_\theta) \quad\text{s.t.}\quad \ell_i(f_\theta) \le c_i,\ i = 1..m,

is solved through its Lagrangian :math:`L(\theta, \lambda) = \ell_0(f_\theta) + \lambda^\top(\ell(f_\theta) - c)`
and the dual problem :math:`D^\star = \max_{\lambda \ge 0} \min_\theta L(\theta, \lambda)`. **Dual ascent**
(the paper's Algorithm 1) alternates an (approximate) Lagrangian minimization in :math:`\theta` with a projected
supergradient step on the duals,

.. math::
    \theta_{t+1} \approx \arg\min_\theta L(\theta, \lambda_t)\ \ (\text{k gradient steps}),\qquad
    \lambda_{t+1} = \big[\lambda_t + \eta_\lambda\,(\ell(f_{\theta_{t+1}}) - c)\big]_+ .

The dual iterates converge, but the primal iterates need not be feasible: classical guarantees hold only for a
predictor *randomized* over all iterates. The paper shows that the Lagrangian minimizer at the optimal dual is
nonetheless near-feasible, with a violation bounded by terms that vanish as the parametrization gets richer
(closer to the convex functional problem, whose Lagrangian minimizer is unique and feasible). This module gives the
generic loop (:func:`primal_dual`) and its pieces (:func:`lagrangian`, :func:`project_duals`, :func:`dual_step`,
:func:`violation`). The paper's fairness experiment (a width sweep under a demographic-parity constraint) is in
:mod:`optrepro.papers.constrained_learning_dual_feasibility`, its data in :mod:`optrepro.data.fairness` and the
constraint in :mod:`optrepro.metrics.fairness`.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from optrepro.checks import check_choice, check_int, check_positive
from optrepro.optim import SGD, Adam
from optrepro.threads import one_cpu_thread_if

__all__ = ["PrimalDualResult", "lagrangian", "project_duals", "dual_step", "violation", "primal_dual"]

OPTIMIZERS = ("sgd", "adam")


def lagrangian(objective: torch.Tensor, constraints: torch.Tensor, duals: torch.Tensor) -> torch.Tensor:
    r""":math:`L = \ell_0 + \lambda^\top s` with the slacks ``constraints`` :math:`s = \ell(f) - c` (shape ``(m,)``).

    A batch of K independent problems (``objective`` of shape ``(K,)``, slacks and duals ``(K, m)``) gives the sum of
    their Lagrangians: its gradient in each problem's own parameters is that problem's Lagrangian gradient.
    """
    if constraints.shape != duals.shape:
        raise ValueError(f"invalid duals shape {tuple(duals.shape)}: expected the constraints' shape "
                         f"{tuple(constraints.shape)}")
    return objective + (duals * constraints).sum()


def project_duals(duals: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the nonnegative orthant: ``max(duals, 0)``."""
    return duals.clamp_min(0.0)


def dual_step(duals: torch.Tensor, slacks: torch.Tensor, lr: float) -> torch.Tensor:
    r"""Projected dual ascent :math:`[\lambda + \eta\, s]_+` (``s``: the constraint slacks, a supergradient)."""
    lr = check_positive("dual_lr", lr)
    if slacks.shape != duals.shape:
        raise ValueError(f"invalid slacks shape {tuple(slacks.shape)}: expected the duals' shape {tuple(duals.shape)}")
    return project_duals(duals + lr * slacks)


def violation(slacks: torch.Tensor | np.ndarray) -> np.ndarray:
    """Constraint violation ``max(slack, 0)``, elementwise (any shape)."""
    return np.maximum(np.asarray(torch.as_tensor(slacks).detach().cpu()), 0.0)


@dataclass
class PrimalDualResult:
    """Traces over the dual iterations t = 0..T-1 (evaluated at the primal iterate after the t-th primal phase)."""
    objective: np.ndarray     # (T,)   l_0(theta_t)            (T, K) for a batch of K problems
    slacks: np.ndarray        # (T, m) l(theta_t) - c          (T, K, m)
    duals: np.ndarray         # (T, m) lambda_t used in the t-th primal phase
    final_duals: np.ndarray   # (m,)   lambda_T                (K, m)
    model: nn.Module          # the final (last) primal iterate

    @property
    def final_violation(self) -> float | np.ndarray:
        """Largest violation ``max_i max(s_i, 0)`` of the last primal iterate (one per problem for a batch)."""
        v = violation(self.slacks[-1]).max(-1)
        return float(v) if v.ndim == 0 else v


def primal_dual(model: nn.Module, losses: Callable[[nn.Module], tuple[torch.Tensor, torch.Tensor]], levels, *,
                steps: int, primal_lr: float, dual_lr: float, primal_steps: int = 1, optimizer: str = "adam",
                duals: torch.Tensor | None = None) -> PrimalDualResult:
    r"""Dual ascent on :math:`L(\theta, \lambda)`: ``primal_steps`` gradient steps in :math:`\theta` (SGD or Adam,
    full batch) at fixed :math:`\lambda_t`, then :math:`\lambda_{t+1} = [\lambda_t + \eta_\lambda(\ell(\theta) - c)]_+`
    with the constraints at the last primal phase's iterate; ``steps`` dual iterations.

    ``losses(model)`` returns ``(objective, constraints)``: a scalar and the ``(m,)`` constraint values; ``levels``
    the ``(m,)`` levels :math:`c`. A batch of K independent problems sharing one model object (e.g.
    :class:`WidthEnsemble`) returns ``(K,)`` objectives and ``(K, m)`` constraints, with one dual vector each.
    The traces hold the values at the iterate each dual step used; ``slacks[-1]`` is recomputed at the final
    iterate. Returns the traces and the final primal iterate (the model, trained in place).
    """
    steps = check_int("steps", steps, 1)
    primal_steps = check_int("primal_steps", primal_steps, 1)
    primal_lr = check_positive("primal_lr", primal_lr)
    dual_lr = check_positive("dual_lr", dual_lr)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    params = list(model.parameters())
    if not params:
        raise ValueError("invalid model: it has no parameters to train")
    device, dtype = params[0].device, params[0].dtype
    c = torch.as_tensor(levels, device=device, dtype=dtype)
    c = c.reshape(-1) if c.ndim <= 1 else c   # (m,), or one row of levels per problem of a batch
    with torch.no_grad():
        shape = losses(model)[1].shape
    if shape[-1:] != c.shape[-1:] or (c.ndim > 1 and c.shape != shape):
        raise ValueError(f"invalid constraints output shape {tuple(shape)}: expected (..., {c.shape[-1]}), one per level")
    lam = (torch.zeros(shape, device=device, dtype=dtype) if duals is None
           else torch.as_tensor(duals, device=device, dtype=dtype).clone())
    if lam.shape != shape:
        raise ValueError(f"invalid duals shape {tuple(lam.shape)}: expected the constraints' shape {tuple(shape)}")
    if (lam < 0).any():
        raise ValueError(f"invalid duals {lam.tolist()}: expected nonnegative initial duals")
    opt = SGD(params, lr=primal_lr) if optimizer == "sgd" else Adam(params, lr=primal_lr)
    obj_tr, slack_tr, dual_tr = [], [], []
    small = sum(p.numel() for p in params) < 200_000
    with one_cpu_thread_if(small, device):
        for t in range(steps):
            dual_tr.append(lam)
            for _ in range(primal_steps):
                opt.zero_grad(set_to_none=True)
                f0, g = losses(model)
                s = g.detach() - c
                lagrangian(f0.sum(), g - c, lam).backward()
                opt.step()
            if primal_steps == 1 and t:  # gradient descent-ascent: f0, s are at the iterate of the previous phase
                obj_tr.append(f0.detach())
                slack_tr.append(s)
            if primal_steps > 1 or t == steps - 1:  # the values at the iterate this phase produced
                with torch.no_grad():
                    f0, g = losses(model)
                    s = g - c
                obj_tr.append(f0)
                slack_tr.append(s)
            lam = dual_step(lam, s, dual_lr)
    as_np = lambda xs: torch.stack(xs).cpu().numpy()  # noqa: E731
    return PrimalDualResult(as_np(obj_tr), as_np(slack_tr), as_np(dual_tr), lam.cpu().numpy(), model)


