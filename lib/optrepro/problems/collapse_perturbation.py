r"""Features tied to given input features: the perturbation model of neural collapse (Tirer, Huang, Niles-Weed 2023).

Model. K classes with n samples each (N = Kn), one-hot targets :math:`Y \in \mathbb R^{K\times N}`, a linear
classifier :math:`W \in \mathbb R^{K\times d}` and features :math:`H \in \mathbb R^{d\times N}` (one column per
sample) that are free but held near a fixed *input* features matrix :math:`H_0` (e.g. the features of a shallower
layer) by a coupling of strength :math:`\beta > 0`:

.. math::
    f(W, H; H_0) = \frac{1}{2N}\|WH - Y\|_F^2 + \frac{\lambda_W}{2K}\|W\|_F^2 + \frac{\lambda_H}{2N}\|H\|_F^2
                   + \frac{\beta}{2N}\|H - H_0\|_F^2 .

Without the last term (or with :math:`H_0 = 0`) it is the bias-free MSE unconstrained feature model (UFM) of Tirer &
Bruna (2022), whose minimisers all collapse exactly when :math:`c = \sqrt{\lambda_H\lambda_W} < 1`
(:func:`collapsed_minimizer`): :math:`H^* = \sqrt\rho\, R \otimes \mathbf 1_n^\top`,
:math:`W^* = \sqrt{\lambda_H/\lambda_W}\sqrt\rho\, R^\top` for any :math:`R \in \mathbb R^{d\times K}` with
:math:`R^\top R = I_K`, :math:`\rho = (1-c)\sqrt{\lambda_W/\lambda_H}`. With :math:`H_0 = H^*` the minimiser of
``f`` is :math:`(W^*, H^*)` itself.

* :func:`tied_minimizer` minimises ``f`` by exact alternating minimisation (each block is a ridge regression):
  :math:`W \leftarrow YH^\top(HH^\top + n\lambda_W I_d)^{-1}`,
  :math:`H \leftarrow (W^\top W + (\lambda_H+\beta) I_d)^{-1}(W^\top Y + \beta H_0)`.
* :func:`central_path_flow`: the gradient flow :math:`\dot H_t = -N\nabla\mathcal L(H_t)` on the "central path"
  :math:`\mathcal L(H) = \min_W f(W, H; \cdot)|_{\beta=0}`, of which the minimiser :math:`H_{1/\beta}` of ``f`` is
  one implicit (backward-Euler) step of length :math:`t = 1/\beta` from :math:`H_0`. The paper's Theorem 3.1:
  along it :math:`\widetilde{\mathrm{NC1}} = \mathrm{Tr}\,\Sigma_W/\mathrm{Tr}\,\Sigma_B` (:func:`nc1_trace`)
  strictly decreases, :math:`e^{2\lambda_H t}\mathrm{Tr}\,\Sigma_W` decreases and
  :math:`e^{2\lambda_H t}\mathrm{Tr}\,\Sigma_B` increases; hence (Corollary 3.2) the minimiser of ``f`` has a lower
  NC1 than :math:`H_0` for large enough :math:`\beta`.
* :func:`linear_response` (Theorem 4.1): if :math:`(\hat W, \hat H)` minimises ``f`` for :math:`H_0`, the minimiser
  for :math:`H_0 + \delta H_0` is :math:`(\hat W + \delta W, \hat H + \delta H)` with, to first order,

  .. math:: \mathrm{vec}(\delta H) = \beta\big(\nabla^2_{HH} g - \nabla^2_{HW} g\,(\nabla^2_{WW} g)^{-1}
            \nabla^2_{WH} g\big)^{-1}\mathrm{vec}(\delta H_0), \qquad g = N f,

  (a Schur complement of the Hessian, solved here by conjugate gradients with matrix-free products), and
  :func:`large_beta_response` its expansion for :math:`\beta \gg \max(1, \lambda_H)` (the paper's Eq. 5),
  :math:`\delta H \approx F\,\delta H_0`, :math:`F = I - \frac1\beta\big(\lambda_H I + I_N\otimes\hat W^\top\hat W
  - Z\big)`, error :math:`O(\beta^{-2})`. Near collapse (:math:`H_0 = H^* + \delta H_0`, small) this predicts the
  minimiser's features, hence its NC1: :func:`predicted_features`.
* :func:`response_matrix` builds ``F`` and :func:`class_block_spectrum` the singular values of its per-class blocks;
  :func:`near_collapse_spectrum` gives the paper's closed forms at a collapsed :math:`H_0` (Theorem 4.2, d > K):
  :math:`\sigma_{\max}(F_{kk}) = 1`, :math:`\sigma_{\min}(F_{kk}) = 1 - \beta^{-1}\sqrt{\lambda_H/\lambda_W}` and
  :math:`\sigma_{\max}(F_{k\tilde k}) = 2\beta^{-1}\lambda_H(1 - \sqrt{\lambda_H\lambda_W})`, with
  :math:`F_{k\tilde k}` of rank one.

Layout: as in :mod:`optrepro.metrics.neural_collapse`, the public functions take and return features as (N, d)
arrays, one row per sample (the transpose of the paper's H), labels ``y`` (N,) in 0..K-1 with every class of the
same size n, and classifiers W (K, d). Everything runs in float64 on the features' device.

Reference: T. Tirer, H. Huang, J. Niles-Weed. "Perturbation Analysis of Neural Collapse." ICML 2023,
arXiv:2210.16658. The UFM minimiser: T. Tirer, J. Bruna, "Extended unconstrained features model for exploring deep
neural collapse", ICML 2022.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..checks import check_nonnegative, check_positive
from ..solvers import conjugate_gradient
from ..metrics.neural_collapse import between_class_covariance, within_class_covariance

__all__ = [
    "TiedSolution",
    "FlowTrace",
    "one_hot",
    "objective",
    "gradients",
    "optimal_classifier",
    "tied_minimizer",
    "ufm_minimizer",
    "collapsed_minimizer",
    "nc1_trace",
    "central_path_flow",
    "linear_response",
    "large_beta_response",
    "predicted_features",
    "response_matrix",
    "class_block_spectrum",
    "near_collapse_spectrum",
    "near_collapse_nc1_ratio",
]


# --------------------------------------------------------------------------------------------- inputs



def _features(name: str, H: Any, device: Any = None) -> Tensor:
    t = H if isinstance(H, Tensor) else torch.as_tensor(np.asarray(H))
    if t.ndim != 2:
        raise ValueError(f"invalid {name} of shape {tuple(t.shape)}: expected (N, d), one row per sample")
    t = t.detach().to(torch.float64)
    return t if device is None else t.to(device)


def _balanced_labels(y: Any, n_rows: int, device: Any) -> tuple[Tensor, int, int]:
    t = y if isinstance(y, Tensor) else torch.as_tensor(np.asarray(y))
    if t.ndim != 1 or t.shape[0] != n_rows or t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"invalid labels of shape {tuple(t.shape)} and dtype {t.dtype}: expected ({n_rows},) "
                         "integer class indices 0..K-1")
    t = t.to(device=device, dtype=torch.long)
    if n_rows == 0 or int(t.min()) < 0:
        raise ValueError("invalid labels: expected at least one sample and class indices 0..K-1")
    k = int(t.max()) + 1
    counts = torch.bincount(t, minlength=k)
    if bool((counts != counts[0]).any()) or int(counts[0]) == 0:
        raise ValueError(f"invalid class sizes {counts.tolist()}: the model needs balanced classes (the same n for "
                         "every class 0..K-1)")
    return t, k, int(counts[0])


def one_hot(y: Any, num_classes: int | None = None) -> Tensor:
    """The one-hot target matrix Y (K, N) of labels y (the paper's Y = I_K kron 1_n^T for sorted labels)."""
    t = y if isinstance(y, Tensor) else torch.as_tensor(np.asarray(y))
    k = int(t.max()) + 1 if num_classes is None else int(num_classes)
    return torch.nn.functional.one_hot(t.to(torch.long), k).to(torch.float64).T


@dataclass
class _Problem:
    """The data of f in the paper's layout: P0 = H0^T (d, N), targets Y (K, N), and the constants."""
    P0: Tensor
    Y: Tensor
    labels: Tensor
    k: int
    n: int
    lam_w: float
    lam_h: float
    beta: float

    @property
    def N(self) -> int:
        return self.P0.shape[1]

    @property
    def d(self) -> int:
        return self.P0.shape[0]


def _problem(H0: Any, y: Any, lam_w: Any, lam_h: Any, beta: Any, allow_beta_zero: bool = False) -> _Problem:
    H0 = _features("input features H0", H0)
    labels, k, n = _balanced_labels(y, H0.shape[0], H0.device)
    return _Problem(H0.T.contiguous(), one_hot(labels, k).to(H0.device), labels, k, n,
                    check_positive("lam_w", lam_w), check_nonnegative("lam_h", lam_h),
                    (check_nonnegative if allow_beta_zero else check_positive)("beta", beta))


# --------------------------------------------------------------------------------------------- objective

def _objective(pr: _Problem, W: Tensor, P: Tensor) -> float:
    N = pr.N
    val = (0.5 / N * (W @ P - pr.Y).pow(2).sum() + pr.lam_w / (2 * pr.k) * W.pow(2).sum()
           + pr.lam_h / (2 * N) * P.pow(2).sum() + pr.beta / (2 * N) * (P - pr.P0).pow(2).sum())
    return float(val)


def _gradients(pr: _Problem, W: Tensor, P: Tensor) -> tuple[Tensor, Tensor]:
    R = W @ P - pr.Y
    gw = (R @ P.T + pr.n * pr.lam_w * W) / pr.N
    gp = (W.T @ R + pr.lam_h * P + pr.beta * (P - pr.P0)) / pr.N
    return gw, gp


def objective(W: Any, H: Any, H0: Any, y: Any, lam_w: float, lam_h: float, beta: float) -> float:
    """f(W, H; H0) of the module docstring, for features H, H0 (N, d) and a classifier W (K, d)."""
    pr = _problem(H0, y, lam_w, lam_h, beta, allow_beta_zero=True)
    return _objective(pr, _features("classifier W", W, pr.P0.device), _features("features H", H, pr.P0.device).T)


def gradients(W: Any, H: Any, H0: Any, y: Any, lam_w: float, lam_h: float, beta: float) -> tuple[Tensor, Tensor]:
    """(df/dW (K, d), df/dH (N, d)) of f(W, H; H0)."""
    pr = _problem(H0, y, lam_w, lam_h, beta, allow_beta_zero=True)
    gw, gp = _gradients(pr, _features("classifier W", W, pr.P0.device), _features("features H", H, pr.P0.device).T)
    return gw, gp.T


def _ridge_w(P: Tensor, Y: Tensor, n: int, lam_w: float) -> Tensor:
    d = P.shape[0]
    A = P @ P.T + n * lam_w * torch.eye(d, dtype=P.dtype, device=P.device)
    return torch.linalg.solve(A, P @ Y.T).T            # Y P^T (P P^T + n lam_w I)^{-1}, A symmetric


def optimal_classifier(H: Any, y: Any, lam_w: float) -> Tensor:
    """W*(H) = Y H^T (H H^T + n lam_w I_d)^{-1} (paper layout), the minimiser of f over W for fixed features."""
    H = _features("features H", H)
    labels, k, n = _balanced_labels(y, H.shape[0], H.device)
    return _ridge_w(H.T, one_hot(labels, k).to(H.device), n, check_positive("lam_w", lam_w))


# --------------------------------------------------------------------------------------------- minimisers

@dataclass
class TiedSolution:
    """A minimiser of f: classifier W (K, d), features H (N, d), f there, the gradient norm and the sweeps used."""
    W: Tensor
    H: Tensor
    objective: float
    grad_norm: float
    iterations: int
    converged: bool


def tied_minimizer(H0: Any, y: Any, lam_w: float, lam_h: float, beta: float, *, tol: float = 1e-13,
                   max_iter: int = 100000, H_init: Any = None) -> TiedSolution:
    """Minimise f(W, H; H0) by exact alternating minimisation over W and H (module docstring), from H = H0
    (or ``H_init``), until the relative change of H in one sweep is below ``tol``."""
    pr = _problem(H0, y, lam_w, lam_h, beta, allow_beta_zero=True)
    if not (isinstance(max_iter, numbers.Integral) and max_iter >= 1):
        raise ValueError(f"invalid max_iter {max_iter!r}: expected an integer >= 1")
    P = pr.P0.clone() if H_init is None else _features("H_init", H_init, pr.P0.device).T.contiguous()
    eye = torch.eye(pr.d, dtype=P.dtype, device=P.device)
    rhs_fixed = pr.beta * pr.P0
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported after the loop)
        W = _ridge_w(P, pr.Y, pr.n, pr.lam_w)
        P_new = torch.linalg.solve(W.T @ W + (pr.lam_h + pr.beta) * eye, W.T @ pr.Y + rhs_fixed)
        change = float(torch.linalg.matrix_norm(P_new - P)) / max(float(torch.linalg.matrix_norm(P_new)), 1e-300)
        P = P_new
        if change <= tol:
            converged = True
            break
    W = _ridge_w(P, pr.Y, pr.n, pr.lam_w)
    gw, gp = _gradients(pr, W, P)
    grad = math.sqrt(float(gw.pow(2).sum() + gp.pow(2).sum()))
    return TiedSolution(W, P.T.contiguous(), _objective(pr, W, P), grad, it, converged)


