"""Tests for optrepro.analysis.rates on exact geometric and power-law sequences."""
import math

import pytest
import torch

from optrepro.analysis.rates import decade_growth, geometric_rate, power_law_exponent


def test_geometric_rate_of_exact_geometric_sequences():
    k = torch.arange(60, dtype=torch.float64)
    assert geometric_rate(3.0 * 0.9 ** k) == pytest.approx(0.9, rel=1e-12)
    assert geometric_rate([2.0 * 0.5 ** j for j in range(40)]) == pytest.approx(0.5, rel=1e-12)
    # only the band low < e < high is fitted: a floor (and a transient above high) does not bias the rate
    e = torch.cat([torch.full((5,), 10.0, dtype=torch.float64), 0.8 ** k]).clamp_min(1e-12)
    assert geometric_rate(e, low=1e-11, high=5.0) == pytest.approx(0.8, rel=1e-12)
    # steps given explicitly (every 10th iteration): the rate is still per iteration
    assert geometric_rate(0.99 ** (10 * k), steps=10 * k) == pytest.approx(0.99, rel=1e-12)
    assert math.isnan(geometric_rate(torch.ones(5), high=0.5))                     # fewer than 3 in the band


def test_power_law_exponent_of_exact_power_laws():
    t = torch.arange(1, 500, dtype=torch.float64)
    assert power_law_exponent(3 * t ** -1.5, steps=t) == pytest.approx(-1.5, rel=1e-12)
    assert power_law_exponent([1 / k for k in range(1, 50)]) == pytest.approx(-1.0, rel=1e-12)   # steps 1, 2, ...
    with pytest.raises(ValueError, match="at least 3"):
        power_law_exponent([1.0, 0.5])
    with pytest.raises(ValueError, match="one per value"):
        power_law_exponent(t[:5], steps=t[:4])


def test_a_sublinear_sequence_is_not_geometric():
    """1/k has a negative log-linear slope too (a slope test would call it 'linear'); its fitted factor drifts to 1
    as the window moves right, and decade_growth says 10 (1 for a geometric sequence)."""
    n = 3000
    sub = [1 / (k + 1) for k in range(n)]
    early, late = geometric_rate(sub[10:100]), geometric_rate(sub[n // 2:])
    assert early < late < 1 and late > 0.9995
    assert power_law_exponent(sub, steps=range(1, n + 1)) == pytest.approx(-1.0, rel=1e-12)
    assert decade_growth(sub) == pytest.approx(10.0, rel=0.05)


def test_decade_growth_tells_linear_from_sublinear():
    n = 3000
    assert decade_growth([2.0 * 0.99 ** k for k in range(n)]) == pytest.approx(1.0, abs=0.05)
    wobbly = [0.995 ** k * (1 + 0.5 * math.sin(k / 3)) for k in range(n)]      # oscillating but geometric
    assert decade_growth(wobbly) < 1.2
    assert decade_growth([1 / (k + 1) for k in range(n)]) == pytest.approx(10.0, rel=0.05)   # the control
    assert decade_growth([1 / (k + 1) ** 0.5 for k in range(10 ** 5)]) == pytest.approx(100.0, rel=0.05)
    # fewer than two complete decades: no evidence either way
    assert math.isnan(decade_growth([1 / (k + 1) ** 0.5 for k in range(3000)]))
    assert math.isnan(decade_growth([1.0, 0.0, 0.5]))
    with pytest.raises(ValueError, match="decades"):
        decade_growth([1.0, 0.1, 0.01], decades=1)
