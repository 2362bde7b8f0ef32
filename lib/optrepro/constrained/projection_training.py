r"""Training a ReLU network by projections alone: the feasibility formulation of PJAX.

Bergmeister, Lal, Jegelka, Sra, "A projection-based framework for gradient-free and parallel learning",
arXiv:2506.05878 (2025; AISTATS 2026). Training is cast as a **feasibility problem**: find network parameters
*and* per-example states (pre-activations, activations, outputs) that satisfy one local constraint per elementary
operation of the computation graph, plus a constraint from the label. Each constraint is the graph of a simple
function and has a cheap projection; an iterative projection method (alternating projections or Douglas-Rachford)
finds a point in the intersection. No gradient is ever computed; every projection is local, so all of them run in
parallel.

The network here is one hidden layer, ``o = V relu(W x + b)`` (``W`` of shape (h, d), ``b`` (h,), ``V`` (K, h)).
For a batch of examples ``x_i`` with labels ``y_i`` the constraint sets (nodes of the graph) are

* layer 1, one per example: :math:`\{(W, b, z_i) : z_i = W x_i + b\}` (affine, ``x_i`` is data):
  :func:`project_affine_rows`;
* ReLU, one per (example, unit): :math:`\{(z, a) : a = \max(z, 0)\}`: :func:`project_relu_graph`;
* layer 2, one per (example, class): the bilinear dot product :math:`\{(v, a, o) : o = v^\top a\}`, both ``v`` (a
  row of ``V``) and ``a`` (the example's activations) variables: :func:`project_dot_graph`;
* the label, one per example: :math:`\{o : o_{y} \ge m,\ o_k \le 0\ (k \ne y)\}` (correct class by a margin
  ``m``): :func:`project_label_box`.

A variable used by several nodes gets one *copy* per node (the parameters one per example, an activation one for
its ReLU node and one per class). With :math:`A` the product of the node sets and :math:`B` the consensus set (all
copies of a variable equal; the projection onto it averages the copies, :func:`ProjectionMLP.consensus`),
training is :math:`\text{find } u \in A \cap B`, solved by (paper Sec. 3)

.. math::
    \text{AP:}\quad u^{+} = P_B(P_A(u)), \qquad
    \text{DR:}\quad x = P_B(u),\quad u^{+} = u + P_A(2x - u) - x,

with the network read off the consensus point :math:`P_B(u)`. As in the paper's training loop, each update takes a
mini-batch, starts the states from a forward pass with the current parameters, runs ``steps`` iterations and keeps
the consensus parameters (:func:`projection_update`, :func:`train_projection`).

The projection onto the dot-product graph (Elser 2021; Bauschke, Lal, Wang 2022, "Projecting onto rectangular
hyperbolic paraboloids") rotates to :math:`p = (v + a)/\sqrt2`, :math:`q = (v - a)/\sqrt2`, so that
:math:`v^\top a = (\lVert p\rVert^2 - \lVert q\rVert^2)/2`; the stationarity conditions give
:math:`p = p_0/(1-\lambda)`, :math:`q = q_0/(1+\lambda)`, :math:`o = o_0 - \lambda` with :math:`\lambda \in (-1, 1)`
the unique root of the decreasing function
:math:`g(\lambda) = o_0 - \lambda - \tfrac12(\lVert p_0\rVert^2/(1-\lambda)^2 - \lVert q_0\rVert^2/(1+\lambda)^2)`,
found here by Newton's method safeguarded by bisection.

The baseline (:func:`train_adam`) trains the same network with :class:`optrepro.optim.Adam` on the cross-entropy loss; it
is the only place where autograd is used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from optrepro.checks import check_choice, check_int, check_nonnegative, check_positive
from optrepro.optim import Adam
from optrepro.train import fit as train

__all__ = [
    "METHODS",
    "MLPParams",
    "ProjectionMLP",
    "TrainResult",
    "accuracy",
    "init_mlp",
    "label_violation",
    "predict",
    "project_affine_rows",
    "project_dot_graph",
    "project_label_box",
    "project_relu_graph",
    "projection_update",
    "train_adam",
    "train_projection",
]

METHODS = ("dr", "ap")


# ---------------------------------------------------------------------------------------------------------------
# the network


@dataclass
class MLPParams:
    """``o = V relu(W x + b)``: W (h, d), b (h,), V (K, h)."""
    W: Tensor
    b: Tensor
    V: Tensor

    def clone(self) -> MLPParams:
        return MLPParams(self.W.clone(), self.b.clone(), self.V.clone())


def init_mlp(d: int, h: int, k: int, *, generator: torch.Generator | None = None, dtype=torch.float32,
             device=None) -> MLPParams:
    """PyTorch's default ``nn.Linear`` initialization, U(-1/sqrt(fan_in), 1/sqrt(fan_in)); no bias on the output."""
    d, h, k = check_int("d", d, 1), check_int("h", h, 1), check_int("k", k, 2)

    def u(shape, fan_in):
        r = torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1
        return (r / math.sqrt(fan_in)).to(device)

    return MLPParams(u((h, d), d), u((h,), d), u((k, h), h))


