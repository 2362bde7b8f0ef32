r"""Input convex LSTM surrogates and control optimization through them (Wang, Yu, Wu; Applied Energy 2024;
arXiv:2311.07202).

**The IC-LSTM cell.** The input is augmented with its negation, :math:`\hat x_t = [x_t, -x_t]` (so that a
non-negative weight on :math:`\hat x_t` is still any affine map of :math:`x_t`), every weight that multiplies a
convex quantity is kept non-negative by parameterization (:math:`W^+ = \mathrm{softplus}(W)`), and the sigmoid and
tanh of the LSTM are replaced by the convex, non-decreasing, non-negative ReLU. With one shared pre-activation per
step and non-negative diagonal gate scalings :math:`d_i, d_c`,

.. math::

    z_t = W^+ h_{t-1} + U^+ \hat x_t,\qquad i_t = \mathrm{ReLU}(d_i^+ \odot z_t + b_i),\qquad
    \tilde c_t = \mathrm{ReLU}(d_c^+ \odot z_t + b_c),

    c_t = f \odot c_{t-1} + i_t \odot \tilde c_t,\qquad h_t = o \odot \mathrm{ReLU}(c_t),\qquad
    y_t = V^+ h_t + A^+ \hat x_t + b_y .

**Why it is convex, and our one deviation.** A non-negative combination of convex functions is convex, and a
convex non-decreasing function of a convex function is convex; :math:`i_{t,j}` and :math:`\tilde c_{t,j}` are
non-negative, non-decreasing convex functions of the *same* scalar :math:`z_{t,j}`, so their product is convex and
non-decreasing in it ((gh)' = g'h + gh' is non-decreasing). A product of convex functions of *different*
arguments is not convex in general (:math:`x_1 x_2`), so the input-dependent forget and output gates of the
paper's cell (which multiply :math:`c_{t-1}` and :math:`\mathrm{ReLU}(c_t)`) would break the guarantee; here they
are learned per-unit constants :math:`f = \sigma(\phi), o = \sigma(\omega) \in (0, 1)`. With that, every
:math:`y_t` is convex in the whole input sequence :math:`x_{1:T}` for every value of the parameters, which
:func:`midpoint_convexity_gap` checks numerically.

**Control optimization through a surrogate** (:func:`optimize_controls`). For a trained surrogate :math:`\hat y`
and a fixed initial state, the control sequence :math:`u_{1:T} \in [u_{lo}, u_{hi}]^T` minimizes

.. math:: J(u) = \frac1T\sum_t \hat y_t(u) + \lambda\,\frac1T\sum_t (u_t - u_{ref})^2

by projected Adam (clip to the box after every step) from :math:`K` random starts at once (a batch). Through an
IC-LSTM, :math:`J` is convex (strongly, for :math:`\lambda > 0`): every start reaches the same optimum. Through a
plain LSTM it need not be.

* :class:`ICLSTMCell`, :class:`ICLSTM` -- the cell and the sequence model; :class:`PlainLSTM` -- the baseline
  (``torch.nn.LSTM`` and a linear read-out); :func:`train_surrogate` -- mini-batch Adam on the MSE;
  :func:`surrogate_input` -- the surrogates' input encoding; :func:`economic_objective`, :func:`optimize_controls` --
  the control problem; the simulated process (the plant and its data) is :mod:`optrepro.problems.hammerstein`; :func:`midpoint_convexity_gap` -- the numerical convexity check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int, check_nonnegative, check_positive
from ..optim import Adam
from ..train import fit as train

__all__ = ["ICLSTMCell", "ICLSTM", "PlainLSTM", "FitResult", "ControlResult", "train_surrogate", "economic_objective",
           "optimize_controls", "midpoint_convexity_gap", "make_surrogate", "KINDS", "surrogate_input"]

KINDS = ("ic-lstm", "lstm")


def _pos(p: Tensor) -> Tensor:
    """The non-negative reparameterization used for every constrained weight."""
    return F.softplus(p)


def _check_seq(x: Tensor, n_in: int) -> None:
    if x.ndim != 3 or x.shape[-1] != n_in:
        raise ValueError(f"invalid input shape {tuple(x.shape)}: expected (batch, time, {n_in})")


class ICLSTMCell(nn.Module):
    """One step of the input convex LSTM (see the module docstring): ``(x_hat, (h, c)) -> (h, c)``.

    ``x_hat`` is the augmented input ``[x, -x]`` of width ``2 * n_in``; ``h`` and ``c`` are non-negative."""

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.n_in, self.hidden = check_int("n_in", n_in, 1), check_int("hidden", hidden, 1)
        # raw parameters; softplus(raw) is the weight used. Raw values near -1 (weights ~0.3) keep softplus' slope
        # away from 0, and the spread between the weights on x and on -x gives z a random linear function of x.
        self.U = nn.Parameter(-1.0 + torch.randn(hidden, 2 * n_in))
        self.W = nn.Parameter(-1.0 - torch.log(torch.tensor(float(hidden))) + 0.5 * torch.randn(hidden, hidden))
        self.d_i = nn.Parameter(torch.full((hidden,), -4.0))  # starts near a constant input gate (no blow-up)
        self.d_c = nn.Parameter(torch.zeros(hidden))
        self.b_i = nn.Parameter(0.5 + 0.1 * torch.randn(hidden))
        self.b_c = nn.Parameter(0.5 + 0.1 * torch.randn(hidden))
        self.forget = nn.Parameter(torch.full((hidden,), 1.0))   # f = sigmoid(forget), constant per unit
        self.output = nn.Parameter(torch.full((hidden,), 1.0))   # o = sigmoid(output), constant per unit

    def weights(self) -> tuple[Tensor, ...]:
        """The constrained weights ``(W+, U+, d_i+, d_c+, f, o)`` (computed once per sequence)."""
        return (_pos(self.W), _pos(self.U), _pos(self.d_i), _pos(self.d_c), torch.sigmoid(self.forget),
                torch.sigmoid(self.output))

    def step(self, ux: Tensor, h: Tensor, c: Tensor, w: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        """One step given ``ux = U+ x_hat_t`` and the weights ``w`` of :meth:`weights`."""
        W, _, d_i, d_c, f, o = w
        z = h @ W.T + ux
        i = F.relu(d_i * z + self.b_i)
        c_tilde = F.relu(d_c * z + self.b_c)
        c = f * c + i * c_tilde
        return o * F.relu(c), c

    def forward(self, x_hat: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        w = self.weights()
        return self.step(x_hat @ w[1].T, *state, w)


class ICLSTM(nn.Module):
    """Input convex LSTM sequence model: ``(batch, time, n_in) -> (batch, time, n_out)``, every output convex in
    the whole input sequence. Read-out ``y_t = V^+ h_t + A^+ [x_t, -x_t] + b``."""

    def __init__(self, n_in: int, hidden: int, n_out: int = 1):
        super().__init__()
        self.n_in, self.n_out = check_int("n_in", n_in, 1), check_int("n_out", n_out, 1)
        self.cell = ICLSTMCell(n_in, hidden)
        self.V = nn.Parameter(-1.0 - torch.log(torch.tensor(float(hidden))) + 0.5 * torch.randn(n_out, hidden))
        self.A = nn.Parameter(-1.0 + torch.randn(n_out, 2 * n_in))
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x, self.n_in)
        x_hat = torch.cat([x, -x], dim=-1)
        h = x.new_zeros(x.shape[0], self.cell.hidden)
        c = torch.zeros_like(h)
        w = self.cell.weights()
        ux = x_hat @ w[1].T                      # (batch, time, hidden), all steps at once
        hs = []
        for t in range(x.shape[1]):
            h, c = self.cell.step(ux[:, t], h, c, w)
            hs.append(h)
        return torch.stack(hs, dim=1) @ _pos(self.V).T + x_hat @ _pos(self.A).T + self.b


class PlainLSTM(nn.Module):
    """The baseline: a standard LSTM (sigmoid/tanh, unconstrained weights) and a linear read-out of ``h_t``."""

    def __init__(self, n_in: int, hidden: int, n_out: int = 1):
        super().__init__()
        self.n_in = check_int("n_in", n_in, 1)
        self.lstm = nn.LSTM(n_in, check_int("hidden", hidden, 1), batch_first=True)
        self.head = nn.Linear(hidden, check_int("n_out", n_out, 1))

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x, self.n_in)
        return self.head(self.lstm(x)[0])


def make_surrogate(kind: str, n_in: int, hidden: int, n_out: int = 1) -> nn.Module:
    """``"ic-lstm"`` (:class:`ICLSTM`) or ``"lstm"`` (:class:`PlainLSTM`)."""
    if kind not in KINDS:
        raise ValueError(f"invalid kind {kind!r}: expected one of {', '.join(KINDS)}")
    return (ICLSTM if kind == "ic-lstm" else PlainLSTM)(n_in, hidden, n_out)


def surrogate_input(u: Tensor, x0: Tensor) -> Tensor:
    """The surrogate's input sequence: per step ``[u_t, e_t]`` with ``e_1 = x0`` and ``e_t = 0`` after (the initial
    state enters once, as an impulse, and its effect decays through the cell state) -> (batch, T, 2)."""
    e = torch.zeros_like(u)
    e[:, 0] = x0
    return torch.stack([u, e], dim=-1)


@dataclass
class FitResult:
    loss: np.ndarray   # training MSE per epoch (mean over its mini-batches)
    final: float       # training MSE after the last epoch


def train_surrogate(model: nn.Module, X: Tensor, Y: Tensor, epochs: int, lr: float, batch_size: int,
                    generator: torch.Generator) -> FitResult:
    """Mini-batch Adam on the mean squared error ``mean((model(X) - Y)^2)``, a cosine-decayed step size
    (through :func:`optrepro.train.fit`)."""
    epochs, batch_size, lr = check_int("epochs", epochs, 1), check_int("batch_size", batch_size, 1), check_positive("lr", lr)
    if X.ndim != 3 or Y.ndim != 3 or X.shape[:2] != Y.shape[:2]:
        raise ValueError(f"invalid shapes X {tuple(X.shape)}, Y {tuple(Y.shape)}: expected (n, T, d_in), (n, T, d_out)")
    opt = Adam(model.parameters(), lr=lr)
    n = X.shape[0]
    per_epoch = -(-n // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * per_epoch)
    hist, state = [], {}

    def loss(k):   # step k: batch k % per_epoch of a fresh permutation each epoch
        if k % per_epoch == 0:
            state["perm"], state["tot"] = torch.randperm(n, generator=generator).to(X.device), 0.0
        idx = state["perm"][(k % per_epoch) * batch_size:(k % per_epoch + 1) * batch_size]
        value = ((model(X[idx]) - Y[idx]) ** 2).mean()
        state["tot"] += float(value.detach()) * len(idx)
        if k % per_epoch == per_epoch - 1:
            hist.append(state["tot"] / n)
        return value

    train(loss, opt, epochs * per_epoch, scheduler=sched, every=epochs * per_epoch, stop_on_nonfinite=False)
    with torch.no_grad():
        final = float(((model(X) - Y) ** 2).mean())
    return FitResult(np.asarray(hist), final)


def economic_objective(y_hat: Tensor, u: Tensor, u_ref: float, weight: float) -> Tensor:
    r""":math:`J = \mathrm{mean}_t\, \hat y_t + \lambda\, \mathrm{mean}_t (u_t - u_{ref})^2` per sequence:
    ``y_hat`` (K, T) or (K, T, 1), ``u`` (K, T) -> (K,)."""
    check_nonnegative("weight", weight)
    if y_hat.ndim == 3:
        y_hat = y_hat[..., 0]
    if y_hat.shape != u.shape:
        raise ValueError(f"invalid shapes y_hat {tuple(y_hat.shape)}, u {tuple(u.shape)}: expected equal (K, T)")
    return y_hat.mean(1) + weight * ((u - u_ref) ** 2).mean(1)


@dataclass
class ControlResult:
    u: Tensor            # (K, T) optimized controls
    objective: Tensor    # (K,) final objective through the surrogate
    history: np.ndarray  # (steps + 1, K) objective per step
    initial: Tensor      # (K, T) the random starts


def optimize_controls(model: nn.Module, x0: float, T: int, K: int, lower: float, upper: float, u_ref: float,
                      weight: float, steps: int, lr: float, generator: torch.Generator) -> ControlResult:
    """Minimize :func:`economic_objective` through the surrogate ``model`` over ``u`` in ``[lower, upper]^T`` by
    projected Adam (cosine-decayed step), from ``K`` uniform random starts at once."""
    T, K, steps, lr = check_int("T", T, 1), check_int("K", K, 1), check_int("steps", steps, 1), check_positive("lr", lr)
    if not lower < upper:
        raise ValueError(f"invalid box [{lower}, {upper}]: expected lower < upper")
    p = next(model.parameters())
    u0 = lower + (upper - lower) * torch.rand(K, T, generator=generator, dtype=p.dtype)
    u = u0.clone().to(p.device).requires_grad_(True)
    x0v = torch.full((K,), float(x0), dtype=p.dtype, device=p.device)
    for q in model.parameters():
        q.requires_grad_(False)
    opt = Adam([u], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    hist = []
    try:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            J = economic_objective(model(surrogate_input(u, x0v)), u, u_ref, weight)
            hist.append(J.detach().cpu().numpy())
            J.sum().backward()   # the K problems are independent: the sum's gradient is each one's
            opt.step()
            sched.step()
            with torch.no_grad():
                u.clamp_(lower, upper)
        with torch.no_grad():
            J = economic_objective(model(surrogate_input(u, x0v)), u, u_ref, weight)
        hist.append(J.cpu().numpy())
    finally:
        for q in model.parameters():
            q.requires_grad_(True)
    return ControlResult(u.detach(), J.detach(), np.stack(hist), u0)


def midpoint_convexity_gap(f: Callable[[Tensor], Tensor], a: Tensor, b: Tensor) -> float:
    r"""The largest violation of midpoint convexity, :math:`\max\big(f(\tfrac{a+b}2) - \tfrac{f(a)+f(b)}2\big)`
    over the batch and every output entry (``<= 0`` up to round-off for a convex ``f``)."""
    if a.shape != b.shape:
        raise ValueError(f"invalid shapes a {tuple(a.shape)}, b {tuple(b.shape)}: expected equal shapes")
    with torch.no_grad():
        return float((f((a + b) / 2) - (f(a) + f(b)) / 2).max())
