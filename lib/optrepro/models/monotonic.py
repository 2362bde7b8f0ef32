r"""Constrained monotonic networks (Runje & Shankaranarayana, ICML 2023, arXiv:2205.11775) and their baseline.

**The monotone dense layer.** For an input :math:`x \in \mathbb R^d`, a monotonicity indicator
:math:`t \in \{-1, 0, 1\}^d` (increasing, free, decreasing in input :math:`i`) and a weight :math:`W \in \mathbb
R^{m\times d}`, the weight actually used is

.. math:: W^t_{ji} = |W_{ji}| \text{ if } t_i = 1,\quad -|W_{ji}| \text{ if } t_i = -1,\quad W_{ji} \text{ if } t_i = 0,

and :math:`h = W^t x + b`. The layer's output applies, to disjoint groups of the :math:`m` neurons (sizes
:math:`s = (\breve s, \hat s, \tilde s)`), a convex, non-decreasing, zero-centred activation :math:`\breve\rho`
(ReLU, ELU), its point reflection :math:`\hat\rho(x) = -\breve\rho(-x)` (concave) and its saturated version

.. math:: \tilde\rho(x) = \breve\rho(x + 1) - \breve\rho(1) \ (x < 0),\qquad \hat\rho(x - 1) + \breve\rho(1)\ (x \ge 0),

which is bounded, non-decreasing, convex left of 0 and concave right of it. Every activation is non-decreasing, so
a stack of such layers (indicator :math:`t` on the first, all ones after it, a linear last layer) is monotone in
each input in the direction :math:`t` asks, for every value of the parameters.

**The baseline and its limit.** A network with only non-negative weights (after the first layer's signs) and a
convex non-decreasing activation such as ReLU is a sum of non-negative multiples of convex non-decreasing functions
of convex functions, so it is **convex** (and monotone): it cannot fit a monotone concave or sigmoid-shaped target.
This is the paper's case for :math:`\hat\rho` and :math:`\tilde\rho`. Its training error is therefore at least the
error of the best convex monotone fit of the data (:func:`convex_monotone_floor`, convex regression, cvxpy).

* :class:`MonotoneDense` -- the layer; :func:`monotonic_mlp` -- the paper's type-1 network;
  :func:`sign_constrained_relu_mlp` -- the baseline (same layer, ReLU, convex units only);
  :func:`unconstrained_mlp` -- a plain MLP; :func:`fit` -- full-batch Adam on the mean squared error;
  :func:`max_decrease` -- the largest decrease of a model along an ordered grid; the synthetic monotone
  non-convex targets of the notebook are :mod:`optrepro.data.monotone_targets`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int, check_nonnegative, check_positive
from ..train import fit as train
from .mlp import mlp
from ..optim import Adam
from ..metrics.monotonicity import max_decrease

__all__ = [
    "ACTIVATIONS",
    "METHODS",
    "OPTIMIZERS",
    "FitResult",
    "MonotoneDense",
    "concave",
    "convex_monotone_floor",
    "fit",
    "max_decrease",
    "monotonic_mlp",
    "saturated",
    "sign_constrained_relu_mlp",
    "split_units",
    "unconstrained_mlp",
]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "elu": F.elu}


def _activation(name: str) -> Callable[[Tensor], Tensor]:
    if name not in ACTIVATIONS:
        raise ValueError(f"invalid activation {name!r}: expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def concave(rho: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    r"""The point reflection :math:`\hat\rho(x) = -\rho(-x)` of a convex activation (concave, non-decreasing)."""
    return lambda x: -rho(-x)


def saturated(rho: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    r"""The saturated activation :math:`\tilde\rho` built from :math:`\rho` and :math:`\hat\rho` (bounded if
    :math:`\rho` is lower-bounded): :math:`\rho(x+1) - \rho(1)` for :math:`x < 0`, :math:`\hat\rho(x-1) + \rho(1)`
    for :math:`x \ge 0`."""
    def rho_tilde(x: Tensor) -> Tensor:
        one = torch.ones((), dtype=x.dtype, device=x.device)
        r1 = rho(one)
        return torch.where(x < 0, rho(x + 1) - r1, -rho(1 - x) + r1)
    return rho_tilde


def split_units(units: int, weights: Sequence[float]) -> tuple[int, int, int]:
    """Neurons given to the convex, concave and saturated activations, in proportion to ``weights`` (three
    non-negative numbers, not all zero); the rounding remainder goes to the groups in order."""
    units = check_int("units", units, 1)
    if len(weights) != 3:
        raise ValueError(f"invalid activation_weights {tuple(weights)!r}: expected three numbers "
                         "(convex, concave, saturated)")
    w = [check_nonnegative("activation_weights", float(v)) for v in weights]
    if sum(w) == 0:
        raise ValueError(f"invalid activation_weights {tuple(weights)!r}: expected at least one positive weight")
    counts = [math.floor(units * v / sum(w)) for v in w]
    for i in range(units - sum(counts)):               # hand out the remainder to the groups with positive weight
        counts[[j for j in range(3) if w[j] > 0][i % sum(v > 0 for v in w)]] += 1
    return counts[0], counts[1], counts[2]


def _indicator(indicator: int | Sequence[int], in_features: int) -> Tensor:
    t = torch.as_tensor([indicator] * in_features if isinstance(indicator, int) else list(indicator))
    if t.shape != (in_features,) or not bool(((t == -1) | (t == 0) | (t == 1)).all()):
        raise ValueError(f"invalid monotonicity_indicator {indicator!r}: expected -1, 0 or 1, or a sequence of "
                         f"{in_features} of them")
    return t.to(torch.int8)


class MonotoneDense(nn.Module):
    r"""The constrained monotone dense layer: :math:`y = \rho_s(W^t x + b)` (see the module docstring).

    ``activation=None`` gives the linear layer :math:`W^t x + b` (a network's last layer);
    ``activation_weights`` sets the shares :math:`s` of convex, concave and saturated neurons
    (``(1, 0, 0)``: convex units only, the sign-constrained baseline)."""

    def __init__(self, in_features: int, out_features: int, monotonicity_indicator: int | Sequence[int] = 1,
                 activation: str | None = "elu", activation_weights: Sequence[float] = (1.0, 1.0, 1.0)):
        super().__init__()
        self.in_features = check_int("in_features", in_features, 1)
        self.out_features = check_int("out_features", out_features, 1)
        self.register_buffer("indicator", _indicator(monotonicity_indicator, in_features))
        self.activation = activation
        if activation is None:
            self.counts = (0, 0, 0)
        else:
            rho = _activation(activation)
            self.counts = split_units(out_features, activation_weights)
            self._rhos = (rho, concave(rho), saturated(rho))
        self.linear = nn.Linear(in_features, out_features)   # PyTorch's default initialization

    def constrained_weight(self) -> Tensor:
        """:math:`W^t`: ``|W|`` on increasing inputs, ``-|W|`` on decreasing ones, ``W`` on free ones."""
        W, t = self.linear.weight, self.indicator.to(self.linear.weight.dtype)
        return torch.where(t == 0, W, t * W.abs())

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"invalid input shape {tuple(x.shape)}: expected (..., {self.in_features})")
        h = F.linear(x, self.constrained_weight(), self.linear.bias)
        if self.activation is None:
            return h
        parts = torch.split(h, list(self.counts), dim=-1)
        return torch.cat([rho(p) for rho, p in zip(self._rhos, parts)], dim=-1)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"activation={self.activation}, units(convex, concave, saturated)={self.counts}")


def monotonic_mlp(in_features: int, hidden: int, layers: int, monotonicity_indicator: int | Sequence[int] = 1,
                  activation: str = "elu", activation_weights: Sequence[float] = (1.0, 1.0, 1.0)) -> nn.Sequential:
    """The paper's type-1 constrained monotonic network: ``layers`` monotone dense layers of width ``hidden``
    (indicator ``monotonicity_indicator`` on the first, all ones after it) and a linear monotone output layer."""
    layers = check_int("layers", layers, 1)
    mods = [MonotoneDense(in_features, hidden, monotonicity_indicator, activation, activation_weights)]
    mods += [MonotoneDense(hidden, hidden, 1, activation, activation_weights) for _ in range(layers - 1)]
    mods.append(MonotoneDense(hidden, 1, 1, None))
    return nn.Sequential(*mods)


def sign_constrained_relu_mlp(in_features: int, hidden: int, layers: int,
                              monotonicity_indicator: int | Sequence[int] = 1) -> nn.Sequential:
    """The baseline: the same network with ReLU on every neuron (convex units only), so non-negative weights after
    the first layer's signs and a convex activation: monotone, and convex in its inputs."""
    return monotonic_mlp(in_features, hidden, layers, monotonicity_indicator, "relu", (1.0, 0.0, 0.0))


def unconstrained_mlp(in_features: int, hidden: int, layers: int, activation: str = "elu") -> nn.Sequential:
    """A plain MLP of the same shape (no sign constraints, :func:`optrepro.models.mlp.mlp`): the unconstrained
    reference."""
    check_int("in_features", in_features, 1), check_int("hidden", hidden, 1)
    _activation(activation)
    return mlp(in_features, hidden, 1, depth=check_int("layers", layers, 1), activation=activation)


@dataclass
class FitResult:
    loss: np.ndarray       # mean squared error at each evaluation (Adam: before each step)
    final: float           # mean squared error at the end


OPTIMIZERS = ("adam", "lbfgs")


def fit(model: nn.Module, X: Tensor, y: Tensor, steps: int, lr: float, optimizer: str = "adam") -> FitResult:
    """Full-batch training on the mean squared error ``mean((model(X)[:, 0] - y)^2)``: ``steps`` steps of
    ``torch.optim.Adam`` (:func:`optrepro.train.fit`), or ``steps`` iterations of ``torch.optim.LBFGS`` (strong Wolfe line search; ``lr`` is its
    initial step, 1 as usual)."""
    steps, lr = check_int("steps", steps, 1), check_positive("lr", lr)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"invalid optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"invalid shapes X {tuple(X.shape)}, y {tuple(y.shape)}: expected (n, d) and (n,)")
    hist: list[float] = []

    def closure():   # L-BFGS evaluates it several times a step (its line search): each evaluation is recorded
        opt.zero_grad(set_to_none=True)
        loss = ((model(X)[:, 0] - y) ** 2).mean()
        loss.backward()
        hist.append(float(loss.detach()))
        return loss

    if optimizer == "adam":
        hist = train(lambda k: ((model(X)[:, 0] - y) ** 2).mean(), Adam(model.parameters(), lr=lr), steps,
                     stop_on_nonfinite=False).loss
    else:
        opt = torch.optim.LBFGS(model.parameters(), lr=lr, max_iter=steps, history_size=50,
                                tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
        opt.step(closure)
    with torch.no_grad():
        final = float(((model(X)[:, 0] - y) ** 2).mean())
    return FitResult(np.asarray(hist), final)


METHODS = ("auto", "pairwise", "chain")


def convex_monotone_floor(X: np.ndarray, y: np.ndarray, method: str = "auto") -> float:
    r"""The smallest mean squared error of a convex function, non-decreasing in every input, on the data ``(X, y)``:

    .. math:: \min_{f, g}\ \tfrac1n\sum_i (f_i - y_i)^2 \quad\text{s.t.}\quad f_j \ge f_i + g_i^\top(x_j - x_i),\ g_i \ge 0,

    (convex regression; the constraints say that some convex non-decreasing function takes the values :math:`f_i`,
    with subgradients :math:`g_i`). Any network that is convex and non-decreasing in its inputs has a training error
    at least this large. ``method="pairwise"`` states the :math:`n^2` constraints above; ``"chain"`` (1-D only, the
    default there) the equivalent :math:`O(n)` ones on the sorted points: consecutive slopes non-decreasing and the
    first one :math:`\ge 0`. Solved with cvxpy (Clarabel)."""
    import cvxpy as cp

    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"invalid shapes X {X.shape}, y {y.shape}: expected (n, d) and (n,)")
    if method not in METHODS:
        raise ValueError(f"invalid method {method!r}: expected one of {', '.join(METHODS)}")
    n, d = X.shape
    if method == "chain" and d != 1:
        raise ValueError(f"invalid method 'chain' for d = {d}: expected d = 1 (or method auto or pairwise)")
    f = cp.Variable(n)
    if d == 1 and method != "pairwise":
        order = np.argsort(X[:, 0], kind="stable")
        x, y = X[order, 0], y[order]
        slopes = cp.multiply(cp.diff(f), 1.0 / np.maximum(np.diff(x), 1e-12))   # ties: forced equal values
        cons = [slopes[0] >= 0, cp.diff(slopes) >= 0] if n > 2 else [slopes >= 0]
        tied = np.flatnonzero(np.diff(x) <= 1e-12)
        if len(tied):
            cons.append(cp.diff(f)[tied] == 0)
    else:
        g = cp.Variable((n, d))
        # row i, column j: f_j - f_i - g_i . (x_j - x_i) >= 0
        lin = g @ X.T - cp.reshape(cp.sum(cp.multiply(g, X), axis=1), (n, 1), order="F") @ np.ones((1, n))
        cons = [np.ones((n, 1)) @ cp.reshape(f, (1, n), order="F")
                - cp.reshape(f, (n, 1), order="F") @ np.ones((1, n)) - lin >= 0, g >= 0]
    prob = cp.Problem(cp.Minimize(cp.sum_squares(f - y) / n), cons)
    prob.solve(solver=cp.CLARABEL)
    return float(prob.value)
