r"""Dual Lagrangian Learning (DLL) for linear programs with bounded variables: closed-form dual completion.

Reference: M. Tanneau, P. Van Hentenryck. "Dual Lagrangian Learning for Conic Optimization", NeurIPS 2024,
arXiv:2402.03086.

The primal family (one instance per parameter :math:`(c, b)`, the matrix fixed), rows ``0..m_eq-1`` equalities and
the remaining rows ``<=`` constraints, every variable boxed:

.. math::
    p^\star(c, b) = \min_x\ c^\top x \quad\text{s.t.}\quad A_{E}x = b_E,\ \ A_{I}x \le b_I,\ \ \ell \le x \le u .

Its conic dual, with :math:`y_E` free, :math:`y_I \le 0` (the dual cone of the ``<=`` rows) and the reduced costs of
the bounds :math:`z_\ell, z_u \ge 0`:

.. math::
    \max_{y, z_\ell, z_u}\ b^\top y + \ell^\top z_\ell - u^\top z_u
    \quad\text{s.t.}\quad A^\top y + z_\ell - z_u = c .

**DLL.** A network predicts :math:`\bar y = f_\theta(c, b)`; a *conic projection* maps it into the dual cone
(:math:`y_I = -\mathrm{ReLU}(-\bar y_I)` or :math:`-\mathrm{softplus}`, :math:`y_E = \bar y_E`); the **dual
completion** then fixes the remaining duals in closed form, the optimal ones for that :math:`y`:

.. math::
    z = c - A^\top y,\qquad z_\ell = z^+,\qquad z_u = z^- ,

so :math:`(y, z_\ell, z_u)` is dual feasible *for any prediction* (the equality holds by construction, the signs by
the projection and the positive/negative parts), and its objective is a valid Lagrangian lower bound,

.. math::
    \mathcal L(y) = b^\top y + \min_{\ell \le x \le u} (c - A^\top y)^\top x = b^\top y + \ell^\top z^+ - u^\top z^-
    \ \le\ p^\star(c, b)

(weak duality), with equality at an optimal dual :math:`y^\star` (strong duality; HiGHS's marginals). Training is
**self-supervised**: maximize the mean bound over sampled instances, no solver labels. :math:`\mathcal L` is concave
and piecewise linear in :math:`y`; its (super)gradient is :math:`b - Ax^\star(y)` with :math:`x^\star(y)` the box
minimizer.

The paper's linear experiment, the LP relaxation of the multi-dimensional knapsack, is in
:mod:`optrepro.problems.knapsack`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from optrepro.checks import check_choice, check_int, check_positive
from optrepro.constrained.lp_layer import LinearProgram, solve_lp
from optrepro.models.mlp import mlp
from optrepro.optim import adam_step
from optrepro.threads import one_cpu_thread_if
from optrepro.train import fit as train

__all__ = ["BoxLP", "DualNet", "HiGHSReference", "complete_duals", "dual_bound", "dual_violation", "highs_reference",
           "project_duals", "relative_gap", "train_dll"]

PROJECTIONS = ("relu", "softplus")


@dataclass
class BoxLP:
    """The fixed structure of an LP family: ``A`` (m, n), the first ``m_eq`` rows equalities, bounds (n,) finite."""
    A: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    m_eq: int = 0

    def __post_init__(self):
        if self.A.dim() != 2:
            raise ValueError(f"invalid A of shape {tuple(self.A.shape)}: expected (m, n)")
        m, n = self.A.shape
        self.m_eq = check_int("m_eq", self.m_eq, 0)
        if self.m_eq > m:
            raise ValueError(f"invalid m_eq {self.m_eq}: expected 0 <= m_eq <= {m} (the rows of A)")
        kw = {"dtype": self.A.dtype, "device": self.A.device}
        self.lower = torch.as_tensor(self.lower, **kw).expand(n).clone()
        self.upper = torch.as_tensor(self.upper, **kw).expand(n).clone()
        if not (torch.isfinite(self.lower).all() and torch.isfinite(self.upper).all()):
            raise ValueError("invalid bounds: the closed-form completion needs finite lower and upper bounds")
        if (self.lower > self.upper).any():
            raise ValueError("invalid bounds: expected lower <= upper")

    @property
    def m(self) -> int:
        return self.A.shape[0]

    @property
    def n(self) -> int:
        return self.A.shape[1]

    def to(self, device=None, dtype=None) -> BoxLP:
        f = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        return BoxLP(f(self.A), f(self.lower), f(self.upper), self.m_eq)

    def linear_program(self, c) -> LinearProgram:
        """The instance with cost ``c`` (n,) as an ``lp_layer.LinearProgram`` (right-hand sides passed to solve_lp)."""
        A = self.A.detach().cpu().numpy()
        return LinearProgram(np.asarray(c, float), A_eq=A[: self.m_eq], A_ub=A[self.m_eq:],
                             lower=self.lower.cpu().numpy(), upper=self.upper.cpu().numpy())


def project_duals(raw: torch.Tensor, m_eq: int, kind: str = "relu") -> torch.Tensor:
    """Map a raw prediction (B, m) into the dual cone: equality duals free, ``<=`` duals nonpositive."""
    check_choice("projection", kind, PROJECTIONS)
    neg = torch.relu(-raw[:, m_eq:]) if kind == "relu" else nn.functional.softplus(-raw[:, m_eq:])
    return torch.cat([raw[:, :m_eq], -neg], dim=1)


def complete_duals(lp: BoxLP, y: torch.Tensor, c: torch.Tensor):
    """The closed-form completion: ``z = c - A^T y``, ``z_l = z^+``, ``z_u = z^-`` (each (B, n))."""
    z = c - y @ lp.A
    return torch.relu(z), torch.relu(-z)


def dual_bound(lp: BoxLP, y: torch.Tensor, c: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The Lagrangian bound ``b^T y + l^T z^+ - u^T z^-`` (B,) of the completed dual (valid when ``y`` is in the cone)."""
    if y.shape[-1] != lp.m or b.shape[-1] != lp.m or c.shape[-1] != lp.n:
        raise ValueError(f"invalid shapes y {tuple(y.shape)}, c {tuple(c.shape)}, b {tuple(b.shape)}: "
                         f"expected (B, {lp.m}), (B, {lp.n}), (B, {lp.m})")
    z_l, z_u = complete_duals(lp, y, c)
    return (b * y).sum(-1) + z_l @ lp.lower - z_u @ lp.upper


