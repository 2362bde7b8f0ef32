r"""Globally smooth functions on a data manifold: Lipschitz constraints as a dynamically weighted Laplacian.

Reference: J. Cerviño, L. F. O. Chamon, B. D. Haeffele, R. Vidal, A. Ribeiro. "Learning Globally Smooth Functions
on Manifolds", ICML 2023, arXiv:2210.00301.

The paper learns a function that fits the labelled data and is smooth at **every** point of the data manifold
:math:`\mathcal M`, rather than on average (manifold regularization). With a point cloud :math:`x_1..x_N`
(labelled and unlabelled) the manifold gradient at :math:`x_i` is replaced by a graph estimate; here the mean
squared slope over the :math:`k` nearest neighbours :math:`\mathcal N(i)`,

.. math::
    s_i(f) = \frac1k \sum_{j \in \mathcal N(i)} \frac{(f(x_i) - f(x_j))^2}{\lVert x_i - x_j\rVert^2},
    \qquad \sum_i s_i(f) = 2\, f^\top L f,\quad L = D - W,\ W = \tfrac12(A + A^\top),\
    A_{ij} = \frac{1[j \in \mathcal N(i)]}{k\,\lVert x_i - x_j\rVert^2},

and the constrained learning problem (the paper's eq. (3) on the point cloud) is

.. math::
    \min_{\theta,\ \rho \ge 0}\ \rho \quad\text{s.t.}\quad \ell(\theta) = \tfrac1{n_\ell}\textstyle\sum_{labelled}
    \mathrm{BCE}(f_\theta(x_i), y_i) \le \epsilon,\qquad s_i(f_\theta) \le \rho,\ i = 1..N .

Its Lagrangian :math:`\mathcal L = \rho + \mu(\ell - \epsilon) + \frac1N\sum_i \lambda_i (s_i - \rho)` is, in
:math:`\theta`, a manifold regularizer :math:`\frac1N\sum_i\lambda_i s_i` whose **point-wise weights are the dual
variables**. The primal-dual algorithm (the paper's Algorithm 1) takes a descent step in :math:`\theta` and
projected ascent/descent steps in the multipliers:

.. math::
    \theta \leftarrow \theta - \eta_\theta \nabla_\theta \mathcal L,\quad
    \lambda_i \leftarrow [\lambda_i + \eta_\lambda (s_i - \rho)]_+,\quad
    \mu \leftarrow [\mu + \eta_\mu (\ell - \epsilon)]_+,\quad
    \rho \leftarrow [\rho - \eta_\rho (1 - \tfrac1N\textstyle\sum_i \lambda_i)]_+ .

Baselines: ``"laplacian"`` (fixed-weight manifold regularization, :math:`\ell + \gamma\,\frac1N\sum_i s_i`,
i.e. all :math:`\lambda_i = \gamma`) and ``"erm"`` (:math:`\ell` alone). The estimated Lipschitz constant of a
function on the cloud is its largest slope over the graph's edges, :math:`\max_{i, j \in \mathcal N(i)}
|f(x_i) - f(x_j)| / \lVert x_i - x_j\rVert` (:func:`lipschitz_estimate`).

Everything is batched over ``R`` independent problems (data draws): points ``(R, N, d)``, one small MLP per draw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from optrepro.checks import check_choice, check_int, check_nonnegative, check_positive
from optrepro.constrained.primal_dual import dual_step
from optrepro.threads import one_cpu_thread_if
from optrepro.optim import Adam

__all__ = ["METHODS", "Graph", "knn_graph", "laplacian", "local_smoothness", "lipschitz_estimate", "BatchedMLP",
           "SmoothResult", "train_smooth", "dual_step"]

METHODS = ("primal_dual", "laplacian", "erm")


@dataclass
class Graph:
    """k-nearest-neighbour graph of ``R`` point clouds: ``idx`` ``(R, N, k)`` neighbour indices, ``dist`` their distances."""
    idx: torch.Tensor
    dist: torch.Tensor


def _batched(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() == 2:
        return x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(f"invalid {name} shape {tuple(x.shape)}: expected (N, d) or (R, N, d)")
    return x


def knn_graph(x: torch.Tensor, k: int) -> Graph:
    """The ``k`` nearest neighbours of every point (itself excluded) of ``x`` ``(N, d)`` or ``(R, N, d)``."""
    x = _batched(x, "x")
    k = check_int("k", k, 1)
    if k >= x.shape[1]:
        raise ValueError(f"invalid k {k}: expected 1 <= k < N = {x.shape[1]}")
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")  # exact differences: no spurious zeros
    d.diagonal(dim1=1, dim2=2).fill_(math.inf)
    dist, idx = d.topk(k, dim=2, largest=False)
    if not bool((dist > 0).all()):
        raise ValueError("invalid x: duplicate points (zero distance between neighbours); expected distinct points")
    return Graph(idx, dist)


def _diffs(f: torch.Tensor, g: Graph) -> torch.Tensor:
    """``f(x_j) - f(x_i)`` for every edge, shape ``(R, N, k)``; ``f`` is ``(R, N)`` (or ``(N,)`` with R = 1)."""
    f = f.unsqueeze(0) if f.dim() == 1 else f
    if f.shape != g.idx.shape[:2]:
        raise ValueError(f"invalid f shape {tuple(f.shape)}: expected (R, N) = {tuple(g.idx.shape[:2])}")
    R, N, k = g.idx.shape
    nb = torch.gather(f, 1, g.idx.reshape(R, N * k)).reshape(R, N, k)
    return nb - f.unsqueeze(2)


def local_smoothness(f: torch.Tensor, g: Graph) -> torch.Tensor:
    r"""Point-wise squared-gradient estimate :math:`s_i = \frac1k\sum_{j\in\mathcal N(i)} (f_i-f_j)^2/d_{ij}^2`, ``(R, N)``."""
    return ((_diffs(f, g) / g.dist) ** 2).mean(dim=2)


def lipschitz_estimate(f: torch.Tensor, g: Graph) -> torch.Tensor:
    r"""Largest slope over the graph's edges, :math:`\max_{i,j\in\mathcal N(i)} |f_i - f_j| / d_{ij}`, shape ``(R,)``."""
    return (_diffs(f, g).abs() / g.dist).amax(dim=(1, 2))


