"""Manifold Lipschitz learning (optrepro.constrained.manifold_smooth) against brute force and constructed cases."""
import numpy as np
import pytest
import torch

from optrepro.constrained.manifold_smooth import (dual_step, knn_graph, laplacian, lipschitz_estimate,
                                                  local_smoothness, train_smooth)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_knn_graph_matches_brute_force():
    x = torch.rand(2, 30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = knn_graph(x, 4)
    for r in range(2):
        d = np.linalg.norm(x[r, :, None].numpy() - x[r, None].numpy(), axis=2)
        np.fill_diagonal(d, np.inf)
        ref = np.sort(d, axis=1)[:, :4]
        np.testing.assert_allclose(g.dist[r].numpy(), ref, rtol=1e-12)
        assert (g.idx[r] != torch.arange(30)[:, None]).all()


def test_laplacian_quadratic_form_is_weighted_squared_differences():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(25, 2, generator=gen, dtype=torch.float64)
    f = torch.randn(1, 25, generator=gen, dtype=torch.float64)
    g = knn_graph(x, 5)
    L = laplacian(g)[0]
    assert torch.allclose(L, L.T) and torch.allclose(L.sum(1), torch.zeros(25, dtype=torch.float64))
    # brute force: A_ij = 1/(k d_ij^2) on kNN edges, W = (A + A^T)/2, f^T L f = 1/2 sum_ij W_ij (f_i - f_j)^2
    A = np.zeros((25, 25))
    for i in range(25):
        for j, dij in zip(g.idx[0, i].tolist(), g.dist[0, i].tolist()):
            A[i, j] = 1.0 / (5 * dij ** 2)
    W = 0.5 * (A + A.T)
    fv = f[0].numpy()
    brute = 0.5 * (W * (fv[:, None] - fv[None, :]) ** 2).sum()
    quad = float(f[0] @ L @ f[0])
    assert quad == pytest.approx(brute, rel=1e-12)
    assert quad == pytest.approx(0.5 * float(local_smoothness(f, g).sum()), rel=1e-12)


def test_lipschitz_estimate_of_linear_function():
    gen = torch.Generator().manual_seed(2)
    a = torch.tensor([3.0, -4.0], dtype=torch.float64)
    u = torch.tensor([0.6, 0.8], dtype=torch.float64)            # the 1-D manifold: a line along u
    t = torch.rand(40, generator=gen, dtype=torch.float64) * 5
    x = t[:, None] * u
    g = knn_graph(x, 3)
    f = (x @ a)[None]
    slope = abs(float(a @ u))                                     # |a . u| = 0.6 * 3 - 0.8 * 4 = 1.4
    assert float(lipschitz_estimate(f, g)) == pytest.approx(slope, rel=1e-12)
    assert torch.allclose(local_smoothness(f, g), torch.full((1, 40), slope ** 2, dtype=torch.float64))
    # in the plane the edge slopes are directional derivatives: at most ||a|| = 5, and close to it
    x2 = torch.rand(300, 2, generator=gen, dtype=torch.float64)
    lip2 = float(lipschitz_estimate((x2 @ a)[None], knn_graph(x2, 8)))
    assert 4.9 < lip2 <= 5.0 + 1e-12


def test_dual_update_is_projected_ascent():
    lam = torch.tensor([0.0, 0.5, 2.0])
    slack = torch.tensor([-1.0, -1.0, 3.0])
    assert torch.equal(dual_step(lam, slack, 0.5), torch.tensor([0.0, 0.0, 3.5]))


def test_primal_dual_multipliers_concentrate_where_constraints_bind():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 60, 2, generator=gen, dtype=torch.float64)
    y = (x[..., 0] > 0.5).long()
    lab = torch.zeros(1, 60, dtype=torch.bool)
    lab[0, :6] = True
    g = knn_graph(x, 5)
    res = train_smooth(x, y, lab, g, "primal_dual", steps=150, generator=gen)
    lam, s = res.lam[0], local_smoothness(res.model(x).detach(), g)[0]
    assert (lam >= 0).all()
    # dual ascent raises lambda_i where s_i exceeds rho: the multipliers correlate with the point-wise smoothness
    assert np.corrcoef(lam.numpy(), s.numpy())[0, 1] > 0.3
    assert len(res.rho) == len(res.loss) > 1


@pytest.mark.parametrize("kwargs, msg", [
    (dict(method="sgd"), "unknown method 'sgd'"),
    (dict(steps=0), "invalid steps 0"),
    (dict(eps=-0.1), "invalid eps -0.1"),
    (dict(gamma=-1.0), "invalid gamma -1.0"),
])
def test_bad_training_inputs(kwargs, msg):
    x = torch.rand(1, 10, 2, dtype=torch.float64)
    args = dict(method="erm", steps=5)
    args.update(kwargs)
    method = args.pop("method")
    with pytest.raises(ValueError, match=msg):
        train_smooth(x, torch.zeros(1, 10, dtype=torch.long), torch.ones(1, 10, dtype=torch.bool), knn_graph(x, 3),
                     method, **args)


def test_bad_graph_inputs():
    x = torch.rand(10, 2)
    with pytest.raises(ValueError, match="invalid k 10"):
        knn_graph(x, 10)
    with pytest.raises(ValueError, match="invalid k 0"):
        knn_graph(x, 0)
    with pytest.raises(ValueError, match="duplicate points"):
        knn_graph(torch.zeros(5, 2), 2)
    with pytest.raises(ValueError, match="invalid f shape"):
        local_smoothness(torch.zeros(1, 9), knn_graph(x, 3))
    with pytest.raises(ValueError, match="every draw needs at least one labelled point"):
        train_smooth(x[None], torch.zeros(1, 10, dtype=torch.long), torch.zeros(1, 10, dtype=torch.bool),
                     knn_graph(x, 3), "erm", steps=1)


def test_two_moons_matches_sklearn():
    from sklearn.datasets import make_moons

    from optrepro.data.two_moons import two_moons
    x, y = two_moons(101, 0.0, np.random.default_rng(0))
    xs, ys = make_moons(101, noise=0.0, shuffle=False)
    order = np.lexsort((x[:, 1], x[:, 0], y))
    order_s = np.lexsort((xs[:, 1], xs[:, 0], ys))
    np.testing.assert_allclose(x[order], xs[order_s], atol=1e-12)
    np.testing.assert_array_equal(y[order], ys[order_s])
    xn, _ = two_moons(4000, 0.1, np.random.default_rng(1))
    assert np.std(xn - two_moons(4000, 0.0, np.random.default_rng(1))[0]) == pytest.approx(0.1, rel=0.05)
