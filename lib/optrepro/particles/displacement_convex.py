r"""Particle gradient descent on a displacement-convex functional: a planted sign network on 2-D inputs.

Daneshmand, Lee & Jin, "Efficient displacement convex optimization with particle gradient descent", ICML 2023,
arXiv:2302.04753. A measure :math:`\mu` is represented by :math:`n` equally weighted particles,
:math:`\mu_n = \frac1n\sum_i \delta_{\theta_i}`, and particle gradient descent moves every particle along the
Wasserstein gradient of :math:`F` (the particle gradient scaled by :math:`n`, since each carries mass :math:`1/n`):

.. math:: \theta_i \leftarrow \Pi\big(\theta_i - \eta\, n\, \partial_{\theta_i} F(\mu_n)\big).

The paper proves that for an L-Lipschitz displacement-convex :math:`F`, :math:`n = O(1/\varepsilon^2)` particles and
:math:`O(1/\varepsilon^2)` such steps reach :math:`F(\mu_n) - \min_\mu F(\mu) \le \varepsilon`, i.e. an error
:math:`O(n^{-1/2})` in the number of particles.

**The functional** (the paper's application to function approximation with two-dimensional inputs). A network with
sign activation and neurons on the unit circle, :math:`w(\theta) = (\cos\theta, \sin\theta)`,

.. math:: f_\mu(x) = \int \operatorname{sign}(\langle x, w(\theta)\rangle)\, d\mu(\theta),

fits a planted network :math:`f_\nu` whose neuron angles are uniform on :math:`[a, b] \subset [0, \pi]`, with the
population loss :math:`L(\mu) = \mathbb E_{x \sim \mathrm{Unif}(S^1)} (f_\mu(x) - f_\nu(x))^2`. Since
:math:`\mathbb E_x\, \mathrm{sign}\langle x, w(\theta)\rangle\,\mathrm{sign}\langle x, w(\theta')\rangle
= 1 - \tfrac{2}{\pi}|\theta - \theta'|` for angles in an interval of length at most :math:`\pi`,

.. math:: L(\mu) = \tfrac{2}{\pi}\Big(2\,\mathbb E|\theta - Y| - \mathbb E|\theta - \theta'| - \mathbb E|Y - Y'|\Big),
   \qquad \theta, \theta' \sim \mu,\ Y, Y' \sim \nu,

:math:`\tfrac2\pi` times the energy distance, :math:`= \tfrac4\pi \int (F_\mu - F_\nu)^2`. In one dimension it is
displacement convex (the interaction term is linear in the quantile function, the potential
:math:`\mathbb E|\theta - Y|` is convex) and Lipschitz but not smooth (the kernel :math:`|\theta-\theta'|`). Its
minimum over all measures is :math:`0` (at :math:`\mu = \nu`); over :math:`n`-particle measures it is attained at the
quantile midpoints :math:`\theta_i = F_\nu^{-1}((2i-1)/(2n))` with value :math:`\ell / (3\pi n^2)`,
:math:`\ell = b - a`. For :math:`n` i.i.d. draws from :math:`\nu` its expectation is :math:`2\ell/(3\pi n)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from optrepro.checks import check_int, check_nonnegative, check_positive
from optrepro.threads import one_cpu_thread_if

__all__ = ["PlantedSignNetwork", "PGDResult", "particle_gradient_descent", "pairwise_mean_abs", "network_output"]


def pairwise_mean_abs(theta: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac1{n^2}\sum_{i,j}|\theta_i - \theta_j|` in :math:`O(n \log n)`: sorted, it is
    :math:`\frac2{n^2}\sum_r (2r - n - 1)\,\theta_{(r)}` (differentiable through ``torch.sort``)."""
    n = theta.shape[-1]
    s = torch.sort(theta, dim=-1).values
    r = torch.arange(1, n + 1, dtype=theta.dtype, device=theta.device)
    return 2.0 * ((2 * r - n - 1) * s).sum(-1) / n**2


