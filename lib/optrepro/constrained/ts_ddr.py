r"""TS-DDR: a parametric policy trained end to end through the duals of its stage LPs (Lagrangian duality).

Reference: A. Rosemberg, A. Street, D. M. Valladão, P. Van Hentenryck. "Efficiently Training Deep-Learning Parametric
Policies using Lagrangian Duality" (TS-DDR), arXiv:2405.14973, 2024. The problem (a synthetic multi-stage
hydrothermal dispatch, its stage LPs and baselines) is :mod:`optrepro.problems.hydrothermal`.

**TS-DDR.** A network :math:`\hat v_t = \pi_\theta(t, v^{in}_t, w_t)` proposes the target; the forward pass solves the
stage LPs in sequence (the realized storage :math:`v_t` becomes :math:`v^{in}_{t+1}`), and the loss is
:math:`\sum_t Q_t`. By LP duality :math:`\partial Q_t/\partial \hat v = \lambda^{\hat v}` and
:math:`\partial Q_t/\partial v^{in} = \lambda^{w}` in closed form (:mod:`optrepro.constrained.lp_layer`); the
realized storage carries the gradient to the target with :math:`\partial v_t/\partial\hat v_t = 1` where the
target is met (zero slack, :math:`v_t = \hat v_t`) and 0 where it is missed (the storage then sits at a bound the
target does not move), and SGD (Adam) on sampled inflow scenarios trains
:math:`\theta` end to end.
"""
from __future__ import annotations

import torch
from torch import nn

from optrepro.checks import check_int, check_positive
from optrepro.constrained.lp_layer import LinearProgram, lp_value
from optrepro.models.mlp import mlp
from optrepro.optim import Adam
from optrepro.problems.hydrothermal import HydroThermal, _rhs, operating_cost, sample_inflows, stage_lp
from optrepro.train import fit as train

__all__ = ["TargetPolicy", "policy_rollout", "realized_storage", "train_policy"]


class TargetPolicy(nn.Module):
    """MLP from (stage one-hot, v_in / v_max, w_t / mean inflow) to the target storage ``u * sigmoid(.)``.

    ``u = v_max``, or with ``reachable`` the largest reachable storage ``min(v_max, v_in + w_t)`` (releasing
    nothing), so that every target can be met (as the authors' code clips targets to a feasible range).
    """

    def __init__(self, sys: HydroThermal, hidden: int = 32, layers: int = 2, reachable: bool = True):
        super().__init__()
        check_int("hidden", hidden, 1)
        check_int("layers", layers, 1)
        self.net = mlp(sys.T + 2 * sys.R, hidden, sys.R, depth=layers, activation="relu")
        self.T = sys.T
        self.reachable = bool(reachable)
        self.register_buffer("v_max", torch.as_tensor(sys.v_max, dtype=torch.float32))
        self.register_buffer("w_mean", torch.as_tensor(sys.inflow_mean, dtype=torch.float32).clamp_min(1e-6))

    def forward(self, t: int, v_in: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
        dt = self.v_max.dtype
        onehot = torch.zeros(v_in.shape[0], self.T, dtype=dt, device=v_in.device)
        onehot[:, t] = 1
        feat = torch.cat([onehot, v_in.to(dt) / self.v_max, w_t.to(dt) / self.w_mean[t]], dim=1)
        top = torch.minimum(self.v_max, v_in.to(dt) + w_t.to(dt)) if self.reachable else self.v_max
        return (top * torch.sigmoid(self.net(feat))).to(v_in.dtype)


def realized_storage(sys: HydroThermal, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The stage's outgoing storage ``x[:, :R]`` with its derivative w.r.t. the target: the identity where the target
    is met (its slack is zero, so ``v = target``), zero where it is not (the storage then sits at a bound that the
    target does not move)."""
    R = sys.R
    v = x[:, :R]
    missed = (x[:, -2 * R:-R] + x[:, -R:]) > 1e-9
    return torch.where(missed, v, target + (v - target).detach())


def policy_rollout(sys: HydroThermal, policy: nn.Module, inflows: torch.Tensor, lp: LinearProgram | None = None):
    """Simulate the policy on scenarios ``inflows`` (n, T, R), one batched stage LP per stage.

    Returns ``(loss, cost)``: the sum of stage LP values (n,), differentiable through the LP duals (the realized
    storage passes the gradient on to the target where the target is met, see :func:`realized_storage`), and the
    operating cost (n,) (no gradient).
    """
    lp = stage_lp(sys) if lp is None else lp
    device = next(policy.parameters()).device
    v = torch.as_tensor(sys.v0, dtype=torch.float64).expand(inflows.shape[0], -1)
    loss = inflows.new_zeros(inflows.shape[0])
    cost = inflows.new_zeros(inflows.shape[0])
    for t in range(sys.T):
        w_t = inflows[:, t]
        target = policy(t, v.to(device), w_t.to(device)).to("cpu", torch.float64)
        value, x = lp_value(lp, _rhs(sys, t, v, w_t, target))
        loss = loss + value
        cost = cost + operating_cost(sys, x)
        v = realized_storage(sys, x, target)
    return loss, cost.detach()


def train_policy(sys: HydroThermal, policy: nn.Module, steps: int, batch: int, lr: float,
                 generator: torch.Generator, log_every: int = 10, cosine: bool = True):
    """TS-DDR training: Adam on the mean of ``sum_t Q_t`` over ``batch`` fresh inflow scenarios per step
    (learning rate annealed to 0 on a cosine when ``cosine``).

    Returns the history of (step, mean operating cost of the batch, seconds), every ``log_every`` steps and at the
    last (recorded by :func:`optrepro.train.fit`).
    """
    check_int("steps", steps, 1)
    check_int("batch", batch, 1)
    check_positive("lr", lr)
    lp = stage_lp(sys)
    opt = Adam(policy.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cosine else None

    def objective(k):
        loss, cost = policy_rollout(sys, policy, sample_inflows(sys, batch, generator), lp)
        return loss.mean() / sys.target_penalty, {"cost": cost.mean()}

    trace = train(objective, opt, steps, scheduler=sched, every=log_every, stop_on_nonfinite=False)
    return list(zip(trace.step, trace.metrics["cost"], trace.time))
