"""Projection training (PJAX, arXiv:2506.05878): each projection against an independent nearest point, the
consensus step, and the Douglas-Rachford solver on a tiny separable problem."""
import itertools

import numpy as np
import pytest
import torch
from optrepro.data.image_classification import classification_data
from optrepro.constrained.projection_training import (
    MLPParams,
    ProjectionMLP,
    accuracy,
    init_mlp,
    label_violation,
    predict,
    project_affine_rows,
    project_dot_graph,
    project_label_box,
    project_relu_graph,
    projection_update,
    train_adam,
    train_projection,
)
from scipy.optimize import minimize

pytestmark = pytest.mark.usefixtures("one_thread")
D64 = torch.float64


def test_relu_projection_matches_dense_search_of_the_graph():
    g = torch.Generator().manual_seed(0)
    z0, a0 = (torch.randn(100, generator=g, dtype=D64) * 2 for _ in range(2))
    z, a = project_relu_graph(z0, a0)
    t = torch.linspace(-8, 8, 40001, dtype=D64)                      # dense sample of the graph (step 4e-4)
    brute = (t[None] - z0[:, None]) ** 2 + (torch.relu(t)[None] - a0[:, None]) ** 2
    ours = (z - z0) ** 2 + (a - a0) ** 2
    assert bool((ours <= brute.min(1).values + 1e-8).all())
    assert bool((brute.min(1).values <= ours + 1e-5).all())             # and the grid gets as close
    assert torch.equal(a, torch.relu(z))
    z2, a2 = project_relu_graph(z, a)                               # idempotent
    assert torch.equal(z2, z) and torch.equal(a2, a)


def _dot_brute(v0, a0, o0, starts=6, seed=0):
    n = len(v0)
    f = lambda w: ((w[:n] - v0) ** 2).sum() + ((w[n:] - a0) ** 2).sum() + (w[:n] @ w[n:] - o0) ** 2
    rng = np.random.default_rng(seed)
    best = np.inf
    for k in range(starts):
        w0 = np.concatenate([v0, a0]) + (0 if k == 0 else rng.normal(scale=2.0, size=2 * n))
        best = min(best, minimize(f, w0, method="BFGS", options={"gtol": 1e-12}).fun)
    return best


@pytest.mark.parametrize("n", [1, 3])
def test_dot_projection_is_the_nearest_point_of_the_bilinear_set(n):
    g = torch.Generator().manual_seed(n)
    v0, a0 = torch.randn(5, n, generator=g, dtype=D64), torch.randn(5, n, generator=g, dtype=D64)
    o0 = torch.randn(5, generator=g, dtype=D64) * 3
    v, a, o = project_dot_graph(v0, a0, o0, iters=30)
    torch.testing.assert_close((v * a).sum(-1), o, atol=1e-10, rtol=0)    # on the set
    ours = ((v - v0) ** 2).sum(-1) + ((a - a0) ** 2).sum(-1) + (o - o0) ** 2
    for i in range(5):
        brute = _dot_brute(v0[i].numpy(), a0[i].numpy(), float(o0[i]), seed=i)
        assert float(ours[i]) <= brute + 1e-8
    v2, a2, o2 = project_dot_graph(v, a, o, iters=30)                  # idempotent
    torch.testing.assert_close((v2, a2, o2), (v, a, o), atol=1e-9, rtol=0)


def test_dot_projection_converges_across_scales():
    g = torch.Generator().manual_seed(3)
    for scale in (0.1, 1.0, 10.0):
        v0, a0 = (torch.randn(2000, 8, generator=g, dtype=D64) * scale for _ in range(2))
        o0 = torch.randn(2000, generator=g, dtype=D64) * 3 * scale ** 2
        v, a, o = project_dot_graph(v0, a0, o0, iters=12)
        assert float(((v * a).sum(-1) - o).abs().max()) < 1e-8 * max(1.0, scale ** 2)


def test_affine_and_label_projections_match_cvxpy():
    cp = pytest.importorskip("cvxpy")
    g = torch.Generator().manual_seed(1)
    w0, x = torch.randn(5, generator=g, dtype=D64), torch.randn(5, generator=g, dtype=D64)
    b0, z0 = torch.randn((), generator=g, dtype=D64), torch.randn((), generator=g, dtype=D64)
    w, b, z = project_affine_rows(w0, b0, z0, x)
    W, B, Z = cp.Variable(5), cp.Variable(), cp.Variable()
    cp.Problem(cp.Minimize(cp.sum_squares(W - w0.numpy()) + (B - float(b0)) ** 2 + (Z - float(z0)) ** 2),
               [Z == W @ x.numpy() + B]).solve()
    np.testing.assert_allclose(w.numpy(), W.value, atol=1e-6)
    assert abs(float(b) - B.value) < 1e-6 and abs(float(z) - Z.value) < 1e-6
    o0 = torch.randn(4, 6, generator=g, dtype=D64)
    y = torch.tensor([0, 5, 2, 2])
    o = project_label_box(o0, y, 0.7)
    for i in range(4):
        out = cp.Variable(6)
        cons = [out[k] <= 0 for k in range(6) if k != int(y[i])] + [out[int(y[i])] >= 0.7]
        cp.Problem(cp.Minimize(cp.sum_squares(out - o0[i].numpy())), cons).solve()
        np.testing.assert_allclose(o[i].numpy(), out.value, atol=1e-6)
    torch.testing.assert_close(project_label_box(o, y, 0.7), o)       # idempotent
    assert float(label_violation(o, y, 0.7).max()) == 0.0


