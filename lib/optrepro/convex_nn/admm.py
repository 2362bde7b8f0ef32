r"""ADMM for the convex program of a two-layer ReLU network (Bai, Gautam & Sojoudi's splitting).

Reference: Y. Bai, T. Gautam, S. Sojoudi. "Efficient Global Optimization of Two-layer ReLU Networks:
Quadratic-time Algorithms and Adversarial Training." SIAM J. Math. Data Sci. 2023, arXiv:2201.01965.

Stack the convex variables :math:`u = (v_1..v_P, w_1..w_P) \in \mathbb R^{2Pd}` (:mod:`.convex_program`). With
:math:`F u = \sum_i D_iX(v_i - w_i)` (the prediction) and :math:`G = \mathrm{blkdiag}((2D_i - I)X)` over both
halves (the cones :math:`Gu \ge 0`), the program is split as

.. math:: \min_{u, z, s}\ \ell(Fu, y) + \beta\|z\|_{2,1} + \mathbb I_{\ge 0}(s)
          \quad\text{s.t.}\quad u = z,\quad Gu = s,

:math:`\|z\|_{2,1}` the sum of the ``2P`` group norms. Scaled ADMM with penalty :math:`\rho`, duals
:math:`\lambda, \nu` and dual step :math:`\gamma` (``gamma = 1`` is plain ADMM) iterates, for the squared loss,

.. math:: u^+ &= (F^\top F + \rho I + \rho G^\top G)^{-1}\big(F^\top y + \rho(z - \lambda) + \rho G^\top(s - \nu)\big)\\
          z^+_g &= \big(1 - \tfrac{\beta/\rho}{\|u^+_g + \lambda_g\|}\big)_+ (u^+_g + \lambda_g)\quad\text{(group soft-threshold)}\\
          s^+ &= (Gu^+ + \nu)_+\\
          \lambda^+ &= \lambda + \gamma(u^+ - z^+),\qquad \nu^+ = \nu + \gamma(Gu^+ - s^+).

The matrix of the ``u`` step never changes: it is **factorized once** (Cholesky) and every iteration costs two
triangular solves and products with ``X``. (:math:`G^\top G = I_{2P}\otimes X^\top X` since
:math:`(2D_i - I)^2 = I`.) For a loss without a closed-form ``u`` step (``logistic``), a third block
:math:`\hat y = Fu` (dual :math:`\mu`) is split off as in the paper's general-loss ADMM: the ``u`` step solves with
the fixed matrix :math:`I + G^\top G + F^\top F`, and :math:`\hat y^+ = \mathrm{prox}_{\ell/\rho}(Fu^+ + \mu)`, a
separable one-dimensional problem solved by a few Newton steps. The paper proves linear convergence of the iterates
(its Theorem on the ADMM's rate); :mod:`optrepro.analysis.rates` fits the rate of a residual curve.

All updates act on all ``2P`` groups at once (batched tensor operations), on the device of ``X``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..checks import check_int, check_nonnegative, check_positive
from .convex_program import check_loss, loss_value

__all__ = ["ADMMResult", "admm", "first_below", "group_soft_threshold", "logistic_prox"]


def group_soft_threshold(Z: Tensor, threshold: float) -> Tensor:
    """Rows of ``Z`` shrunk: :math:`(1 - t/\\|z_g\\|)_+ z_g`, the prox of :math:`t\\sum_g\\|z_g\\|`."""
    norms = Z.norm(dim=-1, keepdim=True)
    return torch.clamp(1 - threshold / norms.clamp_min(torch.finfo(Z.dtype).tiny), min=0) * Z


def logistic_prox(c: Tensor, y: Tensor, rho: float, newton_steps: int = 20, start: Tensor | None = None) -> Tensor:
    """:math:`\\arg\\min_t \\sum_j\\log(1 + e^{-y_jt_j}) + \\frac\\rho2\\|t - c\\|^2` by damped Newton steps."""
    t = c.clone() if start is None else start.clone()
    for _ in range(newton_steps):
        p = torch.sigmoid(-y * t)                        # derivative of log(1 + e^{-yt}) is -y p
        grad = -y * p + rho * (t - c)
        hess = p * (1 - p) + rho
        t = t - grad / hess
    return t


@dataclass
class ADMMResult:
    V: Tensor                      # (P, d) first half of the group-sparse iterate z
    W: Tensor                      # (P, d) second half
    objective: list[float] = field(default_factory=list)   # convex objective at z, per iteration
    residual: list[float] = field(default_factory=list)    # primal-dual residual, per iteration
    seconds: list[float] = field(default_factory=list)     # wall time since the start (factorization included)
    primal: list[float] = field(default_factory=list)      # primal residual r_p, per iteration
    dual: list[float] = field(default_factory=list)        # dual residual r_d, per iteration
    infeasibility: list[float] = field(default_factory=list)  # max cone violation of z, per iteration (if recorded)
    setup_seconds: float = 0.0     # building and factorizing the u-step matrix
    stopped_by: str = "iters"      # which rule ended the run: "tol", "rel_tol", "callback" or "iters"

    @property
    def iterations(self) -> int:
        return len(self.objective)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def admm(X: Tensor, y: Tensor, D: Tensor, beta: float, rho: float = 1.0, gamma: float = 1.0, iters: int = 500,
         loss: str = "squared", tol: float = 0.0, newton_steps: int = 20, cone_scale: float = 1.0,
         rel_tol: float = 0.0, stop: Callable[[ADMMResult], bool] | None = None,
         clock: Callable[[], float] = time.perf_counter, record_infeasibility: bool = False) -> ADMMResult:
    """Run the ADMM above for ``iters`` iterations, or until its own stopping rule holds.

    ``X`` ``(n, d)``, ``y`` ``(n,)`` (``+-1`` for ``logistic``), ``D`` boolean ``(P, n)`` patterns. Returns the
    group-sparse iterate ``z`` as ``(V, W)`` and, per iteration, the convex objective at ``z``, the residual
    :math:`\\sqrt{r_p^2 + r_d^2}` (primal :math:`r_p^2 = \\|u - z\\|^2 + \\|Gu - s\\|^2 (+ \\|Fu - \\hat y\\|^2)`,
    dual :math:`r_d = \\rho\\|\\Delta z + G^\\top\\Delta s (+ F^\\top\\Delta\\hat y)\\|`) and the elapsed time.
    ``cone_scale`` divides the cone block :math:`G` (an equivalent constraint, a different ADMM metric; 1 is the
    paper's).

    **Stopping rules** (the algorithm's own, no reference optimum needed): ``tol`` stops once the residual above is
    ``<= tol``; ``rel_tol`` is the standard relative rule of Boyd et al. (2011, Sec. 3.3.1) with
    :math:`A = [I; G (; F)]`, :math:`B = -I`: stop once
    :math:`r_p \\le \\epsilon\\max(\\|Au\\|, \\|(z, s (, \\hat y))\\|)` and
    :math:`r_d \\le \\epsilon\\,\\rho\\|\\lambda + G^\\top\\nu (+ F^\\top\\mu)\\|` (scaled duals), :math:`\\epsilon` = ``rel_tol``.
    The iteration that met a rule is recorded in ``result.stopped_by``. ``stop(result)``, called after every
    iteration, ends the run when it returns True (a test or a benchmark hook; its own time counts in ``seconds``).
    ``clock`` reads the time that ``seconds`` and ``setup_seconds`` record (wall time by default; see
    :mod:`optrepro.timing` for this process's CPU time). ``record_infeasibility`` also records, per iteration, the
    largest cone violation :math:`\\max_j(-Gz)_j^+` of the iterate ``z`` whose objective is recorded (``z`` is not
    feasible until convergence, and its objective can undershoot the optimum); its cost is kept out of ``seconds``.
    """
    check_loss(loss)
    beta, rho, gamma = check_nonnegative("beta", beta), check_positive("rho", rho), check_positive("gamma", gamma)
    if gamma >= (1 + math.sqrt(5)) / 2:
        raise ValueError(f"invalid gamma {gamma}: expected 0 < gamma < (1 + sqrt 5)/2")
    iters = check_int("iters", iters, 1)
    tol = check_nonnegative("tol", tol)
    rel_tol = check_nonnegative("rel_tol", rel_tol)
    device, dtype = X.device, X.dtype
    n, d = X.shape
    P = D.shape[0]
    _sync(device)
    start = clock()
    Dm = D.to(dtype)
    Fsign = torch.cat([Dm, -Dm])                      # (2P, n): row g of F^T acts as diag(+-D_g)
    cone_scale = check_positive("cone_scale", cone_scale)
    Gsign = torch.cat([2 * Dm - 1, 2 * Dm - 1]) / cone_scale   # (2P, n): (2D_g - I) / cone_scale
    F = (Fsign[:, :, None] * X[None]).permute(1, 0, 2).reshape(n, 2 * P * d)
    XtX = X.T @ X / cone_scale ** 2
    GtG = torch.block_diag(*([XtX] * (2 * P))) if 2 * P * d <= 4096 else torch.kron(torch.eye(2 * P, dtype=dtype, device=device), XtX)
    eye = torch.eye(2 * P * d, dtype=dtype, device=device)
    folded = loss == "squared"
    M = F.T @ F + rho * (eye + GtG) if folded else eye + GtG + F.T @ F
    L = torch.linalg.cholesky(M)
    del M, GtG, eye
    Fty = (F.T @ y).reshape(2 * P, d)

    def Fmul(U):      # (2P, d) -> (n,)
        return (Fsign * (U @ X.T)).sum(0)

    def Ft(r):        # (n,) -> (2P, d)
        return (Fsign * r) @ X

    def Gmul(U):      # (2P, d) -> (2P, n)
        return Gsign * (U @ X.T)

    def Gt(Q):        # (2P, n) -> (2P, d)
        return (Gsign * Q) @ X

    z = torch.zeros(2 * P, d, dtype=dtype, device=device)
    lam = torch.zeros_like(z)
    s = torch.zeros(2 * P, n, dtype=dtype, device=device)
    nu = torch.zeros_like(s)
    yhat = torch.zeros(n, dtype=dtype, device=device)
    mu = torch.zeros_like(yhat)
    _sync(device)
    result = ADMMResult(z[:P], z[P:], setup_seconds=clock() - start)
    paused = 0.0  # time spent on recording infeasibility, kept out of ``seconds``
    for _ in range(iters):
        if folded:
            rhs = Fty + rho * (z - lam + Gt(s - nu))
        else:
            rhs = z - lam + Gt(s - nu) + Ft(yhat - mu)
        u = torch.cholesky_solve(rhs.reshape(-1, 1), L).reshape(2 * P, d)
        Gu = Gmul(u)
        z_old, s_old, yhat_old = z, s, yhat
        z = group_soft_threshold(u + lam, beta / rho)
        s = torch.clamp(Gu + nu, min=0)
        lam = lam + gamma * (u - z)
        nu = nu + gamma * (Gu - s)
        primal = (u - z).pow(2).sum() + (Gu - s).pow(2).sum()
        dual = (z - z_old) + Gt(s - s_old)
        scale_p = u.pow(2).sum() + Gu.pow(2).sum()
        scale_z = z.pow(2).sum() + s.pow(2).sum()
        scale_d = lam + Gt(nu)
        if not folded:
            Fu = Fmul(u)
            yhat = logistic_prox(Fu + mu, y, rho, newton_steps, start=yhat)
            mu = mu + gamma * (Fu - yhat)
            primal = primal + (Fu - yhat).pow(2).sum()
            dual = dual + Ft(yhat - yhat_old)
            scale_p = scale_p + Fu.pow(2).sum()
            scale_z = scale_z + yhat.pow(2).sum()
            scale_d = scale_d + Ft(mu)
        pred = Fmul(z)
        obj = loss_value(pred, y, loss) + beta * z.norm(dim=1).sum()
        r_dual = float(rho * dual.norm())
        r_primal = float(primal.sqrt())
        result.objective.append(float(obj))
        result.residual.append(math.sqrt(r_primal ** 2 + r_dual ** 2))
        result.primal.append(r_primal)
        result.dual.append(r_dual)
        result.seconds.append(clock() - start - paused)
        if record_infeasibility:
            pause = clock()
            result.infeasibility.append(max(float((-Gmul(z)).max()) * cone_scale, 0.0))  # in the units of (2D-I)Xv
            _sync(device)
            paused += clock() - pause
        if result.residual[-1] <= tol:
            result.stopped_by = "tol"
            break
        if rel_tol > 0 and r_primal <= rel_tol * math.sqrt(max(float(scale_p), float(scale_z))) \
                and r_dual <= rel_tol * rho * float(scale_d.norm()):
            result.stopped_by = "rel_tol"
            break
        if stop is not None and stop(result):
            result.stopped_by = "callback"
            break
    result.V, result.W = z[:P].clone(), z[P:].clone()
    return result


def first_below(values, threshold: float) -> int | None:
    """Index of the first element ``<= threshold`` from which on every element stays ``<= threshold`` (else None)."""
    idx = None
    for i, v in enumerate(values):
        if v <= threshold:
            if idx is None:
                idx = i
        else:
            idx = None
    return idx
