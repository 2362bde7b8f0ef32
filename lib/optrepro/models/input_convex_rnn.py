r"""Input convex Lipschitz recurrent networks (Wang & Wu, arXiv:2401.07494), and their baselines.

**The ICLRNN cell.** For an input sequence :math:`x_1, \dots, x_T \in \mathbb R^d`, the input is first augmented to
:math:`\hat x_t = (x_t, -x_t)` (so that non-negative weights can still express a decreasing dependence), and

.. math::

    h_t = \mathrm{ReLU}\big(\bar U \hat x_t + \bar W h_{t-1} + b\big),\qquad y_t = \bar V h_t + c,\qquad h_0 = 0,

with every weight matrix **non-negative and spectrally normalized**:
:math:`\bar M = k\,|M| / \sigma_{\max}(|M|)` for a raw parameter :math:`M` and a Lipschitz coefficient :math:`k`
(the paper clips the weights at 0 and divides by their largest singular value; here the same constraint is a
parameterization, so it holds for every parameter value). Stacked layers feed :math:`h^{(l-1)}_t` (no augmentation)
into layer :math:`l`.

*Convexity.* :math:`\hat x_t` is affine in :math:`x`; a non-negative combination of convex functions plus an affine
one is convex, and ReLU is convex and non-decreasing, so by induction every :math:`h_t` and every :math:`y_t` is a
convex function of the whole input sequence :math:`(x_1,\dots,x_t)`. With ``lipschitz=None`` the normalization is
dropped (the input convex RNN, ICRNN, of the paper's ablation).

*Lipschitz bound.* ReLU is 1-Lipschitz, so for two input sequences
:math:`\|\delta h_t\| \le \sigma_U \|\delta x_t\| + \sigma_W \|\delta h_{t-1}\|`, with :math:`\sigma_U =
\sigma_{\max}(\bar U_+ - \bar U_-)` (the map :math:`x \mapsto \bar U \hat x`) and :math:`\sigma_W =
\sigma_{\max}(\bar W)`. Unrolled, :math:`\|\delta h_t\| \le \sum_{s\le t} \sigma_U\sigma_W^{t-s}\|\delta x_s\|`: a
lower-triangular Toeplitz operator whose :math:`\ell_2` norm is at most :math:`\sigma_U\sum_{j<T}\sigma_W^j`
(Young's inequality). Composing layers and the output map, the map from the whole input sequence to the whole
output sequence (both flattened, Euclidean norms) is Lipschitz with constant

.. math:: L_T = \sigma_{\max}(\bar V)\prod_l \Big(\sigma_U^{(l)} \sum_{j=0}^{T-1} (\sigma_W^{(l)})^j\Big)
          \qquad (:func:`lipschitz_bound`).

**Baselines**: :func:`recurrent_baseline` -- ``torch.nn.RNN`` (tanh, the paper's "RNN") or ``torch.nn.LSTM``
followed by a linear read-out at every step. **Data**: the paper's continuous stirred tank reactor is
:mod:`optrepro.data.cstr`. **Checks**: :func:`midpoint_violation` (convexity along random pairs), :func:`noisy_mse`
(additive Gaussian input noise); :func:`fit` trains any of the models with Adam on the mean squared error.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_int, check_nonnegative, check_positive
from ..threads import one_cpu_thread_if
from ..train import fit as train
from ..optim import Adam

__all__ = [
    "BASELINES",
    "ICLRNN",
    "FitResult",
    "fit",
    "lipschitz_bound",
    "midpoint_violation",
    "noisy_mse",
    "recurrent_baseline",
]


def _check_sequence(x: Tensor, d: int) -> None:
    if x.ndim != 3 or x.shape[-1] != d:
        raise ValueError(f"invalid input shape {tuple(x.shape)}: expected (batch, time, {d})")


def _normalized(M: Tensor, k: float | None) -> Tensor:
    """``k |M| / sigma_max(|M|)`` (``|M|`` when ``k`` is None)."""
    A = M.abs()
    if k is None:
        return A
    return k * A / torch.linalg.matrix_norm(A, ord=2).clamp_min(torch.finfo(A.dtype).tiny)


class ICLRNN(nn.Module):
    r"""The input convex Lipschitz RNN: ``num_layers`` ICLRNN cells and a non-negative, normalized read-out
    (see the module docstring). ``lipschitz`` is the coefficient :math:`k` of every weight matrix (``None``:
    non-negative weights only, the ICRNN). ``forward`` maps ``(batch, time, input_size)`` to
    ``(batch, time, output_size)``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, num_layers: int = 1,
                 lipschitz: float | None = 1.0):
        super().__init__()
        self.input_size = check_int("input_size", input_size, 1)
        self.hidden_size = check_int("hidden_size", hidden_size, 1)
        self.output_size = check_int("output_size", output_size, 1)
        self.num_layers = check_int("num_layers", num_layers, 1)
        self.lipschitz = None if lipschitz is None else check_positive("lipschitz", lipschitz)
        h = hidden_size
        fan = [2 * input_size] + [h] * (num_layers - 1)
        # positive-leaning uniform initialization of the raw weights: |M| is what the model uses
        self.U = nn.ParameterList([nn.Parameter(torch.rand(h, f) / math.sqrt(f)) for f in fan])
        self.W = nn.ParameterList([nn.Parameter(torch.rand(h, h) / math.sqrt(h)) for _ in fan])
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(h)) for _ in fan])
        self.V = nn.Parameter(torch.rand(output_size, h) / math.sqrt(h))
        self.c = nn.Parameter(torch.zeros(output_size))

    def weights(self) -> tuple[list[Tensor], list[Tensor], Tensor]:
        """The constrained matrices actually used: ``([U_l], [W_l], V)``, all non-negative."""
        k = self.lipschitz
        return ([_normalized(U, k) for U in self.U], [_normalized(W, k) for W in self.W], _normalized(self.V, k))

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, self.input_size)
        Us, Ws, V = self.weights()
        seq = torch.cat([x, -x], dim=-1)
        for U, W, b in zip(Us, Ws, self.b):
            inp = seq @ U.T + b                        # all time steps at once
            h = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            out = []
            for t in range(x.shape[1]):
                h = torch.relu(inp[:, t] + h @ W.T)
                out.append(h)
            seq = torch.stack(out, dim=1)
        return seq @ V.T + self.c

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, output_size={self.output_size}, "
                f"num_layers={self.num_layers}, lipschitz={self.lipschitz}")


