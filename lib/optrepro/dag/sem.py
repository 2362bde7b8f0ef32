r"""Linear structural equation models (SEMs) on random DAGs, the least-squares score, acyclicity and SHD.

A weighted adjacency matrix :math:`W\in\mathbb R^{d\times d}` (:math:`W_{ij}\neq0` is an edge :math:`i\to j`)
defines the linear SEM :math:`X_j = \sum_i W_{ij}X_i + Z_j`, i.e. :math:`X = XW + Z` row-wise, so that a sample
matrix is :math:`X = Z(I-W)^{-1}` with :math:`Z_{kj}\sim\mathcal N(0,\sigma^2)` i.i.d. (equal noise variances).

* Score (NOTEARS' least-squares loss): :math:`Q(W) = \frac1{2n}\lVert X - XW\rVert_F^2`, computed from the Gram
  matrix :math:`S = X^\top X/n` as :math:`\frac12\operatorname{tr}\big((I-W)^\top S(I-W)\big)`.
* Acyclicity (Zheng et al., NeurIPS 2018, arXiv:1803.01422): :math:`h(W) = \operatorname{tr} e^{W\circ W} - d`,
  which is :math:`0` iff :math:`W` is a DAG, with gradient :math:`\nabla h(W) = (e^{W\circ W})^\top\circ 2W`.
* Random graphs as in NOTEARS' benchmark: Erdos-Renyi with :math:`s_0 = k d` edges ("ER\ *k*") and scale-free
  (Barabasi-Albert, :math:`k` edges per new node, "SF\ *k*"), nodes randomly permuted; weights uniform on
  :math:`\pm[0.5, 2]`.
* SHD (structural Hamming distance, NOTEARS' ``count_accuracy``): missing + extra + reversed edges, a reversed edge
  counted once; :func:`normalized_shd` divides it by the number of true edges.
* Heteroscedastic data (CoLiDE's "NV" setting, Saboksayr, Mateos & Tepper, ICLR 2024): :math:`X_j = \sum_i W_{ij}X_i + \sigma_jZ_j`,
  :math:`Z_j\sim\mathcal N(0,1)`, with variances :math:`\sigma_j^2\sim U[0.5, 10]` (times a noise-level factor here).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from optrepro.checks import check_choice, check_int, check_positive

__all__ = ["random_dag", "edge_weights", "simulate_linear_sem", "ls_score", "ls_score_gram", "acyclicity",
           "acyclicity_grad", "is_dag", "topological_order", "order_mask", "structural_metrics",
           "heteroscedastic_scales", "simulate_heteroscedastic_sem", "normalized_shd"]

GRAPH_TYPES = ("ER", "SF")


def _square(name: str, W) -> np.ndarray:
    W = np.asarray(W, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"invalid {name} of shape {W.shape}: expected a square (d, d) matrix")
    return W


def random_dag(d: int, edges_per_node: int, graph_type: str = "ER", rng=None) -> np.ndarray:
    """Binary adjacency matrix ``B`` (``B[i, j] = 1``: edge i -> j) of a random DAG on ``d`` nodes.

    ER: ``edges_per_node * d`` edges drawn uniformly among the pairs of a random order. SF: Barabasi-Albert, each new
    node sends ``edges_per_node`` edges to existing nodes picked proportionally to degree + 1.
    """
    d = check_int("d", d, 2)
    k = check_int("edges_per_node", edges_per_node, 1)
    check_choice("graph_type", graph_type, GRAPH_TYPES)
    rng = np.random.default_rng(rng)
    B = np.zeros((d, d))
    if graph_type == "ER":
        rows, cols = np.tril_indices(d, -1)
        m = min(k * d, rows.size)
        pick = rng.choice(rows.size, size=m, replace=False)
        B[rows[pick], cols[pick]] = 1.0   # lower triangle: edges from higher to lower index, acyclic
    else:
        degree = np.zeros(d)
        for t in range(1, d):
            m = min(k, t)
            p = (degree[:t] + 1.0) / (degree[:t] + 1.0).sum()
            targets = rng.choice(t, size=m, replace=False, p=p)
            B[t, targets] = 1.0            # new node -> older nodes (NOTEARS' igraph convention)
            degree[targets] += 1.0
            degree[t] += m
    perm = rng.permutation(d)
    return B[np.ix_(perm, perm)]


def edge_weights(B, low: float = 0.5, high: float = 2.0, rng=None) -> np.ndarray:
    """Weights uniform on ``[-high, -low] U [low, high]`` on the support of ``B``."""
    B = _square("B", B)
    low, high = check_positive("low", low), check_positive("high", high)
    if low >= high:
        raise ValueError(f"invalid low {low}: expected 0 < low < high = {high}")
    rng = np.random.default_rng(rng)
    U = rng.uniform(low, high, size=B.shape) * rng.choice([-1.0, 1.0], size=B.shape)
    return (B != 0) * U


def simulate_linear_sem(W, n: int, noise_scale: float = 1.0, rng=None) -> np.ndarray:
    """``n`` samples of the linear-Gaussian SEM ``X = XW + Z``, ``Z ~ N(0, noise_scale^2)`` i.i.d.: ``Z (I-W)^{-1}``."""
    W = _square("W", W)
    n = check_int("n", n, 1)
    noise_scale = check_positive("noise_scale", noise_scale)
    if not is_dag(W):
        raise ValueError("invalid W: expected the weighted adjacency matrix of a DAG, got a graph with a cycle")
    rng = np.random.default_rng(rng)
    Z = noise_scale * rng.standard_normal((n, W.shape[0]))
    return np.linalg.solve((np.eye(W.shape[0]) - W).T, Z.T).T


def ls_score(X, W) -> float:
    """Least-squares score ``||X - XW||_F^2 / (2n)``."""
    X = np.asarray(X, dtype=float)
    W = _square("W", W)
    if X.ndim != 2 or X.shape[1] != W.shape[0]:
        raise ValueError(f"invalid X of shape {X.shape}: expected (n, {W.shape[0]}) to match W")
    R = X - X @ W
    return 0.5 * float((R * R).sum()) / X.shape[0]


def ls_score_gram(S, W) -> float:
    """The same score from the Gram matrix ``S = X^T X / n``: ``tr((I-W)^T S (I-W)) / 2``."""
    S, W = _square("S", S), _square("W", W)
    A = np.eye(W.shape[0]) - W
    return 0.5 * float(np.einsum("ij,ik,kj->", A, S, A))


def acyclicity(W) -> float:
    """NOTEARS' ``h(W) = tr(exp(W o W)) - d`` (0 iff W is a DAG, > 0 otherwise)."""
    W = _square("W", W)
    return float(np.trace(scipy.linalg.expm(W * W)) - W.shape[0])


