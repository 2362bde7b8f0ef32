r"""The unconstrained feature model (UFM) with a deep linear head (Dang et al., ICML 2023).

Model. K classes with n_1, ..., n_K samples (N = sum_k n_k). The features of the samples are free parameters,
the columns of :math:`H_1 \in \mathbb R^{d\times N}`, fed to M linear layers
:math:`W_1, \dots, W_{M-1} \in \mathbb R^{d\times d}` and :math:`W_M \in \mathbb R^{K\times d}`, with an optional
last-layer bias :math:`b \in \mathbb R^K` (not regularised). With one-hot targets :math:`Y \in \mathbb R^{K\times N}`
the training problem is

.. math::
    \min_{W_M,\dots,W_1,H_1,b}\ \frac{1}{2N}\big\|W_M\cdots W_1 H_1 + b\mathbf 1_N^\top - Y\big\|_F^2
    + \sum_{j=1}^{M}\frac{\lambda_{W_j}}{2}\|W_j\|_F^2 + \frac{\lambda_{H}}{2}\|H_1\|_F^2

(MSE; ``loss="ce"`` replaces the first term by the mean cross-entropy of the logits), solved here by full-batch
gradient descent with heavy-ball momentum (the update of ``torch.optim.SGD``, which the paper's synthetic experiments
use) on any device. The features seen by layer m are :math:`H_m = W_{m-1}\cdots W_1 H_1` (m = 1..M) and the
classifier acting on them is :math:`W_M \cdots W_m`; :func:`layer_features` and :func:`layer_classifiers` return
both, in the (N, d) / (K, d) layout of :mod:`optrepro.metrics.neural_collapse`.

What the paper proves about the global minimisers (d >= K):

* balanced data, MSE, no bias: every H_m collapses to its class means, the class means of every layer form an
  orthogonal frame (OF) of equal lengths, so do the classifier rows :math:`W_M\cdots W_m`, and the two are aligned
  (self-duality); with a last-layer bias: the same with a simplex ETF;
* imbalanced data, MSE, no bias: collapse, and orthogonal class means whose lengths depend on n_k. With
  :math:`\lambda = \prod_j \lambda_{W_j}` (:math:`\lambda_W^M` for equal decays; only the product matters) let

  .. math:: \beta = M N \big(N \lambda_H \lambda\big)^{1/M},\qquad
            x_k = \text{the largest positive root of}\ \ \frac{\beta}{n_k} = \frac{M x^{M-1}}{(x^M+1)^2}

  (x_k = 0 when there is none: that class's mean is zero, "minority collapse"). Then
  :math:`s_k^{2M} = N\lambda_H x_k^M` are the squared lengths of the rows of :math:`W_M\cdots W_1`, and the class
  means of H_1 are orthogonal with

  .. math:: \|\bar h_k\|^2 = \frac{s_k^{2M}}{(s_k^{2M} + N\lambda_H)^2} = \frac{x_k^M}{N\lambda_H (x_k^M+1)^2},
            \qquad (W_M\cdots W_1 \bar h_k)_k = p_k = \frac{x_k^M}{x_k^M + 1}.

  :func:`imbalanced_collapse` evaluates this (the form the paper's code evaluates), checks the root against the
  zero solution (for M >= 2 the per-class problem is not convex), and, from the balancedness of every critical
  point, :math:`\lambda_{W_{j+1}} W_{j+1}^\top W_{j+1} = \lambda_{W_j} W_j W_j^\top` and
  :math:`\lambda_{W_1} W_1^\top W_1 = \lambda_H H_1 H_1^\top`, gives the class-mean lengths at every layer.
  Balanced data is the special case n_k = n.

Reference: H. Dang, T. Tran, S. Osher, H. Tran-The, N. Ho, T. Nguyen. "Neural Collapse in Deep Linear Networks:
From Balanced to Imbalanced Data." ICML 2023, arXiv:2301.00437.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int, check_nonnegative, check_positive
from ..optim import sgd_step
from ..train import fit as train

__all__ = [
    "LOSSES",
    "DeepLinearUFM",
    "UFMTrace",
    "train_ufm",
    "layer_features",
    "layer_classifiers",
    "CollapsePrediction",
    "imbalanced_collapse",
]

LOSSES = ("mse", "ce")


# --------------------------------------------------------------------------------------------- validation


def _class_sizes(class_sizes: Any) -> list[int]:
    sizes = list(class_sizes) if isinstance(class_sizes, (Sequence, np.ndarray, Tensor)) else None
    if not sizes or len(sizes) < 2:
        raise ValueError(f"invalid class_sizes {class_sizes!r}: expected a list of at least 2 class sizes n_k >= 1")
    return [check_int("class size", int(n) if isinstance(n, (np.integer, Tensor)) else n, 1) for n in sizes]


def _weight_decays(weight_decay: Any, depth: int) -> list[float]:
    if isinstance(weight_decay, (Sequence, np.ndarray)) and not isinstance(weight_decay, str):
        decays = [check_nonnegative("weight_decay", w) for w in weight_decay]
        if len(decays) != depth:
            raise ValueError(f"invalid weight_decay {list(weight_decay)!r}: expected one number or {depth} "
                             f"(one per layer W_1..W_{depth})")
        return decays
    return [check_nonnegative("weight_decay", weight_decay)] * depth


# --------------------------------------------------------------------------------------------- the model

class DeepLinearUFM(nn.Module):
    """Free features H_1 (d x N) under M linear layers W_1 (d x d), ..., W_M (K x d) and an optional bias.

    Args:
        class_sizes: n_1, ..., n_K (samples per class); labels are 0..K-1 in blocks of these sizes.
        width: the feature dimension d.
        depth: M, the number of weight matrices (M = 1 is the plain UFM).
        bias: add an unregularised last-layer bias b.
        loss: 'mse' or 'ce' (cross-entropy).
        weight_decay: lambda_W, one number for every layer or one per layer W_1..W_M.
        feature_decay: lambda_H.
        init_std: entries of H_1 and of every W_j start i.i.d. N(0, init_std^2) (the paper uses 0.1).
        generator: a CPU ``torch.Generator`` for the initialisation (default: torch's global RNG).
    """

    def __init__(self, class_sizes: Sequence[int], width: int, depth: int, *, bias: bool = False,
                 loss: str = "mse", weight_decay: float | Sequence[float] = 5e-4, feature_decay: float = 5e-4,
                 init_std: float = 0.1, dtype: torch.dtype = torch.float32, device: Any = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        sizes = _class_sizes(class_sizes)
        self.class_sizes = sizes
        self.num_classes, self.num_samples = len(sizes), sum(sizes)
        self.width = check_int("width", width, 1)
        self.depth = check_int("depth", depth, 1)
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
        self.loss = loss
        self.weight_decays = _weight_decays(weight_decay, self.depth)
        self.feature_decay = check_nonnegative("feature_decay", feature_decay)
        init_std = check_nonnegative("init_std", init_std)

        def normal(*shape: int) -> nn.Parameter:
            x = torch.randn(*shape, generator=generator, dtype=dtype) * init_std
            return nn.Parameter(x.to(device))

        k, d, n = self.num_classes, self.width, self.num_samples
        self.H = normal(d, n)
        self.weights = nn.ParameterList([normal(d, d) for _ in range(self.depth - 1)] + [normal(k, d)])
        self.bias = nn.Parameter(torch.zeros(k, dtype=dtype, device=device)) if bias else None
        labels = torch.repeat_interleave(torch.arange(k), torch.tensor(sizes))
        self.register_buffer("labels", labels.to(device))
        self.register_buffer("targets", F.one_hot(labels, k).T.to(dtype=dtype, device=device))  # Y, K x N

    def logits(self) -> Tensor:
        """W_M ... W_1 H_1 + b 1^T, shape (K, N)."""
        out = self.H
        for w in self.weights:
            out = w @ out
        return out if self.bias is None else out + self.bias.unsqueeze(1)

    def data_loss(self) -> Tensor:
        """(1/2N) ||logits - Y||_F^2 (MSE) or the mean cross-entropy (CE)."""
        z = self.logits()
        if self.loss == "mse":
            return (z - self.targets).pow(2).sum() / (2 * self.num_samples)
        return F.cross_entropy(z.T, self.labels)

    def regularizer(self) -> Tensor:
        """sum_j lambda_{W_j}/2 ||W_j||_F^2 + lambda_H/2 ||H_1||_F^2 (the bias is not regularised)."""
        reg = self.feature_decay / 2 * self.H.pow(2).sum()
        for lam, w in zip(self.weight_decays, self.weights):
            reg = reg + lam / 2 * w.pow(2).sum()
        return reg

    def objective(self) -> Tensor:
        return self.data_loss() + self.regularizer()

    def forward(self) -> Tensor:
        return self.objective()

    def extra_repr(self) -> str:
        return (f"class_sizes={self.class_sizes}, width={self.width}, depth={self.depth}, "
                f"bias={self.bias is not None}, loss={self.loss!r}, weight_decay={self.weight_decays}, "
                f"feature_decay={self.feature_decay}")


@torch.no_grad()
def layer_features(model: DeepLinearUFM) -> list[Tensor]:
    """The features entering each layer, [H_1, W_1 H_1, W_2 W_1 H_1, ..., W_{M-1}...W_1 H_1], each transposed to
    (N, d) (one row per sample, as the metrics expect); M tensors, detached."""
    out, feats = model.H, []
    for w in model.weights:
        feats.append(out.T.clone())
        out = w @ out
    return feats


@torch.no_grad()
def layer_classifiers(model: DeepLinearUFM) -> list[Tensor]:
    """The classifier acting on each entry of :func:`layer_features`: [W_M...W_1, W_M...W_2, ..., W_M], each
    (K, d), so that ``layer_classifiers(m)[i] @ layer_features(m)[i].T + b`` are the logits for every i."""
    prods, prod = [], None
    for w in reversed(list(model.weights)):
        prod = w.detach().clone() if prod is None else prod @ w
        prods.append(prod)
    return prods[::-1]


# --------------------------------------------------------------------------------------------- training

@dataclass
class UFMTrace:
    """What :func:`train_ufm` recorded: the steps, the objective there, and ``measure``'s output."""
    steps: list[int] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)
    records: list = field(default_factory=list)