def lipschitz_bound(model: ICLRNN, steps: int) -> float:
    r""":math:`L_T` of the module docstring: a Lipschitz constant (Euclidean norms) of the map from an input
    sequence of length ``steps`` to the output sequence."""
    if not isinstance(model, ICLRNN):
        raise ValueError(f"invalid model {type(model).__name__}: expected an ICLRNN")  # noqa: TRY004 (project rule)
    T = check_int("steps", steps, 1)
    Us, Ws, V = model.weights()
    with torch.no_grad():
        L = float(torch.linalg.matrix_norm(V, ord=2))
        d = model.input_size
        for layer, (U, W) in enumerate(zip(Us, Ws)):
            Ueff = U[:, :d] - U[:, d:] if layer == 0 else U
            sw = float(torch.linalg.matrix_norm(W, ord=2))
            L *= float(torch.linalg.matrix_norm(Ueff, ord=2)) * sum(sw ** j for j in range(T))
    return L


class _Baseline(nn.Module):
    """A torch.nn recurrent layer stack and a linear read-out at every time step."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, output_size: int, num_layers: int):
        super().__init__()
        self.input_size = input_size
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM}[kind]
        self.rnn = cls(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.readout = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, self.input_size)
        return self.readout(self.rnn(x)[0])


BASELINES = ("rnn", "lstm")


def recurrent_baseline(kind: str, input_size: int, hidden_size: int, output_size: int,
                       num_layers: int = 1) -> nn.Module:
    """``torch.nn.RNN`` (tanh) or ``torch.nn.LSTM`` with a linear read-out: ``(batch, time, input_size)`` to
    ``(batch, time, output_size)``."""
    if kind not in BASELINES:
        raise ValueError(f"invalid kind {kind!r}: expected one of {', '.join(BASELINES)}")
    return _Baseline(kind, check_int("input_size", input_size, 1), check_int("hidden_size", hidden_size, 1),
                     check_int("output_size", output_size, 1), check_int("num_layers", num_layers, 1))


@dataclass
class FitResult:
    loss: np.ndarray      # training MSE of each minibatch step
    final: float          # training MSE on the whole training set after the last step


def fit(model: nn.Module, X: Tensor, Y: Tensor, steps: int, lr: float, batch_size: int = 0,
        generator: torch.Generator | None = None) -> FitResult:
    """``steps`` Adam steps on ``mean((model(X) - Y)^2)``, on random minibatches of ``batch_size`` sequences
    (0: full batch; ``generator`` draws them, on the CPU), through :func:`optrepro.train.fit`."""
    steps, lr, batch_size = check_int("steps", steps, 1), check_positive("lr", lr), check_int("batch_size", batch_size, 0)
    if X.ndim != 3 or Y.ndim != 3 or X.shape[:2] != Y.shape[:2]:
        raise ValueError(f"invalid shapes X {tuple(X.shape)}, Y {tuple(Y.shape)}: expected (n, T, d) and (n, T, m)")
    n = X.shape[0]

    def loss(k):
        if batch_size and batch_size < n:
            idx = torch.randperm(n, generator=generator)[:batch_size].to(X.device)
            xb, yb = X[idx], Y[idx]
        else:
            xb, yb = X, Y
        return ((model(xb) - yb) ** 2).mean()

    with one_cpu_thread_if(n * X.shape[1] < 200_000, X.device):
        trace = train(loss, Adam(model.parameters(), lr=lr), steps, stop_on_nonfinite=False)
        with torch.no_grad():
            final = float(((model(X) - Y) ** 2).mean())
    return FitResult(trace["loss"], final)


def midpoint_violation(model: nn.Module, A: Tensor, B: Tensor) -> Tensor:
    r"""Per pair, the largest :math:`f_{t,j}\big(\tfrac{a+b}2\big) - \tfrac12\big(f_{t,j}(a) + f_{t,j}(b)\big)`
    over time steps :math:`t` and outputs :math:`j`, evaluated in float64 on a copy of the model: :math:`\le 0`
    for every pair when every output is convex in the input sequence."""
    if A.shape != B.shape:
        raise ValueError(f"invalid shapes A {tuple(A.shape)}, B {tuple(B.shape)}: expected equal shapes")
    m = copy.deepcopy(model).double()
    A, B = A.double(), B.double()
    with torch.no_grad():
        gap = m(0.5 * (A + B)) - 0.5 * (m(A) + m(B))
    return gap.flatten(1).max(dim=1).values


def noisy_mse(model: nn.Module, X: Tensor, Y: Tensor, sigma: float, generator: torch.Generator | None = None,
              repeats: int = 1) -> float:
    """Mean squared error of ``model`` on inputs ``X + sigma * N(0, I)`` (independent noise on every entry, drawn
    on the CPU by ``generator``), averaged over ``repeats`` draws; ``sigma = 0`` is the clean error."""
    sigma, repeats = check_nonnegative("sigma", sigma), check_int("repeats", repeats, 1)
    total = 0.0
    with torch.no_grad():
        for _ in range(repeats):
            noise = torch.randn(X.shape, generator=generator, dtype=X.dtype).to(X.device)
            total += float(((model(X + sigma * noise) - Y) ** 2).mean())
    return total / repeats
