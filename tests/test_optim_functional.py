"""optrepro.optim.functional.adam_step against torch.optim.Adam."""
import pytest
import torch
from optrepro.optim.functional import LeanAdam, adam_step

pytestmark = pytest.mark.usefixtures("one_thread")


def test_adam_step_matches_torch_optim_adam():
    g = torch.Generator().manual_seed(7)
    A = torch.randn(3, 4, generator=g, dtype=torch.float64)
    W1 = torch.randn(4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    W2 = W1.detach().clone().requires_grad_(True)
    ref = torch.optim.Adam([W2], lr=0.05)
    m1, m2 = [torch.zeros_like(W1)], [torch.zeros_like(W1)]
    f = lambda W: ((A @ W) ** 4).sum()  # noqa: E731
    for t in range(1, 21):
        adam_step([W1], torch.autograd.grad(f(W1), [W1]), m1, m2, t, 0.05)
        ref.zero_grad()
        f(W2).backward()
        ref.step()
    assert torch.allclose(W1, W2, atol=1e-12)


def test_lean_adam_matches_torch_optim_adam():
    g = torch.Generator().manual_seed(4)
    w0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    A = torch.randn(7, 5, generator=g, dtype=torch.float64)
    w1, w2 = w0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
    mine, ref = LeanAdam([w1], lr=0.05), torch.optim.Adam([w2], lr=0.05)
    for _ in range(20):
        for w, opt in ((w1, mine), (w2, ref)):
            opt.zero_grad()
            ((A @ w) ** 3).sum().backward()
            opt.step()
    assert torch.allclose(w1, w2, atol=1e-10) and not torch.allclose(w1, w0)
