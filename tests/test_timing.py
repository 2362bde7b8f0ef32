"""Clocks: the choice and its error; solvers read the clock they are given."""
import itertools
import time

import pytest
import torch

from optrepro.timing import clock


def test_clock_choices_and_error():
    assert clock("wall") is time.perf_counter and clock("cpu") is time.process_time
    with pytest.raises(ValueError, match="unknown clock 'gpu': choose one of wall, cpu"):
        clock("gpu")


def test_cpu_time_ignores_sleeping():
    cpu0, wall0 = clock("cpu")(), clock("wall")()
    time.sleep(0.2)
    assert clock("wall")() - wall0 >= 0.19 and clock("cpu")() - cpu0 < 0.05


def test_admm_and_cvxpy_record_the_given_clock():
    from optrepro.convex_nn import admm, enumerate_patterns, solve_cvxpy
    ticks = itertools.count()
    fake = lambda: float(next(ticks))  # noqa: E731  each reading one second later
    x = torch.linspace(-1, 1, 6, dtype=torch.float64)
    X = torch.stack([x, torch.ones_like(x)], 1)
    y = torch.sin(3 * x)
    D = enumerate_patterns(X)
    res = admm(X, y, D, 0.1, rho=0.1, iters=5, clock=fake)
    assert res.seconds == [float(k) for k in range(2, 7)] and res.setup_seconds == 1.0
    assert solve_cvxpy(X, y, D, 0.1, clock=fake).seconds == 1.0