def acyclicity_grad(W) -> np.ndarray:
    """``grad h(W) = exp(W o W)^T o 2W``."""
    W = _square("W", W)
    return scipy.linalg.expm(W * W).T * 2.0 * W


def topological_order(W) -> list[int] | None:
    """A topological order of the graph of ``W != 0`` (Kahn's algorithm, smallest index first), or None if cyclic."""
    A = _square("W", W) != 0
    indeg = A.sum(axis=0).astype(int)
    ready = sorted(np.flatnonzero(indeg == 0).tolist())
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in np.flatnonzero(A[i]):
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(int(j))
        ready.sort()
    return order if len(order) == A.shape[0] else None


def is_dag(W) -> bool:
    """True iff the graph of ``W != 0`` has no directed cycle (self-loops included)."""
    return topological_order(W) is not None


def order_mask(order) -> np.ndarray:
    """Boolean mask ``M[i, j] = True`` iff ``i`` precedes ``j`` in ``order`` (the edges an order allows)."""
    order = np.asarray(order)
    d = order.size
    if sorted(order.tolist()) != list(range(d)):
        raise ValueError(f"invalid order {order.tolist()}: expected a permutation of 0..{d - 1}")
    pos = np.empty(d, dtype=int)
    pos[order] = np.arange(d)
    return pos[:, None] < pos[None, :]


def structural_metrics(B_true, W_est) -> dict:
    """NOTEARS' ``count_accuracy``: SHD, true/false positive rates, FDR and edge counts of ``W_est != 0``."""
    B = _square("B_true", B_true) != 0
    E = _square("W_est", W_est) != 0
    if B.shape != E.shape:
        raise ValueError(f"invalid W_est of shape {E.shape}: expected {B.shape} like B_true")
    skel_true, skel_est = B | B.T, E | E.T
    iu = np.triu_indices(B.shape[0], 1)
    missing = int((skel_true & ~skel_est)[iu].sum())
    extra = int((skel_est & ~skel_true)[iu].sum())
    both = (skel_true & skel_est)[iu]
    reverse = int((both & ~(B == E)[iu] | both & ~(B.T == E.T)[iu]).sum())
    correct = int((B & E).sum())
    n_true, n_est = int(B.sum()), int(E.sum())
    return {"shd": missing + extra + reverse, "missing": missing, "extra": extra, "reverse": reverse,
            "tpr": correct / max(n_true, 1), "fdr": (n_est - correct) / max(n_est, 1), "nnz": n_est}


def heteroscedastic_scales(d: int, var_low: float = 0.5, var_high: float = 10.0, level: float = 1.0,
                           rng=None) -> np.ndarray:
    """Noise standard deviations ``sqrt(level * u_j)``, ``u_j ~ U[var_low, var_high]`` (the paper's NV setting)."""
    d = check_int("d", d, 1)
    var_low, var_high = check_positive("var_low", var_low), check_positive("var_high", var_high)
    if var_low > var_high:
        raise ValueError(f"invalid var_low {var_low}: expected var_low <= var_high = {var_high}")
    level = check_positive("level", level)
    rng = np.random.default_rng(rng)
    return np.sqrt(level * rng.uniform(var_low, var_high, size=d))


def simulate_heteroscedastic_sem(W, n: int, noise_scales, rng=None) -> np.ndarray:
    """``n`` samples of ``X = XW + Z diag(noise_scales)``, ``Z`` standard normal: ``Z diag(sigma) (I-W)^{-1}``."""
    W = np.asarray(W, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"invalid W of shape {W.shape}: expected a square (d, d) matrix")
    n = check_int("n", n, 1)
    sig = np.asarray(noise_scales, dtype=float)
    if sig.shape != (W.shape[0],) or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise ValueError(f"invalid noise_scales of shape {sig.shape}: expected {W.shape[0]} finite positive numbers")
    if not is_dag(W):
        raise ValueError("invalid W: expected the weighted adjacency matrix of a DAG, got a graph with a cycle")
    rng = np.random.default_rng(rng)
    Z = rng.standard_normal((n, W.shape[0])) * sig
    return np.linalg.solve((np.eye(W.shape[0]) - W).T, Z.T).T


def normalized_shd(B_true, W_est) -> float:
    """SHD divided by the number of edges of the true graph (0 = exact recovery)."""
    B = np.asarray(B_true) != 0
    return structural_metrics(B, W_est)["shd"] / max(int(B.sum()), 1)