def laplacian(g: Graph) -> torch.Tensor:
    r"""Dense graph Laplacians :math:`L = D - W` ``(R, N, N)`` with :math:`\sum_i s_i(f) = 2 f^\top L f`."""
    R, N, k = g.idx.shape
    A = torch.zeros(R, N, N, dtype=g.dist.dtype, device=g.dist.device)
    A.scatter_(2, g.idx, 1.0 / (k * g.dist ** 2))
    W = 0.5 * (A + A.transpose(1, 2))
    return torch.diag_embed(W.sum(dim=2)) - W


class BatchedMLP(torch.nn.Module):
    """``R`` independent MLPs ``d -> width -> ... -> 1`` (tanh), evaluated together with batched matmuls."""

    def __init__(self, R: int, d: int, width: int, depth: int = 2, generator: torch.Generator | None = None):
        super().__init__()
        R, d, width, depth = (check_int("R", R, 1), check_int("d", d, 1), check_int("width", width, 1),
                              check_int("depth", depth, 1))
        sizes = [d] + [width] * depth + [1]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(a)  # torch.nn.Linear's default initialization
            self.weights.append(torch.nn.Parameter((torch.rand(R, a, b, generator=generator) * 2 - 1) * bound))
            self.biases.append(torch.nn.Parameter((torch.rand(R, 1, b, generator=generator) * 2 - 1) * bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(R, n, d)`` -> outputs (logits) ``(R, n)``."""
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.tanh(h)
        return h.squeeze(2)


@dataclass
class SmoothResult:
    """A trained batch of models and its history (one row per logged step, one column per draw)."""
    model: BatchedMLP
    method: str
    loss: list = field(default_factory=list)        # labelled BCE, (R,) per logged step
    rho: list = field(default_factory=list)         # primal-dual only
    mu: list = field(default_factory=list)
    lam_mean: list = field(default_factory=list)
    lam: torch.Tensor | None = None                 # final point-wise multipliers (R, N)


def train_smooth(x: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor, graph: Graph, method: str, *,
                 steps: int, lr: float = 1e-2, width: int = 32, depth: int = 2, eps: float = 0.1,
                 gamma: float = 0.1, dual_lr: float = 1e-2, rho_lr: float = 1e-2, mu_lr: float = 1e-1,
                 log_every: int = 10, generator: torch.Generator | None = None) -> SmoothResult:
    r"""Train one MLP per draw on ``x`` ``(R, N, d)`` with binary labels ``y`` ``(R, N)`` known where ``labelled``.

    ``method``: ``"primal_dual"`` (the paper's Algorithm 1, loss level ``eps``), ``"laplacian"`` (fixed weight
    ``gamma``) or ``"erm"``. Full-batch Adam (step ``lr``) in the network weights; plain projected steps in the
    multipliers (``dual_lr`` for :math:`\lambda`, ``mu_lr`` for :math:`\mu`, ``rho_lr`` for :math:`\rho`), started
    at :math:`\lambda_i = \mu = 1,\ \rho = 0`.
    """
    method = check_choice("method", method, METHODS)
    steps, log_every, depth = check_int("steps", steps, 1), check_int("log_every", log_every, 1), check_int("depth", depth, 1)
    for name, v in (("lr", lr), ("eps", eps), ("dual_lr", dual_lr), ("rho_lr", rho_lr), ("mu_lr", mu_lr)):
        check_positive(name, v)
    check_nonnegative("gamma", gamma)
    x = _batched(x, "x")
    y = y.unsqueeze(0) if y.dim() == 1 else y
    labelled = labelled.unsqueeze(0) if labelled.dim() == 1 else labelled
    R, N, d = x.shape
    if y.shape != (R, N) or labelled.shape != (R, N) or graph.idx.shape[:2] != (R, N):
        raise ValueError(f"invalid shapes y {tuple(y.shape)}, labelled {tuple(labelled.shape)}, graph "
                         f"{tuple(graph.idx.shape)}: expected (R, N) = ({R}, {N})")
    if not bool((labelled.sum(dim=1) > 0).all()):
        raise ValueError("invalid labelled: every draw needs at least one labelled point")
    model = BatchedMLP(R, d, width, depth, generator=generator).to(x.device, x.dtype)
    opt = Adam(model.parameters(), lr=check_positive("lr", lr))
    lab = labelled.to(x.dtype)
    n_lab = lab.sum(dim=1)
    lam = torch.ones(R, N, dtype=x.dtype, device=x.device)
    mu = torch.ones(R, dtype=x.dtype, device=x.device)
    rho = torch.zeros(R, dtype=x.dtype, device=x.device)
    res = SmoothResult(model, method)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    with one_cpu_thread_if(N * width <= 64 * 1024, x.device):
        for t in range(steps):
            f = model(x)
            loss = (bce(f, y.to(x.dtype), reduction="none") * lab).sum(dim=1) / n_lab
            if method == "erm":
                obj = loss.sum()
            else:
                s = local_smoothness(f, graph)
                if method == "laplacian":
                    obj = (loss + gamma * s.mean(dim=1)).sum()
                else:
                    obj = (mu * (loss - eps) + (lam * (s - rho.unsqueeze(1))).mean(dim=1)).sum()
            opt.zero_grad(set_to_none=True)
            obj.backward()
            opt.step()
            if method == "primal_dual":
                with torch.no_grad():
                    lam = dual_step(lam, s.detach() - rho.unsqueeze(1), dual_lr)
                    mu = dual_step(mu, loss.detach() - eps, mu_lr)
                    rho = (rho - rho_lr * (1.0 - lam.mean(dim=1))).clamp_min(0.0)
            if t % log_every == 0 or t == steps - 1:
                res.loss.append(loss.detach().cpu())
                if method == "primal_dual":
                    res.rho.append(rho.cpu())
                    res.mu.append(mu.cpu())
                    res.lam_mean.append(lam.mean(dim=1).cpu())
    res.lam = lam if method == "primal_dual" else None
    return res