@dataclass(frozen=True)
class PlantedSignNetwork:
    """The population loss of a sign network with neuron angles ``theta`` fitting a planted network whose neuron
    angles are uniform on ``[lo, hi]`` (``0 <= lo < hi <= pi``), inputs uniform on the unit circle."""

    lo: float = math.pi / 4
    hi: float = 3 * math.pi / 4
    minimum: float = field(default=0.0, init=False)  # min over all measures, attained at mu = nu

    def __post_init__(self):
        check_nonnegative("lo", self.lo)
        check_positive("hi", self.hi)
        if not (self.lo < self.hi <= math.pi):
            raise ValueError(f"invalid interval [{self.lo}, {self.hi}]: expected 0 <= lo < hi <= pi")

    @property
    def length(self) -> float:
        return self.hi - self.lo

    def cdf(self, theta: torch.Tensor) -> torch.Tensor:
        """The planted measure's CDF :math:`F_\\nu`."""
        return ((theta - self.lo) / self.length).clamp(0.0, 1.0)

    def potential(self, theta: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathbb E_{Y\sim\nu}|\theta - Y|` (exact: inside the interval
        :math:`((\theta-a)^2 + (b-\theta)^2)/(2\ell)`, outside the distance to the midpoint)."""
        a, b, ell = self.lo, self.hi, self.length
        inside = ((theta - a) ** 2 + (b - theta) ** 2) / (2 * ell)
        outside = (theta - (a + b) / 2).abs()
        return torch.where((theta >= a) & (theta <= b), inside, outside)

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        r"""The population loss :math:`L(\mu_n)` for particles ``theta`` (last dimension; leading dims batch)."""
        energy = 2 * self.potential(theta).mean(-1) - pairwise_mean_abs(theta) - self.length / 3
        return 2.0 / math.pi * energy

    def wasserstein_gradient(self, theta: torch.Tensor) -> torch.Tensor:
        r""":math:`n\,\partial_{\theta_i} L = \tfrac8\pi\big(F_\nu(\theta_i) - (2 r_i - 1)/(2n)\big)`, with
        :math:`r_i` the rank of :math:`\theta_i` (1-based; the gradient away from ties)."""
        n = theta.shape[-1]
        rank = torch.argsort(torch.argsort(theta, dim=-1), dim=-1).to(theta.dtype) + 1
        return 8.0 / math.pi * (self.cdf(theta) - (2 * rank - 1) / (2 * n))

    def particle_optimum(self, n: int, dtype=torch.float64, device=None) -> torch.Tensor:
        """The best ``n``-particle measure: the quantile midpoints of the planted measure."""
        n = check_int("n", n, 1)
        q = (2 * torch.arange(1, n + 1, dtype=dtype, device=device) - 1) / (2 * n)
        return self.lo + self.length * q

    def particle_minimum(self, n: int) -> float:
        r"""Exact :math:`\min_{\mu_n} L = \ell/(3\pi n^2)`."""
        n = check_int("n", n, 1)
        return self.length / (3 * math.pi * n**2)

    def iid_expected_loss(self, n: int) -> float:
        r""":math:`\mathbb E\,L(\hat\nu_n) = 2\ell/(3\pi n)` for :math:`n` i.i.d. neurons drawn from :math:`\nu`."""
        n = check_int("n", n, 1)
        return 2 * self.length / (3 * math.pi * n)

    def sample(self, shape, generator=None, dtype=torch.float64, device=None) -> torch.Tensor:
        """I.i.d. neuron angles from the planted measure."""
        u = torch.rand(shape, generator=generator, dtype=dtype)
        return (self.lo + self.length * u).to(device)


def network_output(theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    r""":math:`f_{\mu_n}(x) = \frac1n\sum_i \mathrm{sign}\cos(\varphi - \theta_i)` at inputs
    :math:`x = (\cos\varphi, \sin\varphi)`."""
    return torch.sign(torch.cos(phi[:, None] - theta[None, :])).mean(-1)


@dataclass
class PGDResult:
    theta: torch.Tensor          # final particles
    losses: list = field(default_factory=list)   # L(mu_n) before each step and after the last


def particle_gradient_descent(problem: PlantedSignNetwork, theta0: torch.Tensor, step: float, steps: int,
                              record_every: int = 1) -> PGDResult:
    r"""Particle gradient descent :math:`\theta_i \leftarrow \Pi_{[0,\pi]}(\theta_i - \eta\, n\,\partial_i L)`.

    ``theta0``: (n,) or (batch, n) initial angles in ``[0, pi]``; ``step`` is :math:`\eta`. The projection keeps the
    neurons on the half circle where the energy-distance form of the loss holds. Records the loss every
    ``record_every`` steps (``0``: only the first and last)."""
    step = check_positive("step", step)
    steps = check_int("steps", steps, 0)
    record_every = check_int("record_every", record_every, 0)
    if theta0.dim() not in (1, 2):
        raise ValueError(f"invalid theta0 with shape {tuple(theta0.shape)}: expected (n,) or (batch, n)")
    theta = theta0.clone()
    res = PGDResult(theta=theta)
    with one_cpu_thread_if(theta.numel() < 50_000, theta.device):
        for k in range(steps):
            if record_every and k % record_every == 0 or k == 0:
                res.losses.append(problem.loss(theta))
            theta = (theta - step * problem.wasserstein_gradient(theta)).clamp(0.0, math.pi)
        res.losses.append(problem.loss(theta))
    res.theta = theta
    return res
