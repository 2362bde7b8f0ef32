"""Tests of optrepro.models.icnn: convexity in the input (and that the check can fail), the gradient map."""
import pytest
import torch
from optrepro.models.icnn import ICNN

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_icnn(dim, seed, alpha=0.0):
    torch.manual_seed(seed)
    net = ICNN(dim, hidden=12, layers=3, beta=3.0, alpha=alpha).double()
    with torch.no_grad():  # spread the weights so that the test is not about a nearly linear function
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    return net


@pytest.mark.parametrize("dim", [1, 3])
def test_icnn_midpoint_convex(dim):
    net = _random_icnn(dim, 0)
    g = torch.Generator().manual_seed(1)
    a = 3 * torch.randn(2000, dim, generator=g, dtype=torch.float64)
    c = 3 * torch.randn(2000, dim, generator=g, dtype=torch.float64)
    with torch.no_grad():
        gap = (net(a) + net(c)) / 2 - net((a + c) / 2)
    assert gap.min() >= -1e-12
    assert gap.max() > 1e-3  # not affine


def test_icnn_without_sign_constraint_is_not_convex():
    """The midpoint test can fail: flip the sign of the output weights and the network is concave somewhere."""
    net = _random_icnn(1, 0)
    weights = net.nonneg_weights
    net.nonneg_weights = lambda: weights()[:-1] + [-weights()[-1]]
    a = torch.linspace(-3, 3, 400, dtype=torch.float64)[:, None]
    with torch.no_grad():
        gap = (net(a[:-2]) + net(a[2:])) / 2 - net(a[1:-1])
    assert gap.min() < -1e-8


def test_gradient_matches_finite_differences_and_is_monotone():
    net = _random_icnn(3, 2, alpha=0.5)
    y = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    grad = net.gradient(y)
    assert not grad.requires_grad  # no graph unless asked for
    h = 1e-6
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = h
        with torch.no_grad():
            fd = (net(y + e) - net(y - e)) / (2 * h)
        assert torch.allclose(grad[:, i], fd, atol=1e-6)
    y2 = y.flip(0)
    inner = ((grad - net.gradient(y2)) * (y - y2)).sum(1)
    assert (inner >= 0.5 * ((y - y2) ** 2).sum(1) - 1e-10).all()  # alpha-strongly monotone
    assert net.gradient(y, create_graph=True).requires_grad


def test_bad_input_shape():
    with pytest.raises(ValueError, match="expected \\(batch, 3\\)"):
        ICNN(3)(torch.zeros(4, 2))
