import math

import numpy as np
import pytest
import torch
from optrepro.train import compare, fit, tune

A = torch.tensor([1.0, 0.5, 0.1], dtype=torch.float64)     # f(x) = x^T diag(A) x / 2
X0 = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)


def gd_closed_form(lr: float, k: int) -> float:
    """f(x_k) with x_k = (1 - lr A)^k x_0 (gradient descent on the quadratic)."""
    return float(0.5 * (A * ((1 - lr * A) ** k * X0) ** 2).sum())


def quadratic():
    x = X0.clone().requires_grad_()
    return x, (lambda k: 0.5 * (A * x * x).sum())


def test_gd_trajectory_matches_the_closed_form():
    x, loss = quadratic()
    trace = fit(loss, torch.optim.SGD([x], lr=0.5), steps=20, every=3, metrics=lambda: {"x0": x[0].item()})
    assert trace.step == [0, 3, 6, 9, 12, 15, 18, 19] and trace.steps == 20 and trace.stopped == "steps"
    np.testing.assert_allclose(trace["loss"], [gd_closed_form(0.5, k) for k in trace.step], rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace["x0"], [0.5 ** (k + 1) for k in trace.step], rtol=0, atol=1e-12)  # after step
    assert np.all(np.diff(trace["time"]) >= 0)


def test_functional_update_and_closure_metrics():
    x, loss = quadratic()

    def update(k, value):
        (g,) = torch.autograd.grad(value, [x])
        with torch.no_grad():
            x.sub_(0.5 * g)

    trace = fit(lambda k: (loss(k), {"k2": k * k}), update, steps=5)
    np.testing.assert_allclose(trace["loss"], [gd_closed_form(0.5, k) for k in range(5)], rtol=0, atol=1e-12)
    assert trace.metrics["k2"] == [0, 1, 4, 9, 16]


def test_stops_at_the_target_and_on_a_callback_and_on_divergence():
    x, loss = quadratic()
    trace = fit(loss, torch.optim.SGD([x], lr=0.5), steps=1000, target=1e-3)
    first = next(k for k in range(1000) if gd_closed_form(0.5, k) <= 1e-3)
    assert trace.stopped == "target" and trace.target_step == first and trace.steps == first + 1
    assert trace.target_time == trace.time[-1]
    x, loss = quadratic()
    trace = fit(loss, torch.optim.SGD([x], lr=0.5), steps=100, stop=lambda tr: len(tr.step) == 4)
    assert trace.stopped == "callback" and trace.steps == 4
    x, loss = quadratic()
    trace = fit(loss, torch.optim.SGD([x], lr=1e3), steps=1000)
    assert trace.stopped == "nonfinite" and not math.isfinite(trace.loss[-1])


def gd_final_loss(lr: float, seed: int, steps: int = 5, curvature: float = 4.0) -> float:
    """GD on f(x) = curvature x^2 / 2 from a seeded start: step size 1/curvature solves it in one step."""
    x = torch.randn(1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).requires_grad_()
    return fit(lambda k: 0.5 * curvature * (x * x).sum(), torch.optim.SGD([x], lr=lr), steps=steps).last()


def test_tuner_picks_the_known_best_step_size_with_equal_budgets():
    grid = [0.01, 0.1, 0.25, 0.4, 1e160]      # 1e160 overflows: an infinite loss, scored +inf
    res = tune(gd_final_loss, grid)
    assert res.best_step_size == 0.25 and res.best == 0.0 and res.trials == 15
    assert np.isinf(res.scores[-1]).all() and res.median == np.median(res.per_step_size)
    both = compare({"gd": gd_final_loss, "gd-3": lambda lr, s: gd_final_loss(lr, s, steps=3)}, grid, seeds=(100, 101))
    assert {r.trials for r in both.values()} == {10}
    with pytest.raises(ValueError, match="tuning seeds >= 100"):
        tune(gd_final_loss, grid, seeds=(0, 1))
