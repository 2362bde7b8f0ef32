"""notebooks/energy-guided-eot.ipynb: the Gaussian benchmark of Mokrov, Korotin, Kolesov, Gushchin & Burnaev
(ICLR 2024, arXiv:2304.06094): an MLP potential trained by energy-guided EOT
(:func:`optrepro.ot.energy_guided.train_egeot`) between two centred Gaussians, scored by BW2-UVP against the
closed-form entropic plan (:mod:`optrepro.ot.gaussian`), with the independent coupling as baseline.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from optrepro.checks import check_int, check_positive
from optrepro.models.mlp import mlp
from optrepro.ot.energy_guided import conditional_bw2_uvp, langevin_conditional, plan_bw2_uvp, train_egeot
from optrepro.ot.gaussian import bw2_uvp, entropic_plan, random_spd, sample
from optrepro.threads import one_cpu_thread_if

__all__ = ["gaussian_benchmark", "mlp_potential"]


def mlp_potential(d: int, width: int, depth: int) -> nn.Module:
    """A scalar MLP potential R^d -> R with ``depth`` hidden SiLU layers of ``width`` units (float32)."""
    d, width, depth = check_int("d", d, 1), check_int("width", width, 1), check_int("depth", depth, 1)
    return mlp(d, width, 1, depth=depth, activation="silu")


def gaussian_benchmark(d: int, eps_paper: float, seed: int, *, width: int, depth: int, steps: int, batch: int,
                       lr: float, langevin_steps: int, langevin_step: float, eval_langevin_steps: int,
                       n_joint: int, n_cond_points: int, n_cond_samples: int, condition: float = 16.0,
                       device: torch.device | str = "cpu") -> dict:
    """Train an MLP EgEOT potential between N(0, S0) and N(0, S1) (eigenvalues log-uniform in [1/4, 4] for
    condition 16, as the rotated Gaussians of the paper's code) at eps = 2 eps_paper, then measure BW2-UVP (paper
    scale) of the learned joint plan and the cBW2-UVP of its conditionals, with the independent coupling as baseline.

    Langevin at evaluation uses the training step size, started at N(0, I)."""
    eps_paper = check_positive("eps_paper", eps_paper)
    eps = 2 * eps_paper
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dev = torch.device(device)
    S0 = random_spd(d, condition, generator=gen)
    S1 = random_spd(d, condition, generator=gen)
    zero = torch.zeros(d, dtype=torch.float64)
    plan = entropic_plan(zero, S0, zero, S1, eps)
    f = mlp_potential(d, width, depth).to(dev)

    def sx(n: int) -> Tensor:
        return sample(zero, S0, n, generator=gen).float().to(dev)

    def sy(n: int) -> Tensor:
        return sample(zero, S1, n, generator=gen).float().to(dev)

    res = train_egeot(f, sx, sy, eps, steps=steps, batch=batch, lr=lr, langevin_steps=langevin_steps,
                      langevin_step=langevin_step, generator=gen)
    with one_cpu_thread_if(d * n_joint <= 8192, dev):
        x = sx(n_joint)
        y = langevin_conditional(f, x, torch.randn(x.shape, generator=gen).to(dev), eps, eval_langevin_steps,
                                 langevin_step, generator=gen)
        xk = sx(n_cond_points)
        xr = xk.repeat(n_cond_samples, 1)
        yk = langevin_conditional(f, xr, torch.randn(xr.shape, generator=gen).to(dev), eps, eval_langevin_steps,
                                  langevin_step, generator=gen).reshape(n_cond_samples, n_cond_points, d)
    x, y, xk, yk = x.cpu(), y.cpu(), xk.cpu(), yk.cpu()
    # baselines: the independent coupling mu x nu (exact moments) and y | x ~ nu for every x
    indep = torch.block_diag(S0, S1)
    joint_indep = bw2_uvp(plan.mean, indep, plan.mean, plan.cov) / 2
    means, cov = plan.conditional(xk.double())
    cond_indep = torch.stack([bw2_uvp(zero, S1, means[j], cov) for j in range(n_cond_points)]).mean() \
        * cov.trace() / S1.trace() / 2
    return {"d": d, "eps_paper": eps_paper, "eps": eps, "seed": seed,
            "joint_uvp": float(plan_bw2_uvp(x, y, plan)), "cond_uvp": float(conditional_bw2_uvp(xk, yk, plan)),
            "joint_uvp_indep": float(joint_indep), "cond_uvp_indep": float(cond_indep),
            "train_seconds": res.seconds, "losses": res.losses, "plan": plan, "f": f, "x": x, "y": y, "x_test": xk,
            "y_test": yk}
