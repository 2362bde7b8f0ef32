"""Tests of optrepro.dag: random DAGs and SEM data, h(W), SHD, NOTEARS and TOPO (topological swaps)."""
import numpy as np
import pytest

from optrepro.dag.notears import notears_linear, threshold_to_dag
from optrepro.dag.sem import (acyclicity, acyclicity_grad, edge_weights, is_dag, ls_score, ls_score_gram,
                              order_mask, random_dag, simulate_linear_sem, structural_metrics, topological_order)
from optrepro.dag.topo_swaps import order_from_dag, order_regression, topo_swaps

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(d=6, k=1, n=2000, seed=0, graph_type="ER"):
    rng = np.random.default_rng(seed)
    B = random_dag(d, k, graph_type, rng)
    W = edge_weights(B, rng=rng)
    return B, W, simulate_linear_sem(W, n, rng=rng)


@pytest.mark.parametrize("graph_type", ["ER", "SF"])
def test_random_dag_is_acyclic_with_expected_edges(graph_type):
    B = random_dag(12, 2, graph_type, 3)
    assert is_dag(B) and np.all(np.diag(B) == 0)
    assert B.sum() == (24 if graph_type == "ER" else 2 * 11 - 1)   # SF: node t adds min(2, t) edges


def test_acyclicity_zero_iff_dag():
    B, W, _ = _data(d=8, k=2, seed=1)
    assert abs(acyclicity(W)) < 1e-10
    order = topological_order(W)
    assert order is not None and np.all(order_mask(order)[W != 0])
    i, j = np.argwhere(W != 0)[0]
    Wc = W.copy()
    Wc[j, i] = 0.7          # close a 2-cycle
    assert acyclicity(Wc) > 0.1 and not is_dag(Wc) and topological_order(Wc) is None
    assert acyclicity(np.diag(np.full(3, 0.5))) == pytest.approx(3 * (np.exp(0.25) - 1))   # self-loops


def test_acyclicity_gradient_finite_differences():
    rng = np.random.default_rng(0)
    W = rng.normal(scale=0.5, size=(5, 5))
    G = acyclicity_grad(W)
    eps = 1e-6
    for i, j in [(0, 1), (2, 2), (4, 0), (3, 1)]:
        E = np.zeros_like(W)
        E[i, j] = eps
        fd = (acyclicity(W + E) - acyclicity(W - E)) / (2 * eps)
        assert G[i, j] == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_sem_covariance_and_score_forms():
    _, W, X = _data(d=4, k=1, n=200000, seed=2)
    inv = np.linalg.inv(np.eye(4) - W)
    assert np.allclose(np.cov(X.T, bias=True), inv.T @ inv, rtol=0.05, atol=0.05)
    assert ls_score(X, W) == pytest.approx(0.5 * 4, rel=0.02)          # noise variances 1
    assert ls_score_gram(X.T @ X / X.shape[0], W) == pytest.approx(ls_score(X, W), rel=1e-10)


def test_structural_metrics_counts():
    B = np.zeros((4, 4))
    B[0, 1] = B[1, 2] = B[2, 3] = 1
    E = np.zeros((4, 4))
    E[1, 0] = E[1, 2] = E[0, 3] = 1       # one reversed, one correct, one extra, one missing
    m = structural_metrics(B, E)
    assert (m["reverse"], m["extra"], m["missing"], m["shd"]) == (1, 1, 1, 3)
    assert m["tpr"] == pytest.approx(1 / 3) and m["fdr"] == pytest.approx(2 / 3)
    assert structural_metrics(B, B)["shd"] == 0


