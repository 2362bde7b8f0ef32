"""optrepro.optim.functional (adam_step, sgd_step) against torch.optim.Adam / torch.optim.SGD, step for step."""
import pytest
import torch

from optrepro.optim.functional import adam_step, sgd_step

pytestmark = pytest.mark.usefixtures("one_thread")


def _problem(seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(3, 4, generator=g, dtype=torch.float64)
    W = torch.randn(4, 2, generator=g, dtype=torch.float64)
    return W, lambda W: ((A @ W) ** 4).sum() + W.sin().sum()


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_step_matches_torch_optim_adam_bitwise(amsgrad, weight_decay):
    W0, f = _problem(7)
    W1, W2 = W0.clone().requires_grad_(True), W0.clone().requires_grad_(True)
    ref = torch.optim.Adam([W2], lr=0.05, betas=(0.8, 0.99), weight_decay=weight_decay, amsgrad=amsgrad, foreach=False)
    m, v, vmax = [torch.zeros_like(W0)], [torch.zeros_like(W0)], [torch.zeros_like(W0)] if amsgrad else None
    for t in range(1, 31):
        adam_step([W1], torch.autograd.grad(f(W1), [W1]), m, v, t, 0.05, (0.8, 0.99), weight_decay=weight_decay,
                  max_exp_avg_sqs=vmax)
        ref.zero_grad()
        f(W2).backward()
        ref.step()
        assert torch.equal(W1, W2), t
    assert not torch.allclose(W1, W0)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_step_without_bias_correction_is_the_papers_update(amsgrad):
    """Reddi et al., Algorithms 1 (Adam) and 2 (AMSGrad) with constant beta1, eps added; scalars in float64."""
    grads = [3.0, -1.0, -1.0, 0.5, 10.0, -0.2, 0.0, 2.0, -4.0, 0.1]
    lr, b1, b2, eps = 0.1, 0.7, 0.9, 1e-8
    x, m, v, vmax = (torch.zeros(1, dtype=torch.float64) for _ in range(4))
    xr = mr = vr = vh = 0.0
    for t, g in enumerate(grads, 1):
        adam_step([x], [torch.tensor([g], dtype=torch.float64)], [m], [v], t, lr, (b1, b2), eps,
                  max_exp_avg_sqs=[vmax] if amsgrad else None, bias_correction=False)
        mr, vr = b1 * mr + (1 - b1) * g, b2 * vr + (1 - b2) * g * g
        vh = max(vh, vr) if amsgrad else vr
        xr -= lr * mr / (vh ** 0.5 + eps)
        assert abs(x.item() - xr) < 1e-12
    assert (vmax.item() > v.item()) == amsgrad   # the max really kept the large gradient's v


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_step_matches_torch_optim_sgd_bitwise(momentum, nesterov):
    W0, f = _problem(3)
    W1, W2 = W0.clone().requires_grad_(True), W0.clone().requires_grad_(True)
    ref = torch.optim.SGD([W2], lr=1e-3, momentum=momentum, nesterov=nesterov, weight_decay=0.01, foreach=False)
    buf = [torch.zeros_like(W0)] if momentum else None
    for _ in range(30):
        sgd_step([W1], torch.autograd.grad(f(W1), [W1]), buf, 1e-3, momentum, weight_decay=0.01, nesterov=nesterov)
        ref.zero_grad()
        f(W2).backward()
        ref.step()
        assert torch.equal(W1, W2)
    assert not torch.allclose(W1, W0)
