import pytest
import torch
from optrepro.models.mlp import ACTIVATIONS, mlp
from torch import nn


def test_same_numbers_as_a_hand_written_sequential():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    torch.manual_seed(0)
    net = mlp(3, (5, 4), 2, activation="tanh")
    assert net.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(7, 3)
    assert torch.equal(net(x), ref(x))


def test_width_and_depth_linear_and_bias():
    net = mlp(3, 8, depth=3, bias=False)
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [8, 8, 8, 1]
    assert all(m.bias is None for m in net if isinstance(m, nn.Linear))
    assert len(mlp(3)) == 1 and len(mlp(3, 8, depth=0)) == 1   # no hidden layer: a linear model


def test_zero_output_init_dtype_and_custom_init():
    net = mlp(2, (4,), 3, activation="prelu", init="zero_output", dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert torch.equal(net(torch.randn(5, 2, dtype=torch.float64)), torch.zeros(5, 3, dtype=torch.float64))
    net = mlp(2, (4,), init=lambda lin: nn.init.ones_(lin.weight))
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in net if isinstance(m, nn.Linear))


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match="unknown activation 'swish': choose one of " + ", ".join(ACTIVATIONS)):
        mlp(2, (4,), activation="swish")
    with pytest.raises(ValueError, match="unknown init"):
        mlp(2, (4,), init="xavier")
    with pytest.raises(ValueError, match="invalid depth"):
        mlp(2, (4,), depth=2)
