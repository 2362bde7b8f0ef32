r"""A real network with a deep linear head: an MLP feature extractor followed by M bias-free linear layers
(the practical-network experiments of Dang et al., ICML 2023), its training, and neural collapse at every layer
of the head.

**Model** (:class:`MLPDeepLinear`). Inputs :math:`x \in \mathbb R^{D}`, a backbone of ``len(hidden)`` layers
:math:`z \mapsto \mathrm{ReLU}(A z + c)` (with biases), whose output is the feature :math:`h_1(x) \in \mathbb R^d`
(:math:`d` = ``hidden[-1]``), then the linear head of Dang et al., :math:`W_1, \dots, W_{M-1} \in \mathbb R^{d\times d}`
and :math:`W_M \in \mathbb R^{K\times d}`, bias-free (optionally an unregularised last-layer bias :math:`b`):

.. math:: f(x) = W_M W_{M-1}\cdots W_1\, h_1(x) + b .

The features entering head layer m are :math:`h_m = W_{m-1}\cdots W_1 h_1` and the classifier acting on them
is :math:`W_M\cdots W_m` (:meth:`MLPDeepLinear.head_features`, :meth:`MLPDeepLinear.head_classifiers`), the
same pairs as :func:`optrepro.problems.ufm.layer_features` / ``layer_classifiers`` of the unconstrained feature
model, where :math:`H_1` is free instead of produced by the backbone.

**Objective** (:func:`objective`), on N samples with one-hot targets :math:`y_i`:

.. math:: \frac{1}{2N}\sum_i \|f(x_i) - y_i\|^2 + \frac{\lambda_W}{2}\sum_{\theta}\|\theta\|^2
          + \frac{\lambda_H}{2N}\sum_i \|h_1(x_i)\|^2,

the MSE loss, weight decay :math:`\lambda_W` on every parameter except the head's bias, and an optional feature
decay :math:`\lambda_H` (the paper's ``--sep_decay`` runs penalise the last features; per sample here, so that
it does not grow with N). The paper's theory for this objective's head (features free) predicts, at every head
layer, collapse of the features to their class means and, without a bias, class means and classifier rows on an
orthogonal frame (a simplex ETF with the bias).

**Training** (:func:`train_network`): full-batch or mini-batch gradient steps with Adam (the paper trains its MLPs
with Adam) or heavy-ball SGD (:func:`optrepro.optim.adam_step`, :func:`optrepro.optim.sgd_step`, the updates of
``torch.optim.Adam`` and ``torch.optim.SGD(momentum=mu)``), :math:`g` the gradient of :func:`objective` on the
batch (so weight decay is the coupled L2 of ``torch.optim``'s ``weight_decay``). :func:`measure_head` gives the training accuracy
and :func:`optrepro.metrics.neural_collapse.collapse_metrics` at every head layer.

Reference: H. Dang, T. Tran, S. Osher, H. Tran-The, N. Ho, T. Nguyen. "Neural Collapse in Deep Linear Networks:
From Balanced to Imbalanced Data." ICML 2023, arXiv:2301.00437.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int, check_nonnegative, check_positive
from ..optim import adam_step, sgd_step
from ..train import fit as train
from ..metrics.neural_collapse import CollapseMetrics, collapse_metrics

__all__ = ["OPTIMIZERS", "MLPDeepLinear", "objective", "HeadRecord", "measure_head", "NetworkTrace",
           "train_network"]

OPTIMIZERS = ("adam", "sgd")


class MLPDeepLinear(nn.Module):
    """An MLP feature extractor (Linear + ReLU layers of widths ``hidden``) and a deep linear head of
    ``head_depth`` bias-free layers (``hidden[-1]`` x ``hidden[-1]``, ..., K x ``hidden[-1]``).

    Args:
        in_features: D, the input dimension.
        num_classes: K.
        hidden: widths of the backbone's ReLU layers; the last is the feature dimension d.
        head_depth: M >= 1, the number of linear layers of the head.
        bias: add an (unregularised) bias to the last head layer.
        init_std: head layers start i.i.d. N(0, init_std^2); None: PyTorch's default ``nn.Linear`` init.
        generator: a CPU ``torch.Generator`` for the initialisation (default: torch's global RNG).
    """

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int], head_depth: int, *,
                 bias: bool = False, init_std: float | None = None, dtype: torch.dtype = torch.float32,
                 device: Any = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        in_features = check_int("in_features", in_features, 1)
        self.num_classes = check_int("num_classes", num_classes, 2)
        widths = [check_int("hidden width", w, 1) for w in hidden]
        if not widths:
            raise ValueError("invalid hidden []: expected at least one backbone width (the last is the feature dim)")
        self.head_depth = check_int("head_depth", head_depth, 1)
        self.feature_dim = d = widths[-1]
        dims = [in_features] + widths
        self.backbone = nn.ModuleList(nn.Linear(a, b, dtype=dtype) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.ModuleList([nn.Linear(d, d, bias=False, dtype=dtype) for _ in range(self.head_depth - 1)]
                                  + [nn.Linear(d, self.num_classes, bias=False, dtype=dtype)])
        self.bias = nn.Parameter(torch.zeros(self.num_classes, dtype=dtype)) if bias else None
        with torch.no_grad():  # re-draw every weight from ``generator`` (nn.Linear's own init uses the global RNG)
            for layer in self.backbone:
                bound = 1 / math.sqrt(layer.in_features)
                layer.weight.copy_(_uniform(layer.weight.shape, bound, generator))
                layer.bias.copy_(_uniform(layer.bias.shape, bound, generator))
            for layer in self.head:
                if init_std is None:
                    layer.weight.copy_(_uniform(layer.weight.shape, 1 / math.sqrt(layer.in_features), generator))
                else:
                    std = check_nonnegative("init_std", init_std)
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
        self.to(device)

    def features(self, X: Tensor) -> Tensor:
        """h_1(x) for the rows of X: the backbone's output, (N, d)."""
        h = X
        for layer in self.backbone:
            h = torch.relu(layer(h))
        return h

    def logits_from_features(self, H: Tensor) -> Tensor:
        for layer in self.head:
            H = layer(H)
        return H if self.bias is None else H + self.bias

    def forward(self, X: Tensor) -> Tensor:
        """Logits W_M ... W_1 h_1(x) + b, (N, K)."""
        return self.logits_from_features(self.features(X))

    @torch.no_grad()
    def head_features(self, X: Tensor) -> list[Tensor]:
        """[h_1, W_1 h_1, ..., W_{M-1}...W_1 h_1] for the rows of X: M tensors (N, d), detached."""
        h, out = self.features(X), []
        for layer in self.head:
            out.append(h)
            h = layer(h)
        return out

    @torch.no_grad()
    def head_classifiers(self) -> list[Tensor]:
        """[W_M...W_1, W_M...W_2, ..., W_M], each (K, d): the classifier acting on each of :meth:`head_features`."""
        prods, prod = [], None
        for layer in reversed(self.head):
            prod = layer.weight.detach().clone() if prod is None else prod @ layer.weight
            prods.append(prod)
        return prods[::-1]

    def decayed_parameters(self) -> list[Tensor]:
        """Every parameter but the head's bias (the ones weight decay acts on)."""
        return [p for p in self.parameters() if p is not self.bias]


def _uniform(shape: torch.Size, bound: float, generator: torch.Generator | None) -> Tensor:
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound


def objective(model: MLPDeepLinear, X: Tensor, y: Tensor, weight_decay: float = 0.0,
              feature_decay: float = 0.0) -> Tensor:
    """(1/2N) sum_i ||f(x_i) - onehot(y_i)||^2 + lambda_W/2 sum ||theta||^2 + lambda_H/(2N) sum_i ||h_1(x_i)||^2."""
    H = model.features(X)
    Z = model.logits_from_features(H)
    n = X.shape[0]
    loss = (Z - F.one_hot(y, model.num_classes).to(Z.dtype)).pow(2).sum() / (2 * n)
    if weight_decay:
        loss = loss + weight_decay / 2 * sum(p.pow(2).sum() for p in model.decayed_parameters())
    if feature_decay:
        loss = loss + feature_decay / (2 * n) * H.pow(2).sum()
    return loss


@dataclass
class HeadRecord:
    """Training accuracy of the network and the collapse metrics at head layers m = 1..M."""
    accuracy: float
    layers: list[CollapseMetrics]


@torch.no_grad()
def measure_head(model: MLPDeepLinear, X: Tensor, y: Tensor) -> HeadRecord:
    """Accuracy of argmax f(x) on (X, y), and NC1-NC4 of (h_m, W_M...W_m) for every head layer m (NC3 against
    the uncentred class means without a bias, the centred ones with it, as the paper's theory predicts)."""
    accuracy = float((model(X).argmax(dim=1) == y).to(torch.float64).mean())
    center = model.bias is not None
    layers = [collapse_metrics(H, y, W, model.bias, center=center, num_classes=model.num_classes)
              for H, W in zip(model.head_features(X), model.head_classifiers())]
    return HeadRecord(accuracy, layers)


@dataclass
class NetworkTrace:
    """What :func:`train_network` recorded: steps, the full-data objective there, and ``measure``'s output."""
    steps: list[int] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)
    records: list = field(default_factory=list)