def ufm_minimizer(H_init: Any, y: Any, lam_w: float, lam_h: float, **kw: Any) -> TiedSolution:
    """The baseline: the plain UFM (f with beta = 0, features free), minimised by the same alternating scheme
    started from ``H_init``. Its minimisers collapse exactly (Tirer & Bruna 2022, Theorem 3.1)."""
    return tied_minimizer(H_init, y, lam_w, lam_h, 0.0, **kw)


def collapsed_minimizer(num_classes: int, n: int, dim: int, lam_w: float, lam_h: float, frame: Any = None,
                        dtype: torch.dtype = torch.float64, device: Any = None) -> tuple[Tensor, Tensor, Tensor]:
    """A global minimiser (W* (K, d), H* (N, d), labels (N,)) of the UFM, c = sqrt(lam_h lam_w) < 1, classes sorted.

    H* = sqrt(rho) R kron 1_n^T, W* = sqrt(lam_h/lam_w) sqrt(rho) R^T, rho = (1 - c) sqrt(lam_w/lam_h), with R (d, K)
    the orthonormal ``frame`` (default: the first K coordinate vectors).
    """
    for name, v in (("num_classes", num_classes), ("n", n), ("dim", dim)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"invalid {name} {v!r}: expected an integer >= 1")
    if dim < num_classes:
        raise ValueError(f"invalid dim {dim}: the collapsed minimiser needs dim >= num_classes = {num_classes}")
    lam_w, lam_h = check_positive("lam_w", lam_w), check_positive("lam_h", lam_h)
    c = math.sqrt(lam_w * lam_h)
    if c >= 1:
        raise ValueError(f"invalid regularisation: sqrt(lam_w * lam_h) = {c:.3g} >= 1, the minimiser is (0, 0); "
                         "choose lam_w * lam_h < 1")
    if frame is None:
        R = torch.eye(dim, num_classes, dtype=dtype, device=device)
    else:
        R = _features("frame", frame).to(dtype=dtype, device=device)
        if R.shape != (dim, num_classes) or not torch.allclose(R.T @ R, torch.eye(num_classes, dtype=dtype,
                                                                                      device=device), atol=1e-10):
            raise ValueError(f"invalid frame of shape {tuple(R.shape)}: expected ({dim}, {num_classes}) with "
                             "orthonormal columns")
    rho = (1 - c) * math.sqrt(lam_w / lam_h)
    labels = torch.arange(num_classes, device=device).repeat_interleave(n)
    H = math.sqrt(rho) * R.T[labels]
    W = math.sqrt(lam_h / lam_w) * math.sqrt(rho) * R.T
    return W, H, labels


