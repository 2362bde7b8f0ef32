"""The problem suite (optrepro.problems.suite, .classification, .char_lm): data, models, losses, metrics, registry."""
import math
import time

import numpy as np
import pytest
import torch
from optrepro.optim import SGD, Adam
from optrepro.problems import PROBLEMS, batch_indices, get_problem
from optrepro.train import compare, fit
from torch.func import functional_call

# small settings of every problem (mnist1d shrunk so that it is generated in well under a second)
CASES = {
    "logistic": ("logistic", {}),
    "softmax-digits": ("softmax", {"batch_size": 64}),
    "softmax-iris": ("softmax", {"dataset": "iris"}),
    "softmax-mnist1d": ("softmax", {"dataset": "mnist1d", "num_samples": 500}),
    "mlp-digits": ("mlp", {"hidden": (32,), "batch_size": 64}),
    "mlp-mnist1d": ("mlp", {"dataset": "mnist1d", "num_samples": 500, "hidden": (32, 32), "activation": "tanh"}),
    "char_lm": ("char_lm", {"n_train": 256, "n_test": 64}),
}


@pytest.fixture(scope="module")
def imported():
    """Import the data packages once, so that a problem's time budget does not pay for Python imports."""
    import mnist1d.data  # noqa: F401
    import sklearn.datasets  # noqa: F401


def one_line_error(fn, match):
    with pytest.raises(ValueError, match=match) as err:
        fn()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("case", list(CASES))
def test_builds_and_adam_decreases_the_loss_in_seconds(case, one_thread, imported):
    """Build, then 40 Adam steps, in under 2 s of CPU time (process time: the machine's other load not counted)."""
    name, options = CASES[case]
    t0 = time.process_time()
    problem = get_problem(name, seed=1, **options)
    model = problem.model(seed=0)
    trace = fit(problem.loss(model, seed=0), Adam(model.parameters(), lr=1e-2), 40, every=39,
                metrics=problem.metrics(model))
    seconds = time.process_time() - t0
    assert trace.steps == 40 and trace.stopped == "steps"
    assert set(trace.metrics) == {"train_loss", "test_loss", "test_acc"}
    assert trace["train_loss"][-1] < trace["train_loss"][0] - 0.05
    assert trace["test_loss"][-1] < trace["test_loss"][0]
    assert 0 <= trace.last("test_acc") <= 1
    assert seconds < 2.0, f"{case}: {seconds:.2f} s of CPU time"


@pytest.mark.parametrize("name, options", [("logistic", {}), ("softmax", {"dataset": "iris"}),
                                           ("softmax", {"dataset": "wine", "l2": 1e-2})])
def test_convex_optimum_agrees_with_scikit_learn(name, options, one_thread):
    """F* by our L-BFGS vs F at scikit-learn's LogisticRegression solution, C = 1 / (l2 n) (same objective)."""
    from sklearn.linear_model import LogisticRegression

    problem = get_problem(name, dtype=torch.float64, **options)
    f_star = problem.optimum()

    def objective_at_sklearn(c_scale):
        clf = LogisticRegression(C=c_scale / (problem.l2 * problem.n_train), tol=1e-12, max_iter=10000)
        clf.fit(problem.x_train.numpy(), problem.y_train.numpy())
        model = problem.model(0)
        with torch.no_grad():
            model[0].weight.copy_(torch.as_tensor(clf.coef_))
            model[0].bias.copy_(torch.as_tensor(clf.intercept_))
            return float(problem.objective(model))

    assert abs(objective_at_sklearn(1.0) - f_star) < 1e-6
    assert objective_at_sklearn(10.0) - f_star > 1e-3    # control: the wrong regularization is told apart


