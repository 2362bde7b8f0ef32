"""Tests for optrepro.convex_nn.parallel_linear: standard vs parallel deep linear networks and the convex bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optrepro.convex_nn.parallel_linear import (
    convex_bound,
    convex_bound_cvxpy,
    network_objective,
    network_product,
    parallel_from_matrix,
    schatten_quasi_norm,
    standard_from_matrix,
    standard_optimum,
    train_deep_linear,
    whitened_problem,
)


def _problem(seed=0, c=3, sv=(2.0, 1.5, 1.0)):
    return whitened_problem(12, 4, c, sv, 0.2, torch.Generator().manual_seed(seed))


def test_whitened_problem_has_orthonormal_columns():
    X, Y, W0 = _problem()
    assert torch.allclose(X.T @ X, torch.eye(4, dtype=X.dtype), atol=1e-12)
    assert torch.allclose(torch.linalg.svdvals(W0), torch.tensor([2.0, 1.5, 1.0], dtype=X.dtype), atol=1e-12)


def test_convex_bound_matches_cvxpy():
    X, Y, _ = _problem(1)
    for beta in (0.3, 1.2):
        value, W = convex_bound(X, Y, beta)
        assert abs(value - convex_bound_cvxpy(X, Y, beta)) / value < 1e-5
        direct = 0.5 * float(((X @ W - Y) ** 2).sum()) + beta * float(torch.linalg.svdvals(W).sum())
        assert abs(direct - value) < 1e-10


def test_schatten_quasi_norm_is_nuclear_for_two_layers_and_larger_for_three():
    W = torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64))
    assert schatten_quasi_norm(W, 2) == pytest.approx(4.0)
    assert schatten_quasi_norm(W, 3) == pytest.approx((3 ** (2 / 3) + 1) ** 1.5)
    assert schatten_quasi_norm(W, 3) > 4.0
    assert schatten_quasi_norm(torch.diag(torch.tensor([3.0, 0.0], dtype=torch.float64)), 3) == pytest.approx(3.0)


def test_constructed_networks_attain_their_closed_form_objectives():
    X, Y, _ = _problem(2)
    beta, L = 0.7, 3
    W = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    std = standard_from_matrix(W, L, width=5)
    par = parallel_from_matrix(W, L, branches=4)
    fit = 0.5 * float(((X @ W - Y) ** 2).sum())
    assert torch.allclose(network_product(std)[0], W, atol=1e-12)
    assert torch.allclose(network_product(par)[0], W, atol=1e-12)
    assert float(network_objective(X, Y, std, beta)) == pytest.approx(fit + beta * schatten_quasi_norm(W, L), rel=1e-12)
    assert float(network_objective(X, Y, par, beta)) == pytest.approx(fit + beta * float(torch.linalg.svdvals(W).sum()),
                                                                      rel=1e-12)


def test_standard_optimum_against_a_grid_search():
    # rank-2 targets: the singular values (s1, s2) of W are the only unknowns; brute force over a fine grid
    X, Y, _ = whitened_problem(10, 3, 2, (2.0, 1.6), 0.1, torch.Generator().manual_seed(3))
    beta, L = 0.5, 3
    value, W = standard_optimum(X, Y, beta, L)
    a = torch.linalg.svdvals(X.T @ Y).numpy()
    const = 0.5 * float((Y ** 2).sum() - ((X.T @ Y) ** 2).sum())
    s1, s2 = np.meshgrid(np.linspace(0, 3, 601), np.linspace(0, 3, 601))
    grid = 0.5 * ((s1 - a[0]) ** 2 + (s2 - a[1]) ** 2) + beta * (s1 ** (2 / L) + s2 ** (2 / L)) ** (L / 2) + const
    assert value <= grid.min() + 1e-10
    assert value >= grid.min() - 1e-3
    direct = 0.5 * float(((X @ W - Y) ** 2).sum()) + beta * schatten_quasi_norm(W, L)
    assert direct == pytest.approx(value, rel=1e-9)
    assert value > convex_bound(X, Y, beta)[0] * 1.01            # a strict duality gap on this instance
    assert standard_optimum(X, Y, beta, 2)[0] == pytest.approx(convex_bound(X, Y, beta)[0], rel=1e-7)  # L = 2: none


def test_training_parallel_reaches_the_bound_and_standard_stays_above(one_thread):
    X, Y, _ = _problem(4, sv=(2.5, 2.5, 2.5))
    beta, L = 1.0, 3
    D, _ = convex_bound(X, Y, beta)
    P, _ = standard_optimum(X, Y, beta, L)
    g = torch.Generator().manual_seed(0)
    par = train_deep_linear(X, Y, beta, L, branches=4, width=1, runs=4, steps=200, lr=0.08, generator=g)
    std = train_deep_linear(X, Y, beta, L, branches=1, width=4, runs=4, steps=200, lr=0.08, generator=g)
    assert par.objective.shape == (200, 4) and par.product.shape == (4, 4, 3)
    assert float(par.final.min() - D) / D < 1e-4
    assert float(std.final.min()) >= P * (1 - 1e-9) and P > 1.05 * D
    assert float(std.final.min() - P) / P < 1e-4
    assert torch.allclose(par.final, network_objective(X, Y, par.layers, beta))


def test_bad_inputs_raise_one_line_value_errors():
    X, Y, _ = _problem()
    with pytest.raises(ValueError, match="whitened"):
        convex_bound(2 * X, Y, 1.0)
    with pytest.raises(ValueError, match="beta"):
        convex_bound(X, Y, -1.0)
    with pytest.raises(ValueError, match="depth"):
        train_deep_linear(X, Y, 1.0, 0)
    with pytest.raises(ValueError, match="singular_values"):
        whitened_problem(10, 3, 2, (1.0, 1.0, 1.0), 0.1)
    with pytest.raises(ValueError, match="n 2"):
        whitened_problem(2, 3, 2, (1.0,), 0.1)