# --------------------------------------------------------------------------------------------- metrics, flow

def nc1_trace(H: Any, y: Any) -> float:
    """The paper's Eq. 3, NC1~ = Tr(Sigma_W) / Tr(Sigma_B) (0 exactly under within-class collapse)."""
    return float(torch.trace(within_class_covariance(H, y)) / torch.trace(between_class_covariance(H, y)))


@dataclass
class FlowTrace:
    """The central-path flow sampled at times t: NC1~, Tr Sigma_W and Tr Sigma_B, and the final features."""
    t: list[float] = field(default_factory=list)
    nc1_trace: list[float] = field(default_factory=list)
    tr_within: list[float] = field(default_factory=list)
    tr_between: list[float] = field(default_factory=list)
    H: Tensor | None = None


def central_path_flow(H0: Any, y: Any, lam_w: float, lam_h: float, t_max: float, steps: int,
                      record_every: int = 1) -> FlowTrace:
    """Forward-Euler integration of the paper's Eq. 4, dH/dt = -N grad L(H) with W = W*(H) (the central path):
    N grad L(H) = W*(H)^T (W*(H) H - Y) + lam_h H (paper layout), step t_max/steps."""
    pr = _problem(H0, y, lam_w, lam_h, 1.0)
    check_positive("t_max", t_max)
    if not (isinstance(steps, numbers.Integral) and steps >= 1):
        raise ValueError(f"invalid steps {steps!r}: expected an integer >= 1")
    dt = t_max / steps
    P = pr.P0.clone()
    trace = FlowTrace()

    def record(step: int) -> None:
        H = P.T
        trace.t.append(step * dt)
        trace.tr_within.append(float(torch.trace(within_class_covariance(H, pr.labels))))
        trace.tr_between.append(float(torch.trace(between_class_covariance(H, pr.labels))))
        trace.nc1_trace.append(trace.tr_within[-1] / trace.tr_between[-1])

    record(0)
    for s in range(1, steps + 1):
        W = _ridge_w(P, pr.Y, pr.n, pr.lam_w)
        P = P - dt * (W.T @ (W @ P - pr.Y) + pr.lam_h * P)
        if s % record_every == 0 or s == steps:
            record(s)
    trace.H = P.T.contiguous()
    return trace


