import copy

import pytest
import torch

from optrepro.papers.neural_collapse_deep_linear import MLPDeepLinear, measure_head, objective, train_network


def _data(n=24, d=5, k=3, seed=0, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g, dtype=torch.float64) * 3
    y = torch.arange(n) % k
    return centres[y] + noise * torch.randn(n, d, generator=g, dtype=torch.float64), y


def _model(bias=False, seed=1, depth=3):
    return MLPDeepLinear(5, 3, [8, 6], depth, bias=bias, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bias", [False, True])
def test_head_factorisation_gives_the_logits(bias):
    X, y = _data()
    model = _model(bias)
    if bias:
        with torch.no_grad():
            model.bias.copy_(torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))
    feats, clfs = model.head_features(X), model.head_classifiers()
    assert len(feats) == len(clfs) == 3 and feats[0].shape == (24, 6) and clfs[0].shape == (3, 6)
    b = 0 if model.bias is None else model.bias.detach()
    for H, W in zip(feats, clfs):
        torch.testing.assert_close(H @ W.T + b, model(X).detach())
    assert torch.all(feats[0] >= 0)  # the backbone ends in a ReLU


def test_objective_matches_hand_formula():
    X, y = _data()
    model = _model(bias=True)
    Z, H = model(X), model.features(X)
    Y = torch.nn.functional.one_hot(y, 3).double()
    reg = sum((p**2).sum() for n, p in model.named_parameters() if n != "bias")
    expected = ((Z - Y) ** 2).sum() / 48 + 0.01 / 2 * reg + 0.1 / 48 * (H**2).sum()
    torch.testing.assert_close(objective(model, X, y, 0.01, 0.1), expected)


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_trainer_matches_torch_optim(kind):
    X, y = _data()
    ours, ref = _model(), _model()
    train_network(ours, X, y, 5, 0.01, optimizer=kind, weight_decay=0.01, momentum=0.9)
    opt = (torch.optim.Adam(ref.parameters(), lr=0.01, weight_decay=0.01) if kind == "adam"
           else torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9, weight_decay=0.01))
    for _ in range(5):
        opt.zero_grad()
        objective(ref, X, y).backward()
        opt.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)


def test_minibatch_visits_batches_and_records():
    X, y = _data()
    model = _model()
    start = copy.deepcopy(model.state_dict())
    trace = train_network(model, X, y, 7, 0.01, batch_size=5, record_every=3, generator=torch.Generator().manual_seed(0))
    assert trace.steps == [0, 3, 6, 7] and len(trace.objective) == 4
    assert any(not torch.equal(v, model.state_dict()[k]) for k, v in start.items())


def test_training_reaches_zero_error_and_collapse():
    torch.set_num_threads(1)
    X, y = _data(n=30, noise=2.0)
    model = _model(seed=2)
    first = measure_head(model, X, y)
    train_network(model, X, y, 400, 0.01, weight_decay=1e-3, feature_decay=1e-3)
    last = measure_head(model, X, y)
    assert last.accuracy == 1.0
    for a, b in zip(first.layers, last.layers):
        assert b.nc1 < 0.1 * a.nc1 and b.nc1 < 0.01


def test_bad_arguments():
    X, y = _data()
    with pytest.raises(ValueError, match="head_depth"):
        MLPDeepLinear(5, 3, [8], 0)
    with pytest.raises(ValueError, match="hidden"):
        MLPDeepLinear(5, 3, [], 2)
    with pytest.raises(ValueError, match="optimizer"):
        train_network(_model(), X, y, 1, 0.1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="lr"):
        train_network(_model(), X, y, 1, 0.0)
    with pytest.raises(ValueError, match="labels"):
        train_network(_model(), X, y[:-1], 1, 0.1)
