r"""JKO steps for the Fokker-Planck free energy with a map network and a variational entropy estimate.

Variational Wasserstein gradient flow (Fan, Zhang, Taghvaei, Chen; ICML 2022; arXiv:2112.02424).

**JKO scheme** (Jordan, Kinderlehrer, Otto 1998) for the free energy
:math:`F(\rho) = \mathbb E_\rho[V] + D\,\mathbb E_\rho[\log\rho]` of the Fokker-Planck equation
:math:`\partial_t\rho = \nabla\cdot(\rho\nabla V) + D\Delta\rho`, with step :math:`h`: the next density is the push-forward
:math:`\rho_{k+1} = T_\sharp\rho_k` of the map minimizing

.. math:: J(T) = F(T_\sharp\rho_k) + \frac{1}{2h}\,\mathbb E_{x\sim\rho_k}\|T(x) - x\|^2,
          \qquad T = \nabla\psi_\theta\ (\psi_\theta\ \text{input convex}).

**Variational entropy** (the paper's key step). With any reference density :math:`\Gamma` that can be sampled and
evaluated, :math:`\mathbb E_\rho[\log\rho] = \mathrm{KL}(\rho\,\|\,\Gamma) + \mathbb E_\rho[\log\Gamma]`, and the KL
has the f-divergence dual (Nguyen, Wainwright, Jordan 2010)

.. math:: \mathrm{KL}(\rho\,\|\,\Gamma) = \sup_g\ \mathbb E_\rho[g] - \mathbb E_\Gamma[e^{g}] + 1,

attained at :math:`g = \log(\rho/\Gamma)`: it only needs samples of :math:`\rho = T_\sharp\rho_k` (the pushed
particles) and of :math:`\Gamma`. A JKO step is then the saddle problem :math:`\min_T\max_g`, solved by alternating
Adam steps on the map :math:`T` (outer) and the discriminator :math:`g` (inner) (:func:`jko_step`). Here
:math:`\Gamma` is the Gaussian fitted to the current particles, and :math:`g` a quadratic form plus a small MLP
(:class:`Critic`; the exact log-ratio of two Gaussians is quadratic).

**Baseline: JKO-ICNN** (Mokrov, Korotin, Li, Genevay, Solomon, Burnaev; NeurIPS 2021), the method the paper
compares with: for an invertible map the change of variables gives
:math:`\mathbb E_{T_\sharp\rho_k}[\log T_\sharp\rho_k] = \mathbb E_{\rho_k}[\log\rho_k] - \mathbb E_{\rho_k}[\log\det\nabla T]`,
so the entropy term needs the Jacobian's log-determinant (:func:`log_det_jacobian`, :math:`d` backward passes and an
:math:`O(d^3)` factorization per sample) instead of a discriminator (``entropy="logdet"`` in :func:`jko_step`).

**Exact Gaussian JKO step** (the reference that separates time discretization from estimation). For
:math:`V(x) = \tfrac12(x-b)^\top A(x-b)` and :math:`\rho_k = \mathcal N(m, \Sigma)` the JKO minimizer is
:math:`\mathcal N(m', \Sigma')` with :math:`B = I + hA`, :math:`m' = B^{-1}(m + hAb)` and, from the optimality
condition :math:`T = I - h\nabla(V + D\log\rho_{k+1})\circ T` for the affine map :math:`T(x) = m' + K^{-1}(x-m)`,
:math:`K = B - hD\Sigma'^{-1}` symmetric, :math:`K\Sigma'K = \Sigma`, i.e.

.. math:: X + (hD)^2X^{-1} = R,\quad R = B^{-1/2}\Sigma B^{-1/2} + 2hD\,I,\qquad
          X = \tfrac12\big(R + (R^2 - 4h^2D^2 I)^{1/2}\big),\quad \Sigma' = B^{-1/2}XB^{-1/2}

(:func:`gaussian_jko_step`); as :math:`h\to0` its iterates converge (first order) to
:func:`optrepro.ot.gaussian.ou_marginal`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..checks import check_choice, check_int, check_positive
from ..problems.bures_wasserstein import psd_sqrt
from ..models.icnn import ICNN
from ..models.mlp import mlp
from ..threads import one_cpu_thread_if
from .gaussian import kl
from ..optim import Adam

__all__ = ["Critic", "ICNNMap", "JKOStepResult", "log_det_jacobian", "fit_gaussian", "gaussian_free_energy", "gaussian_jko_step",
           "jko_flow", "jko_step", "kl_dual", "quadratic_potential", "symmetric_kl", "variational_kl"]


# --------------------------------------------------------------------------- Gaussian closed forms

def _check_ou(A: Tensor, b: Tensor) -> int:
    if b.dim() != 1 or A.shape != (b.shape[0], b.shape[0]):
        raise ValueError(f"invalid potential: A of shape {tuple(A.shape)} and b of shape {tuple(b.shape)}; "
                         "expected (d, d) and (d,)")
    return b.shape[0]


def gaussian_free_energy(m: Tensor, S: Tensor, A: Tensor, b: Tensor, diffusion: float = 1.0) -> Tensor:
    """F(N(m, S)) = E[V] + D E[log rho] for V(x) = (x-b)^T A (x-b)/2 (closed form)."""
    d = _check_ou(A, b)
    diffusion = check_positive("diffusion", diffusion)
    potential = 0.5 * ((A * S).sum() + (m - b) @ A @ (m - b))
    neg_entropy = -0.5 * (d * math.log(2 * math.pi * math.e) + torch.logdet(S))
    return potential + diffusion * neg_entropy


def gaussian_jko_step(m: Tensor, S: Tensor, A: Tensor, b: Tensor, h: float, diffusion: float = 1.0
                      ) -> tuple[Tensor, Tensor]:
    """The exact JKO step from N(m, S) for the OU free energy (closed form, module docstring); returns (m', S')."""
    d = _check_ou(A, b)
    if m.shape != (d,) or S.shape != (d, d):
        raise ValueError(f"invalid Gaussian: mean {tuple(m.shape)}, covariance {tuple(S.shape)}; expected ({d},), ({d}, {d})")
    h, diffusion = check_positive("h", h), check_positive("diffusion", diffusion)
    eye = torch.eye(d, dtype=S.dtype, device=S.device)
    B = eye + h * (A + A.T) / 2
    m_new = torch.linalg.solve(B, m + h * A @ b)
    evals, evecs = torch.linalg.eigh(B)
    B_isqrt = (evecs * evals.rsqrt()) @ evecs.T
    R = B_isqrt @ S @ B_isqrt + 2 * h * diffusion * eye
    R = (R + R.T) / 2
    X = 0.5 * (R + psd_sqrt(R @ R - 4 * (h * diffusion) ** 2 * eye))
    S_new = B_isqrt @ X @ B_isqrt
    return m_new, (S_new + S_new.T) / 2


def symmetric_kl(m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor) -> Tensor:
    """KL(N0 || N1) + KL(N1 || N0), the paper's error metric for the OU experiment."""
    return kl(m0, S0, m1, S1) + kl(m1, S1, m0, S0)


