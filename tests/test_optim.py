"""Tests for optrepro.optim: Adam, AMSGrad and SGD against torch.optim.Adam / torch.optim.SGD and a numpy reference."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

from optrepro.optim import SGD, AMSGrad, Adam

DTYPE = torch.float64
OURS = {False: Adam, True: AMSGrad}  # keyed by torch.optim.Adam's amsgrad flag


def make_problem(seed: int):
    """Parameters of several shapes and a smooth non-quadratic loss of all of them."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (4,), (2, 3, 2), ()]
    params = [torch.randn(s, generator=gen, dtype=DTYPE) for s in shapes]
    data = torch.randn(7, 3, generator=gen, dtype=DTYPE)
    target = torch.randn(7, 4, generator=gen, dtype=DTYPE)

    def loss_fn(ps):
        weight, bias, cube, scalar = ps
        pred = torch.tanh(data @ weight + bias) * (1 + scalar**2)
        return ((pred - target) ** 2).mean() + (cube**4).sum() * 0.1 + torch.sin(cube).sum()

    return params, loss_fn


def clone_params(params):
    return [p.clone().requires_grad_(True) for p in params]


def param_groups(ps, weight_decay):
    """Two groups with different lr and betas; ps[3] goes without a gradient on some steps."""
    return [
        {"params": ps[:2], "lr": 3e-2, "betas": (0.9, 0.999), "weight_decay": weight_decay},
        {"params": ps[2:], "lr": 1e-2, "betas": (0.5, 0.9)},
    ]


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("use_closure", [False, True])
def test_matches_torch_adam(amsgrad, weight_decay, use_closure):
    params, loss_fn = make_problem(seed=1 + int(amsgrad) + 2 * int(use_closure))
    ours_p, ref_p = clone_params(params), clone_params(params)
    ours = OURS[amsgrad](param_groups(ours_p, weight_decay), eps=1e-8)
    ref = torch.optim.Adam(param_groups(ref_p, weight_decay), eps=1e-8, amsgrad=amsgrad, foreach=False)

    def closure_for(opt, ps):
        def closure():
            opt.zero_grad()
            loss = loss_fn(ps)
            loss.backward()
            return loss
        return closure

    moved = 0.0
    for step in range(60):
        if use_closure:
            loss_ours = ours.step(closure_for(ours, ours_p))
            loss_ref = ref.step(closure_for(ref, ref_p))
            assert torch.equal(loss_ours, loss_ref)
        else:
            for opt, ps in ((ours, ours_p), (ref, ref_p)):
                closure_for(opt, ps)()
                if step % 5 == 4:  # some steps leave a parameter without a gradient
                    ps[3].grad = None
                opt.step()
        assert all(torch.equal(a, b) for a, b in zip(ours_p, ref_p))  # bitwise, step for step
        moved = max(moved, max((a - p).abs().max().item() for a, p in zip(ours_p, params)))
    assert moved > 0.05  # the comparison is not vacuous: the parameters really moved


def numpy_reference(grads, lr, beta1, beta2, eps, amsgrad, x0=0.0):
    """The uncorrected update of Reddi et al., Algorithms 1 (Adam) and 2 (AMSGrad), plus eps."""
    x, m, v, v_hat = x0, 0.0, 0.0, 0.0
    xs = []
    for g in grads:
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) if amsgrad else v
        x = x - lr * m / (np.sqrt(v_hat) + eps)
        xs.append(x)
    return np.array(xs)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_no_bias_correction_matches_paper_update(amsgrad):
    grads = [3.0, -1.0, -1.0, 0.5, 10.0, -0.2, 0.0, 2.0, -4.0, 0.1]
    lr, beta1, beta2, eps = 0.1, 0.7, 0.9, 1e-8
    expected = numpy_reference(grads, lr, beta1, beta2, eps, amsgrad)
    x = torch.zeros(1, dtype=DTYPE, requires_grad=True)
    opt = OURS[amsgrad]([x], lr=lr, betas=(beta1, beta2), eps=eps, bias_correction=False)
    got = []
    for g in grads:
        x.grad = torch.tensor([g], dtype=DTYPE)
        opt.step()
        got.append(x.item())
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # Adam and AMSGrad really differ on this sequence (v_t shrinks after the large gradient).
    other = numpy_reference(grads, lr, beta1, beta2, eps, not amsgrad)
    assert np.abs(other - expected).max() > 1e-3


def test_amsgrad_denominator_never_decreases_while_adams_does():
    torch.manual_seed(0)
    x_ams = torch.zeros(5, dtype=DTYPE, requires_grad=True)
    x_adam = torch.zeros(5, dtype=DTYPE, requires_grad=True)
    ams = AMSGrad([x_ams], lr=0.1, betas=(0.9, 0.9))
    adam = Adam([x_adam], lr=0.1, betas=(0.9, 0.9))
    prev_max, adam_decreased = None, False
    prev_v = None
    for t in range(200):
        g = torch.randn(5, dtype=DTYPE) * (20.0 if t % 50 == 0 else 1.0)
        x_ams.grad, x_adam.grad = g.clone(), g.clone()
        ams.step()
        adam.step()
        v_max = ams.state[x_ams]["max_exp_avg_sq"].clone()
        torch.testing.assert_close(ams.state[x_ams]["exp_avg_sq"], adam.state[x_adam]["exp_avg_sq"])
        if prev_max is not None:
            assert torch.all(v_max >= prev_max)
            adam_decreased |= bool(torch.any(adam.state[x_adam]["exp_avg_sq"] < prev_v))
        assert torch.all(v_max >= ams.state[x_ams]["exp_avg_sq"])
        prev_max, prev_v = v_max, adam.state[x_adam]["exp_avg_sq"].clone()
    assert adam_decreased