# --------------------------------------------------------------------------------------------- linear response

def _dW(pr: _Problem, W: Tensor, P: Tensor, dP: Tensor) -> Tensor:
    """dW solving the linearised W-optimality for a feature change dP (batched over leading dims)."""
    R = W @ P - pr.Y
    A = P @ P.T + pr.n * pr.lam_w * torch.eye(pr.d, dtype=P.dtype, device=P.device)
    rhs = W @ dP @ P.T + R @ dP.transpose(-1, -2)                     # (..., K, d)
    return -torch.linalg.solve(A, rhs.transpose(-1, -2)).transpose(-1, -2)  # A symmetric


def _coupling_part(pr: _Problem, W: Tensor, P: Tensor, dP: Tensor) -> Tensor:
    """B(dP) = lam_h dP + W^T W dP + dW^T R + W^T dW P, the beta-free part of the Schur complement."""
    R = W @ P - pr.Y
    dW = _dW(pr, W, P, dP)
    return pr.lam_h * dP + W.T @ W @ dP + dW.transpose(-1, -2) @ R + W.T @ dW @ P


def _state(H0: Any, y: Any, W: Any, H: Any, lam_w: float, lam_h: float, beta: float):
    pr = _problem(H0, y, lam_w, lam_h, beta)
    W = _features("classifier W", W, pr.P0.device)
    P = _features("features H", H, pr.P0.device).T.contiguous()
    if W.shape != (pr.k, pr.d) or P.shape != pr.P0.shape:
        raise ValueError(f"shapes do not match: W {tuple(W.shape)}, H {tuple(P.T.shape)}, H0 {tuple(pr.P0.T.shape)} "
                         f"(expected ({pr.k}, {pr.d}) and ({pr.N}, {pr.d}))")
    return pr, W, P