def fit_gaussian(x: Tensor) -> tuple[Tensor, Tensor]:
    """Sample mean and (unbiased) covariance of the rows of x (n, d)."""
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"invalid samples of shape {tuple(x.shape)}: expected (n >= 2, d)")
    m = x.mean(0)
    xc = x - m
    return m, xc.T @ xc / (x.shape[0] - 1)


def quadratic_potential(A: Tensor, b: Tensor):
    """V(x) = (x-b)^T A (x-b)/2 row by row, as a function of x (n, d)."""
    _check_ou(A, b)
    return lambda x: 0.5 * (((x - b) @ A) * (x - b)).sum(1)


# --------------------------------------------------------------------------- networks

class Critic(nn.Module):
    r"""Discriminator :math:`g(x) = x^\top Wx + w^\top x + c + \mathrm{MLP}(x)` (the quadratic part holds the exact
    log-ratio of two Gaussians; the MLP, one hidden layer of ``hidden`` PReLU units, the rest). Starts at zero."""

    def __init__(self, dim: int, hidden: int = 32):
        super().__init__()
        dim, hidden = check_int("dim", dim, 1), check_int("hidden", hidden, 0)
        self.quad = nn.Parameter(torch.zeros(dim, dim))
        self.lin = nn.Linear(dim, 1)
        nn.init.zeros_(self.lin.weight), nn.init.zeros_(self.lin.bias)
        self.mlp = None
        if hidden:
            self.mlp = mlp(dim, (hidden,), 1, activation="prelu", init="zero_output")

    def forward(self, x: Tensor) -> Tensor:
        out = ((x @ self.quad) * x).sum(1) + self.lin(x)[:, 0]
        return out if self.mlp is None else out + self.mlp(x)[:, 0]