@pytest.mark.parametrize("cls", [Adam, AMSGrad])
def test_state_dict_round_trip_continues_identically(cls):
    params, loss_fn = make_problem(seed=7)
    first_p = clone_params(params)
    first = cls(param_groups(first_p, 0.05), bias_correction=True)

    def run(opt, ps, steps):
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(ps).backward()
            opt.step()

    run(first, first_p, 10)
    saved = copy.deepcopy(first.state_dict())
    second_p = clone_params([p.detach() for p in first_p])
    fresh_p = clone_params([p.detach() for p in first_p])
    second = cls(param_groups(second_p, 0.05))
    second.load_state_dict(saved)
    assert second.state[second_p[0]]["step"] == 10
    run(first, first_p, 15)
    run(second, second_p, 15)
    for a, b in zip(first_p, second_p):
        assert torch.equal(a, b)
    # Without the loaded state the continuation differs, so the check above is not vacuous.
    run(cls(param_groups(fresh_p, 0.05)), fresh_p, 15)
    assert not all(torch.equal(a, b) for a, b in zip(fresh_p, first_p))


def test_works_in_float32_and_skips_params_without_grad():
    a = torch.ones(3, dtype=torch.float32, requires_grad=True)
    b = torch.ones(2, dtype=torch.float32, requires_grad=True)
    opt = AMSGrad([a, b], lr=0.1)
    a.grad = torch.full((3,), 2.0)
    opt.step()
    assert a.dtype == torch.float32 and opt.state[a]["exp_avg"].dtype == torch.float32
    torch.testing.assert_close(a, torch.full((3,), 0.9))  # first bias-corrected step is lr * sign(g)
    assert torch.equal(b, torch.ones(2)) and b not in opt.state


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_sgd_matches_torch_sgd(momentum, nesterov, weight_decay):
    params, loss_fn = make_problem(seed=5)
    ours_p, ref_p = clone_params(params), clone_params(params)
    groups = lambda ps: [{"params": ps[:2], "lr": 3e-2}, {"params": ps[2:], "lr": 1e-2}]  # noqa: E731
    ours = SGD(groups(ours_p), momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    ref = torch.optim.SGD(groups(ref_p), momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, foreach=False)
    for step in range(60):
        for opt, ps in ((ours, ours_p), (ref, ref_p)):
            opt.zero_grad()
            loss_fn(ps).backward()
            if step % 5 == 4:  # some steps leave a parameter without a gradient
                ps[3].grad = None
            opt.step()
        assert all(torch.equal(a, b) for a, b in zip(ours_p, ref_p))  # bitwise, step for step
    assert max((a - p).abs().max().item() for a, p in zip(ours_p, params)) > 0.05


@pytest.mark.parametrize("kwargs, bad", [({"lr": 0.0}, "0.0"), ({"momentum": 1.0}, "1.0"), ({"weight_decay": -1.0}, "-1.0")])
def test_sgd_bad_hyperparameters_raise_one_line_value_error(kwargs, bad):
    with pytest.raises(ValueError, match=f"invalid .* {bad}: expected"):
        SGD([torch.zeros(2, requires_grad=True)], **{"lr": 0.1, **kwargs})


def test_construction_and_step_do_not_import_dynamo():
    """The family's point over torch.optim: no ~1 s import of torch._dynamo on the first construction."""
    code = ("import sys, torch; from optrepro.optim import Adam, SGD; w = torch.zeros(2, requires_grad=True); "
            "w.grad = torch.ones(2); [o.step() or o.zero_grad() for o in (Adam([w]), SGD([w], momentum=0.9))]; "
            "print('torch._dynamo' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


BAD_INPUTS = [
    ({"lr": -0.1}, "-0.1"),
    ({"lr": float("nan")}, "nan"),
    ({"betas": (1.0, 0.999)}, "1.0"),
    ({"betas": (-0.1, 0.999)}, "-0.1"),
    ({"betas": (0.9, 1.5)}, "1.5"),
    ({"betas": (0.9,)}, "(0.9,)"),
    ({"eps": -1e-8}, "-1e-08"),
    ({"weight_decay": -0.5}, "-0.5"),
    ({"bias_correction": "yes"}, "'yes'"),
]


@pytest.mark.parametrize("cls", [Adam, AMSGrad])
@pytest.mark.parametrize("kwargs, bad", BAD_INPUTS)
def test_bad_hyperparameters_raise_one_line_value_error(cls, kwargs, bad):
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError) as info:
        cls([x], **kwargs)
    message = str(info.value)
    assert bad in message and "expected" in message and "\n" not in message


@pytest.mark.parametrize("cls", [Adam, AMSGrad])
def test_bad_hyperparameter_in_a_param_group_is_rejected(cls):
    x, y = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"invalid beta2 1\.2: expected 0 <= beta2 < 1$"):
        cls([{"params": [x]}, {"params": [y], "betas": (0.9, 1.2)}])
