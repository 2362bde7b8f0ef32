r"""TOPO: optimizing the NOTEARS objective by swaps in a topological order (Deng, Bello, Aragam, Ravikumar,
ICML 2023, arXiv:2305.17277).

The DAG-constrained problem :math:`\min_W Q(W)` s.t. :math:`h(W) = 0` is split into two levels.

**Inner level** (convex, solved exactly). For a topological order :math:`\pi`, :math:`W` may only have edges
:math:`i\to j` with :math:`i` before :math:`j`; for the least-squares score with an optional ridge term,
:math:`Q_\lambda(W) = \frac1{2n}\lVert X-XW\rVert_F^2 + \frac\lambda2\lVert W\rVert_F^2`, the problem separates
into one regression per node on all of its predecessors :math:`P_j`:

.. math:: w_{P_j j} = (S_{P_jP_j} + \lambda I)^{-1}S_{P_j j},\qquad
          Q_j = \tfrac12\big(S_{jj} - S_{jP_j}\,w_{P_j j}\big),\qquad S = X^\top X/n .

**Outer level** (swaps). At the inner solution :math:`W(\pi)` the score's gradient
:math:`\nabla Q = SW - S + \lambda W` vanishes on the allowed edges; an edge :math:`i\to j` that the order forbids
(:math:`j` before :math:`i`) would lower the score to first order when :math:`|\nabla Q_{ij}| > \xi`. Because
:math:`W(\pi)` is a DAG, :math:`[\nabla h(W)]_{ij} = [e^{W\circ W}]_{ji}\,2W_{ij}` is zero on forbidden pairs, so the
paper ranks them with the path weights :math:`[e^{W\circ W}]_{ji}` that adding :math:`i\to j` would close into
cycles (the KKT reformulation of the NOTEARS constraint): a small value means the pair is "almost" free. The
candidate set is the pairs with :math:`|\nabla Q_{ij}|>\xi`, sorted by that cycle weight; TOPO tries the
``size_small`` most promising, then the ``size_large``, then all of them, swaps the positions of :math:`i` and
:math:`j` in :math:`\pi`, re-solves the inner problem (only the nodes between the two positions change), and accepts
the best swap of the first tier that lowers the score. With no improving swap in any tier the order is a local
optimum and TOPO stops; every accepted swap strictly lowers the score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from optrepro.checks import check_int, check_nonnegative
from optrepro.dag.sem import topological_order

__all__ = ["TopoResult", "order_regression", "topo_swaps", "order_from_dag"]


@dataclass
class TopoResult:
    W: np.ndarray                 # inner solution at the final order (a DAG consistent with ``order``)
    order: list[int]              # final topological order
    score: float                  # Q_lambda(W)
    scores: list[float] = field(default_factory=list)   # score after each accepted swap (first: the start)
    swaps: int = 0                # accepted swaps
    evaluated: int = 0            # inner re-solves of candidate swaps
    local_optimum: bool = False   # stopped because no candidate swap improved (not because of max_swaps)


def _gram(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] < 2 or X.shape[0] < 1:
        raise ValueError(f"invalid X of shape {X.shape}: expected an (n, d) sample matrix with d >= 2")
    return X.T @ X / X.shape[0]


def _check_order(order, d: int) -> list[int]:
    order = [int(i) for i in np.asarray(order).ravel()]
    if sorted(order) != list(range(d)):
        raise ValueError(f"invalid order {order}: expected a permutation of 0..{d - 1}")
    return order


def _node_fit(S, j, parents, lam):
    """Coefficients of node j on ``parents`` and its share of the score."""
    if len(parents) == 0:
        return np.zeros(0), 0.5 * S[j, j]
    P = np.asarray(parents)
    A = S[np.ix_(P, P)] + lam * np.eye(P.size)
    b = S[P, j]
    w = scipy.linalg.solve(A, b, assume_a="pos")
    return w, 0.5 * (S[j, j] - b @ w)


def _fit_order(S, order, lam):
    d = len(order)
    W = np.zeros((d, d))
    node_loss = np.zeros(d)
    for k, j in enumerate(order):
        w, node_loss[j] = _node_fit(S, j, order[:k], lam)
        W[order[:k], j] = w
    return W, node_loss


def order_regression(X, order, lambda2: float = 0.0) -> tuple[np.ndarray, float]:
    """Inner problem: the minimizer of ``Q_lambda`` over the DAGs consistent with ``order``, and its score."""
    S = _gram(X)
    order = _check_order(order, S.shape[0])
    lam = check_nonnegative("lambda2", lambda2)
    W, node_loss = _fit_order(S, order, lam)
    return W, float(node_loss.sum())


def order_from_dag(W) -> list[int]:
    """A topological order of the DAG ``W != 0`` (how TOPO starts from another method's output)."""
    order = topological_order(W)
    if order is None:
        raise ValueError("invalid W: expected a DAG to take a topological order from, got a graph with a cycle")
    return order


def topo_swaps(X, order, lambda2: float = 0.0, size_small: int = 10, size_large: int = 50,
               max_swaps: int = 1000, xi: float = 1e-10, tol: float = 1e-12) -> TopoResult:
    """TOPO from the topological order ``order``: swap pairs of nodes while the score decreases.

    A swap is accepted only if it lowers the score by more than ``tol * |score|`` (guards against rounding).
    """
    S = _gram(X)
    d = S.shape[0]
    order = _check_order(order, d)
    lam = check_nonnegative("lambda2", lambda2)
    size_small = check_int("size_small", size_small, 1)
    size_large = check_int("size_large", size_large, size_small)
    max_swaps = check_int("max_swaps", max_swaps, 0)
    xi = check_nonnegative("xi", xi)
    tol = check_nonnegative("tol", tol)

    W, node_loss = _fit_order(S, order, lam)
    score = float(node_loss.sum())
    result = TopoResult(W=W, order=list(order), score=score, scores=[score])
    while result.swaps < max_swaps:
        pos = np.empty(d, dtype=int)
        pos[order] = np.arange(d)
        grad = S @ W - S + lam * W
        cycle = scipy.linalg.expm(W * W).T          # cycle[i, j] = [e^{W o W}]_{ji}: paths j ~> i
        forbidden = pos[:, None] > pos[None, :]     # i after j: edge i -> j not allowed
        cand_i, cand_j = np.nonzero(forbidden & (np.abs(grad) > xi))
        rank = np.argsort(cycle[cand_i, cand_j], kind="stable")
        cand = list(zip(cand_i[rank].tolist(), cand_j[rank].tolist()))
        best = None
        tried = 0
        for size in (size_small, size_large, len(cand)):
            for i, j in cand[tried:size]:
                p, q = pos[j], pos[i]                # j sits at p < q, i at q
                new = order.copy()
                new[p], new[q] = i, j
                new_loss = node_loss.copy()
                cols = {}
                for k in range(p, q + 1):
                    node = new[k]
                    cols[node], new_loss[node] = _node_fit(S, node, new[:k], lam)
                result.evaluated += 1
                new_score = float(new_loss.sum())
                if new_score < score - tol * abs(score) and (best is None or new_score < best[0]):
                    best = (new_score, new, new_loss, cols, p, q)
            tried = max(tried, min(size, len(cand)))
            if best is not None or tried >= len(cand):
                break
        if best is None:
            result.local_optimum = True
            break
        score, order, node_loss, cols, p, q = best
        for k in range(p, q + 1):
            node = order[k]
            W[:, node] = 0.0
            W[order[:k], node] = cols[node]
        result.swaps += 1
        result.scores.append(score)
    result.W, result.order, result.score = W, order, score
    return result
