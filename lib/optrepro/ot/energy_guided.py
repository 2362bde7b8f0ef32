r"""Energy-guided entropic optimal transport (Mokrov, Korotin, Kolesov, Gushchin, Burnaev; ICLR 2024;
arXiv:2304.06094): the weak dual of entropic OT in one potential, trained like an energy-based model.

**Convention.** We use the convention of :mod:`.gaussian`: for :math:`\mu, \nu` on :math:`\mathbb R^d`,
:math:`\min_\pi \mathbb E_\pi\|x-y\|^2 + \varepsilon\,\mathrm{KL}(\pi\,\|\,\mu\otimes\nu)`. The paper writes the cost
:math:`\tfrac12\|x-y\|^2` with entropy weight :math:`\varepsilon_\text{paper}`; multiplying its objective by 2 gives ours
with :math:`\varepsilon = 2\varepsilon_\text{paper}` and a potential :math:`f = 2 f_\text{paper}` (the plans agree).

**Weak dual.** With the (Lebesgue) log-partition
:math:`\log Z_f(x) = \log\int e^{(f(y) - \|x-y\|^2)/\varepsilon}\,dy`, the optimal plan is recovered from

.. math:: \max_f\ J(f) = \mathbb E_{\nu} f(y) - \varepsilon\,\mathbb E_{\mu} \log Z_f(x),\qquad
          \pi_f(y\mid x) = e^{(f(y) - \|x-y\|^2)/\varepsilon} / Z_f(x).

(The KL form differs by the constant :math:`\varepsilon\,\mathbb E_\nu\log\nu`, moved into :math:`f`.)
**Gradient** (the EBM identity :math:`\nabla_\theta \log Z = \varepsilon^{-1}\mathbb E_{\pi_f(\cdot\mid x)}\nabla_\theta f`):

.. math:: \nabla_\theta J = \mathbb E_{y\sim\nu}\nabla_\theta f_\theta(y)
          - \mathbb E_{x\sim\mu}\,\mathbb E_{y\sim\pi_{f_\theta}(\cdot\mid x)}\nabla_\theta f_\theta(y),

so the minimized surrogate loss is :math:`\overline{f(\tilde y)} - \overline{f(y)}` with :math:`\tilde y` drawn from the
conditional plans by **short-run Langevin dynamics** (:func:`langevin_conditional`, unadjusted):
:math:`y \leftarrow y + h\,\nabla_y\frac{f(y) - \|x-y\|^2}{\varepsilon} + \sqrt{2h}\,\xi`, started from a replay buffer
(95% old chains, 5% fresh :math:`\mathcal N(0, I)` starts, as in the authors' code) (:func:`train_egeot`).

**Quadratic family** (:func:`quadratic_conditional`, :func:`quadratic_dual_objective`,
:func:`optimal_quadratic_potential`): for :math:`f(y) = -\tfrac12 y^\top A y + b^\top y`,
:math:`\pi_f(y\mid x) = \mathcal N\big((A+2I)^{-1}(b+2x),\ \varepsilon(A+2I)^{-1}\big)` and :math:`J` is an explicit
function of :math:`(A, b)` for Gaussian :math:`\mu, \nu`; its maximizer is the potential of the closed-form plan
(:func:`.gaussian.entropic_plan`), :math:`A^\star = \varepsilon\Sigma_{y\mid x}^{-1} - 2I`,
:math:`b^\star = (A^\star + 2I)(m_1 - Km_0)` with :math:`\mathbb E[y\mid x] = m_1 + K(x - m_0)`.

**Metrics** (:func:`plan_bw2_uvp`, :func:`conditional_bw2_uvp`): BW2-UVP of the moments of the learned joint or
conditional plans against the closed form. ``paper_scale=True`` divides :func:`.gaussian.bw2_uvp` by 2: the authors'
metric code computes :math:`100\cdot\tfrac12 W_2^2 / (\tfrac12\mathrm{tr}\,\Sigma)` (cost :math:`\tfrac12\|x-y\|^2`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..checks import check_int, check_nonnegative, check_positive
from ..optim.functional import adam_step
from ..threads import one_cpu_thread_if
from ..train import fit as train
from .gaussian import EntropicGaussianPlan, bw2_uvp

__all__ = [
    "EgEOTResult",
    "QuadraticPotential",
    "conditional_bw2_uvp",
    "conditional_log_density",
    "egeot_loss",
    "langevin_conditional",
    "maximize_quadratic_dual",
    "optimal_quadratic_potential",
    "plan_bw2_uvp",
    "quadratic_conditional",
    "quadratic_dual_objective",
    "sample_moments",
    "train_egeot",
]

Potential = Callable[[Tensor], Tensor]  # rows (n, d) -> values (n,)


def _values(f: Potential, y: Tensor) -> Tensor:
    out = f(y)
    return out.reshape(y.shape[0])


def conditional_log_density(f: Potential, x: Tensor, y: Tensor, eps: float) -> Tensor:
    """Unnormalized log pi_f(y | x) = (f(y) - |x - y|^2) / eps for paired rows of x and y (n, d)."""
    return (_values(f, y) - ((x - y) ** 2).sum(1)) / eps


def langevin_conditional(f: Potential, x: Tensor, y0: Tensor, eps: float, steps: int, step_size: float,
                         *, generator: torch.Generator | None = None) -> Tensor:
    """Unadjusted Langevin chains for pi_f(. | x_i), one per row, from y0: y += h grad log pi + sqrt(2h) xi.

    Returns the final states, detached (the samples of the EBM gradient carry no graph)."""
    eps = check_positive("eps", eps)
    steps = check_int("steps", steps, 0)
    h = check_positive("step_size", step_size)
    if x.shape != y0.shape or x.dim() != 2:
        raise ValueError(f"invalid shapes x {tuple(x.shape)} and y0 {tuple(y0.shape)}: expected equal (n, d)")
    y = y0.detach().clone()
    x = x.detach()
    noise_scale = math.sqrt(2 * h)
    with one_cpu_thread_if(y.numel() <= 65536, y.device):
        for _ in range(steps):
            y.requires_grad_(True)
            with torch.enable_grad():
                grad, = torch.autograd.grad(_values(f, y).sum(), y)
            with torch.no_grad():
                score = (grad - 2 * (y - x)) / eps
                z = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
                y = y + h * score + noise_scale * z
    return y.detach()


def egeot_loss(f: Potential, y_data: Tensor, y_model: Tensor) -> Tensor:
    """The surrogate loss mean f(y_model) - mean f(y_data); its gradient is -grad J when y_model ~ pi_f(. | x)."""
    return _values(f, y_model.detach()).mean() - _values(f, y_data).mean()


# --------------------------------------------------------------------------- quadratic potentials (closed forms)

class QuadraticPotential(nn.Module):
    """f(y) = -y^T A y / 2 + b^T y with A = L L^T - 2I through an unconstrained L, so that A + 2I is PSD and the
    conditional plan is proper; starts at A = I, b = 0."""

    def __init__(self, d: int, dtype: torch.dtype = torch.float64):
        super().__init__()
        d = check_int("d", d, 1)
        self.L = nn.Parameter(math.sqrt(3.0) * torch.eye(d, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(d, dtype=dtype))

    @property
    def A(self) -> Tensor:
        return self.L @ self.L.T - 2 * torch.eye(self.L.shape[0], dtype=self.L.dtype, device=self.L.device)

    def forward(self, y: Tensor) -> Tensor:
        return -0.5 * ((y @ self.A) * y).sum(1) + y @ self.b


def quadratic_conditional(A: Tensor, b: Tensor, x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Mean (n, d) and covariance (d, d) of pi_f(y | x) for f(y) = -y^T A y/2 + b^T y (A + 2I must be PD)."""
    eps = check_positive("eps", eps)
    d = A.shape[0]
    P = (A + A.T) / 2 + 2 * torch.eye(d, dtype=A.dtype, device=A.device)
    if torch.linalg.eigvalsh(P).min() <= 0:
        raise ValueError("invalid A: A + 2I must be positive definite for the conditional plan to be proper")
    Pinv = torch.linalg.inv(P)
    return (b + 2 * x) @ Pinv.T, eps * (Pinv + Pinv.T) / 2


