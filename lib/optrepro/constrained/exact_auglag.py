r"""SQP with an exact-augmented-Lagrangian line search and (optionally) sketched Newton solves.

Hong, Na, Mahoney & Kolar, "Constrained Optimization via Exact Augmented Lagrangian and Randomized Iterative
Sketching", ICML 2023, arXiv:2305.18379 (AdaSketch-SQP). For :math:`\min f(x)` s.t. :math:`c(x)=0`, iteration
:math:`t`:

1. Newton-KKT system :math:`K_t z = -(\nabla_x\mathcal L_t, c_t)` with the exact Hessian of the Lagrangian
   (:mod:`optrepro.constrained.kkt`).
2. ``solver="sketch"``: solve it **inexactly** by randomized iterative sketching
   (:func:`optrepro.constrained.sketching.sketch_solve`) until the adaptive accuracy condition
   :math:`\lVert K_t z - r_t\rVert \le \theta_t\lVert r_t\rVert` holds **and** :math:`z` is a sufficient descent
   direction of the merit function, :math:`\nabla\mathcal L_{\mu,\nu}^\top z \le -\tfrac\nu2\,\mathrm{KKT}_t^2`.
   :math:`\theta_t = \theta` gives a local linear rate (asymptotic ratio :math:`\le\theta`, inexact Newton theory);
   the sharpened :math:`\theta_t = \min(\theta, \mathrm{KKT}_t)` gives a superlinear (quadratic) rate.
   ``solver="direct"``: the deterministic baseline, ``torch.linalg.solve``.
3. If the descent test fails: raise :math:`\mu` (x10) while the constraint violation dominates the solve error,
   else tighten :math:`\theta_t` (/10, sketching resumes from :math:`z`), else add :math:`\delta I` to the Hessian.
   (Before the solve, :math:`H` is shifted by the smallest :math:`\delta\ge0` that makes the reduced Hessian
   positive definite, the paper's assumption on its Hessian approximation; :func:`reduced_hessian_shift`.)
4. Armijo backtracking on :math:`\mathcal L_{\mu,\nu}` (:mod:`optrepro.solvers.line_search`): the largest
   :math:`\alpha\in\{1, \tfrac12, \dots\}` with
   :math:`\mathcal L_{\mu,\nu}(v + \alpha z) \le \mathcal L_{\mu,\nu}(v) + \beta\alpha\nabla\mathcal L_{\mu,\nu}^\top z`.

The trace records per iteration the KKT residual, step size, penalty, accuracy used and the linear-algebra flops
(derivative evaluations are the same for both solvers and are not counted).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from collections.abc import Callable

import torch

from optrepro.checks import check_choice, check_int, check_positive
from optrepro.solvers import backtracking

from .kkt import derivatives, kkt_residual, kkt_system, least_squares_multipliers, merit, merit_gradient
from .sketching import direct_solve_flops, sketch_solve

__all__ = ["SQPResult", "exact_auglag_sqp", "reduced_hessian_shift"]


def reduced_hessian_shift(d, margin: float = 0.1) -> float:
    """delta >= 0 making Z^T (H + delta I) Z positive definite (Z: null-space basis of G); 0 when it already is.

    Both solvers use the same shift, so it does not enter the flop comparison; it is 0 near a solution that
    satisfies the second-order sufficient conditions (so it leaves the local rate alone).
    """
    G, H = d.jac, d.hess_L
    n, m = H.shape[0], G.shape[0]
    if m >= n:
        return 0.0
    Q, _ = torch.linalg.qr(G.T, mode="complete")
    Z = Q[:, m:]
    lo = float(torch.linalg.eigvalsh(Z.T @ H @ Z)[0])
    return 0.0 if lo > 0 else -lo + margin * (1.0 + float(H.abs().max()))


def _direct_solve(K: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """LU solve; a singular K (rank-deficient Jacobian, e.g. HS61 at its start point) gets the pseudo-inverse step."""
    z, info = torch.linalg.solve_ex(K, r)
    if int(info) != 0 or not bool(torch.isfinite(z).all()):
        z = torch.linalg.pinv(K) @ r
    return z


@dataclass
class SQPResult:
    x: torch.Tensor
    lam: torch.Tensor
    f: float
    kkt: list[float] = field(default_factory=list)       # KKT residual at iterates 0..T
    steps: list[float] = field(default_factory=list)     # accepted step size of iterations 0..T-1
    flops: list[float] = field(default_factory=list)     # linear-algebra flops of each iteration
    theta: list[float] = field(default_factory=list)     # accuracy used (0: direct)
    mu: list[float] = field(default_factory=list)
    sketch_steps: list[int] = field(default_factory=list)
    accurate: list[bool] = field(default_factory=list)   # the accepted solve met ||Kz - r|| <= theta_t ||r||
    converged: bool = False
    seconds: float = 0.0

    @property
    def iterations(self) -> int:
        return len(self.steps)


def exact_auglag_sqp(f: Callable, c: Callable, x0: torch.Tensor, *, solver: str = "sketch", theta: float = 0.25,
                     sharpen: bool = False, block: int = 1, mu: float = 1.0, nu: float = 0.1, beta: float = 1e-4,
                     tol: float = 1e-6, max_iter: int = 200, max_epochs: int = 2000, mu_max: float = 1e10,
                     generator: torch.Generator | None = None) -> SQPResult:
    """Run SQP with the exact augmented Lagrangian line search from x0 (least-squares multipliers) to KKT <= tol."""
    solver = check_choice("solver", solver, ("sketch", "direct"))
    theta = check_positive("theta", theta)
    mu, nu, beta, tol = (check_positive(n, v) for n, v in (("mu", mu), ("nu", nu), ("beta", beta), ("tol", tol)))
    max_iter = check_int("max_iter", max_iter, 0)
    t0 = time.perf_counter()
    x = x0.clone()
    lam = least_squares_multipliers(f, c, x)
    out = SQPResult(x, lam, float(f(x)))
    d = derivatives(f, c, x, lam)
    out.kkt.append(kkt_residual(d))
    for _ in range(max_iter):
        F = out.kkt[-1]
        if F <= tol:
            out.converged = True
            break
        th = min(theta, F) if sharpen else theta
        delta, flops, nsk, z, accurate = reduced_hessian_shift(d), 0.0, 0, None, True
        for _attempt in range(60):
            K, r = kkt_system(d, delta)
            g = merit_gradient(d, mu, nu)
            need = -0.5 * nu * F * F

            def descent(z, g=g, need=need):
                return float(g @ z) <= need

            if solver == "direct":
                z = _direct_solve(K, r)
                flops += direct_solve_flops(K.shape[0])
                solve_err = 0.0
            else:
                res = sketch_solve(K, r, theta=th, block=block, z0=z, max_epochs=max_epochs, generator=generator)
                z, flops, nsk = res.z, flops + res.flops, nsk + res.steps
                accurate = res.converged   # False: the epoch cap stopped the solver before theta_t was reached
                solve_err = res.relative_residual * F
            if descent(z):
                break
            cnorm = float(d.c.norm())
            if cnorm > 0 and cnorm > 2 * solve_err and mu < mu_max:
                mu *= 10.0          # same z, larger penalty
                if solver == "direct":
                    flops -= direct_solve_flops(K.shape[0])   # the direct solve would be reused, not repeated
                continue
            if solver == "sketch" and th > 1e-12:
                th /= 10.0          # sharpen the accuracy, keep sketching from z
                continue
            delta = max(2.0 * delta, 1e-4 * (1.0 + float(d.hess_L.abs().max())))
            z = None
        if z is None:  # no Newton-type direction passed the descent test: fall back to steepest descent on the merit
            z = -merit_gradient(d, mu, nu)
        n = x.numel()
        dx, dl = z[:n], z[n:]
        slope = float(merit_gradient(d, mu, nu) @ z)
        m0 = float(merit(f, c, x, lam, mu, nu))
        alpha = backtracking(lambda a: float(merit(f, c, x + a * dx, lam + a * dl, mu, nu)),  # noqa: B023 (used here)
                             m0, slope, c1=beta, max_steps=50)
        x, lam = x + alpha * dx, lam + alpha * dl
        d = derivatives(f, c, x, lam)
        out.kkt.append(kkt_residual(d))
        out.steps.append(alpha)
        out.flops.append(flops)
        out.theta.append(0.0 if solver == "direct" else th)
        out.mu.append(mu)
        out.sketch_steps.append(nsk)
        out.accurate.append(accurate)
    else:
        out.converged = out.kkt[-1] <= tol
    out.x, out.lam, out.f = x, lam, float(f(x))
    out.seconds = time.perf_counter() - t0
    return out
