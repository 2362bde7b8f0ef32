r"""CoLiDE: concomitant linear DAG estimation (Saboksayr, Mateos, Tepper, ICLR 2024, arXiv:2310.02895).

A lasso-type score whose sparsity weight :math:`\lambda` is decoupled from the noise level by estimating the noise
scale jointly with :math:`W` (the smoothed concomitant lasso). With :math:`S = X^\top X/n` (centred columns) and the
per-node residual energies :math:`r_j(W) = \frac1n\lVert x_j - Xw_j\rVert^2 = [(I-W)^\top S(I-W)]_{jj}`:

* **CoLiDE-EV** (equal noise variances, one scale :math:`\sigma`):
  :math:`S_{EV}(W,\sigma) = \frac{1}{2\sigma}\sum_j r_j(W) + \frac{d\,\sigma}{2}`, minimized over :math:`\sigma` by
  :math:`\hat\sigma = \sqrt{\sum_j r_j(W)/d}`;
* **CoLiDE-NV** (non-equal variances, one :math:`\sigma_j` per node):
  :math:`S_{NV}(W,\Sigma) = \sum_j\Big(\frac{r_j(W)}{2\sigma_j} + \frac{\sigma_j}{2}\Big)`, minimized by
  :math:`\hat\sigma_j = \sqrt{r_j(W)}`.

Both are jointly convex in :math:`(W, \sigma)` for :math:`\sigma > 0`; the scales are floored at ``sigma_min``
(the concomitant lasso's :math:`\sigma_0`, tiny here). CoLiDE minimizes
:math:`\mu(S(W,\sigma) + \lambda\lVert W\rVert_1) + h^s(W)` along DAGMA's central path
(``optrepro.dag.dagma.path_following``), alternating an Adam step on :math:`W`, with gradient
:math:`\nabla_W S = -S(I-W)\,\mathrm{diag}(1/\sigma)`, and the closed-form scale update above.

The heteroscedastic ("NV") data of the experiments and the normalized SHD are in :mod:`optrepro.dag.sem`.
"""
from __future__ import annotations

import numpy as np

from optrepro.checks import check_choice, check_positive
from optrepro.dag.dagma import PathResult, centered_gram, path_following

__all__ = ["ConcomitantScore", "colide"]

KINDS = ("ev", "nv")


class ConcomitantScore:
    """CoLiDE's score (``kind`` "ev" or "nv") with the closed-form scale ``scale(W)``."""

    def __init__(self, S, kind: str = "nv", sigma_min: float = 1e-8):
        S = np.asarray(S, dtype=float)
        if S.ndim != 2 or S.shape[0] != S.shape[1]:
            raise ValueError(f"invalid S of shape {S.shape}: expected a square (d, d) Gram matrix")
        self.S, self.kind = S, check_choice("kind", kind, KINDS)
        self.sigma_min = check_positive("sigma_min", sigma_min)
        self.d = S.shape[0]
        self.eye = np.eye(self.d)

    def residuals(self, W) -> np.ndarray:
        """``r_j(W) = ||x_j - X w_j||^2 / n`` for every node j."""
        A = self.eye - W
        return np.einsum("ij,ij->j", A, self.S @ A)

    def scale(self, W):
        r = self.residuals(W)
        if self.kind == "ev":
            return max(float(np.sqrt(r.sum() / self.d)), self.sigma_min)
        return np.maximum(np.sqrt(np.maximum(r, 0.0)), self.sigma_min)

    def value(self, W, scale) -> float:
        r = self.residuals(W)
        if self.kind == "ev":
            return float(r.sum() / (2 * scale) + self.d * scale / 2)
        scale = np.asarray(scale, dtype=float)
        return float(np.sum(r / (2 * scale) + scale / 2))

    def grad(self, W, scale) -> np.ndarray:
        return -(self.S @ (self.eye - W)) / scale   # broadcasts 1/sigma_j over column j for "nv"


def colide(X, kind: str = "nv", lambda1: float = 0.05, sigma_min: float = 1e-8, **kwargs) -> PathResult:
    """CoLiDE-EV (``kind="ev"``) or CoLiDE-NV (``"nv"``) on data ``X`` (n, d); ``kwargs`` go to ``path_following``.

    The returned ``scale`` is the estimated noise standard deviation (a number for EV, one per node for NV).
    """
    return path_following(ConcomitantScore(centered_gram(X), kind, sigma_min), lambda1=lambda1, **kwargs)
