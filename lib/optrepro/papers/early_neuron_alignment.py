r"""Early neuron alignment of a two-layer ReLU network trained from a small initialization.

Reference: H. Min, E. Mallada, R. Vidal. "Early Neuron Alignment in Two-layer ReLU Networks with Small
Initialization." ICLR 2024, arXiv:2307.12851.

**Model and loss.** Binary data :math:`(x_i, y_i)_{i\le n}`, :math:`x_i\in\mathbb R^d`, :math:`y_i\in\{\pm1\}`; a
bias-free two-layer ReLU network of width ``h`` and the *summed* loss

.. math:: f(x; W, v) = \sum_{j=1}^h v_j\,\sigma(\langle w_j, x\rangle), \qquad
          L(W, v) = \sum_{i=1}^n \ell(y_i, f(x_i; W, v)),

with :math:`\ell(y, \hat y) = e^{-y\hat y}` (``"exp"``), :math:`\log(1 + e^{-y\hat y})` (``"logistic"``) or
:math:`\tfrac12(\hat y - y)^2` (``"square"``). With :math:`g_i = \partial\ell/\partial\hat y\,(y_i, f(x_i))` the
gradients are (:func:`gradients`, the ReLU's derivative at 0 taken as 0)

.. math:: \nabla_{w_j} L = v_j \sum_i g_i\,\mathbb 1\{\langle w_j, x_i\rangle > 0\}\,x_i, \qquad
          \nabla_{v_j} L = \sum_i g_i\,\sigma(\langle w_j, x_i\rangle).

**Small, balanced initialization** (the paper's Assumption 2 / Eq. (3)): :math:`w_j(0) = \epsilon w_{j0}`,
:math:`v_j(0) = \epsilon v_{j0}` with :math:`|v_{j0}| = \|w_{j0}\|` (:func:`balanced_init`). Gradient flow keeps
:math:`v_j^2 - \|w_j\|^2` constant, so balanced neurons stay balanced and :math:`v_j` never changes sign.
Gradient flow is approximated by full-batch gradient descent with a small step (:func:`train`).

**Data assumption** (Assumption 1): same-label inputs are positively and opposite-label inputs negatively
correlated, :math:`\mu = \min_{i,j} y_iy_j\langle x_i, x_j\rangle / (\|x_i\|\|x_j\|) > 0` (:func:`separation`;
:func:`separated_data` draws such data).

**Early alignment.** While the network output is :math:`O(\epsilon^2)`, :math:`g_i \approx \ell'(y_i, 0)
= -c_\ell y_i` (:math:`c_\ell = 1` for exp and square, :math:`1/2` for logistic) and each neuron's direction moves
as :math:`\tfrac{d}{dt}\hat w_j \approx c_\ell\,\mathrm{sign}(v_j)\,P_{\hat w_j^\perp}\sum_{i:\langle w_j,
x_i\rangle>0} y_i x_i`. A neuron with :math:`v_j > 0` ends activated by the positive points only, where it aligns
with

.. math:: x_+ = \sum_{i: y_i = +1} x_i,

or dead (activated by no point); a neuron with :math:`v_j < 0` aligns with :math:`x_- = \sum_{i: y_i=-1} x_i`
or dies (:func:`class_directions`, :func:`predicted_cosines`). The paper bounds the time this takes by
:math:`O(\log n/\sqrt\mu)`, independent of :math:`\epsilon`, and shows the neurons stay small until the end of the
early phase, whose length grows like :math:`\log(1/\epsilon)`.

**Leaving the plateau.** An aligned balanced neuron grows as :math:`\|w_j\| \propto e^{\lambda t}` with
:math:`\lambda = c_\ell\|x_\pm\|`, so the loss leaves its initial value once :math:`\epsilon^2 e^{2\lambda t} =
O(1)`: the escape time is :math:`\log(1/\epsilon)/\lambda_{\max} + O(1)` with :math:`\lambda_{\max} =
c_\ell\max(\|x_+\|, \|x_-\|)` (:func:`growth_rate`, our reading of the paper's dynamics).

**After alignment** the loss goes to zero at an :math:`O(1/t)` rate and the first layer is approximately low
rank, stable rank :math:`\|W\|_F^2/\|W\|_2^2 \lesssim 2` (:func:`stable_rank`).

Tensors may carry one leading batch dimension (independent runs side by side: ``W`` is ``(B, h, d)``, ``v`` is
``(B, h)``); data are ``X`` ``(n, d)``, ``y`` ``(n,)`` with entries in {-1, +1}; everything runs on the device of
its tensors.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..checks import check_int, check_positive
from ..threads import one_cpu_thread_if

__all__ = [
    "LOSSES", "loss_slope_at_zero", "forward", "loss", "gradients", "balanced_init", "separated_data",
    "separation", "class_directions", "growth_rate", "predicted_cosines", "alive", "aligned_fraction",
    "stable_rank", "AlignmentTrace", "train", "first_time", "crossing_time", "load_mnist_pair",
]

LOSSES = ("exp", "logistic", "square")


def _check_loss(kind: str) -> str:
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}: choose one of {', '.join(LOSSES)}")
    return kind




def _check_labels(y: Tensor) -> None:
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError(f"invalid labels {torch.unique(y).tolist()}: expected entries in {{-1, +1}}")
    if not (bool((y == 1).any()) and bool((y == -1).any())):
        raise ValueError("invalid labels: both classes -1 and +1 must be present")


# --------------------------------------------------------------------------------------------- model and loss

def loss_slope_at_zero(kind: str) -> float:
    r""":math:`c_\ell = -y\,\partial\ell/\partial\hat y\,(y, 0)`: 1 for exp and square, 1/2 for logistic."""
    return 0.5 if _check_loss(kind) == "logistic" else 1.0


def forward(W: Tensor, v: Tensor, X: Tensor) -> Tensor:
    r"""Network outputs :math:`f(x_i) = \sum_j v_j\,\sigma(\langle w_j, x_i\rangle)`, shape ``(..., n)``."""
    return (torch.relu(X @ W.mT) * v.unsqueeze(-2)).sum(-1)


def _pointwise(kind: str, y: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample loss and its derivative in the output f."""
    m = y * f
    if kind == "exp":
        e = torch.exp(-m)
        return e, -y * e
    if kind == "logistic":
        return torch.nn.functional.softplus(-m), -y * torch.sigmoid(-m)
    return 0.5 * (f - y) ** 2, f - y


