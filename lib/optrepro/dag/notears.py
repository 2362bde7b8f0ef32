r"""NOTEARS for linear SEMs (Zheng, Aragam, Ravikumar, Xing, NeurIPS 2018, arXiv:1803.01422).

Continuous relaxation of score-based DAG learning:

.. math::
    \min_W\ Q(W) + \lambda_1\lVert W\rVert_1 \quad\text{s.t.}\quad h(W) = \operatorname{tr}e^{W\circ W} - d = 0,
    \qquad Q(W) = \tfrac1{2n}\lVert X - XW\rVert_F^2,

solved, as in the authors' code, by the augmented Lagrangian
:math:`L_\rho(W,\alpha) = Q(W) + \lambda_1\lVert W\rVert_1 + \frac\rho2 h(W)^2 + \alpha h(W)`:

1. :math:`W \leftarrow \arg\min_W L_\rho(W,\alpha)` by L-BFGS-B on :math:`W = W_+ - W_-`, :math:`W_\pm\ge0`
   (which makes the :math:`\ell_1` term smooth), diagonal fixed at 0, warm-started;
2. while :math:`h` did not drop below :math:`\frac14` of its previous value, :math:`\rho\leftarrow10\rho` and redo 1;
3. :math:`\alpha \leftarrow \alpha + \rho\,h(W)`; stop when :math:`h(W)\le h_{tol}` or :math:`\rho\ge\rho_{max}`.

The output is thresholded, :math:`W_{ij}\leftarrow0` where :math:`|W_{ij}| < w_{thr}` (0.3 in the paper). If the
thresholded graph still has a cycle (possible when the outer loop was capped), the threshold is raised to the
smallest weight magnitude that makes it acyclic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize

from optrepro.checks import check_int, check_nonnegative, check_positive
from optrepro.dag.sem import is_dag

__all__ = ["NotearsResult", "notears_linear", "threshold_to_dag"]


@dataclass
class NotearsResult:
    W: np.ndarray          # thresholded, acyclic estimate
    W_raw: np.ndarray      # the augmented-Lagrangian solution before thresholding
    h: float               # h(W_raw)
    rho: float             # final penalty
    outer_iterations: int  # dual (alpha) updates
    inner_solves: int      # L-BFGS-B solves
    threshold: float       # the threshold that was applied


def threshold_to_dag(W, w_threshold: float) -> tuple[np.ndarray, float]:
    """Zero the entries below ``w_threshold`` in magnitude, raising it until the result is a DAG."""
    W = np.asarray(W, dtype=float)
    thr = check_nonnegative("w_threshold", w_threshold)
    out = np.where(np.abs(W) >= thr, W, 0.0) if thr > 0 else W.copy()
    for t in np.unique(np.abs(out[out != 0])):
        if is_dag(out):
            break
        thr = float(t) * (1 + 1e-12)
        out = np.where(np.abs(out) >= thr, out, 0.0)
    return out, thr


def notears_linear(X, lambda1: float = 0.0, max_iter: int = 100, h_tol: float = 1e-8, rho_max: float = 1e16,
                   w_threshold: float = 0.3, lbfgs_maxiter: int = 15000) -> NotearsResult:
    """NOTEARS (linear, least-squares loss, optional l1) by the augmented Lagrangian with L-BFGS-B inner solves.

    ``max_iter`` caps the dual updates and ``lbfgs_maxiter`` the iterations of one inner solve.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] < 2:
        raise ValueError(f"invalid X of shape {X.shape}: expected an (n, d) sample matrix with d >= 2")
    lambda1 = check_nonnegative("lambda1", lambda1)
    max_iter = check_int("max_iter", max_iter, 1)
    h_tol = check_positive("h_tol", h_tol)
    rho_max = check_positive("rho_max", rho_max)
    lbfgs_maxiter = check_int("lbfgs_maxiter", lbfgs_maxiter, 1)
    n, d = X.shape
    S = X.T @ X / n

    def unpack(w):
        return (w[: d * d] - w[d * d:]).reshape(d, d)

    def h_and_grad(W):
        E = scipy.linalg.expm(W * W)
        return float(np.trace(E) - d), E.T * 2.0 * W

    def objective(w, rho, alpha):
        W = unpack(w)
        SW = S @ W
        loss = 0.5 * float(np.trace(S) - 2 * np.trace(SW) + np.sum(W * SW))
        g_loss = SW - S                       # d/dW of ||X - XW||^2 / (2n)
        h, g_h = h_and_grad(W)
        f = loss + 0.5 * rho * h * h + alpha * h + lambda1 * w.sum()
        G = g_loss + (rho * h + alpha) * g_h
        return f, np.concatenate([G.ravel() + lambda1, -G.ravel() + lambda1])

    bounds = [(0, 0) if i == j else (0, None) for _ in range(2) for i in range(d) for j in range(d)]
    w = np.zeros(2 * d * d)
    rho, alpha, h = 1.0, 0.0, np.inf
    outer = solves = 0
    for outer in range(1, max_iter + 1):  # noqa: B007 (the count is reported after the loop)
        while rho < rho_max:
            sol = scipy.optimize.minimize(objective, w, args=(rho, alpha), method="L-BFGS-B", jac=True,
                                          bounds=bounds, options={"maxiter": lbfgs_maxiter})
            solves += 1
            h_new, _ = h_and_grad(unpack(sol.x))
            if h_new > 0.25 * h:
                rho *= 10
            else:
                break
        w, h = sol.x, h_new
        alpha += rho * h
        if h <= h_tol or rho >= rho_max:
            break
    W_raw = unpack(w)
    W, thr = threshold_to_dag(W_raw, w_threshold)
    return NotearsResult(W=W, W_raw=W_raw, h=float(h), rho=rho, outer_iterations=outer, inner_solves=solves,
                         threshold=thr)