def train_ufm(model: DeepLinearUFM, steps: int, lr: float, momentum: float = 0.9, record_every: int = 0,
              measure: Callable[[DeepLinearUFM], Any] | None = None) -> UFMTrace:
    """Full-batch gradient descent with heavy-ball momentum on ``model.objective()``:
    :math:`v \\leftarrow \\mu v + \\nabla f(\\theta)`, :math:`\\theta \\leftarrow \\theta - \\eta v` for every parameter
    (:func:`optrepro.optim.sgd_step`, the update of ``torch.optim.SGD(lr=eta, momentum=mu)``, as a functional update of
    :func:`optrepro.train.fit`).

    Every ``record_every`` steps (and at the first and last step) the objective and, if given, ``measure(model)``
    (called under ``torch.no_grad()``) are recorded; ``record_every=0`` records only the start and the end.
    """
    steps = check_int("steps", steps, 0)
    record_every = check_int("record_every", record_every, 0)
    check_positive("lr", lr)
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0 <= momentum < 1:
        raise ValueError(f"invalid momentum {momentum!r}: expected 0 <= momentum < 1")
    params = list(model.parameters())
    velocity = [torch.zeros_like(p) for p in params]
    trace = UFMTrace()

    def record(step: int) -> None:
        with torch.no_grad():
            trace.steps.append(step)
            trace.objective.append(float(model.objective()))
            if measure is not None:
                trace.records.append(measure(model))

    def update(k: int, objective: Tensor) -> None:   # functional heavy-ball step k + 1, then its record
        sgd_step(params, torch.autograd.grad(objective, params), velocity, lr, momentum)
        if k + 1 == steps or (record_every and (k + 1) % record_every == 0):
            record(k + 1)

    record(0)
    if steps:
        train(lambda k: model.objective(), update, steps, every=steps, stop_on_nonfinite=False)
    return trace