def train_network(model: MLPDeepLinear, X: Tensor, y: Tensor, steps: int, lr: float, *, optimizer: str = "adam",
                  weight_decay: float = 0.0, feature_decay: float = 0.0, momentum: float = 0.9,
                  betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, batch_size: int | None = None,
                  record_every: int = 0, measure: Callable[[MLPDeepLinear], Any] | None = None,
                  generator: torch.Generator | None = None) -> NetworkTrace:
    """``steps`` Adam or heavy-ball SGD steps on :func:`objective` (see the module docstring).

    The loop is :func:`optrepro.train.fit` with a functional update. ``batch_size=None`` takes full-batch steps; otherwise each epoch visits a random permutation of the data in
    batches of ``batch_size`` (``generator`` draws it). Every ``record_every`` steps (and at the first and last)
    the full-data objective and, if given, ``measure(model)`` (under ``torch.no_grad()``) are recorded;
    ``record_every=0`` records only the start and the end.
    """
    steps = check_int("steps", steps, 0)
    lr = check_positive("lr", lr)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    feature_decay = check_nonnegative("feature_decay", feature_decay)
    record_every = check_int("record_every", record_every, 0)
    if not 0 <= momentum < 1:
        raise ValueError(f"invalid momentum {momentum!r}: expected 0 <= momentum < 1")
    b1, b2 = betas
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"invalid betas {betas!r}: expected 0 <= beta < 1 for both")
    n = X.shape[0]
    if y.shape != (n,):
        raise ValueError(f"invalid labels of shape {tuple(y.shape)}: expected ({n},), one per input row")
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    params = list(model.parameters())
    first = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params] if optimizer == "adam" else None
    trace = NetworkTrace()
    order, cursor = None, n

    def record(step: int) -> None:
        with torch.no_grad():
            trace.steps.append(step)
            trace.objective.append(float(objective(model, X, y, weight_decay, feature_decay)))
            if measure is not None:
                trace.records.append(measure(model))

    def loss(k: int) -> Tensor:   # the objective on step k + 1's batch
        nonlocal order, cursor
        if batch_size is None or batch_size >= n:
            xb, yb = X, y
        else:
            if cursor + batch_size > n:
                order, cursor = torch.randperm(n, generator=generator).to(X.device), 0
            idx = order[cursor:cursor + batch_size]
            cursor += batch_size
            xb, yb = X[idx], y[idx]
        return objective(model, xb, yb, weight_decay, feature_decay)

    def update(k: int, value: Tensor) -> None:   # functional step k + 1, then its record
        grads = torch.autograd.grad(value, params)
        if optimizer == "sgd":
            sgd_step(params, grads, first, lr, momentum)
        else:
            adam_step(params, grads, first, second, k + 1, lr, betas, eps)
        if k + 1 == steps or (record_every and (k + 1) % record_every == 0):
            record(k + 1)

    record(0)
    if steps:
        train(loss, update, steps, every=steps, stop_on_nonfinite=False)
    return trace
