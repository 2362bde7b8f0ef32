r"""Generative deep linear networks trained with the Bures-Wasserstein loss (Brechet et al., ICML 2023).

**The distance.** For covariance matrices :math:`A, B \succeq 0` the squared Bures-Wasserstein distance, the squared
2-Wasserstein distance between :math:`\mathcal N(0, A)` and :math:`\mathcal N(0, B)`, is

.. math:: \mathcal B^2(A, B) = \operatorname{tr} A + \operatorname{tr} B
          - 2\operatorname{tr}\big(A^{1/2} B A^{1/2}\big)^{1/2}    \qquad(:func:`bw_squared`).

**The model.** A deep linear generator :math:`z \sim \mathcal N(0, I_{d_0})`, :math:`x = W z` with
:math:`W = W_N \cdots W_1`, :math:`W_j \in \mathbb R^{d_j\times d_{j-1}}`, generates :math:`\mathcal N(0, WW^\top)`;
its rank is at most :math:`k = \min_j d_j` (the bottleneck). It is fitted to a target :math:`\Sigma_0 \succ 0`
(:class:`BWTarget`, square root :math:`R_0 = \Sigma_0^{1/2}`) by the loss :math:`L(W) = \mathcal B^2(WW^\top, \Sigma_0)`.
Since :math:`\operatorname{tr}(R_0 W W^\top R_0)^{1/2} = \|R_0 W\|_*` (nuclear norm),

.. math:: L(W) = \|W\|_F^2 + \operatorname{tr}\Sigma_0 - 2\|R_0 W\|_*, \qquad
          \nabla L(W) = 2\,(W - R_0 U V^\top)\quad (R_0 W = U S V^\top,\ \text{thin SVD}),

which is not differentiable where :math:`R_0 W` loses rank, and whose Hessian blows up near there. The paper's
convergence analysis uses the **smooth perturbative loss** (``tau`` > 0)

.. math:: L^\tau(W) = \mathcal B^2(WW^\top + \tau I, \Sigma_0), \qquad
          \nabla L^\tau(W) = 2\big(I - R_0 M^{-1/2} R_0\big) W,\quad M = R_0 (WW^\top + \tau I) R_0,

with the layer gradients :math:`\nabla_{W_j} = (W_N\cdots W_{j+1})^\top \nabla L(W)\,(W_{j-1}\cdots W_1)^\top`
(:func:`layer_gradients`); :func:`train_gd` runs plain full-batch gradient descent on the layers.

**Critical points** (the paper's characterisation). Let :math:`\Sigma_0 = \sum_i \lambda_i v_i v_i^\top` with
:math:`\lambda_1 > \dots > \lambda_d > \tau`. For a subset :math:`J` of the eigen-indices,
:math:`\Sigma_J^\tau = \sum_{j\in J} (\lambda_j - \tau) v_j v_j^\top` (:meth:`BWTarget.subset_covariance`) is critical,
and every :math:`W` with :math:`WW^\top = \Sigma_J^\tau` is a critical point of :math:`L^\tau` in the layers, with

.. math:: L^\tau = \sum_{i \notin J} \big(\sqrt{\lambda_i} - \sqrt{\tau}\big)^2 \qquad (\tau = 0:\ \textstyle\sum_{i\notin J}\lambda_i),

(:meth:`BWTarget.subset_loss`). Over rank-:math:`k` matrices the minimum is at :math:`J = \{1, \dots, k\}`, the
top-:math:`k` eigen-truncation (:meth:`BWTarget.truncation`); the other subsets are saddles. For gradient descent
from **balanced** initialisations (:math:`W_{j+1}^\top W_{j+1} = W_j W_j^\top`, :func:`balanced_factorization`),
which GD keeps approximately balanced, the paper proves convergence of the smooth loss.

Reference: P. Brechet, K. Papagiannouli, J. An, G. Montufar. "Critical Points and Convergence Analysis of Generative
Deep Linear Networks Trained with Bures-Wasserstein Loss." ICML 2023, arXiv:2303.03027.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..checks import check_int, check_nonnegative, check_positive

__all__ = [
    "BWTarget",
    "GDTrace",
    "balanced_factorization",
    "balanced_init",
    "balancedness",
    "bw_squared",
    "end_to_end",
    "flatten",
    "layer_gradients",
    "parameter_hessian",
    "psd_sqrt",
    "train_gd",
    "unflatten",
]


# ------------------------------------------------------------------------------------------- the distance

def _symmetric(A: Tensor, name: str) -> Tensor:
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"invalid {name} of shape {tuple(A.shape)}: expected square (..., n, n) matrices")
    return (A + A.transpose(-1, -2)) / 2


def psd_sqrt(A: Tensor) -> Tensor:
    """The PSD square root of symmetric PSD matrices (batched), by eigen-decomposition; tiny negative
    eigenvalues from round-off are clamped to 0."""
    A = _symmetric(A, "A")
    evals, evecs = torch.linalg.eigh(A)
    return (evecs * evals.clamp_min(0).sqrt().unsqueeze(-2)) @ evecs.transpose(-1, -2)


def bw_squared(A: Tensor, B: Tensor) -> Tensor:
    """Squared Bures-Wasserstein distance tr A + tr B - 2 tr (A^{1/2} B A^{1/2})^{1/2} (batched over leading dims)."""
    A, B = _symmetric(A, "A"), _symmetric(B, "B")
    if A.shape[-1] != B.shape[-1]:
        raise ValueError(f"invalid shapes {tuple(A.shape)} and {tuple(B.shape)}: expected matrices of one size n x n")
    rA = psd_sqrt(A)
    cross = torch.linalg.eigvalsh(_symmetric(rA @ B @ rA, "A^1/2 B A^1/2")).clamp_min(0).sqrt().sum(-1)
    trace = lambda X: X.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (trace(A) + trace(B) - 2 * cross).clamp_min(0)


# ------------------------------------------------------------------------------------------- the target

class BWTarget:
    r"""A target covariance :math:`\Sigma_0 \succ 0` with distinct eigenvalues, the loss
    :math:`L^\tau(W) = \mathcal B^2(WW^\top + \tau I, \Sigma_0)` of end-to-end matrices W (d x d_0, batched) and
    its gradient, and the paper's critical points :math:`\Sigma^\tau_J`."""

    def __init__(self, sigma0: Tensor) -> None:
        sigma0 = _symmetric(sigma0, "sigma0")
        if sigma0.dim() != 2:
            raise ValueError(f"invalid sigma0 of shape {tuple(sigma0.shape)}: expected one d x d matrix")
        evals, evecs = torch.linalg.eigh(sigma0)
        if not evals.min() > 0:
            raise ValueError(f"invalid sigma0 with smallest eigenvalue {float(evals.min()):.3g}: expected a positive "
                             "definite target covariance")
        order = torch.argsort(evals, descending=True)
        self.sigma0 = sigma0
        self.eigenvalues, self.eigenvectors = evals[order], evecs[:, order]   # lambda_1 > ... > lambda_d, v_i columns
        self.root = (self.eigenvectors * self.eigenvalues.sqrt()) @ self.eigenvectors.T  # R_0 = Sigma_0^{1/2}
        self.dim = sigma0.shape[0]

    @classmethod
    def random(cls, eigenvalues: Sequence[float], *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64, device=None) -> BWTarget:
        """Sigma_0 = Q diag(eigenvalues) Q^T with Q a Haar-random orthogonal matrix (drawn on the CPU)."""
        lam = torch.as_tensor(list(eigenvalues), dtype=dtype)
        if lam.dim() != 1 or len(lam) < 1 or not lam.min() > 0:
            raise ValueError(f"invalid eigenvalues {list(eigenvalues)!r}: expected a list of positive numbers")
        Q, Rq = torch.linalg.qr(torch.randn(len(lam), len(lam), generator=generator, dtype=dtype))
        Q = Q * torch.sign(torch.diagonal(Rq))
        return cls(((Q * lam) @ Q.T).to(device))

    def _tau(self, tau: float) -> float:
        tau = check_nonnegative("tau", tau)
        if tau >= float(self.eigenvalues[-1]):
            raise ValueError(f"invalid tau {tau!r}: expected 0 <= tau < the smallest target eigenvalue "
                             f"{float(self.eigenvalues[-1]):.4g}")
        return tau

    # -- loss and gradient of the end-to-end matrix
    def loss(self, W: Tensor, tau: float = 0.0) -> Tensor:
        """L^tau(W) = B^2(W W^T + tau I, Sigma_0) for W of shape (..., d, d_0); tau = 0 is the exact BW loss."""
        tau = self._tau(tau)
        if tau == 0:
            return ((W**2).sum((-1, -2)) + self.eigenvalues.sum()
                    - 2 * torch.linalg.svdvals(self.root @ W).sum(-1)).clamp_min(0)
        eye = torch.eye(self.dim, dtype=W.dtype, device=W.device)
        return bw_squared(W @ W.transpose(-1, -2) + tau * eye, self.sigma0)

    def gradient(self, W: Tensor, tau: float = 0.0, rtol: float = 1e-10) -> Tensor:
        """The gradient of :meth:`loss` in W. tau = 0: 2 (W - R_0 U V^T) over the singular values of R_0 W above
        ``rtol`` times the largest (a subgradient where R_0 W is rank-deficient)."""
        tau = self._tau(tau)
        if tau == 0:
            U, S, Vh = torch.linalg.svd(self.root @ W, full_matrices=False)
            keep = (S > rtol * S[..., :1]).to(W.dtype).unsqueeze(-2)
            return 2 * (W - self.root @ (U * keep) @ Vh)
        eye = torch.eye(self.dim, dtype=W.dtype, device=W.device)
        M = _symmetric(self.root @ (W @ W.transpose(-1, -2) + tau * eye) @ self.root, "M")
        evals, evecs = torch.linalg.eigh(M)
        inv_root = (evecs * evals.rsqrt().unsqueeze(-2)) @ evecs.transpose(-1, -2)
        return 2 * (W - self.root @ inv_root @ self.root @ W)

    # -- the paper's critical points
    def _subset(self, J: Sequence[int]) -> list[int]:
        J = sorted(int(j) for j in J)
        if len(set(J)) != len(J) or any(j < 0 or j >= self.dim for j in J):
            raise ValueError(f"invalid eigen-index subset {J!r}: expected distinct indices in 0..{self.dim - 1}")
        return J

    def subset_covariance(self, J: Sequence[int], tau: float = 0.0) -> Tensor:
        """Sigma_J^tau = sum_{j in J} (lambda_j - tau) v_j v_j^T (indices 0-based, eigenvalues descending)."""
        tau, J = self._tau(tau), self._subset(J)
        V = self.eigenvectors[:, J]
        return (V * (self.eigenvalues[J] - tau)) @ V.T

    def subset_loss(self, J: Sequence[int], tau: float = 0.0) -> float:
        """The paper's value of the loss there: sum over i not in J of (sqrt(lambda_i) - sqrt(tau))^2."""
        tau, J = self._tau(tau), self._subset(J)
        out = [i for i in range(self.dim) if i not in J]
        return float(((self.eigenvalues[out].sqrt() - tau**0.5) ** 2).sum())

    def subset_factor(self, J: Sequence[int], tau: float = 0.0, d0: int | None = None) -> Tensor:
        """An end-to-end W (d x d_0) with W W^T = Sigma_J^tau: V_J diag(sqrt(lambda_J - tau)) [I_|J| 0]."""
        J = self._subset(J)
        d0 = self.dim if d0 is None else check_int("d0", d0, len(J))
        W = torch.zeros(self.dim, d0, dtype=self.sigma0.dtype, device=self.sigma0.device)
        W[:, : len(J)] = self.eigenvectors[:, J] * (self.eigenvalues[J] - self._tau(tau)).sqrt()
        return W

    def truncation(self, k: int, tau: float = 0.0) -> Tensor:
        """The minimiser over rank <= k: the top-k eigen-truncation Sigma^tau_{1..k}."""
        return self.subset_covariance(range(check_int("k", k, 1)), tau)

    def min_loss(self, k: int, tau: float = 0.0) -> float:
        """The minimum of L^tau over rank <= k: sum_{i > k} (sqrt(lambda_i) - sqrt(tau))^2."""
        return self.subset_loss(range(check_int("k", k, 1)), tau)

    def subsets(self, k: int) -> list[tuple[int, ...]]:
        """Every eigen-index subset of size k, the optimal one (0, ..., k-1) first."""
        return list(itertools.combinations(range(self.dim), check_int("k", k, 1)))

    def neighbour_subsets(self, k: int) -> list[tuple[int, ...]]:
        """The k (d - k) subsets one swap away from the optimum {0..k-1}: the critical points with the lowest
        values, whose negative curvature is the weakest (it scales with the eigen-gaps of the swap)."""
        k = check_int("k", k, 1)
        top = list(range(k))
        return sorted(tuple(sorted(top[:j] + top[j + 1:] + [i])) for j in range(k) for i in range(k, self.dim))

    def other_subsets(self, k: int, count: int, *, generator: torch.Generator | None = None) -> list[tuple[int, ...]]:
        """Non-optimal subsets of size k: all of them when there are at most ``count``; else every neighbour of the
        optimum (:meth:`neighbour_subsets`) and distinct random others drawn uniformly, ``count`` in all."""
        k, count = check_int("k", k, 1), check_int("count", count, 1)
        if k >= self.dim:
            raise ValueError(f"invalid k {k}: expected k < d = {self.dim} (with k = d there is only the optimum)")
        if math.comb(self.dim, k) - 1 <= count:
            return self.subsets(k)[1:]
        chosen = set(self.neighbour_subsets(k))
        if count < len(chosen):
            raise ValueError(f"invalid count {count}: expected at least the {len(chosen)} neighbours of the optimum "
                             f"(or at least all {math.comb(self.dim, k) - 1} non-optimal subsets)")
        optimal = tuple(range(k))
        while len(chosen) < count:
            J = tuple(sorted(torch.randperm(self.dim, generator=generator)[:k].tolist()))
            if J != optimal:
                chosen.add(J)
        return sorted(chosen)


