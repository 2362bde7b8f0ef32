r"""A synthetic multi-stage hydrothermal dispatch: stage LPs with soft storage targets, and its baselines.

Reference: A. Rosemberg, A. Street, D. M. Valladão, P. Van Hentenryck. "Efficiently Training Deep-Learning Parametric
Policies using Lagrangian Duality" (TS-DDR), arXiv:2405.14973, 2024 (their application: long-term hydrothermal
dispatch of Bolivia's system; ours is a small synthetic one).

**System.** Reservoirs :math:`r` (storage :math:`v_r \in [0, \bar v_r]`, turbined outflow :math:`q_r \in [0, \bar q_r]`,
productivity :math:`\rho_r`, spillage :math:`s_r \ge 0`), thermal units :math:`j` (output :math:`g_j \in [0, \bar g_j]`,
cost :math:`c_j`), deficit :math:`\delta \ge 0` (cost :math:`c_\delta`), demand :math:`d_t`, stochastic inflows
:math:`w_t` (stagewise independent, lognormal around a seasonal mean). Stage :math:`t` problem, given the incoming
storage :math:`v^{in}` and a **target** :math:`\hat v` for the outgoing storage:

.. math::
    Q_t(v^{in}, \hat v, w_t) = \min\ \sum_j c_j g_j + c_\delta\delta + c_s\textstyle\sum_r s_r + \pi\sum_r(z^+_r + z^-_r)

    \text{s.t.}\quad v + q + s = v^{in} + w_t\ (\lambda^{w}),\qquad \rho^\top q + \textstyle\sum_j g_j + \delta = d_t,
    \qquad v - z^+ + z^- = \hat v\ (\lambda^{\hat v}).

The target is soft (penalty :math:`\pi` on the slack :math:`z`), so every stage LP is feasible for any target
(the paper's "two-stage" construction: the policy proposes, the stage optimization problem makes it feasible).

The TS-DDR policy trained through these stage LPs' duals is :mod:`optrepro.constrained.ts_ddr`.

**Baselines.** *Perfect foresight*: one deterministic LP over the whole horizon per scenario, knowing all inflows; its
expected value is a lower bound on the cost of any non-anticipative policy (the wait-and-see bound). *Myopic*: each
stage minimizes its immediate cost only (no target, no value of stored water). *Re-solving*: at each stage, the
deterministic equivalent of the remaining horizon on a sampled scenario tree (``branching`` children per node)
is solved and its first-stage decision applied; the time comparison is against one such solve.

Reported costs are operating costs (thermal, deficit, spillage), without the artificial target penalty.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from optrepro.checks import check_int, check_nonnegative, check_positive
from optrepro.constrained.lp_layer import LinearProgram, lp_value, solve_lp

__all__ = [
    "HydroThermal",
    "horizon_lp",
    "make_system",
    "myopic_rollout",
    "operating_cost",
    "perfect_foresight",
    "resolve_decision",
    "resolving_rollout",
    "sample_inflows",
    "stage_lp",
    "tree_lp",
]


@dataclass
class HydroThermal:
    """Data of the system; arrays are numpy, shapes in the comments (R reservoirs, J thermal units, T stages)."""
    v_max: np.ndarray        # (R,) storage capacity
    v0: np.ndarray           # (R,) initial storage
    q_max: np.ndarray        # (R,) turbine capacity
    rho: np.ndarray          # (R,) productivity (energy per unit of water)
    g_max: np.ndarray        # (J,) thermal capacities
    g_cost: np.ndarray       # (J,) thermal costs
    deficit_cost: float
    spill_cost: float
    demand: np.ndarray       # (T,)
    inflow_mean: np.ndarray  # (T, R)
    inflow_cv: float         # coefficient of variation of the lognormal inflows
    target_penalty: float    # pi, the price of missing the policy's target

    @property
    def R(self) -> int:
        return self.v_max.size

    @property
    def J(self) -> int:
        return self.g_max.size

    @property
    def T(self) -> int:
        return self.demand.size


def make_system(reservoirs: int = 2, stages: int = 6, inflow_cv: float = 0.25, target_penalty: float = 1000.0,
                deficit_cost: float = 500.0) -> HydroThermal:
    """A deterministic synthetic instance: a wet season then a dry one, demand rising over the horizon, three thermal
    units with rising costs (10, 30, 80) and total capacity above peak demand, hydro water scarce overall."""
    R, T = check_int("reservoirs", reservoirs, 1), check_int("stages", stages, 2)
    check_nonnegative("inflow_cv", inflow_cv)
    check_positive("target_penalty", target_penalty)
    check_positive("deficit_cost", deficit_cost)
    size = np.linspace(1.0, 0.6, R)                       # reservoirs of decreasing size
    season = np.cos(np.linspace(0, np.pi, T)) * 0.6 + 0.8  # 1.4 (wet) -> 0.2 (dry)
    scale = 2.0 / R                                        # total hydro of the system independent of R
    demand = 8.0 + 4.0 * np.linspace(0, 1, T)              # 8 -> 12
    return HydroThermal(
        v_max=15 * size * scale, v0=7 * size * scale, q_max=5 * size * scale, rho=np.ones(R),
        g_max=np.array([4.0, 4.0, 6.0]), g_cost=np.array([10.0, 30.0, 80.0]), deficit_cost=float(deficit_cost),
        spill_cost=0.01, demand=demand, inflow_mean=3.0 * season[:, None] * size[None, :] * scale,
        inflow_cv=float(inflow_cv), target_penalty=float(target_penalty))


def sample_inflows(sys: HydroThermal, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` inflow scenarios (n, T, R), lognormal with mean ``inflow_mean`` and CV ``inflow_cv``, independent."""
    n = check_int("n", n, 1)
    s2 = np.log1p(sys.inflow_cv ** 2)
    z = torch.randn(n, sys.T, sys.R, generator=generator, dtype=torch.float64)
    mean = torch.as_tensor(sys.inflow_mean)
    return mean * torch.exp(np.sqrt(s2) * z - s2 / 2)


