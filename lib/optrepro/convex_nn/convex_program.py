r"""The convex program of a two-layer ReLU network with weight decay, its cvxpy reference, and the network it encodes.

References: M. Pilanci, T. Ergen. "Neural Networks are Convex Regularizers." ICML 2020 (the program); Y. Bai,
T. Gautam, S. Sojoudi. "Efficient Global Optimization of Two-layer ReLU Networks: Quadratic-time Algorithms and
Adversarial Training." SIAM J. Math. Data Sci. 2023, arXiv:2201.01965 (the setting solved by its ADMM).

**Non-convex problem.** A width-``m`` network :math:`f(x) = \sum_{j=1}^m (x^\top u_j)_+\,\alpha_j` trained with
weight decay :math:`\beta`:

.. math:: \min_{U, \alpha}\ \ell\Big(\sum_{j=1}^m (Xu_j)_+\alpha_j,\ y\Big)
          + \frac\beta2\sum_{j=1}^m\big(\|u_j\|_2^2 + \alpha_j^2\big).

**Convex program** over the activation patterns :math:`D_1..D_P` (:mod:`.arrangements`):

.. math:: \min_{v_i, w_i}\ \ell\Big(\sum_{i=1}^P D_iX(v_i - w_i),\ y\Big) + \beta\sum_{i=1}^P\big(\|v_i\|_2 + \|w_i\|_2\big)
          \quad\text{s.t.}\quad (2D_i - I)Xv_i \ge 0,\ (2D_i - I)Xw_i \ge 0.

The cone constraints make :math:`D_iXv_i = (Xv_i)_+`. With *all* patterns and :math:`m \ge m^\star` (the number of
nonzero :math:`v_i, w_i` at a solution) both optima are equal (Pilanci & Ergen, Theorem 1); with sampled patterns
the convex optimum is that of the network restricted to those patterns, an upper bound.

**Recovery** (:func:`recover_network`): each nonzero :math:`v_i` gives a neuron
:math:`u = v_i/\sqrt{\|v_i\|}`, :math:`\alpha = \sqrt{\|v_i\|}`, each nonzero :math:`w_i` one with
:math:`\alpha = -\sqrt{\|w_i\|}`. Then :math:`(Xu)_+\alpha = D_iXv_i` and
:math:`\frac\beta2(\|u\|^2 + \alpha^2) = \beta\|v_i\|`: the network's objective equals the convex one.

**Losses** (:data:`LOSSES`): ``squared`` :math:`\ell(\hat y, y) = \frac12\|\hat y - y\|_2^2`; ``logistic`` (binary
cross-entropy with labels :math:`y \in \{-1, +1\}`) :math:`\ell(\hat y, y) = \sum_j \log(1 + e^{-y_j\hat y_j})`.
Tensors: ``X`` ``(n, d)``, ``y`` ``(n,)``, patterns ``D`` boolean ``(P, n)``, ``V``, ``W`` ``(P, d)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..checks import check_choice, check_nonnegative

__all__ = [
    "LOSSES",
    "ConvexSolution",
    "ReLUNetwork",
    "cone_violation",
    "convex_objective",
    "convex_predict",
    "loss_value",
    "network_objective",
    "network_predict",
    "recover_network",
    "solve_cvxpy",
]

LOSSES = ("squared", "logistic")


def check_loss(loss: str) -> str:
    return check_choice("loss", loss, LOSSES)


def loss_value(pred: Tensor, y: Tensor, loss: str = "squared") -> Tensor:
    """:math:`\\ell(\\hat y, y)` summed over samples (batched over leading dimensions of ``pred``)."""
    check_loss(loss)
    if loss == "squared":
        return 0.5 * ((pred - y) ** 2).sum(-1)
    return torch.nn.functional.softplus(-y * pred).sum(-1)


def convex_predict(X: Tensor, D: Tensor, V: Tensor, W: Tensor) -> Tensor:
    """:math:`\\sum_i D_iX(v_i - w_i)`, shape ``(n,)``."""
    return (D.to(X.dtype) * ((V - W) @ X.T)).sum(0)


def convex_objective(X: Tensor, y: Tensor, D: Tensor, V: Tensor, W: Tensor, beta: float, loss: str = "squared") -> float:
    """The convex program's objective at ``(V, W)`` (cone constraints not checked: see :func:`cone_violation`)."""
    beta = check_nonnegative("beta", beta)
    reg = V.norm(dim=1).sum() + W.norm(dim=1).sum()
    return float(loss_value(convex_predict(X, D, V, W), y, loss) + beta * reg)