def linear_response(W: Any, H: Any, H0: Any, y: Any, lam_w: float, lam_h: float, beta: float, dH0: Any, *,
                    tol: float = 1e-14, max_iter: int = 10000) -> Tensor:
    """Theorem 4.1: the first-order change dH (N, d) of the minimiser (W, H) of f(.; H0) when H0 moves by dH0,
    dH = beta S^{-1} dH0 with S the Schur complement of the Hessian of N f; solved by conjugate gradients."""
    pr, W, P = _state(H0, y, W, H, lam_w, lam_h, beta)
    b = pr.beta * _features("dH0", dH0, P.device).T
    if b.shape != P.shape:
        raise ValueError(f"invalid dH0 of shape {tuple(b.T.shape)}: expected {tuple(P.T.shape)}")

    def op(x: Tensor) -> Tensor:
        return pr.beta * x + _coupling_part(pr, W, P, x)

    # S is symmetric positive definite; start from the beta -> infinity answer
    return conjugate_gradient(op, b, x0=b / pr.beta, tol=tol, max_iter=max_iter).x.T.contiguous()


def large_beta_response(W: Any, H: Any, H0: Any, y: Any, lam_w: float, lam_h: float, beta: float,
                        dH0: Any) -> Tensor:
    """The paper's Eq. 5: dH ~ F dH0 = dH0 - (1/beta)(lam_h dH0 + W^T W dH0 - Z dH0), valid to O(beta^-2)."""
    pr, W, P = _state(H0, y, W, H, lam_w, lam_h, beta)
    dP = _features("dH0", dH0, P.device).T
    if dP.shape != P.shape:
        raise ValueError(f"invalid dH0 of shape {tuple(dP.T.shape)}: expected {tuple(P.T.shape)}")
    return (dP - _coupling_part(pr, W, P, dP) / pr.beta).T.contiguous()