# ------------------------------------------------------------------------------------------------ stage LP
# variable layout of one stage: [v (R), q (R), s (R), g (J), deficit (1), z+ (R), z- (R)]

def _stage_blocks(sys: HydroThermal):
    R, J = sys.R, sys.J
    eye = np.eye(R)
    water = np.hstack([eye, eye, eye, np.zeros((R, J + 1))])
    load = np.concatenate([np.zeros(R), sys.rho, np.zeros(R), np.ones(J), [1.0]])[None]
    cost = np.concatenate([np.zeros(2 * R), np.full(R, sys.spill_cost), sys.g_cost, [sys.deficit_cost]])
    upper = np.concatenate([sys.v_max, sys.q_max, np.full(R, np.inf), sys.g_max, [np.inf]])
    return water, load, cost, upper


def stage_lp(sys: HydroThermal, with_target: bool = True) -> LinearProgram:
    """The stage LP; equality right-hand side ``[v_in + w_t (R), d_t (1), target (R)]`` (target rows only
    ``with_target``; without them it is the myopic stage problem)."""
    R = sys.R
    water, load, cost, upper = _stage_blocks(sys)
    if not with_target:
        return LinearProgram(cost, A_eq=np.vstack([water, load]), upper=upper)
    n0 = cost.size
    pad = lambda A: np.hstack([A, np.zeros((A.shape[0], 2 * R))])
    target = np.hstack([np.eye(R), np.zeros((R, n0 - R)), -np.eye(R), np.eye(R)])
    return LinearProgram(np.concatenate([cost, np.full(2 * R, sys.target_penalty)]),
                         A_eq=np.vstack([pad(water), pad(load), target]),
                         upper=np.concatenate([upper, np.full(2 * R, np.inf)]))


def operating_cost(sys: HydroThermal, x: torch.Tensor) -> torch.Tensor:
    """Operating cost (thermal + deficit + spillage) of stage solutions ``x`` (B, n); no target penalty."""
    _, _, cost, _ = _stage_blocks(sys)
    return x[:, :cost.size] @ torch.as_tensor(cost, dtype=x.dtype, device=x.device)


def _rhs(sys, t, v_in, w_t, target=None):
    d = torch.full((v_in.shape[0], 1), float(sys.demand[t]), dtype=v_in.dtype, device=v_in.device)
    parts = [v_in + w_t, d] + ([] if target is None else [target])
    return torch.cat(parts, dim=1)


def myopic_rollout(sys: HydroThermal, inflows: torch.Tensor) -> torch.Tensor:
    """Operating cost (n,) of the myopic policy: each stage minimizes its own cost, stored water has no value."""
    lp = stage_lp(sys, with_target=False)
    v = torch.as_tensor(sys.v0, dtype=inflows.dtype).expand(inflows.shape[0], -1)
    total = inflows.new_zeros(inflows.shape[0])
    for t in range(sys.T):
        _, x = lp_value(lp, _rhs(sys, t, v, inflows[:, t]))
        total = total + operating_cost(sys, x)
        v = x[:, :sys.R]
    return total


# ------------------------------------------------------------------------------------------------ full-horizon LPs
# variable layout per node: [v (R), q (R), s (R), g (J), deficit (1)]

