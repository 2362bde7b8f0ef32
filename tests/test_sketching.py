import pytest
import torch

from optrepro.constrained.sketching import direct_solve_flops, sketch_solve

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("block", [1, 4])
def test_sketch_solve_reaches_requested_accuracy(block):
    g = torch.Generator().manual_seed(0)
    n = 12
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    K = Q @ torch.diag(torch.linspace(1, 3, n, dtype=torch.float64)) @ Q.T
    K[:3, :3] *= -1   # indefinite, still nonsingular
    r = torch.randn(n, generator=g, dtype=torch.float64)
    ref = torch.linalg.solve(K, r)
    res = sketch_solve(K, r, theta=1e-8, block=block, max_epochs=20000, generator=g)
    assert res.converged and res.relative_residual <= 1e-8
    torch.testing.assert_close(res.z, ref, rtol=1e-6, atol=1e-6)
    loose = sketch_solve(K, r, theta=0.5, block=block, generator=g)
    assert loose.relative_residual <= 0.5 and loose.flops < res.flops


def test_full_block_is_exact_and_bad_input():
    K = torch.tensor([[2.0, 1.0], [1.0, -3.0]], dtype=torch.float64)
    r = torch.tensor([1.0, 2.0], dtype=torch.float64)
    res = sketch_solve(K, r, theta=1e-12, block=2)
    torch.testing.assert_close(res.z, torch.linalg.solve(K, r))
    assert direct_solve_flops(3) == pytest.approx(18 + 18)
    with pytest.raises(ValueError, match="block"):
        sketch_solve(K, r, theta=0.1, block=3)
    with pytest.raises(ValueError, match="theta"):
        sketch_solve(K, r, theta=-1.0)


def test_dependent_rows_in_a_block_use_the_pseudo_inverse():
    # rows 0 and 1 are parallel (singular 2x2 Gram) but the system is consistent: the method still converges
    K = torch.tensor([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    r = K @ torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    res = sketch_solve(K, r, theta=1e-10, block=2, max_epochs=5000, generator=g)
    assert res.converged and torch.isfinite(res.z).all()
    assert float((K @ res.z - r).norm()) <= 1e-10 * float(r.norm())