def predicted_features(W: Any, H: Any, H0: Any, y: Any, lam_w: float, lam_h: float, beta: float, dH0: Any,
                       method: str = "schur") -> Tensor:
    """H + dH: the predicted minimiser's features for input H0 + dH0, with dH from :func:`linear_response`
    (method 'schur', Theorem 4.1) or :func:`large_beta_response` (method 'large-beta', Eq. 5)."""
    methods = {"schur": linear_response, "large-beta": large_beta_response}
    if method not in methods:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(methods)}")
    dH = methods[method](W, H, H0, y, lam_w, lam_h, beta, dH0)
    return _features("features H", H, dH.device) + dH


def response_matrix(W: Any, H: Any, H0: Any, y: Any, lam_w: float, lam_h: float, beta: float) -> Tensor:
    """The matrix F (dN x dN) of Eq. 5 acting on vec(dH0) in the paper's layout (column-stacked d x N matrices).

    Column j of F is F applied to the j-th unit matrix; the block rows and columns of class k are those of the
    columns of the samples of class k (contiguous when the labels are sorted).
    """
    pr, W, P = _state(H0, y, W, H, lam_w, lam_h, beta)
    m = pr.d * pr.N
    E = torch.eye(m, dtype=P.dtype, device=P.device).reshape(m, pr.N, pr.d).transpose(1, 2)  # vec^-1 of e_j
    FE = E - _coupling_part(pr, W, P, E) / pr.beta
    return FE.transpose(1, 2).reshape(m, m).T          # column j = vec(F e_j)


def class_block_spectrum(F: Tensor, y: Any, dim: int) -> dict[str, float]:
    """Extreme singular values of the intra-class blocks F_kk and inter-class blocks F_kk' (k != k') of F."""
    t = torch.as_tensor(np.asarray(y)) if not isinstance(y, Tensor) else y
    t = t.to(torch.long)
    k = int(t.max()) + 1
    idx = [torch.nonzero(t == c).flatten() for c in range(k)]
    rows = [torch.stack([j * dim + torch.arange(dim) for j in ix.tolist()]).flatten() for ix in idx]
    smax_in, smin_in, smax_out, rank_out = 0.0, math.inf, 0.0, 0
    for a in range(k):
        for b in range(k):
            s = torch.linalg.svdvals(F[rows[a].to(F.device)][:, rows[b].to(F.device)])
            if a == b:
                smax_in, smin_in = max(smax_in, float(s[0])), min(smin_in, float(s[-1]))
            else:
                smax_out = max(smax_out, float(s[0]))
                rank_out = max(rank_out, int((s > 1e-10 * max(float(s[0]), 1e-300)).sum()))
    return {"intra_max": smax_in, "intra_min": smin_in, "inter_max": smax_out, "inter_rank": rank_out}


def near_collapse_spectrum(lam_w: float, lam_h: float, beta: float) -> dict[str, float]:
    """Theorem 4.2's closed forms at a collapsed H0 (d > K, large beta): sigma_max(F_kk) = 1,
    sigma_min(F_kk) = 1 - sqrt(lam_h/lam_w)/beta, sigma_max(F_kk') = 2 lam_h (1 - sqrt(lam_h lam_w))/beta, rank 1."""
    lam_w, lam_h, beta = check_positive("lam_w", lam_w), check_positive("lam_h", lam_h), check_positive("beta", beta)
    return {"intra_max": 1.0, "intra_min": 1 - math.sqrt(lam_h / lam_w) / beta,
            "inter_max": 2 * lam_h * (1 - math.sqrt(lam_h * lam_w)) / beta, "inter_rank": 1}


def near_collapse_nc1_ratio(lam_w: float, lam_h: float, beta: float) -> float:
    """NC1(H_beta) / NC1(H0) to first order in the perturbation, at H0 = H* + dH0 near a collapsed H*:
    (beta / (beta + sqrt(lam_h / lam_w)))^2 (module docstring)."""
    lam_w, lam_h, beta = check_positive("lam_w", lam_w), check_positive("lam_h", lam_h), check_positive("beta", beta)
    return (beta / (beta + math.sqrt(lam_h / lam_w))) ** 2