# ------------------------------------------------------------------------------------------- the network

def _check_weights(weights: Sequence[Tensor]) -> None:
    if not weights:
        raise ValueError("invalid weights []: expected a list of N >= 1 matrices W_1, ..., W_N")
    for a, b in itertools.pairwise(weights):
        if b.shape[-1] != a.shape[-2]:
            raise ValueError(f"invalid layer shapes {tuple(a.shape)} then {tuple(b.shape)}: W_(j+1) must have as "
                             "many columns as W_j has rows")


def end_to_end(weights: Sequence[Tensor]) -> Tensor:
    """W = W_N ... W_1 for weights [W_1, ..., W_N], each (..., d_j, d_{j-1})."""
    _check_weights(weights)
    W = weights[0]
    for w in weights[1:]:
        W = w @ W
    return W


def layer_gradients(weights: Sequence[Tensor], grad: Tensor) -> list[Tensor]:
    """Chain rule: dL/dW_j = (W_N ... W_{j+1})^T grad (W_{j-1} ... W_1)^T for grad = dL/dW (batched)."""
    _check_weights(weights)
    N = len(weights)
    below = [None] * N   # W_{j-1} ... W_1
    above = [None] * N   # W_N ... W_{j+1}
    for j in range(1, N):
        below[j] = weights[0] if j == 1 else weights[j - 1] @ below[j - 1]
    for j in range(N - 2, -1, -1):
        above[j] = weights[N - 1] if j == N - 2 else above[j + 1] @ weights[j + 1]
    out = []
    for j in range(N):
        g = grad if above[j] is None else above[j].transpose(-1, -2) @ grad
        out.append(g if below[j] is None else g @ below[j].transpose(-1, -2))
    return out