def test_order_regression_matches_lstsq_per_node():
    _, _, X = _data(d=6, k=2, n=300, seed=4)
    order = [3, 0, 5, 1, 4, 2]
    W, score = order_regression(X, order)
    assert np.all(W[~order_mask(order)] == 0) and is_dag(W)
    for k, j in enumerate(order):
        if k:
            coef = np.linalg.lstsq(X[:, order[:k]], X[:, j], rcond=None)[0]
            assert np.allclose(W[order[:k], j], coef, atol=1e-9)
    assert score == pytest.approx(ls_score(X, W), rel=1e-10)
    # ridge: closed form of each node's regression
    Wr, _ = order_regression(X, order, lambda2=0.5)
    P, j = order[:3], order[3]
    S = X.T @ X / X.shape[0]
    assert np.allclose(Wr[P, j], np.linalg.solve(S[np.ix_(P, P)] + 0.5 * np.eye(3), S[P, j]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_topo_never_increases_score_and_stays_consistent(seed):
    B, W, X = _data(d=8, k=2, n=500, seed=seed)
    start = np.random.default_rng(seed + 10).permutation(8)
    _, start_score = order_regression(X, start)
    res = topo_swaps(X, start)
    assert res.scores[0] == pytest.approx(start_score)
    assert np.all(np.diff(res.scores) < 0) and res.score <= start_score
    assert is_dag(res.W) and np.all(res.W[~order_mask(res.order)] == 0)
    assert res.score == pytest.approx(ls_score(X, res.W), rel=1e-9)
    assert res.local_optimum
    # local optimum: no single swap of two nodes lowers the score
    for p in range(8):
        for q in range(p + 1, 8):
            o = list(res.order)
            o[p], o[q] = o[q], o[p]
            assert order_regression(X, o)[1] >= res.score * (1 - 1e-9)


def test_topo_from_true_order_keeps_a_true_order_score():
    B, W, X = _data(d=7, k=1, n=5000, seed=5)
    res = topo_swaps(X, order_from_dag(W))
    assert res.score <= ls_score(X, W)     # dense refit of a true order can only fit better
    assert structural_metrics(B, np.where(np.abs(res.W) > 0.3, res.W, 0))["shd"] == 0


def test_notears_recovers_tiny_dag():
    B = np.zeros((3, 3))
    B[0, 1] = B[1, 2] = 1
    W = B * np.array([[0, 1.5, 0], [0, 0, -1.2], [0, 0, 0]])
    X = simulate_linear_sem(W, 5000, rng=0)
    res = notears_linear(X, lbfgs_maxiter=200)   # bounded inner solves keep the test fast
    assert res.h <= 1e-8 and is_dag(res.W)
    assert structural_metrics(B, res.W)["shd"] == 0
    assert np.allclose(res.W, W, atol=0.1)


def test_threshold_to_dag_breaks_cycles():
    W = np.array([[0, 1.0, 0], [0, 0, 0.8], [0.4, 0, 0]])
    out, thr = threshold_to_dag(W, 0.3)
    assert is_dag(out) and thr > 0.4 and out[0, 1] == 1.0 and out[1, 2] == 0.8


def test_bad_inputs():
    with pytest.raises(ValueError, match="graph_type"):
        random_dag(5, 1, "BA")
    with pytest.raises(ValueError, match="d"):
        random_dag(1, 1)
    with pytest.raises(ValueError, match="cycle"):
        simulate_linear_sem(np.array([[0, 1.0], [1.0, 0]]), 10)
    with pytest.raises(ValueError, match="order"):
        order_regression(np.ones((5, 3)), [0, 1, 1])
    with pytest.raises(ValueError, match="lambda2"):
        order_regression(np.ones((5, 3)), [0, 1, 2], lambda2=-1)
    with pytest.raises(ValueError, match="size_large"):
        topo_swaps(np.ones((5, 3)), [0, 1, 2], size_small=10, size_large=5)
    with pytest.raises(ValueError, match="cycle"):
        order_from_dag(np.array([[0, 1.0], [1.0, 0]]))
    with pytest.raises(ValueError, match="X"):
        notears_linear(np.ones(5))
    with pytest.raises(ValueError, match="lambda1"):
        notears_linear(np.ones((5, 3)), lambda1=-0.1)
    with pytest.raises(ValueError, match="W"):
        ls_score(np.ones((5, 3)), np.ones((2, 3)))