def quadratic_dual_objective(A: Tensor, b: Tensor, m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor,
                             eps: float) -> Tensor:
    """Exact J(f) = E_nu f - eps E_mu log Z_f for f(y) = -y^T A y/2 + b^T y and mu = N(m0,S0), nu = N(m1,S1)."""
    eps = check_positive("eps", eps)
    d = A.shape[0]
    A = (A + A.T) / 2
    P = (A + 2 * torch.eye(d, dtype=A.dtype, device=A.device)) / eps  # precision of pi_f(. | x)
    Pinv = torch.linalg.inv(P)
    e_f = -0.5 * (A * (S1 + torch.outer(m1, m1))).sum() + b @ m1
    # log Z(x) = -|x|^2/eps + h^T P^{-1} h / 2 + d/2 log(2 pi) - logdet(P)/2 with h = (b + 2x)/eps
    hm = (b + 2 * m0) / eps
    e_quad = hm @ Pinv @ hm + (4 / eps ** 2) * (Pinv * S0).sum()
    e_logz = (-(m0 @ m0 + S0.trace()) / eps + 0.5 * e_quad + 0.5 * d * math.log(2 * math.pi)
              - 0.5 * torch.logdet(P))
    return e_f - eps * e_logz


def maximize_quadratic_dual(m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor, eps: float, *, iters: int = 50,
                            tol: float = 1e-12) -> tuple[Tensor, Tensor, int]:
    """Maximize the exact (concave) J(A, b) of :func:`quadratic_dual_objective` by damped Newton steps from A = I,
    b = 0, over symmetric A with A + 2I positive definite; returns (A, b, Newton steps taken)."""
    eps = check_positive("eps", eps)
    d = m0.shape[0]
    iu = torch.triu_indices(d, d)

    def unpack(z: Tensor) -> tuple[Tensor, Tensor]:
        U = torch.zeros(d, d, dtype=z.dtype).index_put((iu[0], iu[1]), z[: iu.shape[1]])
        return U + U.T - torch.diag(U.diagonal()), z[iu.shape[1]:]

    def J(z: Tensor) -> Tensor:
        return quadratic_dual_objective(*unpack(z), m0, S0, m1, S1, eps)

    def feasible(z: Tensor) -> bool:
        A = unpack(z)[0]
        return bool(torch.linalg.eigvalsh(A).min() > -2)

    eye = torch.eye(d, dtype=S0.dtype)
    z = torch.cat([eye[iu[0], iu[1]], torch.zeros(d, dtype=S0.dtype)])
    for k in range(1, iters + 1):  # noqa: B007 (the count is returned)
        zg = z.detach().requires_grad_(True)
        g, = torch.autograd.grad(J(zg), zg)
        H = torch.autograd.functional.hessian(J, z)
        step = -torch.linalg.solve(H, g)
        t, value = 1.0, J(z).detach()
        while t > 1e-10 and not (feasible(z + t * step) and J(z + t * step) >= value + 0.25 * t * (g @ step)):
            t /= 2
        z = z + t * step
        if float(g @ step) / 2 < tol:  # half the squared Newton decrement
            break
    A, b = unpack(z)
    return A, b, k


