r"""Project and Forget for :math:`\ell_2` metric nearness: Bregman (Dykstra/Hildreth) projections onto an active set
of violated cycle inequalities found by a shortest-path oracle, and forgetting of constraints whose dual is zero.

Reference: R. Sonthalia, A. C. Gilbert. "Project and Forget: Solving Large-Scale Metric Constrained Problems",
JMLR 23(326), 2022, arXiv:2005.03853 (Algorithm 1; metric nearness, Section on experiments).

**Problem.** Given a symmetric dissimilarity matrix :math:`D` on :math:`n` points (the :math:`E = n(n-1)/2` edges
of the complete graph), :math:`\ell_2` metric nearness is

.. math::
    \min_{x\in\mathbb R^E}\ \tfrac12\lVert x - d\rVert_2^2 \quad\text{s.t.}\quad
    x_{ij} \le x_{ik} + x_{kj}\ \ \text{for all } i, j, k,

i.e. :math:`n(n-1)(n-2)/2` triangle inequalities. On the complete graph these are equivalent to the *cycle*
inequalities :math:`a_C^\top x = x_e - \sum_{f\in C\setminus e} x_f \le 0` for every cycle :math:`C` and edge
:math:`e\in C`, and (with :math:`n\ge3`) they imply :math:`x\ge0`.

**Oracle.** With :math:`x` as edge weights, all-pairs shortest paths (Floyd-Warshall, vectorized over the
:math:`n\times n` matrix, on any torch device) give :math:`\delta_{ij}\le x_{ij}`. Every edge with
:math:`x_{ij} > \delta_{ij}` yields the violated cycle "edge :math:`ij` plus its shortest path"; the oracle returns
one such constraint per violated edge, and :math:`\max_{ij}(x_{ij}-\delta_{ij})` is the largest violation of any
cycle (hence triangle) inequality through the long edge.

**Project and Forget** (Algorithm 1), with :math:`f=\tfrac12\lVert x-d\rVert^2` the Bregman projection is the
Euclidean one and every constraint :math:`c` in the active set :math:`L` carries a dual :math:`z_c\ge0`:

1. *Oracle*: :math:`L \leftarrow L\cup Q(x)` (new constraints with :math:`z_c=0`).
2. *Project* (one cyclic pass over :math:`L`, Hildreth/Dykstra correction):
   :math:`\theta_c = \min\big(z_c,\ -a_c^\top x/\lVert a_c\rVert^2\big)`, :math:`x\leftarrow x+\theta_c a_c`,
   :math:`z_c\leftarrow z_c-\theta_c`.
3. *Forget*: drop every :math:`c\in L` with :math:`z_c = 0`.

The iterates converge to the optimum and the distance to it decays linearly (the paper's Theorems). The pass is a
plain Python loop over the active set (sequential by nature); the oracle runs in torch on ``device``.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from optrepro.checks import check_int, check_nonnegative
from optrepro.threads import one_cpu_thread_if

__all__ = ["MetricNearnessResult", "edge_index", "from_edges", "halfspace_projection", "max_triangle_violation",
           "metric_nearness_cvxpy", "num_triangle_inequalities", "project_and_forget", "shortest_path_oracle",
           "shortest_paths", "to_edges", "triangle_constraint_matrix", "violated_triangles"]


def num_triangle_inequalities(n: int) -> int:
    """Number of triangle inequalities on n points: 3 per triple, n(n-1)(n-2)/2."""
    n = check_int("n", n, 3)
    return n * (n - 1) * (n - 2) // 2


@functools.lru_cache(maxsize=8)
def _edge_tables(n: int):
    r, c = np.triu_indices(n, 1)
    eid = np.full((n, n), -1, dtype=np.int64)
    eid[r, c] = np.arange(len(r))
    eid[c, r] = np.arange(len(r))
    r.flags.writeable = c.flags.writeable = eid.flags.writeable = False
    return r, c, eid


def edge_index(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each edge i < j, in the order of ``np.triu_indices(n, 1)``."""
    r, c, _ = _edge_tables(check_int("n", n, 2))
    return r, c


