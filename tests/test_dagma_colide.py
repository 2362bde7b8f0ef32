"""DAGMA's log-det acyclicity and path-following solver; CoLiDE's concomitant scores (optrepro.dag.dagma, .colide)."""
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from optrepro.dag.colide import ConcomitantScore, colide
from optrepro.dag.sem import heteroscedastic_scales, normalized_shd, simulate_heteroscedastic_sem
from optrepro.dag.dagma import (LeastSquaresScore, centered_gram, dagma_linear, logdet_acyclicity,
                                logdet_acyclicity_grad, path_following)
from optrepro.dag.sem import edge_weights, random_dag, structural_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


def test_h_zero_iff_acyclic():
    rng = np.random.default_rng(0)
    for s in (1.0, 0.7):
        W = edge_weights(random_dag(6, 2, "ER", rng), rng=rng) * 0.3
        assert abs(logdet_acyclicity(W, s)) < 1e-12
        C = W.copy()
        i, j = np.argwhere(W != 0)[0]
        C[j, i] = 0.2                       # close a 2-cycle
        assert logdet_acyclicity(C, s) > 1e-4
    assert logdet_acyclicity(np.diag([0.0, 0.3, 0.0])) > 0   # a self-loop is a cycle


def test_h_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    W = 0.25 * rng.standard_normal((5, 5))
    G = logdet_acyclicity_grad(W, 0.9)
    eps = 1e-6
    for i, j in [(0, 1), (2, 2), (4, 0), (3, 1)]:
        E = np.zeros_like(W)
        E[i, j] = eps
        fd = (logdet_acyclicity(W + E, 0.9) - logdet_acyclicity(W - E, 0.9)) / (2 * eps)
        assert fd == pytest.approx(G[i, j], rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("kind", ["ev", "nv"])
def test_closed_form_sigma_minimizes_concomitant_score(kind):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 4)) * np.array([0.5, 1.0, 2.0, 3.0])
    score = ConcomitantScore(centered_gram(X), kind)
    W = 0.3 * rng.standard_normal((4, 4))
    sig = score.scale(W)
    if kind == "ev":
        ref = minimize_scalar(lambda t: score.value(W, t), bounds=(1e-3, 10), method="bounded",
                              options={"xatol": 1e-10})
        assert sig == pytest.approx(ref.x, rel=1e-5)
    else:
        for j in range(4):
            def f(t, j=j):
                v = np.array(sig, dtype=float)
                v[j] = t
                return score.value(W, v)
            ref = minimize_scalar(f, bounds=(1e-3, 10), method="bounded", options={"xatol": 1e-10})
            assert sig[j] == pytest.approx(ref.x, rel=1e-5)
    # the score's gradient in W (sigma fixed) against finite differences
    G, eps = score.grad(W, sig), 1e-6
    E = np.zeros_like(W)
    E[1, 3] = eps
    fd = (score.value(W + E, sig) - score.value(W - E, sig)) / (2 * eps)
    assert fd == pytest.approx(G[1, 3], rel=1e-6)


def test_least_squares_score_gradient():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 3))
    score = LeastSquaresScore(centered_gram(X))
    W, eps = 0.2 * rng.standard_normal((3, 3)), 1e-6
    E = np.zeros_like(W)
    E[0, 2] = eps
    fd = (score.value(W + E) - score.value(W - E)) / (2 * eps)
    assert fd == pytest.approx(score.grad(W)[0, 2], rel=1e-6)


def test_dagma_recovers_tiny_dag_exactly():
    W_true = np.array([[0.0, 1.5, 0.0, 0.0], [0.0, 0.0, -1.2, 0.0], [0.0, 0.0, 0.0, 0.8], [0.0, 0.0, 0.0, 0.0]])
    X = simulate_heteroscedastic_sem(W_true, 5000, np.ones(4), rng=0)
    res = dagma_linear(X, lambda1=0.02, warm_iter=1000, max_iter=3000, lr=3e-3, checkpoint=100)
    assert structural_metrics(W_true, res.W)["shd"] == 0
    assert np.max(np.abs(res.W - W_true)) < 0.1
    assert res.h < 1e-3


def test_colide_nv_recovers_and_estimates_scales():
    rng = np.random.default_rng(4)
    B = random_dag(5, 1, "ER", rng)
    W_true = edge_weights(B, rng=rng)
    sig = heteroscedastic_scales(5, rng=rng)
    X = simulate_heteroscedastic_sem(W_true, 5000, sig, rng)
    res = colide(X, "nv", lambda1=0.02, warm_iter=1000, max_iter=3000, lr=3e-3, checkpoint=100)
    assert normalized_shd(B, res.W) == 0
    np.testing.assert_allclose(res.scale, sig, rtol=0.1)


def test_bad_inputs():
    with pytest.raises(ValueError, match="kind"):
        ConcomitantScore(np.eye(3), "xv")
    with pytest.raises(ValueError, match="domain"):
        logdet_acyclicity(np.array([[0.0, 2.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="square"):
        logdet_acyclicity(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="noise_scales"):
        simulate_heteroscedastic_sem(np.zeros((3, 3)), 10, [1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="cycle"):
        simulate_heteroscedastic_sem(np.array([[0.0, 1.0], [1.0, 0.0]]), 10, [1.0, 1.0])
    with pytest.raises(ValueError, match="mu_factor"):
        path_following(LeastSquaresScore(np.eye(3)), mu_factor=2.0)
    with pytest.raises(ValueError, match="lr"):
        dagma_linear(np.ones((10, 3)), lr=0.0)
    with pytest.raises(ValueError, match="var_low"):
        heteroscedastic_scales(3, var_low=5.0, var_high=1.0)
