r"""The Monge gap regularizer (Uscidda & Cuturi, ICML 2023, arXiv:2302.04953) and a map fitted with it.

For a cost :math:`c` (here :math:`c(x, y) = \|x - y\|^2`) and a reference measure :math:`\rho`, the **Monge gap**
of a map :math:`T` is

.. math::  \mathcal M_\rho(T) = \int c(x, T(x))\,d\rho(x) - W_c(\rho, T\sharp\rho) \;\ge 0,

the excess cost of the coupling :math:`(\mathrm{Id}, T)\sharp\rho` over the optimal one. It is zero iff :math:`T` is
a :math:`c`-OT map between :math:`\rho` and :math:`T\sharp\rho` (for the squared cost: :math:`T` is cyclically
monotone on the support of :math:`\rho`, e.g. the gradient of a convex function). On samples
:math:`\hat\rho_n = \frac1n\sum_i\delta_{x_i}` the paper's estimator replaces :math:`W_c` by the entropic cost
(Eq. 8):

.. math::  \hat{\mathcal M}_\varepsilon(T) = \frac1n\sum_{i=1}^n c(x_i, T(x_i))
           - \mathrm{OT}_\varepsilon(\hat\rho_n, T\sharp\hat\rho_n)

(:func:`monge_gap`; :math:`\mathrm{OT}_\varepsilon` is :func:`optrepro.ot.divergence.entropic_ot`, differentiable in
the points). :func:`monge_gap_exact` uses the exact OT cost instead: with uniform weights on :math:`n` points on
each side an optimal plan is a permutation (Birkhoff), so :math:`W_c` is a linear assignment problem.

**Fitting a map** (Section 5 of the paper): drop all architecture constraints, take any map :math:`T_\theta`
(:class:`MLPMap`, a residual MLP initialised at the identity) and minimise

.. math::  \mathcal L(\theta) = \Delta(T_\theta\sharp\hat\mu, \hat\nu) + \lambda\,\hat{\mathcal M}_\varepsilon(T_\theta)

with the fitting loss :math:`\Delta` the Sinkhorn divergence :math:`S_\varepsilon` and :math:`\rho = \mu` (the
source), by Adam on mini-batches (:func:`fit_map`; :math:`\lambda = 0` is the unregularised baseline).
:func:`fit_maps` trains K independent maps at once (:class:`EnsembleMLPMap`, e.g. several problem instances, each
with and without the gap): the loss is the sum of the K members' losses, so each member gets exactly its own
gradient and its own (elementwise) Adam update, and all 4K entropic OT problems of a step go in one Sinkhorn call. The four
entropic OT values of a step (three for :math:`S_\varepsilon`, one for the gap) come from one batched Sinkhorn call
(:func:`batched_entropic_ot`); with fresh mini-batches every step the potentials are not warm-started.
:func:`l2_uvp` is the error metric of Korotin et al. (NeurIPS 2021) used to compare a fitted map with the known one:
:math:`100\,\mathbb E_\mu\|T(x) - T^\star(x)\|^2 / \mathrm{Var}(\nu)` percent, :math:`\mathrm{Var}(\nu) =
\mathrm{tr}\,\Sigma_\nu`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from ..checks import check_choice, check_int, check_nonnegative, check_positive
from ..models.mlp import activation as make_activation
from ..models.mlp import mlp
from ..optim import Adam
from ..threads import one_cpu_thread_if
from ..train import fit as train
from .divergence import entropic_ot, sinkhorn_divergence, squared_distances
from .sinkhorn import sinkhorn

__all__ = ["MLPMap", "EnsembleMLPMap", "FitResult", "batched_entropic_ot", "batched_sinkhorn_divergence", "fit_map", "l2_uvp", "monge_gap", "monge_gap_exact"]


def _check_pairs(x: Tensor, Tx: Tensor) -> None:
    if x.dim() != 2 or x.shape != Tx.shape:
        raise ValueError(f"invalid shapes {tuple(x.shape)} and {tuple(Tx.shape)}: expected x and T(x) both (n, d)")


def monge_gap(x: Tensor, Tx: Tensor, eps: float, *, max_iter: int = 200, tol: float = 1e-6) -> Tensor:
    """Entropic Monge gap (1/n) sum_i |x_i - T(x_i)|^2 - OT_eps(x, T(x)) on the reference samples x (n, d)."""
    _check_pairs(x, Tx)
    displacement = ((x - Tx) ** 2).sum(1).mean()
    return displacement - entropic_ot(x, Tx, eps, max_iter=max_iter, tol=tol)


def monge_gap_exact(x: Tensor, Tx: Tensor) -> float:
    """Exact Monge gap on the samples: mean |x_i - T(x_i)|^2 minus the optimal assignment cost (>= 0)."""
    _check_pairs(x, Tx)
    C = squared_distances(x.detach(), Tx.detach()).cpu().double().numpy()
    rows, cols = linear_sum_assignment(C)
    return float(np.trace(C) / len(C) - C[rows, cols].mean())


def batched_entropic_ot(X: Tensor, Y: Tensor, eps: float, *, max_iter: int = 200, tol: float = 1e-6) -> Tensor:
    """OT_eps (uniform weights) of B pairs of clouds X (B, n, d), Y (B, m, d) in ONE batched Sinkhorn call.

    Same value and envelope-theorem gradient as :func:`entropic_ot` applied to each pair; solving the pairs together
    runs one Python loop instead of B (the fitting loss and the Monge gap of a step need four OT_eps values).
    """
    if X.dim() != 3 or Y.dim() != 3 or X.shape[0] != Y.shape[0] or X.shape[2] != Y.shape[2]:
        raise ValueError(f"invalid batched clouds of shapes {tuple(X.shape)} and {tuple(Y.shape)}: expected (B, n, d), (B, m, d)")
    eps = check_positive("eps", eps)
    C = ((X * X).sum(-1)[..., :, None] + (Y * Y).sum(-1)[..., None, :] - 2 * X @ Y.transpose(1, 2)).clamp_min(0)
    n, m = C.shape[1], C.shape[2]
    a = torch.full((n,), 1.0 / n, dtype=C.dtype, device=C.device)
    b = torch.full((m,), 1.0 / m, dtype=C.dtype, device=C.device)
    with torch.no_grad():
        P = sinkhorn(a, b, C.detach(), eps, max_iter=check_int("max_iter", max_iter, 1), tol=tol, record=False).plan
        ratio = P * (n * m)
        entropy_term = (P * torch.log(torch.where(P > 0, ratio, torch.ones_like(ratio)))).sum((1, 2))
    return (P * C).sum((1, 2)) + eps * entropy_term


def batched_sinkhorn_divergence(X: Tensor, Y: Tensor, eps: float, *, max_iter: int = 200, tol: float = 1e-6) -> Tensor:
    """S_eps(X[k], Y[k]) for each of the B pairs (B,), X and Y both (B, n, d): one batched Sinkhorn call, 3B problems."""
    if X.dim() != 3 or X.shape != Y.shape:
        raise ValueError(f"invalid batched clouds of shapes {tuple(X.shape)} and {tuple(Y.shape)}: expected both (B, n, d)")
    B = X.shape[0]
    v = batched_entropic_ot(torch.cat([X, X, Y]), torch.cat([Y, X, Y]), eps, max_iter=max_iter, tol=tol)
    return v[:B] - 0.5 * v[B:2 * B] - 0.5 * v[2 * B:]


def l2_uvp(Tx: Tensor, T_star_x: Tensor, target_var: float | Tensor) -> Tensor:
    """L2-UVP = 100 * mean |T(x) - T*(x)|^2 / Var(nu) (percent), Var(nu) = trace of the target covariance."""
    _check_pairs(Tx, T_star_x)
    return 100 * ((Tx - T_star_x) ** 2).sum(1).mean() / target_var


_ACTIVATIONS = ("elu", "gelu", "relu", "silu", "tanh")   # parameter-free, so the ensemble can share them


class MLPMap(nn.Module):
    """Unconstrained map T(x) = x + MLP(x); the last layer starts at zero, so T is the identity at initialisation."""

    def __init__(self, dim: int, hidden: tuple[int, ...] | list[int] = (64, 64), activation: str = "gelu"):
        super().__init__()
        dim = check_int("dim", dim, 1)
        activation = check_choice("activation", activation, _ACTIVATIONS)
        if len(hidden) == 0:
            raise ValueError("invalid hidden (): expected at least one hidden layer width")
        self.net = mlp(dim, hidden, dim, activation=activation, init="zero_output")

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class EnsembleMLPMap(nn.Module):
    """K independent residual MLP maps evaluated together: x (K, n, d) -> x[k] + MLP_k(x[k]) for each member k.

    Built from K :class:`MLPMap` of the same architecture (:meth:`from_maps`, which copies their weights), so member
    k computes exactly what ``maps[k]`` computes; the layers are batched matrix products.
    """

    def __init__(self, weights: list[Tensor], biases: list[Tensor], activation: str = "gelu"):
        super().__init__()
        activation = check_choice("activation", activation, _ACTIVATIONS)
        self.weights = nn.ParameterList([nn.Parameter(w.detach().clone()) for w in weights])   # (K, in, out)
        self.biases = nn.ParameterList([nn.Parameter(b.detach().clone()) for b in biases])     # (K, out)
        self.act = make_activation(activation)

    @classmethod
    def from_maps(cls, maps: list[MLPMap], activation: str = "gelu") -> EnsembleMLPMap:
        if len(maps) == 0:
            raise ValueError("invalid maps []: expected at least one MLPMap")
        linears = [[m for m in T.net if isinstance(m, nn.Linear)] for T in maps]
        if any([lin.weight.shape for lin in L] != [lin.weight.shape for lin in linears[0]] for L in linears):
            raise ValueError("invalid maps: expected MLPMaps of one architecture (same dim and hidden widths)")
        weights = [torch.stack([L[i].weight.T for L in linears]) for i in range(len(linears[0]))]
        biases = [torch.stack([L[i].bias for L in linears]) for i in range(len(linears[0]))]
        return cls(weights, biases, activation)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b[:, None, :], h, W)
            if i < len(self.weights) - 1:
                h = self.act(h)
        return x + h


@dataclass
class FitResult:
    loss: list[float] = field(default_factory=list)     # total loss per step
    fit: list[float] = field(default_factory=list)      # Sinkhorn divergence term per step
    gap: list[float] = field(default_factory=list)      # entropic Monge gap per step (computed even when lam = 0)


def fit_map(T: nn.Module, sample_source: Callable[[int], Tensor], sample_target: Callable[[int], Tensor], *,
            eps: float, lam: float, steps: int, batch: int, lr: float = 1e-3, gap_eps: float | None = None,
            max_iter: int = 200, tol: float = 1e-6, log_gap: bool = True) -> FitResult:
    """Adam on S_eps(T#mu_batch, nu_batch) + lam * M_gap_eps(T) with the gap on the source batch (rho = mu),
    through :func:`optrepro.train.fit`.

    ``sample_source(n)`` / ``sample_target(n)`` return fresh (n, d) samples on the map's device; ``gap_eps``
    defaults to ``eps``. Returns the per-step loss, fitting term and Monge gap (for lam = 0 the gap is computed
    without a gradient, only when ``log_gap``; otherwise the ``gap`` list stays empty).
    """
    eps, lam = check_positive("eps", eps), check_nonnegative("lam", lam)
    gap_eps = eps if gap_eps is None else check_positive("gap_eps", gap_eps)
    steps, batch = check_int("steps", steps, 1), check_int("batch", batch, 2)
    opt = Adam(T.parameters(), lr=check_positive("lr", lr))
    device = next(T.parameters()).device
    kw = dict(max_iter=max_iter, tol=tol)
    with_gap = lam > 0 or log_gap

    def loss(k):
        x, y = sample_source(batch), sample_target(batch)
        Tx = T(x)
        Tx_gap = Tx if lam > 0 else Tx.detach()
        if gap_eps == eps:   # the four OT_eps values of the step in one batched Sinkhorn call
            X = torch.stack([Tx, Tx, y] + ([x] if with_gap else []))
            Y = torch.stack([y, Tx, y] + ([Tx_gap] if with_gap else []))
            ot_values = batched_entropic_ot(X, Y, eps, **kw)
            fit = ot_values[0] - 0.5 * ot_values[1] - 0.5 * ot_values[2]
            gap = ((x - Tx_gap) ** 2).sum(1).mean() - ot_values[3] if with_gap else None
        else:
            fit = sinkhorn_divergence(Tx, y, eps, **kw)
            gap = monge_gap(x, Tx_gap, gap_eps, **kw) if with_gap else None
        value = fit + lam * gap if lam > 0 else fit
        return value, {"fit": fit.detach()} | ({"gap": gap.detach()} if gap is not None else {})

    with one_cpu_thread_if(batch <= 512, device):
        trace = train(loss, opt, steps, stop_on_nonfinite=False)
    return FitResult(trace.loss, trace.metrics["fit"], trace.metrics.get("gap", []))


def fit_maps(T: EnsembleMLPMap, sample_source: Callable[[int], Tensor], sample_target: Callable[[int], Tensor], *,
             eps: float, lam: float | list[float] | tuple[float, ...], steps: int, batch: int, lr: float = 1e-3,
             max_iter: int = 200, tol: float = 1e-6, log_gap: bool = True) -> FitResult:
    """:func:`fit_map` for the K members of ``T`` at once; member k uses weight ``lam[k]`` (or one shared ``lam``).

    ``sample_source(n)`` / ``sample_target(n)`` return (K, n, d) batches (member k fits its own pair of measures).
    Minimises sum_k [S_eps(T_k#mu_k, nu_k) + lam_k M_eps(T_k)]: the members share no parameter, so each gets its own
    gradient and Adam update, as if trained alone. The returned lists hold one (K,) array per step.
    """
    K = T.weights[0].shape[0]
    lams = [lam] * K if isinstance(lam, (int, float)) else list(lam)
    if len(lams) != K:
        raise ValueError(f"invalid lam of length {len(lams)}: expected one float or {K} values (one per member)")
    lams = [check_nonnegative("lam", v) for v in lams]
    eps = check_positive("eps", eps)
    steps, batch = check_int("steps", steps, 1), check_int("batch", batch, 2)
    opt = Adam(T.parameters(), lr=check_positive("lr", lr))
    device = T.weights[0].device
    lam_t = torch.tensor(lams, dtype=T.weights[0].dtype, device=device)
    with_gap = log_gap or any(v > 0 for v in lams)
    out = FitResult()

    def loss(k):
        x, y = sample_source(batch), sample_target(batch)
        Tx = T(x)
        X = torch.cat([Tx, Tx, y] + ([x] if with_gap else []))
        Y = torch.cat([y, Tx, y] + ([Tx] if with_gap else []))
        v = batched_entropic_ot(X, Y, eps, max_iter=max_iter, tol=tol)
        fit = v[:K] - 0.5 * v[K:2 * K] - 0.5 * v[2 * K:3 * K]
        value = fit
        if with_gap:   # a zero weight contributes an exactly zero gradient
            gap = ((x - Tx) ** 2).sum(-1).mean(-1) - v[3 * K:]
            value = fit + lam_t * gap
            out.gap.append(gap.detach().cpu().numpy())
        out.loss.append(value.detach().cpu().numpy())
        out.fit.append(fit.detach().cpu().numpy())
        return value.sum()

    with one_cpu_thread_if(K * batch <= 2048, device):
        train(loss, opt, steps, every=steps, stop_on_nonfinite=False)
    return out