def to_edges(D) -> np.ndarray:
    """Upper-triangular entries of a symmetric matrix as an edge vector (float64 numpy)."""
    D = torch.as_tensor(D).detach().cpu().double().numpy()
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"invalid D of shape {tuple(D.shape)}: expected a square matrix")
    return D[edge_index(D.shape[0])].copy()


def from_edges(x, n: int, device="cpu") -> torch.Tensor:
    """Symmetric float64 matrix with zero diagonal from an edge vector."""
    i, j = edge_index(n)
    x = torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)
    X = torch.zeros(n, n, dtype=torch.float64, device=device)
    ii, jj = torch.as_tensor(i.copy(), device=device), torch.as_tensor(j.copy(), device=device)
    X[ii, jj] = x
    X[jj, ii] = x
    return X


def halfspace_projection(x: np.ndarray, a: np.ndarray, b: float) -> np.ndarray:
    """Euclidean projection of x onto {y : a^T y <= b}: x - max(0, a^T x - b) a / ||a||^2."""
    a = np.asarray(a, dtype=np.float64)
    nrm = float(a @ a)
    if nrm <= 0:
        raise ValueError("invalid a: expected a nonzero normal vector")
    return x - max(0.0, float(a @ x) - b) / nrm * a


def shortest_paths(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All-pairs shortest paths by vectorized Floyd-Warshall (torch, on X's device) on the nonnegative weights X.

    Returns (dist, pred): ``pred[i, j]`` is the node before ``j`` on a shortest path from ``i`` to ``j``
    (``pred[i, i] = i``).
    """
    n = X.shape[0]
    dist = X.clone()
    dist.fill_diagonal_(0.0)
    pred = torch.arange(n, device=X.device)[:, None].expand(n, n).clone()   # direct edge: pred[i, j] = i
    for k in range(n):
        cand = dist[:, k:k + 1] + dist[k:k + 1, :]
        better = cand < dist
        dist = torch.where(better, cand, dist)
        pred = torch.where(better, pred[k:k + 1, :].expand(n, n), pred)
    return dist, pred


def _all_pairs(X: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """Shortest-path distances (on X's device) and predecessors (numpy): scipy's C Floyd-Warshall on a CPU."""
    if X.device.type == "cpu":
        from scipy.sparse.csgraph import floyd_warshall

        W = X.numpy().copy()
        np.fill_diagonal(W, 0.0)
        W[W == 0] = 1e-300   # csgraph reads exact zeros as missing edges; a zero-length edge stays ~zero
        dist, pred = floyd_warshall(W, directed=False, return_predecessors=True)
        np.fill_diagonal(pred, np.arange(X.shape[0]))
        return torch.from_numpy(dist), pred
    dist, pred = shortest_paths(X)
    return dist, pred.cpu().numpy()


def _walk_paths(pred: np.ndarray, ii: np.ndarray, jj: np.ndarray) -> list[list[int]]:
    """Node sequences jj[t] -> ... -> ii[t] of the shortest paths (walked back from jj by predecessors, vectorized)."""
    nodes = [jj.copy()]
    cur = jj.copy()
    for _ in range(pred.shape[0]):
        live = cur != ii
        if not live.any():
            break
        cur = np.where(live, pred[ii, cur], cur)
        nodes.append(cur)
    P = np.stack(nodes, axis=1)
    ends = np.argmax(P == ii[:, None], axis=1)
    return [P[t, :ends[t] + 1].tolist() for t in range(len(ii))]


def shortest_path_oracle(X: torch.Tensor, tol: float = 0.0) -> tuple[list[tuple[int, ...]], float]:
    """Violated cycle inequalities of the weight matrix X, one per edge with x_ij > shortest-path(i, j) + tol.

    Each constraint is a tuple of edge indices ``(e, f1, f2, ...)``: ``x_e - sum_k x_fk <= 0``, ``e`` the long edge
    and ``f1 < f2 < ...`` the edges of a shortest i-j path. Also returns the largest violation
    max_ij (x_ij - shortest-path(i, j)) (0 when none).
    """
    tol = check_nonnegative("tol", tol)
    n = X.shape[0]
    dist, pred = _all_pairs(X)
    gap = torch.triu(X - dist, diagonal=1)
    max_violation = float(gap.max().clamp_min(0.0))
    ii, jj = torch.nonzero(gap > tol, as_tuple=True)
    if len(ii) == 0:
        return [], max_violation
    _, _, eid = _edge_tables(n)
    ii, jj = ii.cpu().numpy(), jj.cpu().numpy()
    cons = []
    for path, i, j in zip(_walk_paths(pred, ii, jj), ii.tolist(), jj.tolist()):
        p = np.asarray(path)
        cons.append((int(eid[i, j]), *sorted(eid[p[:-1], p[1:]].tolist())))
    return cons, max_violation


def violated_triangles(X: torch.Tensor, tol: float = 0.0) -> np.ndarray:
    """All violated triangle inequalities: rows (i, j, k), i < j, with X[i, j] > X[i, k] + X[k, j] + tol."""
    tol = check_nonnegative("tol", tol)
    n = X.shape[0]
    V = X[:, :, None] - X[:, None, :] - X.T[None, :, :]   # V[i, j, k] = X[i, j] - X[i, k] - X[k, j]
    idx = torch.arange(n, device=X.device)
    valid = (idx[:, None, None] < idx[None, :, None]) & (idx[None, None, :] != idx[:, None, None]) \
        & (idx[None, None, :] != idx[None, :, None])
    return torch.nonzero((V > tol) & valid).cpu().numpy()


def max_triangle_violation(X: torch.Tensor, chunk: int = 64) -> float:
    """max over i, j, k of X[i, j] - X[i, k] - X[k, j] (clamped at 0), in row chunks of ``chunk``."""
    n = X.shape[0]
    worst = 0.0
    for s in range(0, n, chunk):
        rows = X[s:s + chunk]                                   # (c, n): X[i, k]
        best = (rows[:, :, None] + X[None, :, :]).amin(dim=1)   # min_k X[i, k] + X[k, j]
        worst = max(worst, float((rows - best).max()))
    return max(worst, 0.0)


def triangle_constraint_matrix(n: int):
    """Sparse matrix A (n(n-1)(n-2)/2 x E) of all triangle inequalities A x <= 0 (scipy CSR)."""
    import scipy.sparse as sp

    n = check_int("n", n, 3)
    r, _, eid = _edge_tables(n)
    a, b, c3 = np.array([(i, j, k) for i in range(n) for j in range(i + 1, n) for k in range(j + 1, n)]).T
    rows = []
    for long_, s1, s2 in ((eid[a, b], eid[a, c3], eid[b, c3]), (eid[a, c3], eid[a, b], eid[b, c3]),
                          (eid[b, c3], eid[a, b], eid[a, c3])):
        rows.append(np.stack([long_, s1, s2], axis=1))
    cols = np.concatenate(rows)
    m = len(cols)
    data = np.tile([1.0, -1.0, -1.0], m)
    return sp.csr_matrix((data, (np.repeat(np.arange(m), 3), cols.ravel())), shape=(m, len(r)))


def metric_nearness_cvxpy(d: np.ndarray, n: int, solver: str = "CLARABEL", **solver_opts):
    """Reference: the QP min 1/2||x - d||^2 s.t. all triangle inequalities, solved by cvxpy.

    Returns (x, duals) with the duals of the n(n-1)(n-2)/2 triangle rows of ``triangle_constraint_matrix(n)``.
    """
    import cvxpy as cp

    A = triangle_constraint_matrix(n)
    x = cp.Variable(A.shape[1])
    con = A @ x <= 0
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(x - d)), [con])
    prob.solve(solver=solver, **solver_opts)
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise ValueError(f"cvxpy returned status {prob.status!r}: expected optimal")
    return np.asarray(x.value), np.asarray(con.dual_value)


@dataclass
class MetricNearnessResult:
    x: np.ndarray                       # final edge vector
    iterations: int
    active_sizes: list[int] = field(default_factory=list)     # |L| after the oracle (before forgetting)
    kept_sizes: list[int] = field(default_factory=list)       # |L| after forgetting
    new_constraints: list[int] = field(default_factory=list)  # constraints returned by the oracle
    max_violation: list[float] = field(default_factory=list)  # max_ij x_ij - shortest-path(i, j), before the pass
    objective: list[float] = field(default_factory=list)      # 1/2 ||x - d||^2 after the pass
    rel_error: list[float] = field(default_factory=list)      # ||x - x_ref|| / ||x_ref|| after the pass, if given
    step: list[float] = field(default_factory=list)           # ||x_t - x_{t-1}||_inf of the pass
    seconds: list[float] = field(default_factory=list)
    converged: bool = False


def _project_pass(x: list, cons: list, z: list) -> None:
    """One cyclic Hildreth/Dykstra pass over the active constraints (in place)."""
    for k, c in enumerate(cons):
        e0 = c[0]
        if len(c) == 3:
            s = x[e0] - x[c[1]] - x[c[2]]
        else:
            s = x[e0] - sum(x[e] for e in c[1:])
        t = -s / len(c)
        zc = z[k]
        step = zc if zc < t else t
        if step != 0.0:
            x[e0] += step
            for e in c[1:]:
                x[e] -= step
            z[k] = zc - step


def project_and_forget(D, max_iter: int = 1000, tol: float = 1e-8, x_ref=None, oracle_tol: float = 0.0,
                       device="cpu") -> MetricNearnessResult:
    """Project and Forget (Algorithm 1) for l2 metric nearness of the symmetric matrix D.

    Stops when the largest cycle violation and the largest change of a pass are both <= ``tol``, or after
    ``max_iter`` iterations. ``x_ref`` (edge vector) makes the trace record the relative distance to it.
    """
    max_iter = check_int("max_iter", max_iter, 1)
    tol = check_nonnegative("tol", tol)
    D = torch.as_tensor(D, dtype=torch.float64)
    n = D.shape[0]
    check_int("n", n, 3)
    d = to_edges(D)
    x = d.tolist()
    res = MetricNearnessResult(x=d.copy(), iterations=0)
    with one_cpu_thread_if(n <= 400, device):
        _iterate(res, D, d, x, max_iter, tol, x_ref, oracle_tol, device)
    return res


def _iterate(res, D, d, x, max_iter, tol, x_ref, oracle_tol, device) -> None:
    """The loop of Algorithm 1: oracle, one projection pass over the active set, forget; fills the trace ``res``."""
    n = D.shape[0]
    if x_ref is not None:
        x_ref = np.asarray(x_ref, dtype=np.float64)
        ref_norm = float(np.linalg.norm(x_ref))
    cons: list[tuple[int, ...]] = []
    z: list[float] = []
    keys: set[tuple[int, ...]] = set()
    t0 = time.perf_counter()
    for it in range(max_iter):
        X = from_edges(x, n, device)
        new, viol = shortest_path_oracle(X, oracle_tol)
        added = 0
        for c in new:
            if c not in keys:
                keys.add(c)
                cons.append(c)
                z.append(0.0)
                added += 1
        prev = np.array(x)
        _project_pass(x, cons, z)
        cur = np.array(x)
        keep = [k for k in range(len(cons)) if z[k] > 0.0]
        res.active_sizes.append(len(cons))
        cons = [cons[k] for k in keep]
        z = [z[k] for k in keep]
        keys = set(cons)
        res.kept_sizes.append(len(cons))
        res.new_constraints.append(added)
        res.max_violation.append(viol)
        res.objective.append(0.5 * float(((cur - d) ** 2).sum()))
        res.step.append(float(np.abs(cur - prev).max()))
        if x_ref is not None:
            res.rel_error.append(float(np.linalg.norm(cur - x_ref)) / ref_norm)
        res.seconds.append(time.perf_counter() - t0)
        res.iterations = it + 1
        if viol <= tol and res.step[-1] <= tol:
            res.converged = True
            break
    res.x = np.array(x)