def test_softmax_gradient_passes_gradcheck_in_float64(one_thread):
    problem = get_problem("softmax", dataset="digits", l2=0.1, dtype=torch.float64)
    model = problem.model(0)
    idx = torch.arange(40)
    names = [n for n, _ in model.named_parameters()]

    def objective(*params):
        return _objective(problem, model, names, params, idx)

    params = tuple(p.detach().clone().requires_grad_() for p in model.parameters())
    assert torch.autograd.gradcheck(objective, params)
    # the penalty is part of it: the gradient of F moves with l2 on the weight only
    g0 = torch.autograd.grad(_objective(problem, model, names, params, idx), params)
    problem.l2 = 0.0
    g1 = torch.autograd.grad(_objective(problem, model, names, params, idx), params)
    assert torch.allclose(g0[0] - g1[0], 0.1 * params[0]) and torch.allclose(g0[1], g1[1])


def _objective(problem, model, names, params, idx):
    """problem.objective with the model's parameters replaced by ``params`` (penalty included)."""
    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self):
            return problem.objective(self.model, idx)

    return functional_call(Wrapper(), {f"model.{n}": p for n, p in zip(names, params)}, ())


def test_char_lm_starts_at_log_vocab_and_falls_toward_the_floor(one_thread):
    problem = get_problem("char_lm", vocab=8, n_train=512, n_test=128)
    assert problem.x_train.shape == (512, 32) and problem.x_train.dtype == torch.long
    assert torch.equal(problem.x_train[:, 1:], problem.y_train[:, :-1])     # targets are the next characters
    model = problem.model(0)
    assert 2000 <= sum(p.numel() for p in model.parameters()) <= 8000
    assert abs(problem.evaluate(model)["test_loss"] - math.log(8)) < 0.02   # untrained: uniform predictions
    trace = fit(problem.loss(model, 0), Adam(model.parameters(), lr=1e-2), 100, every=99,
                metrics=problem.metrics(model))
    assert abs(trace["loss"][0] - math.log(8)) < 0.02                          # step 0's batch, before its update
    assert trace["test_loss"][-1] < math.log(8) - 0.25
    assert trace["test_loss"][-1] > problem.floor - 0.05        # nothing beats the Bayes predictor (up to noise)
    assert 0.5 < problem.floor < math.log(8) - 0.5
    assert len(problem.decode(problem.x_train[0])) == 32 and set(problem.decode(problem.x_train[0])) <= set("abcdefgh")


@pytest.mark.parametrize("order", [1, 2])
def test_char_lm_floor_is_the_loss_of_the_true_source(order):
    """L* from the source's formulas vs the empirical loss of the exact conditionals on fresh text."""
    problem = get_problem("char_lm", vocab=5, order=order, n_train=4, n_test=4000, context=12, seed=3)
    src, V = problem.source, 5
    x, y = problem.x_test, problem.y_test
    pi = src.stationary.reshape((V,) * order)
    nll = torch.empty(x.shape, dtype=torch.float64)
    for t in range(x.shape[1]):
        if t + 1 < order:          # order 2, first prediction: P(s_2 | s_1) from the stationary pair
            pair = pi
            nll[:, t] = -(pair[x[:, 0], y[:, 0]] / pair.sum(1)[x[:, 0]]).log()
        else:
            c = sum(x[:, t - order + 1 + i] * V ** (order - 1 - i) for i in range(order))
            nll[:, t] = -src.probs[c, y[:, t]].log()
    assert abs(float(nll.mean()) - problem.floor) < 0.02
    assert abs(float(src.stationary.sum()) - 1) < 1e-12 and float(src.stationary.min()) > 0


