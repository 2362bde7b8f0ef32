r"""Supervised contrastive loss (SupCon) in the unconstrained feature model, with and without a final ReLU, and the
batching schemes of Kini, Vakilian, Behnia, Gill & Thrampoulidis (ICLR 2024, arXiv:2306.07960).

**The loss** (Khosla et al. 2020, the "out" form, :func:`supcon_loss`). For embeddings :math:`z_1, \dots, z_n` of a
batch :math:`B` with labels :math:`y_i`, temperature :math:`\tau`, positives :math:`P(i) = \{p \in B: p \ne i,
y_p = y_i\}` and :math:`A(i) = B \setminus \{i\}`,

.. math:: \ell_i = -\frac{1}{|P(i)|}\sum_{p \in P(i)} \log
          \frac{\exp(z_i^\top z_p/\tau)}{\sum_{a \in A(i)} \exp(z_i^\top z_a/\tau)},
          \qquad L_B = \frac{1}{|\{i: P(i) \neq \emptyset\}|}\sum_{i:\, P(i) \ne \emptyset} \ell_i

(``reduction='mean'``; ``'sum'`` gives :math:`\sum_i \ell_i`). An anchor with no positive in the batch contributes
nothing. Over a set of batches :math:`\mathcal B` the training loss is :math:`\sum_{B\in\mathcal B} L_B`.

**The models** (:class:`SupConUFM`). Free embeddings :math:`z_i \in \mathbb R^d`, one per sample, on the unit
sphere (**no ReLU**: the UFM of Graf et al. 2021, whose balanced minimiser is a simplex ETF), or on the sphere and
entry-wise non-negative (**final ReLU**: the paper's :math:`\mathrm{UFM}^+`; a ReLU followed by the normalisation
maps a network's output onto exactly this set). Both are trained by projected gradient descent,
:math:`Z \leftarrow \Pi(Z - \eta\nabla_Z L)` with :math:`\Pi(z) = z/\|z\|` or
:math:`\mathrm{ReLU}(z)/\|\mathrm{ReLU}(z)\|` (:func:`project`, :func:`train_supcon_ufm`). The paper's Theorem 1: with the
non-negativity constraint and :math:`d \ge K`, every global minimiser of full-batch SupCon has collapsed embeddings
whose class means form an **orthogonal frame** (OF), :math:`\mu_k^\top\mu_c = 0` and :math:`\|\mu_k\| = 1`,
*whatever the class sizes* :math:`n_k`. Without the constraint the minimiser depends on the class sizes.

**Collapsed geometry** (:func:`collapsed_supcon_objective`). If every embedding of class :math:`k` equals a unit
vector :math:`m_k`, the full-batch mean-reduced loss is

.. math:: \frac1N \sum_k n_k \log\Big((n_k - 1) + \sum_{c\ne k} n_c\, e^{(m_k^\top m_c - 1)/\tau}\Big),

so the weight of a pair of classes grows with their sizes and, without a sign constraint, imbalanced classes are
*not* equiangular; :func:`collapsed_minimizer` minimises it over the :math:`m_k` (our reference for the no-ReLU geometry).

**Batching** (Section 5 of the paper). :func:`full_batch` (one batch of everything), :func:`random_batches` (a
random partition into mini-batches; re-drawn every epoch for *batch shuffling*, drawn once for *fixed* batches), and
**batch binding** (:func:`binding_examples`, :func:`bind`): one fixed example of every class is appended to every
mini-batch. :func:`batching_condition` checks the two properties of a batching that make the collapsed OF the only
minimiser in the paper's mini-batch analysis (our reading of its Theorem 2): (i) for every class, the graph on its
samples that joins two samples sharing a batch is connected (so every sample is pulled onto its class), and
(ii) every pair of classes shares a batch (so every pair is pushed apart). Batch binding guarantees both.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int, check_positive
from ..metrics.neural_collapse import class_means, frame_distance, nc1

__all__ = [
    "REDUCTIONS",
    "SCHEMES",
    "SupConGeometry",
    "SupConTrace",
    "SupConUFM",
    "batching_condition",
    "bind",
    "binding_examples",
    "collapsed_minimizer",
    "collapsed_supcon_objective",
    "full_batch",
    "make_batches",
    "project",
    "random_batches",
    "supcon_geometry",
    "supcon_grad",
    "supcon_loss",
    "train_supcon_ufm",
]

REDUCTIONS = ("mean", "sum")
SCHEMES = ("full", "shuffled", "fixed", "shuffled-bound", "fixed-bound")


# --------------------------------------------------------------------------------------------- validation


def _class_sizes(class_sizes: Any) -> list[int]:
    sizes = list(class_sizes) if isinstance(class_sizes, (Sequence, Tensor)) else None
    if not sizes or len(sizes) < 2:
        raise ValueError(f"invalid class_sizes {class_sizes!r}: expected a list of at least 2 class sizes n_k >= 2")
    return [check_int("class size", int(n) if isinstance(n, Tensor) else n, 2) for n in sizes]


# --------------------------------------------------------------------------------------------- the loss

def supcon_loss(Z: Tensor, y: Tensor, temperature: float = 0.1, reduction: str = "mean") -> Tensor:
    """SupCon ("out" form) of embeddings Z (n, d) with labels y (n,); see the module docstring.

    Z is used as given (pass unit-norm embeddings). Anchors without a positive are skipped;
    a batch with no positive pair at all has loss 0.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: choose one of {', '.join(REDUCTIONS)}")
    tau = check_positive("temperature", temperature)
    if Z.ndim != 2 or y.ndim != 1 or y.shape[0] != Z.shape[0]:
        raise ValueError(f"invalid shapes: embeddings {tuple(Z.shape)} and labels {tuple(y.shape)}; "
                         f"expected (n, d) and (n,)")
    n = Z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=Z.device)
    logits = (Z @ Z.T) / tau
    logits = logits.masked_fill(eye, float("-inf"))                  # a = i is not in A(i)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (y.unsqueeze(0) == y.unsqueeze(1)) & ~eye
    counts = positives.sum(dim=1)
    per_anchor = -torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1) / counts.clamp(min=1)
    has_pos = counts > 0
    total = per_anchor[has_pos].sum()
    if reduction == "sum":
        return total
    return total / has_pos.sum().clamp(min=1)


