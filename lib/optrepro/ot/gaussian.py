r"""Closed forms for Gaussians: the ground truth of the neural-OT and Wasserstein-flow notebooks.

For :math:`\mu = \mathcal N(m_0, \Sigma_0)`, :math:`\nu = \mathcal N(m_1, \Sigma_1)` and the cost :math:`\|x-y\|^2`:

* **W2** (Dowson & Landau 1982; Givens & Shortt 1984):
  :math:`W_2^2 = \|m_0-m_1\|^2 + \mathrm{tr}\,\Sigma_0 + \mathrm{tr}\,\Sigma_1
  - 2\,\mathrm{tr}(\Sigma_0^{1/2}\Sigma_1\Sigma_0^{1/2})^{1/2}` (:func:`w2_squared`; the covariance part is
  :func:`optrepro.problems.bures_wasserstein.bw_squared`).
* **Brenier map** :math:`T(x) = m_1 + A(x - m_0)`,
  :math:`A = \Sigma_0^{-1/2}(\Sigma_0^{1/2}\Sigma_1\Sigma_0^{1/2})^{1/2}\Sigma_0^{-1/2}` (:func:`brenier_map`).
* **Entropic OT** :math:`\min_\pi \mathbb E_\pi\|x-y\|^2 + \varepsilon\,\mathrm{KL}(\pi\,\|\,\mu\otimes\nu)`
  (Janati, Muzellec, Peyré, Cuturi 2020; Mallasto, Gerolin, Minh 2021): the optimal plan is Gaussian with
  cross-covariance, writing :math:`\sigma^2 = \varepsilon/2`,

  .. math:: C_\varepsilon = \tfrac12\,\Sigma_0^{1/2} D_\varepsilon \Sigma_0^{-1/2} - \tfrac{\sigma^2}{2} I,\qquad
            D_\varepsilon = (4\,\Sigma_0^{1/2}\Sigma_1\Sigma_0^{1/2} + \sigma^4 I)^{1/2},

  (:func:`entropic_plan`); its conditional :math:`\pi(y\mid x)` is :math:`\mathcal N(m_1 + C^\top\Sigma_0^{-1}
  (x-m_0),\ \Sigma_1 - C^\top\Sigma_0^{-1}C)`. Optimality is checkable without the formula: the plan's precision
  matrix has off-diagonal block :math:`-(2/\varepsilon) I` (the density ratio is :math:`e^{(f(x)+g(y)-\|x-y\|^2)/
  \varepsilon}`). The cost is :math:`\mathbb E_\pi\|x-y\|^2 + \varepsilon\,I_\pi(x;y)` with the mutual information
  :math:`I_\pi = \tfrac12(\log\det\Sigma_0 + \log\det\Sigma_1 - \log\det\Sigma_\pi)`.
* **Ornstein-Uhlenbeck / Fokker-Planck flow** :math:`\partial_t\rho = \nabla\cdot(\rho\nabla V) + D\,\Delta\rho`
  with :math:`V(x) = \tfrac12(x-b)^\top A(x-b)`, :math:`A \succ 0` (the Wasserstein gradient flow of
  :math:`\int V\rho + D\int\rho\log\rho`): from a Gaussian it stays Gaussian with
  :math:`m_t = b + e^{-At}(m_0-b)` and :math:`\Sigma_t = e^{-At}\Sigma_0e^{-At} + D A^{-1}(I - e^{-2At})`
  (:func:`ou_marginal`; solves :math:`\dot\Sigma = -A\Sigma - \Sigma A + 2D I`).
* :func:`kl` (KL divergence between Gaussians), :func:`bw2_uvp` (the benchmark metric of Korotin et al. 2021:
  :math:`100\,W_2^2(\hat\nu,\nu)/(\tfrac12\mathrm{tr}\,\Sigma_\nu)` percent, computed between Gaussians),
  :func:`random_spd` and :func:`sample` for building test problems.

Everything is batched over no leading dimensions (one Gaussian pair at a time), works in the input's dtype and on
its device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int, check_nonnegative, check_positive
from ..problems.bures_wasserstein import bw_squared, psd_sqrt

__all__ = ["EntropicGaussianPlan", "brenier_map", "bw2_uvp", "entropic_plan", "kl", "ou_marginal", "random_spd",
           "sample", "w2_squared"]


def _check_pair(m: Tensor, S: Tensor, name: str) -> int:
    if m.dim() != 1 or S.shape != (m.shape[0], m.shape[0]):
        raise ValueError(f"invalid Gaussian {name}: mean of shape {tuple(m.shape)} and covariance of shape "
                         f"{tuple(S.shape)}; expected (d,) and (d, d)")
    return m.shape[0]


def _check_two(m0, S0, m1, S1) -> int:
    d0, d1 = _check_pair(m0, S0, "0"), _check_pair(m1, S1, "1")
    if d0 != d1:
        raise ValueError(f"invalid dimensions {d0} and {d1}: the two Gaussians must live in one space")
    return d0


def _inv_sqrt(S: Tensor) -> Tensor:
    evals, evecs = torch.linalg.eigh((S + S.T) / 2)
    if evals.min() <= 0:
        raise ValueError(f"invalid covariance: smallest eigenvalue {evals.min().item():.3g}, expected positive definite")
    return (evecs * evals.rsqrt()) @ evecs.T


def w2_squared(m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor) -> Tensor:
    """Squared 2-Wasserstein distance between N(m0, S0) and N(m1, S1)."""
    _check_two(m0, S0, m1, S1)
    return ((m0 - m1) ** 2).sum() + bw_squared(S0, S1)


def brenier_map(m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor) -> tuple[Tensor, Tensor]:
    """The OT map T(x) = A x + b from N(m0, S0) to N(m1, S1) (A symmetric positive definite); returns (A, b)."""
    _check_two(m0, S0, m1, S1)
    r0, ir0 = psd_sqrt(S0), _inv_sqrt(S0)
    A = ir0 @ psd_sqrt(r0 @ S1 @ r0) @ ir0
    A = (A + A.T) / 2
    return A, m1 - A @ m0


@dataclass
class EntropicGaussianPlan:
    """The entropic OT plan between two Gaussians: a Gaussian on (x, y) with ``mean`` (2d,) and ``cov`` (2d, 2d)."""

    mean: Tensor
    cov: Tensor
    eps: float
    cost: Tensor  # E|x - y|^2 + eps * KL(plan | mu x nu)
    transport: Tensor  # E|x - y|^2 alone

    @property
    def dim(self) -> int:
        return self.mean.shape[0] // 2

    @property
    def cross_cov(self) -> Tensor:
        return self.cov[: self.dim, self.dim:]

    def conditional(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean (n, d) and covariance (d, d) of y | x for the rows of x (n, d)."""
        d = self.dim
        S0, C, S1 = self.cov[:d, :d], self.cross_cov, self.cov[d:, d:]
        K = torch.linalg.solve(S0, C).T  # C^T S0^{-1}
        mean = self.mean[d:] + (x - self.mean[:d]) @ K.T
        cov = S1 - K @ C
        return mean, (cov + cov.T) / 2


