import pytest
import torch

from optrepro.constrained.kkt import derivatives, kkt_residual, kkt_system, merit, merit_gradient
from optrepro.problems.equality_constrained import hock_schittkowski

pytestmark = pytest.mark.usefixtures("one_thread")


def test_merit_gradient_matches_autograd_gradcheck():
    p = hock_schittkowski("HS77")
    x = p.x0 + 0.1
    lam = torch.tensor([0.3, -0.7], dtype=torch.float64)
    mu, nu = 3.0, 0.2
    d = derivatives(p.f, p.c, x, lam)
    v = torch.cat([x, lam]).requires_grad_(True)

    def m(v):
        xx, ll = v[:5], v[5:]
        (gL,) = torch.autograd.grad(p.f(xx) + ll @ p.c(xx), xx, create_graph=True)
        cc = p.c(xx)
        return p.f(xx) + ll @ cc + mu / 2 * cc @ cc + nu / 2 * gL @ gL

    (g,) = torch.autograd.grad(m(v), v)
    torch.testing.assert_close(merit_gradient(d, mu, nu), g, rtol=1e-9, atol=1e-9)
    assert float(merit(p.f, p.c, x, lam, mu, nu)) == pytest.approx(float(m(v)), rel=1e-12)
    # finite differences on the merit itself
    e = torch.zeros(7, dtype=torch.float64)
    e[2] = 1e-6
    fd = (merit(p.f, p.c, x + e[:5], lam, mu, nu) - merit(p.f, p.c, x - e[:5], lam, mu, nu)) / 2e-6
    assert float(fd) == pytest.approx(float(g[2]), rel=1e-5)


def test_kkt_system_and_residual_closed_form():
    # min x1^2 + x2^2 s.t. x1 + x2 - 1 = 0: H = 2I, G = [1, 1]
    f = lambda x: x @ x
    c = lambda x: (x.sum() - 1).reshape(1)
    x = torch.tensor([2.0, 0.0], dtype=torch.float64)
    lam = torch.tensor([0.5], dtype=torch.float64)
    d = derivatives(f, c, x, lam)
    K, r = kkt_system(d)
    torch.testing.assert_close(K, torch.tensor([[2.0, 0, 1], [0, 2, 1], [1, 1, 0]], dtype=torch.float64))
    torch.testing.assert_close(r, -torch.tensor([4.5, 0.5, 1.0], dtype=torch.float64))
    assert kkt_residual(d) == pytest.approx((4.5 ** 2 + 0.5 ** 2 + 1.0) ** 0.5)
    z = torch.linalg.solve(K, r)   # one Newton step solves a QP exactly
    torch.testing.assert_close(x + z[:2], torch.tensor([0.5, 0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="delta"):
        kkt_system(d, delta=-1.0)
