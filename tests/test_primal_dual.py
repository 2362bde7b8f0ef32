"""Primal-dual constrained learning (optrepro.constrained.primal_dual; the width sweep's data, metric and model) against cvxpy and constructed cases."""
import cvxpy as cp
import numpy as np
import pytest
import torch
from torch import nn

from optrepro.constrained.primal_dual import dual_step, lagrangian, primal_dual, project_duals, violation
from optrepro.data.fairness import fair_tabular, load_compas
from optrepro.metrics.fairness import demographic_parity_gaps
from optrepro.papers.constrained_learning_dual_feasibility import WidthEnsemble

pytestmark = pytest.mark.usefixtures("one_thread")


def constrained_least_squares(seed=0):
    rng = np.random.default_rng(seed)
    A, b = rng.standard_normal((30, 4)), rng.standard_normal(30)
    G = rng.standard_normal((2, 4))
    x0 = np.linalg.lstsq(A, b, rcond=None)[0]
    c = G @ x0 - np.array([0.5, -0.5])  # the first constraint cuts off the unconstrained optimum, the second not
    x = cp.Variable(4)
    cons = [G @ x <= c]
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ x - b) / 30), cons).solve()
    return A, b, G, c, x.value, cons[0].dual_value


@pytest.mark.parametrize("primal_steps", [1, 5])
def test_reaches_cvxpy_primal_and_dual(primal_steps):
    A, b, G, c, x_ref, lam_ref = constrained_least_squares()
    assert lam_ref[0] > 1e-3 and lam_ref[1] < 1e-6  # one active, one inactive constraint
    At, bt, Gt = (torch.tensor(v) for v in (A, b, G))
    model = nn.Linear(4, 1, bias=False).double()
    nn.init.zeros_(model.weight)

    def losses(m):
        w = m.weight[0]
        return 0.5 * ((At @ w - bt) ** 2).mean(), Gt @ w

    res = primal_dual(model, losses, c, steps=2000 // primal_steps, primal_lr=0.3, dual_lr=0.3,
                      primal_steps=primal_steps, optimizer="sgd")
    np.testing.assert_allclose(model.weight[0].detach().numpy(), x_ref, atol=1e-5)
    np.testing.assert_allclose(res.final_duals, lam_ref, atol=1e-5)
    assert res.final_violation < 1e-6
    assert res.objective.shape == (2000 // primal_steps,) and res.slacks.shape == (2000 // primal_steps, 2)
    assert (res.duals >= 0).all()


def test_batched_problems_match_separate_runs():
    A, b, G, c, _, _ = constrained_least_squares(1)
    At, bt, Gt = (torch.tensor(v) for v in (A, b, G))
    W = nn.Parameter(torch.zeros(3, 4, dtype=torch.float64))
    scale = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    holder = nn.Module()
    holder.W = W

    def batched(m):
        r = m.W @ At.T - bt
        return 0.5 * scale * (r ** 2).mean(-1), m.W @ Gt.T

    res = primal_dual(holder, batched, c, steps=200, primal_lr=0.1, dual_lr=0.3, optimizer="sgd")
    for k in range(3):
        single = nn.Linear(4, 1, bias=False).double()
        nn.init.zeros_(single.weight)
        one = primal_dual(single, lambda m, s=scale[k]: (0.5 * s * ((At @ m.weight[0] - bt) ** 2).mean(), Gt @ m.weight[0]),
                          c, steps=200, primal_lr=0.1, dual_lr=0.3, optimizer="sgd")
        np.testing.assert_allclose(res.final_duals[k], one.final_duals, atol=1e-10)
        np.testing.assert_allclose(W[k].detach().numpy(), single.weight[0].detach().numpy(), atol=1e-10)


def test_dual_projection_and_lagrangian():
    lam = torch.tensor([0.5, 0.1, 0.0])
    out = dual_step(lam, torch.tensor([1.0, -1.0, -2.0]), 0.5)
    assert torch.equal(out, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(project_duals(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 2.0]))
    assert float(lagrangian(torch.tensor(1.0), torch.tensor([2.0, -1.0]), torch.tensor([0.5, 3.0]))) == -1.0
    np.testing.assert_allclose(violation(torch.tensor([-0.2, 0.3])), [0.0, 0.3], rtol=1e-6)


def test_width_ensemble_members_equal_their_own_networks():
    X = torch.randn(7, 3, dtype=torch.float64)
    ens = WidthEnsemble(3, [0, 2, 5], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = ens(X)
    lin = X @ ens.V[0] + ens.b2[0]
    torch.testing.assert_close(out[0], lin)
    h = torch.sigmoid(X @ ens.W1[1, :, :2] + ens.b1[1, :2])
    torch.testing.assert_close(out[1], h @ ens.W2[1, :2] + ens.b2[1])
    (out ** 2).sum().backward()
    assert ens.W1.grad[1, :, 2:].abs().max() == 0 and ens.W2.grad[0].abs().max() == 0  # masked units never move


def test_demographic_parity_and_data():
    d = fair_tabular(400, generator=torch.Generator().manual_seed(0))
    assert d.X.shape == (400, 5) and set(d.y.unique().tolist()) == {0.0, 1.0}
    gap = float(d.y[d.z == 1].mean() - d.y[d.z == 0].mean())
    assert gap > 0.1  # the groups' positive rates differ
    gaps = demographic_parity_gaps(d.y, d.z)
    assert torch.allclose(gaps, torch.tensor([gap, -gap], dtype=gaps.dtype))
    assert demographic_parity_gaps(d.y.expand(3, -1), d.z).shape == (3, 2)


def test_compas_loader(tmp_path):
    with pytest.raises(FileNotFoundError, match="compas-scores-two-years.csv"):
        load_compas(tmp_path)
    rows = ["age,priors_count,juv_fel_count,juv_misd_count,juv_other_count,c_charge_degree,sex,race,"
            "two_year_recid,days_b_screening_arrest,is_recid,score_text"]
    rows += ["25,1,0,0,0,F,Male,African-American,1,0,1,Low", "40,0,0,1,0,M,Female,Caucasian,0,-1,0,High",
             "30,3,0,0,0,O,Male,Caucasian,1,0,1,Low", "50,2,1,0,0,M,Male,Caucasian,0,45,0,Low"]
    (tmp_path / "compas-scores-two-years.csv").write_text("\n".join(rows) + "\n")
    d = load_compas(tmp_path)
    assert d.X.shape == (2, 7) and d.z.tolist() == [1, 0] and d.y.tolist() == [1.0, 0.0]


def test_bad_inputs():
    m = nn.Linear(2, 1)
    f = lambda m: (m.weight.sum(), m.weight[0])  # noqa: E731
    with pytest.raises(ValueError, match="invalid steps 0"):
        primal_dual(m, f, [0.0, 0.0], steps=0, primal_lr=0.1, dual_lr=0.1)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        primal_dual(m, f, [0.0, 0.0], steps=1, primal_lr=0.1, dual_lr=0.1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="one per level"):
        primal_dual(m, f, [0.0], steps=1, primal_lr=0.1, dual_lr=0.1)
    with pytest.raises(ValueError, match="nonnegative initial duals"):
        primal_dual(m, f, [0.0, 0.0], steps=1, primal_lr=0.1, dual_lr=0.1, duals=torch.tensor([-1.0, 0.0]))
    with pytest.raises(ValueError, match="invalid dual_lr -1"):
        dual_step(torch.zeros(2), torch.zeros(2), -1)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        WidthEnsemble(2, [3], "gelu")
    with pytest.raises(ValueError, match="both groups"):
        demographic_parity_gaps(torch.rand(4), torch.ones(4, dtype=torch.long))