def loss(W: Tensor, v: Tensor, X: Tensor, y: Tensor, kind: str = "exp") -> Tensor:
    r"""The summed training loss :math:`L(W, v) = \sum_i \ell(y_i, f(x_i))`, shape ``(...)``."""
    return _pointwise(_check_loss(kind), y, forward(W, v, X))[0].sum(-1)


def gradients(W: Tensor, v: Tensor, X: Tensor, y: Tensor, kind: str = "exp") -> tuple[Tensor, Tensor, Tensor]:
    r"""Closed-form :math:`(L, \nabla_W L, \nabla_v L)` of the summed loss (see the module docstring)."""
    pre = X @ W.mT                                           # (..., n, h)
    act = torch.relu(pre)
    f = (act * v.unsqueeze(-2)).sum(-1)                      # (..., n)
    per_sample, g = _pointwise(_check_loss(kind), y, f)
    gW = ((g.unsqueeze(-1) * (pre > 0).to(W.dtype)).mT @ X) * v.unsqueeze(-1)   # (..., h, d)
    gv = (g.unsqueeze(-1) * act).sum(-2)                     # (..., h)
    return per_sample.sum(-1), gW, gv


def balanced_init(h: int, d: int, eps: float | Tensor, *, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    r"""Balanced small initialization: :math:`w_j = \epsilon w_{j0}`, :math:`w_{j0}\sim N(0, I_d/d)`,
    :math:`v_j = \epsilon s_j\|w_{j0}\|` with random signs :math:`s_j`.

    ``eps`` may be a 1-d tensor of scales: the same directions are then returned at every scale, ``(B, h, d)`` and
    ``(B, h)``. Drawn on the CPU (the same numbers on any device); move them with ``.to(device)``.
    """
    check_int("width h", h, 1)
    check_int("dimension d", d, 1)
    W0 = torch.randn(h, d, generator=generator, dtype=dtype) / math.sqrt(d)
    signs = torch.where(torch.rand(h, generator=generator, dtype=dtype) < 0.5, -1.0, 1.0).to(dtype)
    v0 = signs * W0.norm(dim=1)
    if isinstance(eps, Tensor) and eps.dim() == 1:
        if not bool((eps > 0).all()):
            raise ValueError(f"invalid eps {eps.tolist()}: expected positive initialization scales")
        e = eps.to(dtype)
        return e[:, None, None] * W0, e[:, None] * v0
    check_positive("eps", float(eps))
    return float(eps) * W0, float(eps) * v0


# --------------------------------------------------------------------------------------------- data

def separation(X: Tensor, y: Tensor) -> float:
    r"""The paper's :math:`\mu = \min_{i,j} y_iy_j\cos(x_i, x_j)`: positive iff Assumption 1 holds."""
    Z = (y[:, None] * X) / X.norm(dim=1, keepdim=True)
    return float((Z @ Z.T).min())


def separated_data(n: int, d: int, *, angle: float = 120.0, spread: float = 12.0,
                   generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
                   ) -> tuple[Tensor, Tensor]:
    r"""``n`` points in :math:`\mathbb R^d` that satisfy Assumption 1 by construction.

    Class centres :math:`c_+ = e_1` and :math:`c_-` at ``angle`` degrees from it (in the plane of
    :math:`e_1, e_2`); each point is its centre rotated by a random angle in ``[0, spread]`` degrees towards a
    random direction orthogonal to the centre, and scaled by a random norm in [0.5, 1.5]. Same-class points are
    then at most ``2 spread`` apart and opposite-class points at least ``angle - 2 spread``, so
    :math:`\mu \ge \min(\cos 2\,\mathrm{spread}, -\cos(\mathrm{angle} - 2\,\mathrm{spread})) > 0` when
    ``2 spread < 90 < angle - 2 spread``. The first ``ceil(n/2)`` points are labelled +1, the others -1.
    """
    check_int("n", n, 1)
    if n < 2:
        raise ValueError(f"invalid n {n!r}: expected at least 2 points (one per class)")
    if d < 2:
        raise ValueError(f"invalid d {d!r}: expected d >= 2 (the class centres span a plane)")
    if not (0 <= 2 * spread < 90 < angle - 2 * spread and angle <= 180):
        raise ValueError(f"invalid angle {angle!r} / spread {spread!r}: Assumption 1 needs "
                         "0 <= 2*spread < 90 < angle - 2*spread and angle <= 180 (degrees)")
    a = math.radians(angle)
    c_plus = torch.zeros(d, dtype=dtype)
    c_plus[0] = 1.0
    c_minus = torch.zeros(d, dtype=dtype)
    c_minus[0], c_minus[1] = math.cos(a), math.sin(a)
    n_plus = (n + 1) // 2
    y = torch.cat([torch.ones(n_plus, dtype=dtype), -torch.ones(n - n_plus, dtype=dtype)])
    centres = torch.where(y[:, None] > 0, c_plus, c_minus)
    u = torch.randn(n, d, generator=generator, dtype=dtype)
    u = u - (u * centres).sum(1, keepdim=True) * centres     # orthogonal to its centre
    u = u / u.norm(dim=1, keepdim=True)
    theta = torch.rand(n, 1, generator=generator, dtype=dtype) * math.radians(spread)
    radius = 0.5 + torch.rand(n, 1, generator=generator, dtype=dtype)
    X = radius * (torch.cos(theta) * centres + torch.sin(theta) * u)
    return X, y


def class_directions(X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    r""":math:`x_+ = \sum_{y_i=+1} x_i` and :math:`x_- = \sum_{y_i=-1} x_i`, the directions neurons align with."""
    _check_labels(y)
    return X[y > 0].sum(0), X[y < 0].sum(0)


def growth_rate(X: Tensor, y: Tensor, kind: str = "exp") -> float:
    r""":math:`\lambda_{\max} = c_\ell\max(\|x_+\|, \|x_-\|)`: the exponential growth rate of the norms of the
    fastest aligned neurons, so the escape time from the plateau grows as :math:`\log(1/\epsilon)/\lambda_{\max}`."""
    xp, xm = class_directions(X, y)
    return loss_slope_at_zero(kind) * max(float(xp.norm()), float(xm.norm()))


# --------------------------------------------------------------------------------------------- metrics

def predicted_cosines(W: Tensor, v: Tensor, x_plus: Tensor, x_minus: Tensor) -> Tensor:
    r"""Per-neuron cosine :math:`\cos(w_j, x_{\mathrm{sign}(v_j)})` with the direction the paper predicts:
    :math:`x_+` when :math:`v_j > 0`, :math:`x_-` when :math:`v_j < 0`. Shape of ``v``."""
    target = torch.where(v.unsqueeze(-1) > 0, x_plus / x_plus.norm(), x_minus / x_minus.norm())
    return (W * target).sum(-1) / W.norm(dim=-1).clamp_min(torch.finfo(W.dtype).tiny)


def alive(W: Tensor, X: Tensor) -> Tensor:
    """Neurons activated by at least one training input (the others, in the paper's S_dead, never move)."""
    return (X @ W.mT > 0).any(-2)


def aligned_fraction(cos: Tensor, is_alive: Tensor, threshold: float = 0.95) -> Tensor:
    """Fraction of alive neurons whose cosine with the predicted direction is at least ``threshold``."""
    if not 0 < threshold <= 1:
        raise ValueError(f"invalid threshold {threshold!r}: expected a cosine in (0, 1]")
    good = ((cos >= threshold) & is_alive).sum(-1).to(cos.dtype)
    return good / is_alive.sum(-1).clamp_min(1).to(cos.dtype)


def stable_rank(W: Tensor) -> Tensor:
    r"""Stable rank :math:`\|W\|_F^2 / \|W\|_2^2` (between 1 and the rank; batched over leading dims)."""
    gram = W.mT @ W if W.shape[-1] <= W.shape[-2] else W @ W.mT     # the smaller Gram matrix
    eig = torch.linalg.eigvalsh(gram)                                    # ascending; ||W||_2^2 is the last
    return eig.sum(-1) / eig[..., -1]


# --------------------------------------------------------------------------------------------- training

SMALL = 200_000   # parameters x samples below which a CPU run uses one intra-op thread




@dataclass
class AlignmentTrace:
    """What :func:`train` records, every ``record_every`` steps (first axis: records; then the batch)."""
    t: Tensor                 # (R,) gradient-flow time k * lr
    loss: Tensor              # (R, ...) training loss
    cos: Tensor               # (R, ..., h) cosine of each neuron with its predicted direction
    alive: Tensor             # (R, ..., h) activated by some input
    aligned: Tensor           # (R, ...) fraction of alive neurons with cos >= threshold
    stable_rank: Tensor       # (R, ...)
    norm: Tensor              # (R, ..., h) neuron norms ||w_j||
    W: Tensor                 # final first layer
    v: Tensor                 # final second layer


def train(X: Tensor, y: Tensor, W: Tensor, v: Tensor, *, lr: float, steps: int, kind: str = "exp",
          record_every: int = 10, threshold: float = 0.95) -> AlignmentTrace:
    r"""Full-batch gradient descent :math:`(W, v) \leftarrow (W, v) - \eta\nabla L` (gradient flow at time
    :math:`k\eta`), recording loss, per-neuron cosines with :math:`x_\pm`, alive neurons, aligned fraction and
    stable rank every ``record_every`` steps (and at step 0 and the last step)."""
    check_positive("lr", lr)
    check_int("steps", steps, 1)
    check_int("record_every", record_every, 1)
    _check_loss(kind)
    _check_labels(y)
    x_plus, x_minus = class_directions(X, y)
    W, v = W.clone(), v.clone()
    rec: dict[str, list] = {k: [] for k in ("t", "loss", "cos", "alive", "aligned", "stable_rank", "norm")}

    def record(k: int, L: Tensor) -> None:
        cos = predicted_cosines(W, v, x_plus, x_minus)
        on = alive(W, X)
        rec["t"].append(k * lr)
        rec["loss"].append(L)
        rec["cos"].append(cos)
        rec["alive"].append(on)
        rec["aligned"].append(aligned_fraction(cos, on, threshold))
        rec["stable_rank"].append(stable_rank(W))
        rec["norm"].append(W.norm(dim=-1))

    with one_cpu_thread_if(W.numel() * X.shape[0] <= SMALL, W.device):
        for k in range(steps + 1):
            L, gW, gv = gradients(W, v, X, y, kind)
            if k % record_every == 0 or k == steps:
                record(k, L)
            if k == steps:
                break
            W -= lr * gW
            v -= lr * gv
    out = {key: torch.stack(val).cpu() if key != "t" else torch.tensor(val, dtype=torch.float64)
           for key, val in rec.items()}
    return AlignmentTrace(**out, W=W, v=v)


def first_time(t: Tensor, condition: Tensor) -> Tensor:
    """The first time at which ``condition`` (``(R, ...)`` booleans over the records) holds; ``inf`` where never."""
    hit = condition.any(0)
    idx = condition.to(torch.int8).argmax(0)
    return torch.where(hit, t.to(torch.float64)[idx], torch.full_like(idx, math.inf, dtype=torch.float64))


def crossing_time(t: Tensor, values: Tensor, level: float) -> Tensor:
    """The first time ``values`` (``(R, ...)`` over the records, e.g. L(t)/L(0)) falls to ``level``, linearly
    interpolated between the two records around the crossing; ``inf`` where it never does."""
    below = values <= level
    hit = below.any(0)
    k = below.to(torch.int8).argmax(0)
    prev = (k - 1).clamp_min(0)
    t = t.to(torch.float64)
    v0 = values.gather(0, prev.unsqueeze(0)).squeeze(0).to(torch.float64)
    v1 = values.gather(0, k.unsqueeze(0)).squeeze(0).to(torch.float64)
    frac = torch.where(k > 0, (v0 - level) / (v0 - v1).clamp_min(torch.finfo(torch.float64).tiny),
                       torch.zeros_like(v0))
    out = t[prev] + frac * (t[k] - t[prev])
    return torch.where(hit, out, torch.full_like(out, math.inf))


# --------------------------------------------------------------------------------------------- MNIST (full profile)

def load_mnist_pair(data_dir: str | Path, digits: tuple[int, int] = (0, 1), n: int = 1000, *,
                    generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
                    ) -> tuple[Tensor, Tensor]:
    """A two-class MNIST subset from ``<data_dir>/mnist.npz`` (arrays ``x_train``, ``y_train``, the Keras layout):
    ``n`` images, half of each digit (``digits[0]`` labelled +1), flattened, centred by the subset mean and scaled
    to unit average norm. No download: a missing file is a one-line error naming the path."""
    from ..data.vision import load_mnist, mnist_path

    path = mnist_path(data_dir)
    images, labels, _, _ = load_mnist(data_dir, test=False)  # a missing file: one-line FileNotFoundError
    a, b = digits
    if a == b or not all(isinstance(k, numbers.Integral) and 0 <= k <= 9 for k in digits):
        raise ValueError(f"invalid digits {digits!r}: expected two different digits in 0..9")
    n_a = (n + 1) // 2
    parts = []
    for k, m in ((a, n_a), (b, n - n_a)):
        idx = np.flatnonzero(labels == k)
        if len(idx) < m:
            raise ValueError(f"invalid n {n!r}: {path} has only {len(idx)} training images of digit {k}, {m} needed")
        pick = torch.randperm(len(idx), generator=generator)[:m].numpy()
        parts.append(torch.as_tensor(images[idx[pick]].reshape(m, -1), dtype=dtype) / 255.0)
    X = torch.cat(parts)
    X = X - X.mean(0)
    X = X / X.norm(dim=1).mean()
    y = torch.cat([torch.ones(n_a, dtype=dtype), -torch.ones(n - n_a, dtype=dtype)])
    return X, y
