r"""Gaussian variational inference in the Bures-Wasserstein space: FB-GVI and BW gradient descent.

For a target :math:`\pi \propto e^{-V}` on :math:`\mathbb R^d`, Gaussian VI minimises over
:math:`p = \mathcal N(m, \Sigma)` the objective (:func:`objective`)

.. math:: \mathcal F(p) = \mathbb E_p[V] - \mathcal H(p), \qquad
          \mathcal H(p) = \tfrac12 \log\det\Sigma + \tfrac d2 (1 + \log 2\pi),

which equals :math:`\mathrm{KL}(p\,\|\,\pi) - \log Z`: the KL gap is :math:`\mathcal F(p) - \min \mathcal F`.
Both methods use :math:`g = \mathbb E_p[\nabla V]` and :math:`H = \mathbb E_p[\nabla^2 V]` (a potential's
``expectations``).

**FB-GVI** (Diao, Balasubramanian, Chewi, Salim, ICML 2023, arXiv:2304.05398), :func:`fb_gvi_step`: a forward
(explicit) BW gradient step on the potential energy, then the backward (JKO / proximal) step of the negative entropy,

.. math:: m_{k+1} = m_k - h\,g_k,\quad M_k = I - h H_k,\quad \Sigma_{k+1/2} = M_k\Sigma_k M_k,\quad
          \Sigma_{k+1} = \tfrac12\Big(\Sigma_{k+1/2} + 2hI + \big[\Sigma_{k+1/2}(\Sigma_{k+1/2} + 4hI)\big]^{1/2}\Big).

The last map (:func:`entropy_jko`) is the minimiser of :math:`-\tfrac12\log\det\Sigma + \mathcal B^2(\Sigma,
\Sigma_{k+1/2})/(2h)`: it is the root :math:`\Sigma \succeq hI` of :math:`\Sigma_{k+1/2} = (I - h\Sigma^{-1})\Sigma
(I - h\Sigma^{-1})`. The paper proves, for :math:`V` :math:`\alpha`-convex and :math:`\beta`-smooth and
:math:`h \le 1/\beta` (exact expectations), linear convergence at rate :math:`1-\alpha h` per step
(:math:`\alpha > 0`) and an :math:`O(1/(kh))` KL gap (:math:`\alpha = 0`).

**BW gradient descent** (Lambert, Chewi, Bach, Bonnabel, Rigollet, NeurIPS 2022), :func:`bw_gd_step`: one explicit
BW gradient step on the whole of :math:`\mathcal F`,

.. math:: m_{k+1} = m_k - h\,g_k,\qquad M_k = I - h(H_k - \Sigma_k^{-1}),\qquad \Sigma_{k+1} = M_k\Sigma_k M_k.

For quadratic :math:`V` with Hessian eigenvalue :math:`\lambda`, near the optimum a covariance perturbation along
that eigenvector is multiplied per step by :math:`(1-h\lambda)/(1+h\lambda)` (FB-GVI) and by :math:`1 - 2h\lambda`
(BW-GD), the mean error by :math:`1 - h\lambda` (both): at :math:`h = 1/\beta` BW-GD stops contracting.

Potentials: :class:`QuadraticPotential` (Gaussian target, exact expectations) and :class:`LogisticPotential`
(Bayesian logistic regression with a Gaussian prior; expectations by Gauss-Hermite quadrature on the 1-D projections
:math:`y_i x_i^\top\theta`, exact up to the quadrature). :func:`run` iterates either method. Means are ``(..., d)``,
covariances ``(..., d, d)``; everything is batched over leading dimensions, in the input's dtype and on its device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_choice, check_int, check_positive
from ..threads import one_cpu_thread_if

__all__ = ["QuadraticPotential", "LogisticPotential", "Trace", "objective", "entropy", "entropy_jko",
           "fb_gvi_step", "bw_gd_step", "run", "stationary_gaussian", "METHODS"]

METHODS = ("fb-gvi", "bw-gd")


def _sym(S: Tensor) -> Tensor:
    return (S + S.transpose(-1, -2)) / 2


def _check_ms(m: Tensor, S: Tensor) -> None:
    if m.dim() < 1 or S.shape != m.shape + m.shape[-1:]:
        raise ValueError(f"invalid mean of shape {tuple(m.shape)} and covariance of shape {tuple(S.shape)}: "
                         "expected (..., d) and (..., d, d)")


class QuadraticPotential:
    r""":math:`V(x) = \tfrac12 (x-b)^\top A (x-b)`, the Gaussian target :math:`\mathcal N(b, A^{-1})`."""

    def __init__(self, A: Tensor, b: Tensor) -> None:
        if A.dim() != 2 or A.shape != (b.shape[-1], b.shape[-1]) or b.dim() != 1:
            raise ValueError(f"invalid A of shape {tuple(A.shape)} and b of shape {tuple(b.shape)}: "
                             "expected (d, d) and (d,)")
        A = _sym(A)
        evals = torch.linalg.eigvalsh(A)
        if not evals.min() > 0:
            raise ValueError(f"invalid A with smallest eigenvalue {float(evals.min()):.3g}: expected positive definite")
        self.A, self.b, self.dim = A, b, b.shape[0]
        self.alpha, self.beta = float(evals.min()), float(evals.max())

    def expectations(self, m: Tensor, S: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Exact E[V], E[grad V], E[hess V] under N(m, S)."""
        _check_ms(m, S)
        r = m - self.b
        Ar = r @ self.A
        EV = 0.5 * ((self.A * S).sum((-1, -2)) + (r * Ar).sum(-1))
        return EV, Ar, self.A.expand(S.shape)

    def minimizer(self) -> tuple[Tensor, Tensor]:
        """The optimum of F: the target itself, N(b, A^{-1})."""
        return self.b, _sym(torch.linalg.inv(self.A))


