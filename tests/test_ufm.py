"""Tests for optrepro.problems.ufm: the deep linear unconstrained feature model, its training, its per-layer
features and the closed-form minimiser of Dang et al. (2023)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from optrepro.metrics import class_means, collapse_metrics, frame_distance
from optrepro.problems.ufm import (
    DeepLinearUFM,
    imbalanced_collapse,
    layer_classifiers,
    layer_features,
    train_ufm,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: extra threads only add overhead


def model(sizes=(3, 2, 4), width=5, depth=3, **kw):
    kw.setdefault("dtype", torch.float64)
    return DeepLinearUFM(list(sizes), width, depth, generator=torch.Generator().manual_seed(0), **kw)


# ------------------------------------------------------------------- the objective

@pytest.mark.parametrize("bias", [False, True])
def test_mse_objective_matches_numpy(bias):
    m = model(bias=bias, weight_decay=[1e-2, 2e-2, 3e-2], feature_decay=5e-3)
    if bias:
        with torch.no_grad():
            m.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    H = m.H.detach().numpy()
    Ws = [w.detach().numpy() for w in m.weights]
    out = Ws[2] @ Ws[1] @ Ws[0] @ H + (m.bias.detach().numpy()[:, None] if bias else 0)
    Y = np.zeros((3, 9))
    Y[[0, 0, 0, 1, 1, 2, 2, 2, 2], np.arange(9)] = 1
    ref = ((out - Y) ** 2).sum() / (2 * 9) + sum(lam / 2 * (w**2).sum() for lam, w in zip([1e-2, 2e-2, 3e-2], Ws))
    ref += 5e-3 / 2 * (H**2).sum()
    assert float(m.objective().detach()) == pytest.approx(ref, rel=1e-12)
    assert m.labels.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert tuple(m.logits().shape) == (3, 9)


def test_cross_entropy_objective_matches_manual_softmax():
    m = model(loss="ce", weight_decay=0.0, feature_decay=0.0, init_std=1.0)
    z = m.logits().detach().numpy()
    logp = z - np.log(np.exp(z).sum(axis=0, keepdims=True))
    ref = -logp[m.labels.numpy(), np.arange(9)].mean()
    assert float(m.objective().detach()) == pytest.approx(ref, rel=1e-12)


def test_layer_features_and_classifiers_compose_to_the_logits():
    m = model(depth=4, bias=True)
    feats, clfs = layer_features(m), layer_classifiers(m)
    assert len(feats) == len(clfs) == 4
    assert tuple(feats[0].shape) == (9, 5) and tuple(clfs[0].shape) == (3, 5)
    torch.testing.assert_close(feats[0], m.H.detach().T)
    torch.testing.assert_close(feats[2], (m.weights[1] @ m.weights[0] @ m.H).detach().T)
    torch.testing.assert_close(clfs[-1], m.weights[-1].detach())
    for H, W in zip(feats, clfs):
        torch.testing.assert_close(W @ H.T + m.bias.detach()[:, None], m.logits().detach())


def test_training_matches_torch_sgd_with_momentum():
    """train_ufm's steps equal torch.optim.SGD(momentum) steps on the same objective."""
    a, b = model(bias=True), model(bias=True)
    opt = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        b.objective().backward()
        opt.step()
    trace = train_ufm(a, 5, lr=0.05, momentum=0.9, record_every=2, measure=lambda m: {"h": float(m.H.sum())})
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-13, atol=1e-15)
    assert trace.steps == [0, 2, 4, 5] and len(trace.records) == 4
    assert trace.objective[-1] < trace.objective[0]
    assert trace.objective[-1] == pytest.approx(float(b.objective().detach()), rel=1e-13)


# ------------------------------------------------------------------- the closed form

def brute_force_mean_norms(sizes, depth, lam_w, lam_h):
    """Per class, minimise over the common squared singular value z of the layers (balancedness:
    lam_w z = lam_h n_k ||h_k||^2) the collapsed objective n_k/2 (p - 1)^2 + N (M + 1) lam_w z / 2, with
    p^2 = lam_w z^{M+1} / (lam_h n_k), on a fine log grid (then refined); returns ||h_k||."""
    sizes = np.asarray(sizes, float)
    n_total, out = sizes.sum(), []
    for n in sizes:
        def objective(z, n=n):
            p = np.sqrt(lam_w * z ** (depth + 1) / (lam_h * n))
            return n / 2 * (p - 1) ** 2 + n_total * (depth + 1) * lam_w * z / 2
        z = np.exp(np.linspace(-30, 8, 400001))
        best = z[np.argmin(objective(z))]
        z = np.linspace(best * 0.999, best * 1.001, 200001)
        best = z[np.argmin(objective(z))]
        out.append(np.sqrt(lam_w * best / (lam_h * n)) if objective(best) < n / 2 else 0.0)
    return np.array(out)


def test_closed_form_depth_one_is_the_known_ufm_solution():
    # M = 1: p_k = 1 - N sqrt(lam_w lam_h / n_k) and ||h_k||^2 = p_k sqrt(lam_w / (lam_h n_k)) (plain UFM, MSE)
    sizes, lw, lh = np.array([200, 100, 50, 50]), 5e-4, 1e-3
    pred = imbalanced_collapse(sizes, 1, lw, lh)
    p = 1 - sizes.sum() * np.sqrt(lw * lh / sizes)
    np.testing.assert_allclose(pred.outputs, p, rtol=1e-12)
    np.testing.assert_allclose(pred.mean_norms**2, p * np.sqrt(lw / (lh * sizes)), rtol=1e-12)