def optimal_quadratic_potential(plan: EntropicGaussianPlan) -> tuple[Tensor, Tensor]:
    """(A*, b*) of the quadratic potential whose conditional plan is the closed-form one (module docstring)."""
    d = plan.dim
    eye = torch.eye(d, dtype=plan.cov.dtype, device=plan.cov.device)
    zero = torch.zeros(1, d, dtype=plan.cov.dtype, device=plan.cov.device)
    intercept, cov = plan.conditional(zero)
    A = plan.eps * torch.linalg.inv(cov) - 2 * eye
    A = (A + A.T) / 2
    return A, intercept[0] @ (A + 2 * eye).T


# --------------------------------------------------------------------------- metrics

def sample_moments(z: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and (unbiased) covariance of the rows of z."""
    m = z.mean(0)
    c = z - m
    return m, c.T @ c / (z.shape[0] - 1)


def plan_bw2_uvp(x: Tensor, y: Tensor, plan: EntropicGaussianPlan, *, paper_scale: bool = True) -> Tensor:
    """BW2-UVP (%) of the moments of the joint samples (x_i, y_i) against the closed-form plan."""
    m, S = sample_moments(torch.cat([x, y], 1).to(plan.cov.dtype))
    v = bw2_uvp(m, S, plan.mean, plan.cov)
    return v / 2 if paper_scale else v


def conditional_bw2_uvp(x_test: Tensor, y_samples: Tensor, plan: EntropicGaussianPlan, *,
                        paper_scale: bool = True) -> Tensor:
    """cBW2-UVP (%): the mean over the test points x_test (k, d) of W2^2 between the moments of y_samples[:, j]
    (n, k, d) and the closed-form conditional pi(. | x_j), over the target variance tr(Sigma_1) / 2 (the normalization of
    the EOT benchmark of Gushchin et al. 2023)."""
    if y_samples.dim() != 3 or y_samples.shape[1:] != x_test.shape:
        raise ValueError(f"invalid y_samples of shape {tuple(y_samples.shape)}: expected (n, k, d) with (k, d) = "
                         f"{tuple(x_test.shape)}")
    d = plan.dim
    means, cov = plan.conditional(x_test.to(plan.cov.dtype))
    target_var = plan.cov[d:, d:].trace()
    vals = []
    for j in range(x_test.shape[0]):
        m, S = sample_moments(y_samples[:, j].to(plan.cov.dtype))
        vals.append(bw2_uvp(m, S, means[j], cov) * cov.trace() / target_var)
    v = torch.stack(vals).mean()
    return v / 2 if paper_scale else v


# --------------------------------------------------------------------------- training

@dataclass
class EgEOTResult:
    losses: list[float] = field(default_factory=list)  # surrogate loss mean f(y~) - mean f(y) per step
    seconds: float = 0.0


def train_egeot(f: nn.Module, sample_x: Callable[[int], Tensor], sample_y: Callable[[int], Tensor], eps: float, *,
                steps: int, batch: int, lr: float, langevin_steps: int, langevin_step: float,
                buffer_size: int = 10000, replay: float = 0.95, betas: tuple[float, float] = (0.8, 0.99),
                init_std: float = 1.0, generator: torch.Generator | None = None) -> EgEOTResult:
    """Adam on the EBM surrogate loss (module docstring) with short-run Langevin from a replay buffer of (x, y) chains.

    ``sample_x(n)``/``sample_y(n)`` return n rows of mu/nu on f's device; a fresh chain starts at N(0, init_std^2 I).
    The loop is :func:`optrepro.train.fit` with a functional Adam update; the negatives are drawn in its closure.
    """
    import time

    eps = check_positive("eps", eps)
    steps, batch = check_int("steps", steps, 1), check_int("batch", batch, 1)
    lr = check_positive("lr", lr)
    buffer_size = check_int("buffer_size", buffer_size, batch)
    replay = check_nonnegative("replay", replay)
    if replay > 1:
        raise ValueError(f"invalid replay {replay}: expected a probability in [0, 1]")
    params = [p for p in f.parameters() if p.requires_grad]
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    result = EgEOTResult()
    buf = {}   # the replay buffer of (x, y) chains

    def loss(k):   # Langevin negatives from the buffer, then the surrogate loss of step k
        x = sample_x(batch)
        y0 = init_std * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        if buf and buf["x"].shape[0] >= batch:
            idx = torch.randint(buf["x"].shape[0], (batch,), generator=generator).to(x.device)
            keep = (torch.rand(batch, generator=generator) < replay).to(x.device)
            x = torch.where(keep[:, None], buf["x"][idx], x)
            y0 = torch.where(keep[:, None], buf["y"][idx], y0)
        y_model = langevin_conditional(f, x, y0, eps, langevin_steps, langevin_step, generator=generator)
        if not buf:
            buf["x"], buf["y"] = x, y_model
        else:
            buf["x"] = torch.cat([x, buf["x"]])[:buffer_size]
            buf["y"] = torch.cat([y_model, buf["y"]])[:buffer_size]
        return egeot_loss(f, sample_y(batch), y_model)

    def update(k, value):
        adam_step(params, torch.autograd.grad(value, params), m1, m2, k + 1, lr, betas)

    t0 = time.perf_counter()
    x0 = sample_x(batch)
    with one_cpu_thread_if(x0.shape[1] * batch <= 8192, x0.device):
        result.losses = train(loss, update, steps, stop_on_nonfinite=False).loss
    result.seconds = time.perf_counter() - t0
    return result
