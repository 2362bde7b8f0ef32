r"""Input-convex neural network (Amos, Xu, Kolter; ICML 2017, arXiv:1609.07152).

.. math::

    z_1 = g(H_1 y + b_1),\qquad z_{k+1} = g(W_k z_k + H_{k+1} y + b_{k+1}),\qquad
    \psi_\theta(y) = w^\top z_L + a^\top y + c + \tfrac{\alpha}{2}\|y\|^2,

with :math:`W_k \ge 0`, :math:`w \ge 0` elementwise (parameterized as :math:`W = \mathrm{softplus}(V)`) and
:math:`g` convex and non-decreasing (softplus with sharpness :math:`\beta`): :math:`\psi_\theta` is convex in
:math:`y`, strongly convex when :math:`\alpha > 0`, and its gradient :math:`\nabla\psi_\theta` (:meth:`ICNN.gradient`)
is a monotone map -- a proximal operator (learned proximal networks, :mod:`.proximal_network`) or a Brenier
optimal-transport map (Makkuva et al. 2020; neural OT notebooks).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int, check_nonnegative, check_positive

__all__ = ["ICNN"]


class ICNN(nn.Module):
    r"""Input-convex network :math:`\psi_\theta: \mathbb R^d \to \mathbb R` (one value per row of the input).

    ``hidden`` units per layer, ``layers`` hidden layers, softplus activation with sharpness ``beta``, weights on
    the :math:`z` path made non-negative by ``softplus`` of a free parameter, and ``alpha`` the weight of the
    strongly convex term :math:`\frac\alpha2\|y\|^2`.
    """

    def __init__(self, dim: int = 1, hidden: int = 32, layers: int = 2, beta: float = 10.0, alpha: float = 0.0):
        super().__init__()
        self.dim = check_int("dim", dim, 1)
        hidden = check_int("hidden", hidden, 1)
        self.layers = check_int("layers", layers, 1)
        self.beta = check_positive("beta", beta)
        self.alpha = check_nonnegative("alpha", alpha)
        # H_k y + b_k: the unconstrained input ("skip") paths, one per hidden layer
        self.skip = nn.ModuleList([nn.Linear(dim, hidden) for _ in range(self.layers)])
        # W_k = softplus(V_k) >= 0 for k = 1..L-1, and the output weights w = softplus(v) >= 0
        self.z_raw = nn.ParameterList([nn.Parameter(torch.empty(hidden, hidden)) for _ in range(self.layers - 1)])
        self.out_raw = nn.Parameter(torch.empty(1, hidden))
        self.out_skip = nn.Linear(dim, 1)
        with torch.no_grad():
            for v in self.z_raw:  # softplus(V) about 1/hidden on average: a stable scale at initialization
                v.normal_(math.log(math.expm1(1.0 / hidden)), 0.5)
            self.out_raw.normal_(math.log(math.expm1(1.0 / hidden)), 0.5)

    def nonneg_weights(self) -> list[Tensor]:
        """The :math:`z`-path weights actually used, :math:`W_1..W_{L-1}` then :math:`w` (all :math:`\\ge 0`)."""
        return [F.softplus(v) for v in self.z_raw] + [F.softplus(self.out_raw)]

    def forward(self, y: Tensor) -> Tensor:
        if y.ndim != 2 or y.shape[1] != self.dim:
            raise ValueError(f"invalid input shape {tuple(y.shape)}: expected (batch, {self.dim})")
        act = lambda h: F.softplus(h, beta=self.beta)  # convex, non-decreasing
        weights = self.nonneg_weights()
        z = act(self.skip[0](y))
        for W, skip in zip(weights[:-1], self.skip[1:]):
            z = act(z @ W.T + skip(y))
        psi = z @ weights[-1].T + self.out_skip(y)
        if self.alpha:
            psi = psi + 0.5 * self.alpha * (y * y).sum(1, keepdim=True)
        return psi[:, 0]

    def gradient(self, y: Tensor, create_graph: bool = False) -> Tensor:
        r"""The input gradient :math:`\nabla\psi_\theta(y)` row by row (a monotone map; the Brenier map when
        :math:`\psi_\theta` is an OT potential). ``create_graph=True`` keeps the graph so a loss on it trains."""
        with torch.enable_grad():
            y = y if y.requires_grad else y.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self(y).sum(), y, create_graph=create_graph)
        return grad