def _orthonormal(rows: int, cols: int, batch: tuple, generator, dtype) -> Tensor:
    Q, R = torch.linalg.qr(torch.randn(*batch, rows, cols, generator=generator, dtype=dtype))
    return Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1)).unsqueeze(-2)


def balanced_factorization(W: Tensor, widths: Sequence[int], *, generator: torch.Generator | None = None,
                           rotate: bool = True) -> list[Tensor]:
    r"""Layers [W_1, ..., W_N] of the given widths (d_0, ..., d_N) with product the rank-k truncation of W
    (k = min widths) and balanced, :math:`W_{j+1}^\top W_{j+1} = W_j W_j^\top`: with W = U S V^T,
    :math:`W_j = Q_j S_k^{1/N} Q_{j-1}^\top`, Q_0 = V_k, Q_N = U_k and Q_j (hidden) random orthonormal
    (identity-like when ``rotate`` is False). W may be batched (..., d_N, d_0)."""
    widths = [check_int("width", w, 1) for w in widths]
    if len(widths) < 2 or W.shape[-2:] != (widths[-1], widths[0]):
        raise ValueError(f"invalid widths {widths!r} for W of shape {tuple(W.shape)}: expected (d_0, ..., d_N) with "
                         "W of shape d_N x d_0")
    N, k = len(widths) - 1, min(widths)
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    root = torch.diag_embed(S[..., :k] ** (1.0 / N))
    batch = tuple(W.shape[:-2])
    Q = [Vh[..., :k, :].transpose(-1, -2)]
    for d in widths[1:-1]:
        if rotate:
            Q.append(_orthonormal(d, k, batch, generator, W.dtype).to(W.device))
        else:
            Q.append(torch.eye(d, k, dtype=W.dtype, device=W.device).expand(*batch, d, k))
    Q.append(U[..., :, :k])
    return [Q[j + 1] @ root @ Q[j].transpose(-1, -2) for j in range(N)]