@pytest.mark.parametrize("sizes, depth, lam_w, lam_h", [
    ([200, 100, 50, 50], 3, 5e-4, 5e-4),
    ([20, 10, 5], 2, 1e-2, 1e-3),
    ([500, 300, 100, 20, 10], 6, 5e-4, 5e-4),
])
def test_closed_form_matches_brute_force_minimisation(sizes, depth, lam_w, lam_h):
    pred = imbalanced_collapse(sizes, depth, lam_w, lam_h)
    np.testing.assert_allclose(pred.mean_norms, brute_force_mean_norms(sizes, depth, lam_w, lam_h), rtol=1e-5)
    assert np.all(np.diff(pred.mean_norms[np.argsort(sizes)]) <= 0)  # larger classes: shorter means
    # the rows of W_M...W_1 have squared length s_k^{2M} = N lam_h x_k^M, and W h_k = p_k
    np.testing.assert_allclose(pred.classifier_row_norms[0] ** 2, np.sum(sizes) * lam_h * pred.x**depth, rtol=1e-10)
    np.testing.assert_allclose(pred.classifier_row_norms[0] * pred.mean_norms, pred.outputs, rtol=1e-12)


def test_minority_collapse_when_decay_is_large():
    pred = imbalanced_collapse([100, 100, 5], 2, 2e-2, 2e-2)
    assert pred.mean_norms[2] == 0 and pred.outputs[2] == 0 and np.all(pred.mean_norms[:2] > 0)
    np.testing.assert_allclose(pred.mean_norms, brute_force_mean_norms([100, 100, 5], 2, 2e-2, 2e-2), atol=1e-6)


def test_gradient_descent_reaches_the_closed_form():
    """The independent check: GD on the full matrix problem converges to the predicted geometry and value."""
    torch.manual_seed(0)
    sizes, depth, lam = [12, 6, 3], 3, [1e-3, 2e-3, 4e-3]  # unequal decays: only their product enters
    m = DeepLinearUFM(sizes, 8, depth, weight_decay=lam, feature_decay=3e-3, init_std=0.3, dtype=torch.float64)
    trace = train_ufm(m, 1200, lr=0.5, momentum=0.9)
    pred = imbalanced_collapse(sizes, depth, lam, 3e-3)
    assert trace.objective[-1] == pytest.approx(pred.objective, rel=1e-6)
    for layer, (H, W) in enumerate(zip(layer_features(m), layer_classifiers(m))):
        mu = class_means(H, m.labels)
        np.testing.assert_allclose(mu.norm(dim=1).numpy(), pred.layer_mean_norms[layer], rtol=1e-4)
        np.testing.assert_allclose(W.norm(dim=1).numpy(), pred.classifier_row_norms[layer], rtol=1e-4)
        assert frame_distance(mu / mu.norm(dim=1, keepdim=True), "orthogonal") < 1e-5
        assert collapse_metrics(H, m.labels, W, center=False).nc1 < 1e-8


def test_balanced_bias_reaches_a_simplex_etf():
    torch.manual_seed(1)
    m = DeepLinearUFM([6] * 4, 8, 2, bias=True, weight_decay=2e-3, feature_decay=2e-3, init_std=0.3,
                      dtype=torch.float64)
    train_ufm(m, 800, lr=0.5, momentum=0.9)
    for H, W in zip(layer_features(m), layer_classifiers(m)):
        c = collapse_metrics(H, m.labels, W, m.bias)
        assert c.nc1 < 1e-8 and c.nc2_means_etf < 1e-4 and c.nc2_classifier_etf < 1e-4 and c.nc3 < 1e-3
        assert c.nc2_classifier_orthogonal > 0.4


# ------------------------------------------------------------------- bad input

def test_bad_input_raises_one_line_value_errors():
    cases = [
        (lambda: DeepLinearUFM([3], 4, 2), "at least 2 class sizes"),
        (lambda: DeepLinearUFM([3, 0], 4, 2), "invalid class size 0"),
        (lambda: DeepLinearUFM([3, 2], 4, 0), "invalid depth 0"),
        (lambda: DeepLinearUFM([3, 2], 4, 2, loss="hinge"), "choose one of mse, ce"),
        (lambda: DeepLinearUFM([3, 2], 4, 2, weight_decay=[1e-3]), "one number or 2"),
        (lambda: DeepLinearUFM([3, 2], 4, 2, feature_decay=-1.0), "invalid feature_decay -1.0"),
        (lambda: train_ufm(model(), 10, lr=0.0), "invalid lr 0.0"),
        (lambda: train_ufm(model(), 10, lr=0.1, momentum=1.0), "invalid momentum 1.0"),
        (lambda: train_ufm(model(), -1, lr=0.1), "invalid steps -1"),
        (lambda: imbalanced_collapse([3, 2], 2, 0.0, 1e-3), "must be > 0"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert message in str(err.value) and "\n" not in str(err.value)