def dual_violation(lp: BoxLP, y: torch.Tensor, z_l: torch.Tensor, z_u: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Worst violation (B,) of dual feasibility: ``|A^T y + z_l - z_u - c|``, ``y_I > 0``, ``z_l < 0``, ``z_u < 0``."""
    stat = (y @ lp.A + z_l - z_u - c).abs().amax(-1)
    sign = torch.cat([y[:, lp.m_eq:], -z_l, -z_u], dim=1).clamp_min(0).amax(-1)
    return torch.maximum(stat, sign)


def relative_gap(bound: torch.Tensor, optimum: torch.Tensor) -> torch.Tensor:
    """``(p* - L) / |p*|``: the optimality gap of a lower bound (>= 0 by weak duality)."""
    return (optimum - bound) / optimum.abs()


class DualNet(nn.Module):
    """MLP ``(c, b) -> y``: standardized inputs, ``layers`` hidden ReLU layers, then the conic projection."""

    def __init__(self, lp: BoxLP, hidden: int = 128, layers: int = 2, projection: str = "relu",
                 feature_mean=None, feature_std=None):
        super().__init__()
        check_int("hidden", hidden, 1)
        check_int("layers", layers, 1)
        self.projection = check_choice("projection", projection, PROJECTIONS)
        self.m_eq = lp.m_eq
        d = lp.n + lp.m
        # built in float32, then cast (initialization draws in float32, as before)
        self.mlp = mlp(d, hidden, lp.m, depth=layers, activation="relu").to(device=lp.A.device, dtype=lp.A.dtype)
        kw = {"dtype": lp.A.dtype, "device": lp.A.device}
        self.register_buffer("mean", torch.zeros(d, **kw) if feature_mean is None else feature_mean.to(**kw))
        self.register_buffer("std", torch.ones(d, **kw) if feature_std is None else feature_std.to(**kw))

    def forward(self, c: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = (torch.cat([c, b], dim=1) - self.mean) / self.std
        return project_duals(self.mlp(x), self.m_eq, self.projection)


def train_dll(net: DualNet, lp: BoxLP, c: torch.Tensor, b: torch.Tensor, steps: int, batch: int, lr: float,
              generator: torch.Generator, optimum: torch.Tensor | None = None, betas=(0.9, 0.999), eps: float = 1e-8):
    """Self-supervised DLL training: Adam on ``-mean(L(f(c, b)) / scale)`` over minibatches (no solver labels).

    ``scale`` is the mean ``|L|`` of the untrained network on the training set (a fixed normalization). Adam
    (:func:`optrepro.optim.adam_step`, the update of ``torch.optim.Adam``, as a functional update of
    :func:`optrepro.train.fit`) with step size ``lr_k`` a cosine from ``lr`` to 0. Returns the per-step mean training
    bound and, when ``optimum`` (N,) is given (logging only), the per-step mean relative gap (else ``None``).
    """
    steps, batch = check_int("steps", steps, 1), check_int("batch", batch, 1)
    check_positive("lr", lr)
    N = c.shape[0]
    with torch.no_grad():
        scale = dual_bound(lp, net(c, b), c, b).abs().mean().clamp_min(1e-12)
    params = [p for p in net.parameters() if p.requires_grad]
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]

    def objective(k):
        idx = torch.randint(0, N, (min(batch, N),), generator=generator).to(c.device)
        L = dual_bound(lp, net(c[idx], b[idx]), c[idx], b[idx])
        logged = {"bound": L.detach().mean()}
        if optimum is not None:
            logged["gap"] = relative_gap(L.detach(), optimum[idx]).mean()
        return -L.mean() / scale, logged

    def update(k, loss):   # functional Adam, step size on a cosine from lr to 0
        grads = torch.autograd.grad(loss, params)
        adam_step(params, grads, m1, m2, k + 1, 0.5 * lr * (1 + math.cos(math.pi * k / steps)), betas, eps)

    with one_cpu_thread_if(lp.n * batch < 200_000, lp.A.device):
        trace = train(objective, update, steps, stop_on_nonfinite=False)
    return trace["bound"], trace["gap"] if optimum is not None else None


@dataclass
class HiGHSReference:
    value: np.ndarray      # (N,) optimal values
    duals: np.ndarray      # (N, m) optimal duals of the rows (HiGHS marginals, dV/db)
    seconds: np.ndarray    # (N,) wall time of each single-instance solve


def highs_reference(lp: BoxLP, c: torch.Tensor, b: torch.Tensor) -> HiGHSReference:
    """Solve every instance with HiGHS (``lp_layer.solve_lp``, one call per instance, timed)."""
    C, Bm = c.detach().cpu().double().numpy(), b.detach().cpu().double().numpy()
    N = C.shape[0]
    value, duals, secs = np.zeros(N), np.zeros((N, lp.m)), np.zeros(N)
    for i in range(N):
        inst = lp.linear_program(C[i])
        t0 = time.perf_counter()
        sol = solve_lp(inst, Bm[i, : lp.m_eq], Bm[i, lp.m_eq:])
        secs[i] = time.perf_counter() - t0
        value[i] = sol.value[0]
        duals[i] = np.concatenate([sol.eq_duals[0], sol.ub_duals[0]])
    return HiGHSReference(value, duals, secs)