def balanced_init(widths: Sequence[int], scale: float, *, batch: int = 1, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float64, device=None) -> list[Tensor]:
    """``batch`` balanced initialisations: the balanced factorisation of W_0 = scale * G / sqrt(d_0) with G an
    i.i.d. standard Gaussian d_N x d_0 matrix (drawn on the CPU, so that results do not depend on the device)."""
    scale = check_positive("scale", scale)
    batch = check_int("batch", batch, 1)
    widths = [check_int("width", w, 1) for w in widths]
    W0 = torch.randn(batch, widths[-1], widths[0], generator=generator, dtype=dtype) * scale / widths[0] ** 0.5
    return [w.to(device) for w in balanced_factorization(W0, widths, generator=generator)]


def balancedness(weights: Sequence[Tensor]) -> Tensor:
    """max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F (per batch element); 0 for a balanced network."""
    _check_weights(weights)
    gaps = [(b.transpose(-1, -2) @ b - a @ a.transpose(-1, -2)).flatten(-2).norm(dim=-1)
            for a, b in itertools.pairwise(weights)]
    if not gaps:
        return torch.zeros(weights[0].shape[:-2], dtype=weights[0].dtype, device=weights[0].device)
    return torch.stack(gaps, -1).amax(-1)


# ------------------------------------------------------------------------------------------- training

