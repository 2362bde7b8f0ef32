r"""DAGMA: the log-det acyclicity function and its path-following solver (Bello, Aragam, Ravikumar, NeurIPS 2022,
arXiv:2209.08037), for linear SEMs with the least-squares score; the same solver runs CoLiDE's scores
(``optrepro.dag.colide``).

**Acyclicity.** For :math:`s > 0` and :math:`W` in the domain
:math:`\mathbb W^s = \{W : s > \rho(W\circ W)\}` (spectral radius),

.. math:: h^s(W) = -\log\det(sI - W\circ W) + d\log s,\qquad \nabla h^s(W) = 2\,W\circ(sI - W\circ W)^{-\top},

:math:`h^s(W) \ge 0` with equality iff :math:`W` is a DAG (then :math:`W\circ W` is nilpotent and
:math:`\det(sI - W\circ W) = s^d`). On :math:`\mathbb W^s`, :math:`(sI - W\circ W)^{-1} = \sum_k (W\circ W)^k/s^{k+1}`
is entrywise non-negative; a negative entry signals that an iterate left the domain.

**Path following (central path).** For :math:`t = 1..T`, with :math:`\mu_{t+1} = \mu_t\cdot\text{mu\_factor}`
(:math:`\mu_1 = 1`, factor 0.1) and a decreasing list of :math:`s_t`, warm-start from the previous solution and solve

.. math:: \min_W\ \mu_t\big(Q(W) + \lambda\lVert W\rVert_1\big) + h^{s_t}(W)

by Adam on the (sub)gradient :math:`\mu_t(\nabla Q + \lambda\operatorname{sign}W) + \nabla h^{s_t}`
(``warm_iter`` steps for :math:`t < T`, ``max_iter`` for the last, stopping early when the objective changes by less
than ``tol`` relative over ``checkpoint`` steps). As :math:`\mu\to0` the solution approaches a DAG. If a step leaves
the domain, it is undone and the learning rate halved; if that happens at the first step (or with
:math:`s_t \le 0.9`), the stage restarts with :math:`s_t + 0.1` and half the learning rate (as in the authors' code).
Then :math:`|W_{ij}| < 0.3` is zeroed (``optrepro.dag.notears.threshold_to_dag``, raised until acyclic).

**Scores** are objects with ``scale(W)`` (closed-form nuisance update after each step; ``None`` here),
``value(W, scale)`` and ``grad(W, scale)``. DAGMA's least-squares score
:math:`Q(W) = \frac1{2n}\lVert X - XW\rVert_F^2 = \frac12\operatorname{tr}\big((I-W)^\top S(I-W)\big)`,
:math:`S = X^\top X/n` (columns centred), :math:`\nabla Q = -S(I-W)`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from optrepro.checks import check_int, check_nonnegative, check_positive
from optrepro.dag.notears import threshold_to_dag

__all__ = ["logdet_acyclicity", "logdet_acyclicity_grad", "LeastSquaresScore", "PathResult", "path_following",
           "dagma_linear", "centered_gram"]


def _square(name: str, W) -> np.ndarray:
    W = np.asarray(W, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"invalid {name} of shape {W.shape}: expected a square (d, d) matrix")
    return W


def logdet_acyclicity(W, s: float = 1.0) -> float:
    """``h^s(W) = -log det(sI - W o W) + d log s`` (0 iff W is a DAG); ValueError outside the domain."""
    W = _square("W", W)
    s = check_positive("s", s)
    sign, logdet = np.linalg.slogdet(s * np.eye(W.shape[0]) - W * W)
    if sign <= 0:
        raise ValueError(f"invalid W for s = {s}: sI - W o W must have a positive determinant (W in the domain)")
    return float(-logdet + W.shape[0] * np.log(s))


def logdet_acyclicity_grad(W, s: float = 1.0) -> np.ndarray:
    """``grad h^s(W) = 2 W o (sI - W o W)^{-T}``."""
    W = _square("W", W)
    s = check_positive("s", s)
    return 2.0 * W * np.linalg.inv(s * np.eye(W.shape[0]) - W * W).T


def centered_gram(X) -> np.ndarray:
    """``S = X_c^T X_c / n`` with the columns of ``X`` centred."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] < 2 or X.shape[0] < 2:
        raise ValueError(f"invalid X of shape {X.shape}: expected an (n, d) sample matrix with n, d >= 2")
    Xc = X - X.mean(axis=0, keepdims=True)
    return Xc.T @ Xc / X.shape[0]


class LeastSquaresScore:
    """DAGMA's score ``Q(W) = tr((I-W)^T S (I-W)) / 2`` (no nuisance scale)."""

    def __init__(self, S):
        self.S = _square("S", S)
        self.d = self.S.shape[0]
        self.eye = np.eye(self.d)

    def scale(self, W):
        return None

    def value(self, W, scale=None) -> float:
        A = self.eye - W
        return 0.5 * float(np.sum(A * (self.S @ A)))

    def grad(self, W, scale=None) -> np.ndarray:
        return -self.S @ (self.eye - W)


@dataclass
class PathResult:
    W: np.ndarray          # thresholded, acyclic estimate
    W_raw: np.ndarray      # path-following solution before thresholding
    scale: object          # final nuisance scale of the score (None for least squares)
    h: float               # h^1(W_raw)
    iterations: int        # Adam steps taken, all stages and restarts
    restarts: int          # stage restarts (domain left at the first step)
    threshold: float       # threshold that was applied