def test_bad_names_and_options_are_one_line_errors():
    one_line_error(lambda: get_problem("resnet"), r"unknown problem 'resnet': choose one of logistic, softmax")
    one_line_error(lambda: get_problem("softmax", lr=1), r"unknown option 'lr' for problem 'softmax': choose from")
    one_line_error(lambda: get_problem("softmax", dataset="cifar"), r"unknown dataset 'cifar': choose one of digits")
    one_line_error(lambda: get_problem("logistic", dataset="digits"), r"10 classes, expected 2")
    one_line_error(lambda: get_problem("softmax", dataset="iris", num_samples=100), r"only mnist1d takes")
    one_line_error(lambda: get_problem("softmax", test_fraction=1.0), r"invalid test_fraction")
    one_line_error(lambda: get_problem("softmax", l2=-1.0), r"invalid l2")
    one_line_error(lambda: get_problem("softmax", batch_size=0), r"invalid batch_size")
    one_line_error(lambda: get_problem("mlp", hidden=()), r"invalid hidden")
    one_line_error(lambda: get_problem("mlp", activation="swish"), r"unknown activation 'swish'")
    one_line_error(lambda: get_problem("char_lm", d_model=10, heads=3), r"invalid heads 3")
    one_line_error(lambda: get_problem("char_lm", context=1, order=2), r"invalid context")
    one_line_error(lambda: get_problem("char_lm", vocab=30), r"invalid vocab")
    one_line_error(lambda: get_problem("mlp").optimum(), r"convex only without hidden layers")
    one_line_error(lambda: get_problem("softmax", dataset="iris").trial(Adam, 5, score="acc"), r"unknown score")
    assert PROBLEMS == ("logistic", "softmax", "mlp", "char_lm")


@pytest.mark.parametrize("name, options", [("softmax", {"dataset": "digits"}), ("logistic", {}),
                                           ("mlp", {"dataset": "mnist1d", "num_samples": 200}),
                                           ("char_lm", {"n_train": 64, "n_test": 16})])
def test_the_same_seed_gives_the_same_data(name, options):
    a, b, c = (get_problem(name, seed=s, **options) for s in (5, 5, 6))
    fields = ("x_train", "y_train", "x_test", "y_test")
    assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)
    assert not torch.equal(a.x_train, c.x_train)


def test_seeded_models_batches_and_dtype():
    problem = get_problem("softmax", dataset="iris", batch_size=16, dtype=torch.float64)
    assert problem.x_train.dtype == torch.float64 and problem.y_train.dtype == torch.long
    assert abs(float(problem.x_train.mean())) < 1e-12                        # standardized on the training set
    state = torch.get_rng_state()
    m0, m1, m2 = problem.model(0), problem.model(0), problem.model(1)
    assert torch.equal(torch.get_rng_state(), state)                         # the global RNG is untouched
    assert next(m0.parameters()).dtype == torch.float64
    assert torch.equal(m0[0].weight, m1[0].weight) and not torch.equal(m0[0].weight, m2[0].weight)
    # the closure's batches are batch_indices(n, B, seed, k): equal for one seed, other for another
    n = problem.n_train
    loss_a, loss_b, loss_c = problem.loss(m0, 7), problem.loss(m0, 7), problem.loss(m0, 8)
    for k in (0, 1, 7, 8, 20):
        expected = problem.objective(m0, batch_indices(n, 16, 7, k))
        assert torch.equal(loss_a(k), expected) and torch.equal(loss_b(k), expected)
    assert not torch.equal(loss_a(0), loss_c(0))
    epoch = torch.cat([batch_indices(n, 16, 7, k) for k in range(n // 16)])
    assert len(set(epoch.tolist())) == len(epoch) == (n // 16) * 16          # an epoch draws without replacement


def test_trial_and_compare_give_every_method_the_same_trials(one_thread):
    problem = get_problem("softmax", dataset="iris", batch_size=32)
    runs = {"adam": problem.trial(Adam, steps=30),
            "sgd": problem.trial(lambda params, lr: SGD(params, lr=lr, momentum=0.9), steps=30, score="test_error")}
    tuned = compare(runs, grid=[1e-2, 1e-1], seeds=(100, 101))
    assert {r.trials for r in tuned.values()} == {4}
    assert all(np.isfinite(r.best) and r.best <= r.median for r in tuned.values())
    assert runs["adam"](0.1, 100) == runs["adam"](0.1, 100)                  # a trial is a function of (lr, seed)
    model, trace = problem.train(Adam, 0.1, seed=0, steps=20, every=5)
    assert trace["step"].tolist() == [0, 5, 10, 15, 19]
    assert trace.last("train_loss") == problem.evaluate(model)["train_loss"]