def _node_lp(sys: HydroThermal, parent: np.ndarray, depth: np.ndarray, prob: np.ndarray, t0: int):
    """Deterministic-equivalent LP on a tree of nodes (``parent[k] = -1`` for roots): matrices and node costs."""
    water, load, cost, upper = _stage_blocks(sys)
    R, N, m = sys.R, parent.size, cost.size
    A_w = sp.kron(sp.eye(N), sp.csr_matrix(water))
    kids = np.flatnonzero(parent >= 0)
    link = sp.csr_matrix((np.ones(kids.size), (kids, parent[kids])), shape=(N, N))
    A_w = A_w - sp.kron(link, sp.hstack([sp.eye(R), sp.csr_matrix((R, m - R))]))   # v_k - v_parent + q + s = w
    A_d = sp.kron(sp.eye(N), sp.csr_matrix(load))
    lp = LinearProgram(np.kron(prob, cost), A_eq=sp.vstack([A_w, A_d]).tocsr(), upper=np.tile(upper, N))
    return lp, sys.demand[t0 + depth]


def horizon_lp(sys: HydroThermal) -> LinearProgram:
    """The full-horizon deterministic LP of one scenario (a chain of T nodes)."""
    parent = np.arange(sys.T) - 1
    lp, _ = _node_lp(sys, parent, np.arange(sys.T), np.ones(sys.T), 0)
    return lp


def perfect_foresight(sys: HydroThermal, inflows: torch.Tensor) -> torch.Tensor:
    """Wait-and-see cost (n,): the full-horizon LP per scenario with all its inflows known (one batched solve)."""
    lp = horizon_lp(sys)
    w = inflows.detach().cpu().numpy().copy()
    w[:, 0] += sys.v0
    b = np.concatenate([w.reshape(w.shape[0], -1), np.broadcast_to(sys.demand, (w.shape[0], sys.T))], axis=1)
    return torch.as_tensor(solve_lp(lp, b).value)


def tree_lp(sys: HydroThermal, t0: int, v_in: np.ndarray, w_t0: np.ndarray, branching: int,
            generator: torch.Generator):
    """Deterministic equivalent of stages t0..T-1 on a sampled scenario tree: the root (stage t0, inflow known) has
    ``branching`` children per node with sampled inflows. Returns ``(lp, b_eq, nodes)``."""
    check_int("branching", branching, 1)
    parent, depth, prob = [-1], [0], [1.0]
    level = [0]
    for d in range(1, sys.T - t0):
        nxt = []
        for p in level:
            for _ in range(branching):
                parent.append(p)
                depth.append(d)
                prob.append(prob[p] / branching)
                nxt.append(len(parent) - 1)
        level = nxt
    parent, depth, prob = np.array(parent), np.array(depth), np.array(prob)
    lp, demand = _node_lp(sys, parent, depth, prob, t0)
    w = np.empty((parent.size, sys.R))
    w[0] = w_t0
    for d in range(1, sys.T - t0):
        idx = np.flatnonzero(depth == d)
        draw = sample_inflows(sys, idx.size, generator)[:, t0 + d].numpy()
        w[idx] = draw
    w[0] += v_in
    return lp, np.concatenate([w.reshape(-1), demand]), parent.size


def resolve_decision(sys: HydroThermal, t0: int, v_in: np.ndarray, w_t0: np.ndarray, branching: int,
                     generator: torch.Generator):
    """One re-solving decision: build and solve the tree LP, return the root's storage decision and the seconds."""
    start = time.perf_counter()
    lp, b, nodes = tree_lp(sys, t0, v_in, w_t0, branching, generator)
    sol = solve_lp(lp, b)
    return sol.x[0, :sys.R], time.perf_counter() - start, nodes


def resolving_rollout(sys: HydroThermal, inflows: torch.Tensor, branching: int, generator: torch.Generator):
    """Operating cost (n,) of the re-solving policy: at every stage solve the tree LP of the remaining horizon
    (fresh sampled tree), apply its root storage decision through the stage LP, move on. Also returns the seconds
    of each tree solve (n * T,)."""
    lp = stage_lp(sys)
    w_all = inflows.detach().cpu().numpy()
    costs, seconds = np.zeros(w_all.shape[0]), []
    for k in range(w_all.shape[0]):
        v = sys.v0.copy()
        for t in range(sys.T):
            target, sec, _ = resolve_decision(sys, t, v, w_all[k, t], branching, generator)
            seconds.append(sec)
            sol = solve_lp(lp, np.concatenate([v + w_all[k, t], [sys.demand[t]], target]))
            costs[k] += float(operating_cost(sys, torch.as_tensor(sol.x))[0])
            v = sol.x[0, :sys.R]
    return torch.as_tensor(costs), np.array(seconds)
