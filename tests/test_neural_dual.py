"""Tests of optrepro.ot.neural_dual: the trained map recovers the closed-form Brenier map between Gaussians, the dual
W2 estimate matches the closed form, an untrained map does not (so the test can fail), and the penalty term."""
import pytest
import torch
from optrepro.models.icnn import ICNN
from optrepro.ot.displacement_sparse import l1
from optrepro.ot.gaussian import brenier_map, sample, w2_squared
from optrepro.ot.neural_dual import dual_losses, train_neural_dual, w2_estimate

pytestmark = pytest.mark.usefixtures("one_thread")


def _pair():
    m0, S0 = torch.zeros(2), torch.eye(2)
    m1 = torch.tensor([1.5, -0.5])
    S1 = torch.tensor([[2.0, 0.6], [0.6, 1.0]])
    return m0, S0, m1, S1


def _nets(seed):
    torch.manual_seed(seed)
    f, g = ICNN(2, 16, 2, beta=1.0, alpha=0.3), ICNN(2, 16, 2, beta=1.0, alpha=0.5)
    with torch.no_grad():
        for net in (f, g):
            net.out_skip.weight.zero_()
            net.out_skip.bias.zero_()
    return f, g


def _map_error(g, A, b, x):
    T = g.gradient(x).detach()
    return float(((T - (x @ A.T + b)) ** 2).sum(1).mean() / ((x @ A.T + b - x) ** 2).sum(1).mean())


def test_neural_dual_recovers_gaussian_brenier_map():
    m0, S0, m1, S1 = _pair()
    gen = torch.Generator().manual_seed(0)
    x, y = sample(m0, S0, 2000, generator=gen), sample(m1, S1, 2000, generator=gen)
    x_test = sample(m0, S0, 1000, generator=gen)
    A, b = brenier_map(m0, S0, m1, S1)
    f, g = _nets(0)
    before = _map_error(g, A, b, x_test)
    train_neural_dual(x, y, f, g, steps=200, inner=1, batch=128, lr=1e-2, generator=gen)
    after = _map_error(g, A, b, x_test)
    assert before > 0.5  # the identity at the start is far from the map: the check can fail
    assert after < 0.05  # relative squared error of T against the closed-form Brenier map
    w2 = float(w2_estimate(f, g, x_test, sample(m1, S1, 1000, generator=gen)))
    assert w2 == pytest.approx(float(w2_squared(m0, S0, m1, S1)), rel=0.15)


def test_penalty_enters_only_the_map_loss():
    f, g = _nets(1)
    x, y = torch.randn(64, 2), torch.randn(64, 2) + 1
    lf0, lg0, Tx = dual_losses(f, g, x, y)
    lf1, lg1, _ = dual_losses(f, g, x, y, penalty=l1, lam=0.7)
    assert lf1.item() == pytest.approx(lf0.item())
    assert lg1.item() == pytest.approx(lg0.item() + 0.7 * l1(Tx - x).mean().item(), rel=1e-6)


def test_on_check_sets_lambda_and_can_stop():
    f, g = _nets(2)
    x, y = torch.randn(64, 2), torch.randn(64, 2) + 1
    seen = []

    def on_check(step, g):
        seen.append(step)
        return None if step >= 4 else 0.1 * step

    res = train_neural_dual(x, y, f, g, steps=10, inner=1, batch=32, check_every=2, on_check=on_check, penalty=l1)
    assert seen == [2, 4] and res.steps == [2, 4] and res.lam == [0.0, 0.2]


def test_bad_inputs():
    f, g = _nets(3)
    with pytest.raises(ValueError, match="steps"):
        train_neural_dual(torch.randn(8, 2), torch.randn(8, 2), f, g, steps=0)
    with pytest.raises(ValueError, match="dimension"):
        train_neural_dual(torch.randn(8, 3), torch.randn(8, 3), f, g, steps=1)