class ICNNMap(nn.Module):
    r"""The map :math:`T(x) = \nabla\psi(x)`, :math:`\psi(x) = \mathrm{ICNN}_\theta(x) + \frac12 x^\top LL^\top x`:
    the gradient of a convex function (a Brenier map). The quadratic part carries the affine map of a Gaussian JKO
    step directly; the ICNN (output weights started near zero) the non-affine rest. The identity at initialization
    (:math:`L = I`)."""

    def __init__(self, dim: int, hidden: int = 32, layers: int = 2, beta: float = 1.0):
        super().__init__()
        self.icnn = ICNN(dim, hidden=hidden, layers=layers, beta=beta, alpha=0.0)
        with torch.no_grad():
            self.icnn.out_raw.fill_(-5.0)  # softplus(-5) ~ 7e-3: the ICNN part starts nearly flat
            nn.init.zeros_(self.icnn.out_skip.weight), nn.init.zeros_(self.icnn.out_skip.bias)
        self.L = nn.Parameter(torch.eye(dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.icnn.gradient(x, create_graph=True) + x @ (self.L @ self.L.T)


# --------------------------------------------------------------------------- variational KL / entropy

def kl_dual(critic: nn.Module, x: Tensor, z: Tensor) -> Tensor:
    """E_x[g] - E_z[exp g] + 1 over samples x ~ rho, z ~ Gamma: a lower bound on KL(rho || Gamma), tight at log-ratio."""
    return critic(x).mean() - critic(z).exp().mean() + 1


def variational_kl(x: Tensor, z: Tensor, *, steps: int = 500, lr: float = 1e-2, hidden: int = 32,
                   batch: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Estimate KL(rho || Gamma) from samples x ~ rho and z ~ Gamma by maximizing :func:`kl_dual` over a fresh
    :class:`Critic` with Adam; returns the dual value on all samples (no graph)."""
    if x.dim() != 2 or z.dim() != 2 or x.shape[1] != z.shape[1]:
        raise ValueError(f"invalid samples of shapes {tuple(x.shape)} and {tuple(z.shape)}: expected (n, d), (m, d)")
    steps = check_int("steps", steps, 1)
    critic = Critic(x.shape[1], hidden).to(x.device, x.dtype)
    opt = Adam(critic.parameters(), lr=lr)
    with one_cpu_thread_if(x.shape[0] * x.shape[1] < 200_000, x.device):
        for _ in range(steps):
            xb, zb = x, z
            if batch is not None and batch < x.shape[0]:
                xb = x[torch.randint(x.shape[0], (batch,), generator=generator).to(x.device)]
                zb = z[torch.randint(z.shape[0], (batch,), generator=generator).to(z.device)]
            opt.zero_grad()
            (-kl_dual(critic, xb, zb)).backward()
            opt.step()
        with torch.no_grad():
            return kl_dual(critic, x, z)


def log_det_jacobian(map_net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """(T(x), log det of the Jacobian of T at each row of x (n, d)), both differentiable in the map's parameters.
    The Jacobian of a gradient map is a symmetric Hessian; it is symmetrized against round-off."""
    x = x.detach().requires_grad_(True)
    y = map_net(x)
    rows = [torch.autograd.grad(y[:, i].sum(), x, create_graph=True)[0] for i in range(x.shape[1])]
    J = torch.stack(rows, 1)  # J[n, i, j] = d y_i / d x_j
    return y, torch.linalg.slogdet((J + J.transpose(1, 2)) / 2)[1]


# --------------------------------------------------------------------------- one JKO step with networks

@dataclass
class JKOStepResult:
    """The pushed particles and the training trace of one JKO step."""

    particles: Tensor
    map: nn.Module
    objective: list[float] = field(default_factory=list)  # J(T) estimate per outer iteration
    kl_estimate: list[float] = field(default_factory=list)  # dual KL(T#rho || Gamma) per outer iteration


def jko_step(x: Tensor, potential, h: float, diffusion: float = 1.0, *, map_net: nn.Module | None = None,
             critic: nn.Module | None = None, outer: int = 300, inner: int = 3, batch: int = 512,
             lr_map: float = 5e-3, lr_critic: float = 5e-3, hidden: int = 32, entropy: str = "variational",
             generator: torch.Generator | None = None) -> JKOStepResult:
    r"""One variational JKO step from the particles ``x`` (n, d) of :math:`\rho_k`.

    ``potential`` maps rows (n, d) to V (n,). Each of ``outer`` iterations draws a batch of particles and of
    :math:`\Gamma = \mathcal N(\hat m, \hat\Sigma)` (fitted to ``x``), takes ``inner`` Adam ascent steps on the critic's
    :func:`kl_dual`, then one Adam descent step on the map for
    :math:`\mathbb E[V(T x)] + D(\mathrm{KL}_g(T_\sharp\rho_k\|\Gamma) + \mathbb E[\log\Gamma(Tx)]) + \mathbb E\|Tx-x\|^2/2h`.
    With ``entropy="logdet"`` (the JKO-ICNN baseline) the entropy term is :math:`-\mathbb E\log\det\nabla T(x)` (up
    to a constant) and no critic is trained. Returns the pushed particles :math:`T(x)` (no graph), the trained map and
    the traces."""
    entropy = check_choice("entropy", entropy, ("variational", "logdet"))
    if x.dim() != 2:
        raise ValueError(f"invalid particles of shape {tuple(x.shape)}: expected (n, d)")
    h, diffusion = check_positive("h", h), check_positive("diffusion", diffusion)
    outer, inner, batch = check_int("outer", outer, 1), check_int("inner", inner, 0), check_int("batch", batch, 2)
    n, d = x.shape
    map_net = (map_net or ICNNMap(d)).to(x.device, x.dtype)
    critic = (critic or Critic(d, hidden)).to(x.device, x.dtype)
    m, S = fit_gaussian(x)
    L = torch.linalg.cholesky(S)
    S_inv = torch.cholesky_inverse(L)
    log_norm = -0.5 * (d * math.log(2 * math.pi)) - torch.log(torch.diagonal(L)).sum()

    def log_gamma(y):
        yc = y - m
        return log_norm - 0.5 * ((yc @ S_inv) * yc).sum(1)

    def draw(k):
        idx = torch.randint(n, (k,), generator=generator).to(x.device)
        eps = torch.randn(k, d, generator=generator, dtype=x.dtype).to(x.device)
        return x[idx], m + eps @ L.T

    opt_t = Adam(map_net.parameters(), lr=lr_map)
    opt_g = Adam(critic.parameters(), lr=lr_critic)
    res = JKOStepResult(particles=x, map=map_net)
    with one_cpu_thread_if(batch * d < 100_000, x.device):
        for _ in range(outer):
            xb, zb = draw(batch)
            with torch.no_grad():
                tx = map_net(xb).detach() if inner and entropy == "variational" else None
            for _ in range(inner if entropy == "variational" else 0):
                opt_g.zero_grad()
                (-kl_dual(critic, tx, zb)).backward()
                opt_g.step()
            if entropy == "variational":
                tx = map_net(xb)
                kl_term = kl_dual(critic, tx, zb)
                neg_entropy = kl_term + log_gamma(tx).mean()
            else:
                tx, logdet = log_det_jacobian(map_net, xb)
                neg_entropy = -logdet.mean()  # + E[log rho_k], a constant in T
                kl_term = torch.zeros(())
            loss = (potential(tx).mean() + diffusion * neg_entropy + ((tx - xb) ** 2).sum(1).mean() / (2 * h))
            opt_t.zero_grad()
            loss.backward()
            opt_t.step()
            res.objective.append(loss.item())
            res.kl_estimate.append(kl_term.item())
        pushed = torch.cat([map_net(c).detach() for c in x.split(4096)])
    res.particles = pushed
    return res


def jko_flow(x: Tensor, potential, h: float, steps: int, diffusion: float = 1.0, *, map_hidden: int = 32,
             map_layers: int = 2, hidden: int = 32, **step_kw) -> tuple[list[Tensor], list[float]]:
    """``steps`` JKO steps from the particles ``x`` with :func:`jko_step`, the map and critic warm-started from the
    previous step (the next step's map is close to the last one). Returns the particles after each step (``steps``
    tensors) and the wall time of each step in seconds (synchronized on CUDA)."""
    steps = check_int("steps", steps, 1)
    d = x.shape[1]
    map_net = ICNNMap(d, hidden=map_hidden, layers=map_layers).to(x.device, x.dtype)
    critic = Critic(d, hidden).to(x.device, x.dtype)
    particles, seconds = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        x = jko_step(x, potential, h, diffusion, map_net=map_net, critic=critic, hidden=hidden, **step_kw).particles
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        seconds.append(time.perf_counter() - t0)
        particles.append(x)
    return particles, seconds