# --------------------------------------------------------------------------------------------- the theory

@dataclass
class CollapsePrediction:
    """The global minimiser of the bias-free MSE problem (Dang et al., the imbalanced MSE theorem), class by class."""
    x: np.ndarray                      # x_k, the root of beta/n_k = M x^{M-1} / (x^M + 1)^2 (0: collapsed class)
    outputs: np.ndarray                # p_k = (W_M...W_1 h_k)_k = x_k^M / (x_k^M + 1)
    mean_norms: np.ndarray             # ||h_k||, the class-mean lengths of H_1
    layer_mean_norms: np.ndarray       # (M, K): class-mean lengths of H_1, W_1 H_1, ..., W_{M-1}...W_1 H_1
    classifier_row_norms: np.ndarray   # (M, K): row lengths of W_M...W_1, W_M...W_2, ..., W_M
    objective: float                   # the minimum value of the training objective


def imbalanced_collapse(class_sizes: Sequence[int], depth: int, weight_decay: float | Sequence[float],
                        feature_decay: float) -> CollapsePrediction:
    """Closed form of the bias-free MSE minimiser (module docstring; the imbalanced MSE theorem of Dang et al.).

    Where M >= 2 and the equation has roots, the largest one is compared with the collapsed solution
    (h_k = 0) and the better of the two is returned (the per-class objective is not convex in that case).
    """
    sizes = np.array(_class_sizes(class_sizes), dtype=np.float64)
    m = check_int("depth", depth, 1)
    decays = _weight_decays(weight_decay, m)
    lam_h = check_nonnegative("feature_decay", feature_decay)
    if lam_h == 0 or min(decays) == 0:
        raise ValueError("weight_decay and feature_decay must be > 0: without them the problem has no minimiser")
    n_total = sizes.sum()
    lam = math.prod(decays)
    beta = m * n_total * (n_total * lam_h * lam) ** (1 / m)

    x = np.array([_largest_root(beta / n, m) for n in sizes])
    p = x**m / (x**m + 1)
    # per-class objective of the collapsed problem, with c = lambda_{W_j} z_j = lambda_H n_k ||h_k||^2:
    # phi_k(p) = n_k/(2N) (p - 1)^2 + (M + 1)/2 * (lambda lambda_H n_k p^2)^{1/(M+1)}
    phi = sizes / (2 * n_total) * (p - 1) ** 2 + (m + 1) / 2 * (lam * lam_h * sizes * p**2) ** (1 / (m + 1))
    collapsed = phi >= sizes / (2 * n_total)
    x, p = np.where(collapsed, 0.0, x), np.where(collapsed, 0.0, p)
    phi = np.where(collapsed, sizes / (2 * n_total), phi)

    mean_sq = x**m / (n_total * lam_h * (x**m + 1) ** 2)          # ||h_k||^2, the paper's closed form
    c = lam_h * sizes * mean_sq                                   # = lambda_{W_j} * sigma_j(k)^2 for every j
    layer_sq = [mean_sq]
    for lam_j in decays[:-1]:
        layer_sq.append(layer_sq[-1] * c / lam_j)                 # ||W_j h^{(j)}_k||^2 = sigma_j(k)^2 ||h^{(j)}_k||^2
    layer_norms = np.sqrt(np.array(layer_sq))
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = np.where(layer_norms > 0, p / layer_norms, 0.0)   # W_M...W_m maps h^{(m)}_k to p_k e_k, aligned
    return CollapsePrediction(x=x, outputs=p, mean_norms=np.sqrt(mean_sq), layer_mean_norms=layer_norms,
                              classifier_row_norms=rows, objective=float(phi.sum()))


def _largest_root(rhs: float, m: int) -> float:
    """Largest x > 0 with M x^{M-1} / (x^M + 1)^2 = rhs, or 0 when there is none."""
    if m == 1:  # 1 / (x + 1)^2 = rhs
        return max(rhs**-0.5 - 1.0, 0.0)
    g = lambda x: m * x ** (m - 1) / (x**m + 1) ** 2 - rhs  # noqa: E731
    peak = ((m - 1) / (m + 1)) ** (1 / m)                    # g increases up to here, then decreases to -rhs
    if g(peak) <= 0:
        return 0.0
    lo, hi = peak, max(2 * peak, (m / rhs) ** (1 / (m + 1)))  # g(x) < M x^{-M-1} - rhs <= 0 beyond that
    for _ in range(200):                                       # bisection on the decreasing branch
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if g(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)
