r"""notebooks/constrained-learning-dual-feasibility.ipynb: the width sweep of Elenter, Chamon & Ribeiro (ICLR 2024,
arXiv:2403.11844), "Near-Optimal Solutions of Constrained Learning Problems".

Demographic-parity-constrained logistic training of models of growing capacity (width 0 = linear, then one hidden
layer of growing width), all trained in one batched run (:class:`WidthEnsemble`) by the paper's dual ascent
(:func:`optrepro.constrained.primal_dual.primal_dual`); :func:`width_sweep` returns the last iterate's and the
randomized predictor's constraint violations per width:

.. math::
    \ell_0 = \mathbb E[\mathrm{BCE}(f_\theta(x), y)],\qquad
    \pm\big(\mathbb E[\sigma(f_\theta(x)) \mid z = 1] - \mathbb E[\sigma(f_\theta(x)) \mid z = 0]\big) \le c .
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from optrepro.checks import check_choice, check_int, check_nonnegative
from optrepro.constrained.primal_dual import PrimalDualResult, primal_dual, violation
from optrepro.data.fairness import FairData
from optrepro.metrics.fairness import demographic_parity_gaps
from optrepro.models.mlp import activation as make_activation

__all__ = ["ACTIVATIONS", "WidthEnsemble", "WidthSweep", "width_sweep"]

ACTIVATIONS = ("sigmoid", "relu", "tanh")   # those WidthEnsemble's members use


class WidthEnsemble(nn.Module):
    """K independent one-hidden-layer networks of the given widths, evaluated in one batched pass.

    Member k is exactly ``optrepro.models.mlp.mlp(in_dim, widths[k] or (), 1, activation=activation)``: its hidden units beyond ``widths[k]`` are masked out
    (they get zero gradient and never move) and width 0 is a linear model (a separate linear path). Each member is
    initialized like ``torch.nn.Linear`` (uniform in +-1/sqrt(fan-in)). ``forward(X)`` returns the ``(K, n)`` outputs.
    """

    def __init__(self, in_dim: int, widths, activation: str = "sigmoid", generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        in_dim = check_int("in_dim", in_dim, 1)
        widths = [check_int("width", w, 0) for w in widths]
        if not widths:
            raise ValueError("invalid widths []: expected at least one width")
        check_choice("activation", activation, ACTIVATIONS)
        K, H = len(widths), max(max(widths), 1)
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        u = lambda shape, fan: (torch.rand(shape, generator=g, dtype=dtype) * 2 - 1) / fan ** 0.5  # noqa: E731
        mask = (torch.arange(H)[None, :] < torch.tensor(widths)[:, None]).to(dtype)
        fan2 = torch.tensor([max(w, 1) for w in widths], dtype=dtype)[:, None]
        self.widths = widths
        self.act = make_activation(activation)
        self.register_buffer("mask", mask)
        self.register_buffer("hidden", torch.tensor([float(w > 0) for w in widths], dtype=dtype))
        self.W1 = nn.Parameter(u((K, in_dim, H), in_dim) * mask[:, None, :])
        self.b1 = nn.Parameter(u((K, H), in_dim) * mask)
        self.W2 = nn.Parameter(u((K, H), 1) / fan2.sqrt() * mask)
        self.b2 = nn.Parameter(torch.where(self.hidden > 0, u((K,), 1) / fan2[:, 0].sqrt(), u((K,), in_dim)))
        self.V = nn.Parameter(u((K, in_dim), in_dim) * (1 - self.hidden)[:, None])   # the linear members' weights

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h = self.act(torch.einsum("nd,kdh->knh", X, self.W1 * self.mask[:, None, :]) + self.b1[:, None, :])
        out = torch.einsum("knh,kh->kn", h, self.W2 * self.mask) * self.hidden[:, None]
        return out + (X @ (self.V * (1 - self.hidden)[:, None]).T).T + self.b2[:, None]


@dataclass
class WidthSweep:
    """Fairness-constrained training of every width (``repeats`` initializations each) in one batched run."""
    widths: list[int]
    violation: np.ndarray     # (W, R) final-iterate violation max(|gap| - c, 0)
    objective: np.ndarray     # (W, R) final training cross-entropy
    accuracy: np.ndarray      # (W, R) final training accuracy
    randomized: np.ndarray    # (W, R) violation of the predictor randomized over the second half of the iterates
    gap: np.ndarray           # (W, R) final |demographic-parity gap|
    free_gap: np.ndarray      # (W, R) the same for the unconstrained copies (baseline=True; else empty)
    free_accuracy: np.ndarray  # (W, R) their training accuracy
    result: PrimalDualResult  # the traces, members ordered width-major (the unconstrained copies after them)

    def trace(self, name: str) -> np.ndarray:
        """``slacks`` (T, W, R, m) or ``duals`` (T, W, R, m) or ``objective`` (T, W, R)."""
        a = getattr(self.result, name)
        n = len(self.widths) * self.violation.shape[1]
        return a[:, :n].reshape(a.shape[0], len(self.widths), -1, *a.shape[2:])


def width_sweep(data: FairData, widths, repeats: int, level: float, *, steps: int, primal_lr: float,
                dual_lr: float, optimizer: str = "adam", activation: str = "sigmoid", baseline: bool = False,
                generator: torch.Generator | None = None) -> WidthSweep:
    r"""Demographic-parity-constrained logistic training, :math:`|\bar p_1 - \bar p_0| \le c`, of a
    :class:`WidthEnsemble` holding every width ``repeats`` times, by :func:`primal_dual`.

    The randomized predictor draws one of the iterates of the second half uniformly for each prediction; its
    demographic-parity gap is the average of theirs (the gap is linear in the predictions). ``baseline=True`` also
    trains, in the same batched run, an unconstrained copy of every member (level 1: the gap never exceeds it).
    """
    repeats = check_int("repeats", repeats, 1)
    level = check_nonnegative("level", level)
    widths = [check_int("width", w, 0) for w in widths]
    members = [w for w in widths for _ in range(repeats)]
    n_con = len(members)
    members = members * (2 if baseline else 1)
    levels = torch.full((len(members), 2), level, dtype=data.X.dtype, device=data.X.device)
    levels[n_con:] = 1.0
    model = WidthEnsemble(data.X.shape[1], members, activation, generator, data.X.dtype).to(data.X.device)
    Y = data.y.expand(len(members), -1)

    def losses(m):
        out = m(data.X)
        bce = nn.functional.binary_cross_entropy_with_logits(out, Y, reduction="none").mean(-1)
        return bce, demographic_parity_gaps(torch.sigmoid(out), data.z)

    res = primal_dual(model, losses, levels, steps=steps, primal_lr=primal_lr, dual_lr=dual_lr,
                      optimizer=optimizer)
    with torch.no_grad():
        acc = ((model(data.X) > 0).to(Y.dtype) == Y).to(Y.dtype).mean(-1).cpu().numpy()
    shape = (len(widths), repeats)
    rand = violation(res.slacks[steps // 2:, :n_con].mean(0)).max(-1)
    gap = np.abs(res.slacks[-1, :, 0] + levels[:, 0].cpu().numpy())
    return WidthSweep(widths, res.final_violation[:n_con].reshape(shape), res.objective[-1, :n_con].reshape(shape),
                      acc[:n_con].reshape(shape), rand.reshape(shape), gap[:n_con].reshape(shape),
                      gap[n_con:].reshape(shape) if baseline else np.empty(0),
                      acc[n_con:].reshape(shape) if baseline else np.empty(0), res)