def supcon_grad(Z: Tensor, y: Tensor, temperature: float = 0.1, reduction: str = "mean") -> Tensor:
    r"""The gradient of :func:`supcon_loss` with respect to Z, in closed form: with :math:`s_{ij} = z_i^\top z_j`,
    :math:`\sigma_{ij}` the softmax of :math:`s_{ia}/\tau` over :math:`a \ne i` and
    :math:`q_{ij} = \mathbb 1[j \in P(i)]/|P(i)|`, let :math:`C_{ij} = (\sigma_{ij} - q_{ij})/\tau` for anchors
    with a positive (0 otherwise); then :math:`\nabla_Z \sum_i \ell_i = (C + C^\top) Z`."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: choose one of {', '.join(REDUCTIONS)}")
    tau = check_positive("temperature", temperature)
    n = Z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=Z.device)
    sigma = torch.softmax((Z @ Z.T / tau).masked_fill(eye, float("-inf")), dim=1)
    positives = ((y.unsqueeze(0) == y.unsqueeze(1)) & ~eye).to(Z.dtype)
    counts = positives.sum(dim=1, keepdim=True)
    has_pos = counts > 0
    C = torch.where(has_pos, sigma - positives / counts.clamp(min=1), torch.zeros_like(sigma)) / tau
    grad = (C + C.T) @ Z
    if reduction == "mean":
        grad = grad / has_pos.sum().clamp(min=1)
    return grad


def project(Z: Tensor, nonnegative: bool) -> Tensor:
    """Euclidean projection of every row onto the unit sphere, or onto its non-negative part with ``nonnegative``
    (``ReLU(z)/||ReLU(z)||``; a row with no positive entry goes to the basis vector of its largest entry)."""
    if not nonnegative:
        return F.normalize(Z, dim=1, eps=1e-12)
    P = Z.clamp(min=0)
    dead = P.amax(dim=1) <= 0
    if bool(dead.any()):
        P = torch.where(dead.unsqueeze(1), F.one_hot(Z.argmax(dim=1), Z.shape[1]).to(Z.dtype), P)
    return F.normalize(P, dim=1, eps=1e-12)


# --------------------------------------------------------------------------------------------- the model

class SupConUFM(nn.Module):
    """Free unit-norm embeddings Z (N x d), one row per sample, labels in blocks of ``class_sizes``; with ``relu``
    they are also entry-wise non-negative (the paper's UFM+, the model of a final ReLU before the normalisation).

    Args:
        class_sizes: n_1, ..., n_K (each >= 2, so that every sample has a positive in the full batch).
        dim: the embedding dimension d.
        relu: keep the embeddings non-negative (final ReLU).
        temperature: tau of the SupCon loss.
        generator: a CPU ``torch.Generator`` for the initialisation (i.i.d. Gaussian rows, projected).
    """

    def __init__(self, class_sizes: Sequence[int], dim: int, *, relu: bool, temperature: float = 0.1,
                 dtype: torch.dtype = torch.float64, device: Any = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.class_sizes = _class_sizes(class_sizes)
        self.num_classes, self.num_samples = len(self.class_sizes), sum(self.class_sizes)
        self.dim = check_int("dim", dim, 1)
        self.relu = bool(relu)
        self.temperature = check_positive("temperature", temperature)
        z = torch.randn(self.num_samples, self.dim, generator=generator, dtype=dtype)
        self.Z = nn.Parameter(project(z, self.relu).to(device))
        labels = torch.repeat_interleave(torch.arange(self.num_classes), torch.tensor(self.class_sizes))
        self.register_buffer("labels", labels.to(device))

    def loss(self, batch: Tensor | None = None, reduction: str = "mean") -> Tensor:
        """SupCon of the samples in ``batch`` (indices; None: the full batch)."""
        if batch is None:
            return supcon_loss(self.Z, self.labels, self.temperature, reduction)
        return supcon_loss(self.Z[batch], self.labels[batch], self.temperature, reduction)

    def forward(self, batch: Tensor | None = None) -> Tensor:
        return self.loss(batch)

    @torch.no_grad()
    def step(self, batch: Tensor, lr: float) -> None:
        """One projected gradient step on the summed SupCon of ``batch`` (indices, no repeats):
        Z_B <- Proj(Z_B - lr * grad_{Z_B} sum_{i in B} l_i); the other rows do not move."""
        Zb = self.Z[batch]
        grad = supcon_grad(Zb, self.labels[batch], self.temperature, "sum")
        self.Z[batch] = project(Zb - lr * grad, self.relu)

    def extra_repr(self) -> str:
        return (f"class_sizes={self.class_sizes}, dim={self.dim}, relu={self.relu}, "
                f"temperature={self.temperature}")


# --------------------------------------------------------------------------------------------- batching

def full_batch(num_samples: int) -> list[Tensor]:
    """One batch holding every sample."""
    return [torch.arange(check_int("num_samples", num_samples, 1))]


def random_batches(num_samples: int, batch_size: int, generator: torch.Generator | None = None) -> list[Tensor]:
    """A random partition of 0..N-1 into ceil(N / batch_size) batches of near-equal size (each of at most
    ``batch_size``)."""
    n = check_int("num_samples", num_samples, 1)
    b = check_int("batch_size", batch_size, 1)
    perm = torch.randperm(n, generator=generator)
    return list(torch.tensor_split(perm, math.ceil(n / b)))


def binding_examples(labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One randomly chosen sample index of every class 0..K-1 (the paper's batch-binding examples)."""
    labels = torch.as_tensor(labels).cpu()
    k = int(labels.max()) + 1
    out = []
    for c in range(k):
        idx = torch.nonzero(labels == c).flatten()
        if idx.numel() == 0:
            raise ValueError(f"class {c} has no samples: every class 0..{k - 1} needs one to bind")
        out.append(idx[torch.randint(idx.numel(), (1,), generator=generator)])
    return torch.cat(out)


def bind(batches: Sequence[Tensor], binding: Tensor) -> list[Tensor]:
    """Append the binding examples to every batch (an example already in a batch is not repeated)."""
    binding = torch.as_tensor(binding).cpu()
    return [torch.cat([b, binding[~torch.isin(binding, b)]]) for b in batches]


def batching_condition(batches: Sequence[Tensor], labels: Tensor) -> dict[str, bool]:
    """Whether a set of batches has (i) every class's samples connected through shared batches (``connected``)
    and (ii) every pair of classes in a common batch (``pairs``); ``ok`` is both (see the module docstring)."""
    labels = torch.as_tensor(labels).cpu()
    n, k = labels.shape[0], int(labels.max()) + 1
    covered = torch.zeros(n, dtype=torch.bool)
    parent = list(range(n))                      # union-find over samples, joined within a batch and class

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    together = torch.zeros(k, k, dtype=torch.bool)
    for b in batches:
        b = torch.as_tensor(b).cpu()
        covered[b] = True
        present = torch.unique(labels[b])
        together[present.unsqueeze(1), present.unsqueeze(0)] = True
        for c in present.tolist():
            members = b[labels[b] == c].tolist()
            for j in members[1:]:
                parent[find(j)] = find(members[0])
    roots = [{find(i) for i in torch.nonzero(labels == c).flatten().tolist()} for c in range(k)]
    connected = bool(covered.all()) and all(len(r) == 1 for r in roots)
    pairs = bool(together.all())
    return {"connected": connected, "pairs": pairs, "ok": connected and pairs}


def make_batches(scheme: str, labels: Tensor, batch_size: int, generator: torch.Generator | None = None,
                 binding: Tensor | None = None) -> list[Tensor]:
    """One epoch's batches for ``scheme``: 'full'; 'shuffled' or 'fixed' (a random partition; the trainer re-draws
    it every epoch for 'shuffled' only); '-bound' appends ``binding`` (default: drawn here) to every batch."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown batching scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
    n = torch.as_tensor(labels).shape[0]
    if scheme == "full":
        return full_batch(n)
    batches = random_batches(n, batch_size, generator)
    if scheme.endswith("-bound"):
        batches = bind(batches, binding_examples(labels, generator) if binding is None else binding)
    return batches


# --------------------------------------------------------------------------------------------- training

@dataclass
class SupConTrace:
    """What :func:`train_supcon_ufm` recorded: the epochs, the full-batch loss there, and ``measure``'s output."""
    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    records: list = field(default_factory=list)
    batches: list[Tensor] = field(default_factory=list)   # the last epoch's batches


def train_supcon_ufm(model: SupConUFM, epochs: int, lr: float, scheme: str = "full", batch_size: int = 32,
                     generator: torch.Generator | None = None, record_every: int = 0,
                     measure: Callable[[SupConUFM], Any] | None = None) -> SupConTrace:
    """Projected gradient descent (gradients from :func:`supcon_grad`), :math:`Z \\leftarrow \\Pi(Z - \\eta \\nabla_Z L_B)`, one step per batch B of
    ``make_batches(scheme, ...)``, with :math:`L_B` the *summed* SupCon of the batch (so that the step of one
    embedding does not shrink with N) and :math:`\\Pi` the projection of :func:`project`.

    'fixed' and 'fixed-bound' draw the partition (and binding examples) once; 'shuffled' re-draws the partition
    every epoch; 'shuffled-bound' re-draws the partition and keeps the binding examples drawn at the start.
    Every ``record_every`` epochs (and at the start and end) the full-batch loss (mean over anchors) and
    ``measure(model)`` are recorded under ``torch.no_grad()``.
    """
    epochs = check_int("epochs", epochs, 0)
    record_every = check_int("record_every", record_every, 0)
    lr = check_positive("lr", lr)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown batching scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
    labels = model.labels.cpu()
    binding = binding_examples(labels, generator) if scheme.endswith("-bound") else None
    batches = make_batches(scheme, labels, batch_size, generator, binding)
    trace = SupConTrace()

    def record(epoch: int) -> None:
        with torch.no_grad():
            trace.epochs.append(epoch)
            trace.loss.append(float(model.loss()))
            if measure is not None:
                trace.records.append(measure(model))

    record(0)
    for epoch in range(1, epochs + 1):
        if scheme.startswith("shuffled") and epoch > 1:
            batches = make_batches(scheme, labels, batch_size, generator, binding)
        for b in batches:
            model.step(b.to(model.Z.device), lr)
        if epoch == epochs or (record_every and epoch % record_every == 0):
            record(epoch)
    trace.batches = batches
    return trace


# --------------------------------------------------------------------------------------------- geometry

@dataclass
class SupConGeometry:
    """The geometry of unit-norm embeddings: NC1, distances of the class means' normalised Gram from the OF and
    the simplex ETF (uncentred means), the largest |cosine| between two class means, the ratio of the longest to
    the shortest class mean, and the smallest cosine of an embedding with its class mean."""
    nc1: float
    of_distance: float
    etf_distance: float
    max_abs_cos: float
    norm_ratio: float
    min_cos_to_mean: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@torch.no_grad()
def supcon_geometry(Z: Tensor, y: Tensor) -> SupConGeometry:
    """:class:`SupConGeometry` of embeddings Z (N, d) with labels y, using ``optrepro.metrics.neural_collapse``."""
    M = class_means(Z, y)
    norms = M.norm(dim=1)
    U = M / norms.unsqueeze(1)
    cos = U @ U.T
    off = cos - torch.diag(torch.diagonal(cos))
    Z64 = Z.detach().to(torch.float64)
    Zu = F.normalize(Z64, dim=1)
    cos_own = (Zu * U[torch.as_tensor(y).to(Z.device)]).sum(dim=1)
    return SupConGeometry(nc1=nc1(Z, y), of_distance=frame_distance(M, "orthogonal"),
                          etf_distance=frame_distance(M, "etf"), max_abs_cos=float(off.abs().max()),
                          norm_ratio=float(norms.max() / norms.min()), min_cos_to_mean=float(cos_own.min()))


def collapsed_supcon_objective(M: Tensor, class_sizes: Sequence[int], temperature: float) -> Tensor:
    """Full-batch SupCon (mean reduction) when every embedding of class k equals the unit vector M[k]."""
    sizes = torch.tensor(_class_sizes(class_sizes), dtype=M.dtype, device=M.device)
    tau = check_positive("temperature", temperature)
    if M.ndim != 2 or M.shape[0] != sizes.shape[0]:
        raise ValueError(f"invalid class vectors of shape {tuple(M.shape)}: expected ({sizes.shape[0]}, d)")
    off = ~torch.eye(M.shape[0], dtype=torch.bool, device=M.device)
    neg = torch.where(off, sizes.unsqueeze(0) * torch.exp((M @ M.T - 1) / tau), torch.zeros_like(off, dtype=M.dtype))
    return (sizes * torch.log(sizes - 1 + neg.sum(dim=1))).sum() / sizes.sum()


def collapsed_minimizer(class_sizes: Sequence[int], temperature: float, dim: int, relu: bool, steps: int = 5000,
                        lr: float = 0.5, generator: torch.Generator | None = None,
                        dtype: torch.dtype = torch.float64) -> Tensor:
    """Unit class vectors (K, dim) minimising :func:`collapsed_supcon_objective` (non-negative ones with ``relu``),
    by projected gradient descent with step ``lr * temperature`` from a random start (closed-form gradient; the
    unit tests check it against autograd through the minimiser's stationarity)."""
    sizes = _class_sizes(class_sizes)
    steps = check_int("steps", steps, 1)
    tau = check_positive("temperature", temperature)
    V = project(torch.randn(len(sizes), check_int("dim", dim, len(sizes)), generator=generator, dtype=dtype), relu)
    n = torch.tensor(sizes, dtype=dtype)
    off = 1.0 - torch.eye(len(sizes), dtype=dtype)
    for _ in range(steps):
        # gradient of the collapsed objective: sum_c (A_kc + A_ck) m_c, A_kc = n_k n_c e^{(m_k.m_c - 1)/tau} / (tau N D_k)
        E = off * n.unsqueeze(0) * torch.exp((V @ V.T - 1) / tau)
        A = n.unsqueeze(1) * E / (tau * n.sum() * (n - 1 + E.sum(dim=1)).unsqueeze(1))
        V = project(V - lr * tau * (A + A.T) @ V, relu)
    return V