class LogisticPotential:
    r"""Bayesian logistic regression: :math:`V(\theta) = \sum_i \log(1 + e^{-y_i x_i^\top\theta})
    + \|\theta\|^2/(2\tau^2)`, labels :math:`y_i \in \{-1, 1\}`.

    :math:`\alpha = 1/\tau^2` and :math:`\beta = \lambda_{\max}(X^\top X)/4 + 1/\tau^2`. Under
    :math:`\mathcal N(m, \Sigma)` each :math:`z_i = y_i x_i^\top\theta` is :math:`\mathcal N(y_i x_i^\top m,
    x_i^\top\Sigma x_i)`; :math:`\mathbb E[\nabla V] = -\sum_i y_i x_i \mathbb E\sigma(-z_i) + m/\tau^2` and
    :math:`\mathbb E[\nabla^2 V] = \sum_i x_i x_i^\top \mathbb E[\sigma(z_i)\sigma(-z_i)] + I/\tau^2`, with the 1-D
    expectations by ``nodes``-point Gauss-Hermite quadrature."""

    def __init__(self, X: Tensor, y: Tensor, prior_var: float, nodes: int = 40) -> None:
        if X.dim() != 2 or y.shape != X.shape[:1]:
            raise ValueError(f"invalid X of shape {tuple(X.shape)} and y of shape {tuple(y.shape)}: expected (n, d) "
                             "and (n,)")
        if not bool(((y == 1) | (y == -1)).all()):
            raise ValueError("invalid labels y: expected values in {-1, 1}")
        self.prior_var = check_positive("prior_var", prior_var)
        nodes = check_int("nodes", nodes, 2)
        self.X, self.Z, self.dim = X, X * y[:, None], X.shape[1]
        z, w = np.polynomial.hermite_e.hermegauss(nodes)
        self.nodes = torch.as_tensor(z, dtype=X.dtype, device=X.device)
        self.weights = torch.as_tensor(w / math.sqrt(2 * math.pi), dtype=X.dtype, device=X.device)
        self.alpha = 1.0 / self.prior_var
        self.beta = float(torch.linalg.eigvalsh(X.T @ X).max()) / 4 + self.alpha

    def expectations(self, m: Tensor, S: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """E[V], E[grad V], E[hess V] under N(m, S) (Gauss-Hermite on the projections)."""
        _check_ms(m, S)
        mu = m @ self.Z.T                                                        # (..., n)
        s = ((self.X @ S) * self.X).sum(-1).clamp_min(0).sqrt()                # sqrt(x_i^T S x_i)
        z = mu[..., None] + s[..., None] * self.nodes                            # (..., n, q)
        w = self.weights
        e_loss = (F.softplus(-z) * w).sum(-1)
        e_sig = (torch.sigmoid(-z) * w).sum(-1)
        e_curv = (torch.sigmoid(z) * torch.sigmoid(-z) * w).sum(-1)
        tr = S.diagonal(dim1=-2, dim2=-1).sum(-1)
        EV = e_loss.sum(-1) + ((m * m).sum(-1) + tr) / (2 * self.prior_var)
        g = -e_sig @ self.Z + m / self.prior_var
        eye = torch.eye(self.dim, dtype=m.dtype, device=m.device)
        H = (self.X * e_curv[..., None]).transpose(-1, -2) @ self.X + eye / self.prior_var
        return EV, g, H


def entropy(S: Tensor) -> Tensor:
    """Differential entropy of N(m, S): log det(S)/2 + d(1 + log 2 pi)/2."""
    d = S.shape[-1]
    return 0.5 * torch.logdet(S) + 0.5 * d * (1 + math.log(2 * math.pi))


def objective(potential, m: Tensor, S: Tensor) -> Tensor:
    """F(N(m, S)) = E[V] - H = KL(N(m, S) || pi) - log Z."""
    return potential.expectations(m, S)[0] - entropy(S)


def _step_size(h, m: Tensor) -> Tensor:
    """h as a tensor broadcastable against the batch dimensions of m (a float, or one step per batch element)."""
    if isinstance(h, Tensor):
        if not bool((h > 0).all()) or not bool(torch.isfinite(h).all()):
            raise ValueError("invalid step sizes h: expected finite numbers h > 0")
        return h.to(m.dtype).to(m.device)
    return torch.tensor(check_positive("h", h), dtype=m.dtype, device=m.device)


def entropy_jko(S_half: Tensor, h) -> Tensor:
    """The BW proximal (JKO) step of the negative entropy: (S + 2hI + [S(S + 4hI)]^{1/2}) / 2, by eigh.
    ``h``: a float or a tensor of steps over the batch dimensions."""
    h = _step_size(h, S_half[..., 0])[..., None]
    evals, evecs = torch.linalg.eigh(_sym(S_half))
    evals = evals.clamp_min(0)
    new = 0.5 * (evals + 2 * h + (evals * (evals + 4 * h)).sqrt())
    return _sym((evecs * new.unsqueeze(-2)) @ evecs.transpose(-1, -2))


def _fb_gvi_update(m: Tensor, S: Tensor, g: Tensor, H: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    M = eye - h[..., None, None] * H
    return m - h[..., None] * g, entropy_jko(M @ S @ M, h)


def _bw_gd_update(m: Tensor, S: Tensor, g: Tensor, H: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    M = eye - h[..., None, None] * (H - torch.linalg.inv(S))
    return m - h[..., None] * g, _sym(M @ S @ M)


def fb_gvi_step(potential, m: Tensor, S: Tensor, h) -> tuple[Tensor, Tensor]:
    """One FB-GVI step: forward BW gradient step on E[V], then the entropy's JKO step (see module).
    ``h``: a float or a tensor of steps over the batch dimensions."""
    _, g, H = potential.expectations(m, S)
    return _fb_gvi_update(m, S, g, H, _step_size(h, m))


def bw_gd_step(potential, m: Tensor, S: Tensor, h) -> tuple[Tensor, Tensor]:
    """One BW gradient descent step on F = E[V] - H (Lambert et al. 2022; see module).
    ``h``: a float or a tensor of steps over the batch dimensions."""
    _, g, H = potential.expectations(m, S)
    return _bw_gd_update(m, S, g, H, _step_size(h, m))


@dataclass
class Trace:
    """What :func:`run` recorded: F at every iterate (steps + 1, batch...), the final iterate, and whether the
    iteration left the set of positive-definite covariances or produced non-finite values (``diverged``)."""
    objective: Tensor
    m: Tensor
    S: Tensor
    diverged: Tensor
    steps: int = 0
    extra: dict = field(default_factory=dict)


@torch.no_grad()
def run(method: str, potential, m0: Tensor, S0: Tensor, h, steps: int) -> Trace:
    """Iterate FB-GVI or BW-GD ``steps`` times from N(m0, S0) (``h``: a float, or a tensor of steps over the batch
    dimensions). A batch element that diverges (non-finite values or a covariance that is not positive definite)
    is frozen and its objective set to +inf from then on."""
    method = check_choice("method", method, METHODS)
    steps = check_int("steps", steps, 0)
    _check_ms(m0, S0)
    h = _step_size(h, m0)
    update = _fb_gvi_update if method == "fb-gvi" else _bw_gd_update
    m, S = m0.clone(), _sym(S0.clone())
    bad = torch.zeros(m.shape[:-1], dtype=torch.bool, device=m.device)
    values = []
    with one_cpu_thread_if(m.shape[-1] <= 64, m.device):
        for k in range(steps + 1):
            EV, g, H = potential.expectations(m, S)       # one evaluation per step: F here, and the update
            values.append(torch.where(bad, torch.full_like(EV, math.inf), EV - entropy(S)))
            if k == steps:
                break
            m_new, S_new = update(m, S, g, H, h)
            ok = torch.isfinite(m_new).all(-1) & torch.isfinite(S_new).all((-1, -2))
            ok &= torch.linalg.cholesky_ex(torch.where(ok[..., None, None], S_new, S)).info == 0   # S_new > 0
            bad |= ~ok
            m = torch.where(bad[..., None], m, m_new)
            S = torch.where(bad[..., None, None], S, S_new)
    return Trace(torch.stack(values), m, S, bad, steps)


@torch.no_grad()
def stationary_gaussian(potential, m0: Tensor, S0: Tensor, iters: int = 100) -> tuple[Tensor, Tensor, float]:
    r"""A reference optimum of F by the fixed-point iteration of its stationarity conditions
    :math:`\mathbb E[\nabla V] = 0`, :math:`\Sigma^{-1} = \mathbb E[\nabla^2 V]`:
    :math:`m \leftarrow m - H^{-1} g`, :math:`\Sigma \leftarrow H^{-1}`. Returns (m, S, residual) with the residual
    :math:`\|g\| + \|H\Sigma - I\|_F` at the returned point (check it: the iteration is not guaranteed to converge)."""
    iters = check_int("iters", iters, 1)
    _check_ms(m0, S0)
    m, S = m0.clone(), S0.clone()
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    with one_cpu_thread_if(m.shape[-1] <= 64, m.device):
        for _ in range(iters):
            _, g, H = potential.expectations(m, S)
            Hinv = _sym(torch.linalg.inv(H))
            m, S = m - (Hinv @ g[..., None])[..., 0], Hinv
        _, g, H = potential.expectations(m, S)
    residual = float((g.norm(dim=-1) + (H @ S - eye).flatten(-2).norm(dim=-1)).max())
    return m, S, residual