def test_consensus_is_an_orthogonal_projection():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 4, generator=g, dtype=D64)
    u = ProjectionMLP.from_forward(init_mlp(4, 3, 2, generator=g, dtype=D64), x)
    u = ProjectionMLP(*[t + torch.randn(t.shape, generator=g, dtype=D64) for t in u.tensors()])
    c = u.consensus()
    c2 = c.consensus()
    assert all(torch.allclose(s, t) for s, t in zip(c.tensors(), c2.tensors()))   # idempotent
    other = ProjectionMLP(*[t + torch.randn(t.shape, generator=g, dtype=D64) for t in u.tensors()]).consensus()
    inner = sum(float(((a - b) * (d - e)).sum())                                 # <u - Pu, q - Pu> = 0, q in B
                for a, b, d, e in zip(u.tensors(), c.tensors(), other.tensors(), c.tensors()))
    assert abs(inner) < 1e-9


def _blobs(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=g, dtype=D64) * 0.3 + torch.where(y[:, None] == 1, 1.5, -1.5)
    return x, y


def test_douglas_rachford_reaches_a_feasible_point_on_a_separable_problem():
    x, y = _blobs()
    p0 = init_mlp(2, 8, 2, generator=torch.Generator().manual_seed(0), dtype=D64)
    with torch.inference_mode():                                     # no autograd anywhere in the solver
        p, hist = projection_update(p0, x, y, steps=300, method="dr", margin=1.0, record_every=50)
    assert hist[0] > 1.0 and hist[-1] < 2e-3 * hist[0]               # the violation goes to zero ...
    assert all(b < a for a, b in itertools.pairwise(hist[1:]))      # ... steadily
    assert accuracy(p, x, y) == 1.0
    assert float(label_violation(predict(p, x), y, 1.0).max()) < 0.05


def test_training_loops_learn_and_agree_on_shapes():
    x, y = _blobs(40, seed=1)
    p0 = init_mlp(2, 8, 2, generator=torch.Generator().manual_seed(1), dtype=D64)
    r = train_projection(p0, x, y, x, y, epochs=2, batch_size=20, steps=25, eval_every=1,
                         generator=torch.Generator().manual_seed(0))
    assert r.updates == [0, 1, 2, 3, 4] and len(r.update_violation) == 4
    assert r.test_acc[-1] == 1.0 and r.label_violation[-1] < 0.5 * r.label_violation[0]
    assert not r.params.W.requires_grad
    a = train_adam(p0, x, y, x, y, epochs=10, batch_size=20, lr=0.05, generator=torch.Generator().manual_seed(0))
    assert a.test_acc[-1] == 1.0 and a.updates[-1] == 20
    torch.testing.assert_close(p0.W, r.params.W * 0 + p0.W)          # the start is not modified in place


def test_digits_reader_matches_scikit_learn():
    from optrepro.data.image_classification import _digits
    from sklearn.datasets import load_digits

    X, Y = _digits()
    Xs, Ys = load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, Xs)
    np.testing.assert_array_equal(Y, Ys)
    xtr, ytr, xte, yte = classification_data("digits", 1000, seed=3)
    assert xtr.shape == (1000, 64) and xte.shape == (797, 64) and float(xtr.max()) == 1.0
    assert sorted(torch.cat([ytr, yte]).tolist()) == sorted(Ys.tolist())


def test_bad_inputs():
    x, y = _blobs(4)
    p = init_mlp(2, 3, 2, dtype=D64)
    with pytest.raises(ValueError, match="method 'sgd'.*dr, ap"):
        projection_update(p, x, y, steps=3, method="sgd")
    with pytest.raises(ValueError, match="steps 0"):
        projection_update(p, x, y, steps=0)
    with pytest.raises(ValueError, match="margin -1"):
        projection_update(p, x, y, steps=1, margin=-1.0)
    with pytest.raises(ValueError, match="iters 0"):
        project_dot_graph(x, x, y.to(D64), iters=0)
    with pytest.raises(ValueError, match="dataset 'cifar'.*digits, mnist"):
        classification_data("cifar", 10)
    with pytest.raises(ValueError, match="n_train 5000"):
        classification_data("digits", 5000)
    with pytest.raises(FileNotFoundError, match="mnist.npz"):
        classification_data("mnist", 10, data_dir="/nonexistent")
    with pytest.raises(ValueError, match="k 1"):
        init_mlp(2, 3, 1)
    assert isinstance(p, MLPParams)