@dataclass
class GDTrace:
    """What :func:`train_gd` recorded: the steps, the loss there (steps x batch) and the final layers."""
    steps: list[int] = field(default_factory=list)
    loss: list[Tensor] = field(default_factory=list)
    balancedness: list[Tensor] = field(default_factory=list)
    weights: list[Tensor] = field(default_factory=list)

    @property
    def losses(self) -> Tensor:
        return torch.stack(self.loss)


@torch.no_grad()
def train_gd(weights: Sequence[Tensor], target: BWTarget, tau: float, lr: float, steps: int, *,
             record_every: int = 100) -> GDTrace:
    r"""Full-batch gradient descent :math:`W_j \leftarrow W_j - \eta\,\nabla_{W_j} L^\tau` on all layers at once
    (batched over independent networks); returns the loss trace and the final layers."""
    lr, steps = check_positive("lr", lr), check_int("steps", steps, 0)
    record_every = check_int("record_every", record_every, 1)
    weights = [w.clone() for w in weights]
    trace = GDTrace()
    for t in range(steps + 1):
        W = end_to_end(weights)
        if t % record_every == 0 or t == steps:
            trace.steps.append(t)
            trace.loss.append(target.loss(W, tau))
            trace.balancedness.append(balancedness(weights))
        if t == steps:
            break
        for w, g in zip(weights, layer_gradients(weights, target.gradient(W, tau))):
            w.sub_(lr * g)
    trace.weights = weights
    return trace


# ------------------------------------------------------------------------------------------- second order

def flatten(weights: Sequence[Tensor]) -> Tensor:
    """The layers as one parameter vector per batch element, (..., P)."""
    return torch.cat([w.flatten(-2) for w in weights], -1)


def unflatten(theta: Tensor, shapes: Sequence[tuple[int, int]]) -> list[Tensor]:
    """Inverse of :func:`flatten` for layer shapes [(d_1, d_0), ..., (d_N, d_{N-1})]."""
    out, i = [], 0
    for r, c in shapes:
        out.append(theta[..., i:i + r * c].unflatten(-1, (r, c)))
        i += r * c
    if i != theta.shape[-1]:
        raise ValueError(f"invalid parameter vector of length {theta.shape[-1]}: the shapes {list(shapes)} need {i}")
    return out


@torch.no_grad()
def parameter_hessian(weights: Sequence[Tensor], target: BWTarget, tau: float, h: float = 1e-5) -> Tensor:
    r"""The Hessian of :math:`L^\tau(W_N\cdots W_1)` in the flattened layers, (..., P, P), by central differences
    of the analytic layer gradients, :math:`H e_p \approx (g(\theta + h e_p) - g(\theta - h e_p)) / 2h`,
    symmetrised. All 2P evaluations run as one batch."""
    h = check_positive("h", h)
    if tau == 0:
        raise ValueError("invalid tau 0: the Hessian of the exact BW loss is unbounded near low rank; use tau > 0")
    shapes = [tuple(w.shape[-2:]) for w in weights]
    theta = flatten(weights)
    P = theta.shape[-1]
    E = torch.eye(P, dtype=theta.dtype, device=theta.device) * h
    pert = torch.cat([theta.unsqueeze(-2) + E, theta.unsqueeze(-2) - E], -2)      # (..., 2P, P)
    layers = unflatten(pert, shapes)
    g = flatten(layer_gradients(layers, target.gradient(end_to_end(layers), tau)))
    H = (g[..., :P, :] - g[..., P:, :]) / (2 * h)                                  # row p: H e_p
    return (H + H.transpose(-1, -2)) / 2
