import numpy as np
import pytest
import torch
from optrepro.constrained.project_forget import (
    edge_index,
    from_edges,
    halfspace_projection,
    max_triangle_violation,
    metric_nearness_cvxpy,
    num_triangle_inequalities,
    project_and_forget,
    shortest_path_oracle,
    shortest_paths,
    to_edges,
    triangle_constraint_matrix,
    violated_triangles,
)
from scipy.sparse.csgraph import floyd_warshall

pytestmark = pytest.mark.usefixtures("one_thread")


def random_dissimilarity(n, seed):
    A = np.random.default_rng(seed).uniform(size=(n, n))
    D = np.triu(A, 1)
    return D + D.T


def brute_force_violations(D, tol=0.0):
    n = D.shape[0]
    return {(i, j, k) for i in range(n) for j in range(i + 1, n) for k in range(n)
            if k not in (i, j) and D[i, j] > D[i, k] + D[k, j] + tol}


def test_halfspace_projection_closed_form():
    rng = np.random.default_rng(0)
    a, x = rng.normal(size=5), rng.normal(size=5)
    b = float(a @ x) - 1.0                      # x violates a^T y <= b by exactly 1
    p = halfspace_projection(x, a, b)
    assert float(a @ p) == pytest.approx(b)
    np.testing.assert_allclose(p, x - a / (a @ a))
    # the projection is the nearest point of the half-space: any other point on it is farther
    for _ in range(20):
        y = p + rng.normal(size=5)
        y -= max(0.0, float(a @ y) - b) / (a @ a) * a
        assert np.linalg.norm(y - x) >= np.linalg.norm(p - x) - 1e-12
    np.testing.assert_array_equal(halfspace_projection(x, a, b + 2.0), x)   # feasible point stays
    with pytest.raises(ValueError, match="nonzero"):
        halfspace_projection(x, np.zeros(5), 0.0)


def test_triangle_oracle_matches_brute_force():
    D = random_dissimilarity(9, 1)
    found = {tuple(int(v) for v in r) for r in violated_triangles(torch.tensor(D))}
    expected = brute_force_violations(D)
    assert found == expected and len(expected) > 20
    n = 9
    assert triangle_constraint_matrix(n).shape == (num_triangle_inequalities(n), n * (n - 1) // 2)
    assert max_triangle_violation(torch.tensor(D), chunk=4) == pytest.approx(
        max(D[i, j] - D[i, k] - D[k, j] for i, j, k in expected))
    A = triangle_constraint_matrix(n)                 # its violated rows are the same triangles
    assert int((A @ to_edges(D) > 0).sum()) == len(expected)


def test_shortest_path_oracle_against_scipy():
    n = 12
    D = random_dissimilarity(n, 2)
    X = torch.tensor(D)
    dist_ref = floyd_warshall(D, directed=False)
    dist, _ = shortest_paths(X)                    # the torch (GPU) Floyd-Warshall
    np.testing.assert_allclose(dist.numpy(), dist_ref, atol=1e-12)
    cons, viol = shortest_path_oracle(X)
    r, c = edge_index(n)
    gap = D[r, c] - dist_ref[r, c]
    assert viol == pytest.approx(gap.max())
    assert sorted(con[0] for con in cons) == sorted(np.flatnonzero(gap > 0).tolist())   # one per violated edge
    x = to_edges(D)
    long_sides = {(i, j) for i, j, _ in brute_force_violations(D)}
    assert {(int(r[con[0]]), int(c[con[0]])) for con in cons} >= long_sides
    for con in cons:                                  # each is a violated cycle through a shortest path
        e = con[0]
        assert x[e] - x[list(con[1:])].sum() == pytest.approx(gap[e])
        assert x[e] - x[list(con[1:])].sum() > 0


def test_matches_cvxpy_on_tiny_instance():
    n = 8
    D = random_dissimilarity(n, 3)
    x_ref, _ = metric_nearness_cvxpy(to_edges(D), n)
    res = project_and_forget(D, max_iter=3000, tol=1e-10, x_ref=x_ref)
    assert res.converged
    assert np.linalg.norm(res.x - x_ref) / np.linalg.norm(x_ref) < 1e-6
    assert max_triangle_violation(from_edges(res.x, n)) < 1e-9
    assert max(res.active_sizes) < num_triangle_inequalities(n)
    assert res.objective[-1] == pytest.approx(0.5 * np.sum((x_ref - to_edges(D)) ** 2), rel=1e-6)


def test_metric_input_is_a_fixed_point_and_bad_input():
    pts = np.random.default_rng(4).normal(size=(7, 2))
    D = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    res = project_and_forget(D, max_iter=5)
    assert res.converged and res.iterations == 1 and res.active_sizes == [0]
    np.testing.assert_allclose(res.x, to_edges(D))
    with pytest.raises(ValueError, match="max_iter"):
        project_and_forget(D, max_iter=0)
    with pytest.raises(ValueError, match="square"):
        to_edges(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="n"):
        num_triangle_inequalities(2)
