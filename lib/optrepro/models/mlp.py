r"""The plain multilayer perceptron, built one way for the whole library.

:func:`mlp` returns ``nn.Sequential(Linear, act, Linear, act, ..., Linear)``:

.. math::
    h_0 = x,\qquad h_{\ell} = \sigma(W_\ell h_{\ell-1} + b_\ell)\ (\ell = 1..L),\qquad f(x) = W_{L+1} h_L + b_{L+1},

with hidden widths ``hidden = (n_1, ..., n_L)`` (``L = 0``: one linear layer) and the activation :math:`\sigma`
chosen by name (:data:`ACTIVATIONS`). Layers are created in that order, each ``nn.Linear`` with PyTorch's default
initialization (weight, then bias, uniform in :math:`\pm 1/\sqrt{\text{fan-in}}`), so the same seed gives the same
network as a hand-written ``nn.Sequential`` of the same layers; ``model[2 * l]`` is the ``l``-th linear layer.

Special architectures live beside it: input-convex (:mod:`optrepro.models.icnn`), monotone-constrained
(:mod:`optrepro.models.monotonic`), batched ensembles (:class:`optrepro.papers.constrained_learning_dual_feasibility.WidthEnsemble`).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..checks import check_choice, check_int

__all__ = ["ACTIVATIONS", "INITS", "activation", "mlp"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus, "prelu": nn.PReLU, "identity": nn.Identity,
}
INITS = ("torch", "zero_output")


def activation(name: str) -> nn.Module:
    """A new activation module by name, e.g. ``activation("relu")``; ``ValueError`` names the valid choices."""
    return _activation(check_choice("activation", name, tuple(ACTIVATIONS)), None, None)


def _activation(name: str, dtype, device) -> nn.Module:
    cls = ACTIVATIONS[name]
    return cls(device=device, dtype=dtype) if cls is nn.PReLU else cls()   # PReLU holds a parameter


def mlp(in_dim: int, hidden: int | Sequence[int] = (), out_dim: int = 1, *, depth: int | None = None,
        activation: str = "relu", bias: bool = True, init: str | Callable[[nn.Linear], None] = "torch",
        dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> nn.Sequential:
    """A plain MLP ``in_dim -> hidden... -> out_dim``.

    Parameters
    ----------
    in_dim, out_dim : input and output sizes.
    hidden : the hidden widths, a sequence (``()``: a linear model), or one width repeated ``depth`` times.
    depth : the number of hidden layers when ``hidden`` is an int (default 1).
    activation : a name in :data:`ACTIVATIONS`, applied after every hidden layer (not after the output layer).
    bias : whether the linear layers have biases.
    init : ``"torch"`` (``nn.Linear``'s default), ``"zero_output"`` (the default, then the output layer's weight and
        bias set to zero: ``x + mlp(x)`` starts at the identity, ``mlp(x)`` at 0), or a function called on every
        ``nn.Linear`` after construction, in order.
    dtype, device : where the parameters are created (initialization draws in that dtype; building in float32 and
        calling ``.to(float64)`` gives other numbers).
    """
    in_dim, out_dim = check_int("in_dim", in_dim, 1), check_int("out_dim", out_dim, 1)
    if isinstance(hidden, int):
        widths = [check_int("hidden", hidden, 1)] * check_int("depth", 1 if depth is None else depth, 0)
    else:
        if depth is not None:
            raise ValueError(f"invalid depth {depth!r}: give depth only with an int hidden width")
        widths = [check_int("hidden width", h, 1) for h in hidden]
    check_choice("activation", activation, tuple(ACTIVATIONS))
    if not callable(init):
        check_choice("init", init, INITS)
    kw = {"bias": bias, "dtype": dtype, "device": device}
    dims = [in_dim, *widths]
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b, **kw), _activation(activation, dtype, device)]
    layers.append(nn.Linear(dims[-1], out_dim, **kw))
    net = nn.Sequential(*layers)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        if callable(init):
            for lin in linears:
                init(lin)
        elif init == "zero_output":
            nn.init.zeros_(linears[-1].weight)
            if bias:
                nn.init.zeros_(linears[-1].bias)
    return net