def _adam_direction(g, m, v, t, b1, b2, eps=1e-8):
    """Adam's bias-corrected direction ``m_hat / (sqrt(v_hat) + eps)``; updates ``m``, ``v`` in place."""
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    return (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


def _inv(A):
    """Inverse by LU (LAPACK getrf/getri: less overhead than ``np.linalg.inv`` on small matrices)."""
    lu, piv, info = lapack.dgetrf(A)
    if info != 0:
        return np.full_like(A, -np.inf)       # singular: treated as outside the domain
    inv, info = lapack.dgetri(lu, piv)
    return inv if info == 0 else np.full_like(A, -np.inf)


def _stage(score, W, lambda1, mu, s, iters, lr, b1, b2, checkpoint, tol):
    """One central-path stage; returns (W, scale, steps) or None when the first step leaves the domain."""
    d = W.shape[0]
    eye = np.eye(d)
    m, v = np.zeros_like(W), np.zeros_like(W)
    scale = score.scale(W)
    obj_prev, step = np.inf, None
    for t in range(1, iters + 1):
        M = _inv(s * eye - W * W)
        while (M < -1e-6).any():             # left the domain: undo, halve the step, retry
            if t == 1 or s <= 0.9:
                return None
            W = W + lr * step
            lr *= 0.5
            if lr <= 1e-16:
                return W, scale, t
            W = W - lr * step
            scale = score.scale(W)
            M = _inv(s * eye - W * W)
        G = mu * (score.grad(W, scale) + lambda1 * np.sign(W)) + 2.0 * W * M.T
        step = _adam_direction(G, m, v, t, b1, b2)
        W = W - lr * step
        scale = score.scale(W)
        if t % checkpoint == 0 or t == iters:
            sign, logdet = np.linalg.slogdet(s * eye - W * W)
            obj = mu * (score.value(W, scale) + lambda1 * np.abs(W).sum()) - logdet + d * np.log(s)
            if np.isfinite(obj_prev) and abs(obj_prev - obj) <= tol * abs(obj_prev):
                return W, scale, t
            obj_prev = obj
    return W, scale, iters


def path_following(score, lambda1: float = 0.05, T: int = 4, mu_init: float = 1.0, mu_factor: float = 0.1,
                   s=(1.0, 0.9, 0.8, 0.7), warm_iter: int = 20000, max_iter: int = 70000, lr: float = 3e-4,
                   betas: tuple[float, float] = (0.99, 0.999), checkpoint: int = 1000, tol: float = 1e-6,
                   w_threshold: float = 0.3) -> PathResult:
    """DAGMA's central path for ``mu (score + lambda1 ||W||_1) + h^s(W)`` from ``W = 0``; see the module docstring.

    ``s`` is a list of ``T`` values (a shorter list is padded with its last value) or one number.
    Defaults: the CoLiDE authors' settings for both CoLiDE and DAGMA (beta_1 = 0.99 as in their Adam).
    """
    lambda1 = check_nonnegative("lambda1", lambda1)
    T = check_int("T", T, 1)
    mu_init = check_positive("mu_init", mu_init)
    mu_factor = check_positive("mu_factor", mu_factor)
    if mu_factor >= 1:
        raise ValueError(f"invalid mu_factor {mu_factor}: expected 0 < mu_factor < 1")
    s_list = [float(s)] * T if np.isscalar(s) else [float(x) for x in s]
    if not s_list or any(not (x > 0) for x in s_list):
        raise ValueError(f"invalid s {s!r}: expected a positive number or a non-empty list of positive numbers")
    s_list = (s_list + [s_list[-1]] * T)[:T]
    warm_iter = check_int("warm_iter", warm_iter, 1)
    max_iter = check_int("max_iter", max_iter, 1)
    lr = check_positive("lr", lr)
    checkpoint = check_int("checkpoint", checkpoint, 1)
    tol = check_nonnegative("tol", tol)
    w_threshold = check_nonnegative("w_threshold", w_threshold)
    b1, b2 = betas
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"invalid betas {betas!r}: expected two numbers in [0, 1)")

    W = np.zeros((score.d, score.d))
    scale = score.scale(W)
    mu, steps, restarts = mu_init, 0, 0
    for i in range(T):
        lr_i, s_i = lr, s_list[i]
        iters = max_iter if i == T - 1 else warm_iter
        while True:
            out = _stage(score, W.copy(), lambda1, mu, s_i, iters, lr_i, b1, b2, checkpoint, tol)
            if out is not None:
                break
            restarts += 1
            lr_i *= 0.5
            s_i += 0.1
        W, scale, k = out
        steps += k
        mu *= mu_factor
    W_thr, thr = threshold_to_dag(W, w_threshold)
    sign, logdet = np.linalg.slogdet(np.eye(score.d) - W * W)
    h = float(-logdet) if sign > 0 else float("inf")
    return PathResult(W=W_thr, W_raw=W, scale=scale, h=h, iterations=steps, restarts=restarts, threshold=thr)


def dagma_linear(X, lambda1: float = 0.05, **kwargs) -> PathResult:
    """DAGMA with the least-squares score on data ``X`` (n, d); ``kwargs`` go to :func:`path_following`."""
    return path_following(LeastSquaresScore(centered_gram(X)), lambda1=lambda1, **kwargs)