def cone_violation(X: Tensor, D: Tensor, V: Tensor, W: Tensor) -> float:
    """Largest violation :math:`\\max(0, -[(2D_i - I)Xv_i]_j)` over every constraint (0 when feasible)."""
    sign = 2 * D.to(X.dtype) - 1
    worst = torch.cat([(-(sign * (V @ X.T))).flatten(), (-(sign * (W @ X.T))).flatten()]).max()
    return max(float(worst), 0.0)


@dataclass
class ConvexSolution:
    V: Tensor          # (P, d)
    W: Tensor          # (P, d)
    value: float       # optimal objective
    seconds: float     # solver wall time


def solve_cvxpy(X: Tensor, y: Tensor, D: Tensor, beta: float, loss: str = "squared", solver: str | None = None,
                clock=None, **solver_options) -> ConvexSolution:
    """The convex program solved exactly by cvxpy (the reference optimum; Clarabel by default).

    ``seconds`` is the time of ``problem.solve`` (compilation and solver) read on ``clock`` (wall time by default,
    see :mod:`optrepro.timing`).
    """
    import time

    import cvxpy as cp

    beta = check_nonnegative("beta", beta)
    check_loss(loss)
    Xn, yn = X.detach().cpu().double().numpy(), y.detach().cpu().double().numpy()
    Dn = D.detach().cpu().numpy().astype(float)
    P, d = Dn.shape[0], Xn.shape[1]
    V, W = cp.Variable((d, P)), cp.Variable((d, P))
    XV, XW = Xn @ V, Xn @ W                             # (n, P)
    pred = cp.sum(cp.multiply(Dn.T, XV - XW), axis=1)
    S = 2 * Dn.T - 1
    fit = 0.5 * cp.sum_squares(pred - yn) if loss == "squared" else cp.sum(cp.logistic(-cp.multiply(yn, pred)))
    problem = cp.Problem(cp.Minimize(fit + beta * (cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(W, 2, axis=0)))),
                         [cp.multiply(S, XV) >= 0, cp.multiply(S, XW) >= 0])
    clock = clock or time.perf_counter
    start = clock()
    problem.solve(solver=solver or cp.CLARABEL, **solver_options)
    seconds = clock() - start
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"cvxpy returned status {problem.status!r}")
    as_t = lambda A: torch.as_tensor(np.ascontiguousarray(A.value.T), dtype=X.dtype, device=X.device)
    return ConvexSolution(as_t(V), as_t(W), float(problem.value), seconds)


@dataclass
class ReLUNetwork:
    """:math:`f(x) = \\sum_j (x^\\top u_j)_+\\alpha_j`: hidden weights ``U`` ``(m, d)``, output weights ``alpha`` ``(m,)``."""
    U: Tensor
    alpha: Tensor

    @property
    def width(self) -> int:
        return int(self.U.shape[0])


def recover_network(V: Tensor, W: Tensor, tol: float = 1e-9) -> ReLUNetwork:
    """The two-layer ReLU network encoded by a convex solution: one neuron per group with norm above ``tol``."""
    tol = check_nonnegative("tol", tol)
    nv, nw = V.norm(dim=1), W.norm(dim=1)
    keep_v, keep_w = nv > tol, nw > tol
    U = torch.cat([V[keep_v] / nv[keep_v, None].sqrt(), W[keep_w] / nw[keep_w, None].sqrt()])
    alpha = torch.cat([nv[keep_v].sqrt(), -nw[keep_w].sqrt()])
    return ReLUNetwork(U, alpha)


def network_predict(X: Tensor, net: ReLUNetwork) -> Tensor:
    """:math:`\\sum_j (Xu_j)_+\\alpha_j`."""
    return torch.relu(X @ net.U.T) @ net.alpha


def network_objective(X: Tensor, y: Tensor, net: ReLUNetwork, beta: float, loss: str = "squared") -> float:
    """The non-convex objective :math:`\\ell + \\frac\\beta2\\sum_j(\\|u_j\\|^2 + \\alpha_j^2)`."""
    beta = check_nonnegative("beta", beta)
    return float(loss_value(network_predict(X, net), y, loss) + 0.5 * beta * ((net.U ** 2).sum() + (net.alpha ** 2).sum()))