def predict(params: MLPParams, x: Tensor) -> Tensor:
    """The outputs (n, K) of the network on inputs (n, d)."""
    return torch.relu(x @ params.W.T + params.b) @ params.V.T


def accuracy(params: MLPParams, x: Tensor, y: Tensor) -> float:
    return float((predict(params, x).argmax(1) == y).float().mean())


# ---------------------------------------------------------------------------------------------------------------
# the projections, one per kind of node (batched: every leading index is an independent node)


def project_affine_rows(w: Tensor, b: Tensor, z: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest point of :math:`\\{(w, b, z) : z = w^\\top x + b\\}` for fixed data ``x``.

    Shapes: ``w`` (..., d), ``b`` and ``z`` (...,), ``x`` broadcastable to ``w``. The set is a hyperplane with
    normal :math:`(-x, -1, 1)`, so the projection subtracts the residual times the normal over its squared norm."""
    x = x.expand_as(w)
    r = z - (w * x).sum(-1) - b
    s = r / ((x * x).sum(-1) + 2.0)
    return w + s[..., None] * x, b + s, z - s


def project_relu_graph(z: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
    """Nearest point of the graph :math:`\\{(z, a) : a = \\max(z, 0)\\}`, elementwise.

    The graph is the union of the half-line :math:`\\{(t, 0) : t \\le 0\\}` and the ray :math:`\\{(t, t) : t \\ge 0\\}`:
    project onto each (clipping) and keep the nearer point (ties go to the ray)."""
    z1, a1 = torch.clamp(z, max=0.0), torch.zeros_like(a)
    t = torch.clamp((z + a) / 2, min=0.0)
    d1 = (z - z1) ** 2 + a ** 2
    d2 = (z - t) ** 2 + (a - t) ** 2
    ray = d2 <= d1
    return torch.where(ray, t, z1), torch.where(ray, t, a1)


def project_dot_graph(v: Tensor, a: Tensor, o: Tensor, *, iters: int = 12) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest point of :math:`\\{(v, a, o) : o = v^\\top a\\}` (``v``, ``a`` (..., n); ``o`` (...,)).

    Rotating to :math:`p = (v + a)/\\sqrt2`, :math:`q = (v - a)/\\sqrt2` turns the set into
    :math:`o = (\\lVert p\\rVert^2 - \\lVert q\\rVert^2)/2`; the nearest point is :math:`p_0/(1-\\lambda)`,
    :math:`q_0/(1+\\lambda)`, :math:`o_0 - \\lambda`, where :math:`\\lambda \\in (-1, 1)` is the root of the strictly
    decreasing :math:`g(\\lambda) = o_0 - \\lambda - (\\lVert p_0\\rVert^2/(1-\\lambda)^2 - \\lVert q_0\\rVert^2/(1+\\lambda)^2)/2`
    (Newton's method on the quintic :math:`g(\\lambda)(1-\\lambda^2)^2`, a step taken where it stays inside the current
    bracket, else bisection; ``iters`` steps). Where :math:`p_0 = 0` or :math:`q_0 = 0` the nearest point may not be unique
    (Bauschke, Lal, Wang 2022); the root is then clamped to the interval and one nearest point is returned."""
    iters = check_int("iters", iters, 1)
    s = 1.0 / math.sqrt(2.0)
    p0, q0 = (v + a) * s, (v - a) * s
    pp, qq = (p0 * p0).sum(-1), (q0 * q0).sum(-1)
    eps = torch.finfo(v.dtype).eps
    lo = torch.full_like(o, -1.0 + 4 * eps)
    hi = torch.full_like(o, 1.0 - 4 * eps)
    lam = torch.zeros_like(o)
    for _ in range(iters):
        # Newton on the quintic P = g * (1 - lam^2)^2, which has g's sign on (-1, 1) and no poles
        w = 1 - lam * lam
        P = (o - lam) * w * w - 0.5 * (pp * (1 + lam) ** 2 - qq * (1 - lam) ** 2)
        dP = -w * w - 4 * lam * w * (o - lam) - pp * (1 + lam) - qq * (1 - lam)
        pos = P > 0
        lo = torch.where(pos, lam, lo)
        hi = torch.where(pos, hi, lam)
        newton = lam - P / torch.where(dP == 0, torch.ones_like(dP), dP)
        inside = (newton >= lo) & (newton <= hi) & (dP != 0)
        lam = torch.where(inside, newton, (lo + hi) / 2)
    p = p0 / (1 - lam)[..., None]
    q = q0 / (1 + lam)[..., None]
    return (p + q) * s, (p - q) * s, o - lam


def project_label_box(o: Tensor, y: Tensor, margin: float) -> Tensor:
    """Nearest point of :math:`\\{o : o_{y} \\ge m,\\ o_k \\le 0 \\ (k \\ne y)\\}` per row of ``o`` (n, K): a clip."""
    margin = check_nonnegative("margin", margin)
    hot = torch.nn.functional.one_hot(y, o.shape[-1]).to(torch.bool)
    return torch.where(hot, torch.clamp(o, min=margin), torch.clamp(o, max=0.0))


def label_violation(o: Tensor, y: Tensor, margin: float) -> Tensor:
    """Distance of each row of ``o`` to its label set (0 exactly when the margin constraint holds)."""
    return (o - project_label_box(o, y, margin)).norm(dim=-1)


# ---------------------------------------------------------------------------------------------------------------
# the product-space feasibility problem of one mini-batch


@dataclass
class ProjectionMLP:
    """The copies of every variable of one mini-batch's feasibility problem (B examples, h hidden, K classes).

    ``W1`` (B, h, d), ``b1`` (B, h), ``z1`` (B, h): the layer-1 nodes; ``zr``, ``ar`` (B, h): the ReLU nodes;
    ``V2``, ``a2`` (B, K, h), ``o2`` (B, K): the dot-product nodes; ``oL`` (B, K): the label nodes."""
    W1: Tensor
    b1: Tensor
    z1: Tensor
    zr: Tensor
    ar: Tensor
    V2: Tensor
    a2: Tensor
    o2: Tensor
    oL: Tensor
    FIELDS: ClassVar[tuple[str, ...]] = ("W1", "b1", "z1", "zr", "ar", "V2", "a2", "o2", "oL")

    @classmethod
    def from_forward(cls, params: MLPParams, x: Tensor) -> ProjectionMLP:
        """The consensus point of a forward pass: every copy equal to the network's value (only labels violated)."""
        B, K = x.shape[0], params.V.shape[0]
        z = x @ params.W.T + params.b
        a = torch.relu(z)
        o = a @ params.V.T
        return cls(params.W.expand(B, -1, -1).clone(), params.b.expand(B, -1).clone(), z.clone(), z.clone(),
                   a.clone(), params.V.expand(B, -1, -1).clone(), a[:, None, :].expand(-1, K, -1).clone(),
                   o.clone(), o.clone())

    def tensors(self) -> list[Tensor]:
        return [getattr(self, f) for f in self.FIELDS]

    def combine(self, other: ProjectionMLP, alpha: float, beta: float) -> ProjectionMLP:
        """``alpha * self + beta * other``, copy by copy."""
        return ProjectionMLP(*[alpha * s + beta * t for s, t in zip(self.tensors(), other.tensors())])

    def sq_norm(self) -> float:
        return float(sum((t * t).sum() for t in self.tensors()))

    def project_nodes(self, x: Tensor, y: Tensor, margin: float, dot_iters: int = 12) -> ProjectionMLP:
        """:math:`P_A`: every node's copies onto that node's constraint, all nodes at once."""
        W1, b1, z1 = project_affine_rows(self.W1, self.b1, self.z1, x[:, None, :])
        zr, ar = project_relu_graph(self.zr, self.ar)
        V2, a2, o2 = project_dot_graph(self.V2, self.a2, self.o2, iters=dot_iters)
        oL = project_label_box(self.oL, y, margin)
        return ProjectionMLP(W1, b1, z1, zr, ar, V2, a2, o2, oL)

    def consensus_values(self) -> tuple[MLPParams, Tensor, Tensor, Tensor]:
        """The averages of the copies: the parameters and the states z, a, o."""
        K = self.V2.shape[1]
        params = MLPParams(self.W1.mean(0), self.b1.mean(0), self.V2.mean(0))
        z = (self.z1 + self.zr) / 2
        a = (self.ar + self.a2.sum(1)) / (1 + K)
        o = (self.o2 + self.oL) / 2
        return params, z, a, o

    def consensus(self) -> ProjectionMLP:
        """:math:`P_B`: every copy replaced by the average of its variable's copies."""
        params, z, a, o = self.consensus_values()
        B, K = self.z1.shape[0], self.V2.shape[1]
        return ProjectionMLP(params.W.expand(B, -1, -1), params.b.expand(B, -1), z, z, a,
                             params.V.expand(B, -1, -1), a[:, None, :].expand(-1, K, -1), o, o)

    def violation(self, x: Tensor, y: Tensor, margin: float) -> float:
        """Distance from this point to the node sets, :math:`\\lVert P_A(u) - u\\rVert` (0 when every constraint holds)."""
        return math.sqrt(self.project_nodes(x, y, margin).combine(self, 1.0, -1.0).sq_norm())


def projection_update(params: MLPParams, x: Tensor, y: Tensor, *, steps: int, method: str = "dr",
                      margin: float = 1.0, dot_iters: int = 12,
                      record_every: int = 1) -> tuple[MLPParams, list[float]]:
    """One update of the paper's training loop on the mini-batch ``(x, y)``: start every copy at the forward pass
    of ``params``, run ``steps`` iterations of ``method`` (``"dr"`` Douglas-Rachford or ``"ap"`` alternating
    projections), return the consensus parameters and the consensus point's violation (:meth:`ProjectionMLP.violation`)
    before the first iteration, after every ``record_every``-th one and after the last (``record_every=0``: only
    before the first and after the last; each record costs one more projection)."""
    steps = check_int("steps", steps, 1)
    method = check_choice("method", method, METHODS)
    margin = check_positive("margin", margin)
    record_every = check_int("record_every", record_every, 0)
    u = ProjectionMLP.from_forward(params, x)
    c = u  # the consensus point P_B(u); the forward pass is already one
    hist = [u.violation(x, y, margin)]
    for t in range(1, steps + 1):
        if method == "ap":
            u = c = u.project_nodes(x, y, margin, dot_iters).consensus()
        else:
            r = c.combine(u, 2.0, -1.0).project_nodes(x, y, margin, dot_iters)
            u = u.combine(r, 1.0, 1.0).combine(c, 1.0, -1.0)
            c = u.consensus()
        if t == steps or (record_every and t % record_every == 0):
            hist.append(c.violation(x, y, margin))
    return c.consensus_values()[0], hist


@dataclass
class TrainResult:
    params: MLPParams
    updates: list[int]            # the number of updates (mini-batch steps) at each evaluation (entry 0: none)
    train_acc: list[float]        # at those times
    test_acc: list[float]
    label_violation: list[float]  # mean distance of the training outputs to their label sets, same times
    update_violation: list[list[float]] = field(default_factory=list)  # projection only: per update, per step
    seconds: float = 0.0


def _batches(n: int, batch_size: int, generator: torch.Generator | None, device) -> list[Tensor]:
    perm = torch.randperm(n, generator=generator).to(device)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def train_projection(params: MLPParams, x: Tensor, y: Tensor, x_test: Tensor, y_test: Tensor, *, epochs: int,
                     batch_size: int, steps: int, method: str = "dr", margin: float = 1.0, dot_iters: int = 12,
                     record_every: int = 0, eval_every: int = 0,
                     generator: torch.Generator | None = None) -> TrainResult:
    """Projection training (no gradients): for each mini-batch, :func:`projection_update`; ``epochs`` passes.
    The network is evaluated every ``eval_every`` updates and after each epoch (``eval_every=0``: each epoch)."""
    import time

    epochs, batch_size = check_int("epochs", epochs, 1), check_int("batch_size", batch_size, 1)
    eval_every = check_int("eval_every", eval_every, 0)
    p = params.clone()
    res = TrainResult(p, [], [], [], [])
    _evaluate(res, 0, p, x, y, x_test, y_test, margin)
    t0 = time.perf_counter()
    n_up = 0
    with torch.no_grad():
        for _ in range(epochs):
            for idx in _batches(len(y), batch_size, generator, x.device):
                p, hist = projection_update(p, x[idx], y[idx], steps=steps, method=method, margin=margin,
                                            dot_iters=dot_iters, record_every=record_every)
                res.update_violation.append(hist)
                n_up += 1
                if eval_every and n_up % eval_every == 0:
                    _evaluate(res, n_up, p, x, y, x_test, y_test, margin)
            if res.updates[-1] != n_up:
                _evaluate(res, n_up, p, x, y, x_test, y_test, margin)
    res.params, res.seconds = p, time.perf_counter() - t0
    return res


def _evaluate(res: TrainResult, n_up: int, p: MLPParams, x, y, x_test, y_test, margin: float) -> None:
    with torch.no_grad():
        res.updates.append(n_up)
        res.train_acc.append(accuracy(p, x, y))
        res.test_acc.append(accuracy(p, x_test, y_test))
        res.label_violation.append(float(label_violation(predict(p, x), y, margin).mean()))


def train_adam(params: MLPParams, x: Tensor, y: Tensor, x_test: Tensor, y_test: Tensor, *, epochs: int,
               batch_size: int, lr: float = 1e-3, margin: float = 1.0, eval_every: int = 0,
               generator: torch.Generator | None = None) -> TrainResult:
    """The gradient baseline: the same network trained by :class:`optrepro.optim.Adam` on the cross-entropy loss
    through :func:`optrepro.train.fit` (evaluated as :func:`train_projection`)."""
    import time

    epochs, batch_size = check_int("epochs", epochs, 1), check_int("batch_size", batch_size, 1)
    lr, eval_every = check_positive("lr", lr), check_int("eval_every", eval_every, 0)
    W, b, V = (t.detach().clone().requires_grad_(True) for t in (params.W, params.b, params.V))
    p = MLPParams(W, b, V)
    opt = Adam([W, b, V], lr=lr)
    res = TrainResult(p, [], [], [], [])
    _evaluate(res, 0, p, x, y, x_test, y_test, margin)
    per_epoch = -(-len(y) // batch_size)
    batches, updates = [], [0]

    def loss(k):   # step k: batch k % per_epoch of the epoch's permutation
        if k % per_epoch == 0:
            batches[:] = _batches(len(y), batch_size, generator, x.device)
        idx = batches[k % per_epoch]
        return torch.nn.functional.cross_entropy(predict(p, x[idx]), y[idx])

    def evaluate():   # after update k + 1: every eval_every updates and at the end of each epoch
        n_up = updates[0] = updates[0] + 1
        if (eval_every and n_up % eval_every == 0) or n_up % per_epoch == 0:
            _evaluate(res, n_up, p, x, y, x_test, y_test, margin)
        return {}

    t0 = time.perf_counter()
    train(loss, opt, epochs * per_epoch, metrics=evaluate, stop_on_nonfinite=False)
    res.seconds = time.perf_counter() - t0
    res.params = MLPParams(W.detach(), b.detach(), V.detach())
    return res