def entropic_plan(m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor, eps: float) -> EntropicGaussianPlan:
    """The minimizer of E|x-y|^2 + eps KL(pi | N(m0,S0) x N(m1,S1)) over couplings pi (closed form, see module)."""
    d = _check_two(m0, S0, m1, S1)
    eps = check_positive("eps", eps)
    sigma2 = eps / 2
    eye = torch.eye(d, dtype=S0.dtype, device=S0.device)
    r0, ir0 = psd_sqrt(S0), _inv_sqrt(S0)
    D = psd_sqrt(4 * r0 @ S1 @ r0 + sigma2 ** 2 * eye)
    C = 0.5 * r0 @ D @ ir0 - 0.5 * sigma2 * eye
    cov = torch.cat([torch.cat([S0, C], 1), torch.cat([C.T, S1], 1)], 0)
    cov = (cov + cov.T) / 2
    transport = ((m0 - m1) ** 2).sum() + S0.trace() + S1.trace() - 2 * C.trace()
    mutual_information = 0.5 * (torch.logdet(S0) + torch.logdet(S1) - torch.logdet(cov))
    return EntropicGaussianPlan(torch.cat([m0, m1]), cov, eps, transport + eps * mutual_information, transport)


def ou_marginal(m0: Tensor, S0: Tensor, A: Tensor, b: Tensor, t: float, diffusion: float = 1.0) -> tuple[Tensor, Tensor]:
    """Mean and covariance at time t of the Fokker-Planck flow of V(x) = (x-b)^T A (x-b)/2 with diffusion D."""
    _check_two(m0, S0, b, A)
    t, diffusion = check_nonnegative("t", t), check_positive("diffusion", diffusion)
    A = (A + A.T) / 2
    if torch.linalg.eigvalsh(A).min() <= 0:
        raise ValueError("invalid A: expected a symmetric positive definite matrix")
    E = torch.linalg.matrix_exp(-t * A)
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    cov = E @ S0 @ E + diffusion * torch.linalg.solve(A, eye - E @ E)
    return b + E @ (m0 - b), (cov + cov.T) / 2


def kl(m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor) -> Tensor:
    """KL( N(m0, S0) || N(m1, S1) )."""
    d = _check_two(m0, S0, m1, S1)
    diff = m1 - m0
    return 0.5 * (torch.linalg.solve(S1, S0).trace() + diff @ torch.linalg.solve(S1, diff) - d
                  + torch.logdet(S1) - torch.logdet(S0))


def bw2_uvp(m: Tensor, S: Tensor, m_true: Tensor, S_true: Tensor) -> Tensor:
    """Unexplained variance percentage 100 * W2^2(N(m,S), N(m_true,S_true)) / (tr S_true / 2)."""
    return 100 * w2_squared(m, S, m_true, S_true) / (0.5 * S_true.trace())


def random_spd(d: int, condition: float, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> Tensor:
    """A random d x d SPD matrix with eigenvalues log-uniform in [1/sqrt(cond), sqrt(cond)] (cond = condition)."""
    d, condition = check_int("d", d, 1), check_positive("condition", condition)
    if condition < 1:
        raise ValueError(f"invalid condition {condition}: expected a condition number >= 1")
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=dtype))
    logs = (torch.rand(d, generator=generator, dtype=dtype) - 0.5) * math.log(condition)
    return (Q * logs.exp()) @ Q.T


def sample(m: Tensor, S: Tensor, n: int, *, generator: torch.Generator | None = None) -> Tensor:
    """n samples (rows) of N(m, S), drawn on CPU with the generator and moved to m's device."""
    _check_pair(m, S, "")
    n = check_int("n", n, 1)
    z = torch.randn(n, m.shape[0], generator=generator, dtype=m.dtype).to(m.device)
    return m + z @ psd_sqrt(S).T
