r"""A nonlinear first-order Hammerstein plant, the simulated process of Wang, Yu & Wu (Applied Energy 2024,
arXiv:2311.07202; input convex LSTMs for control): its simulation (:func:`hammerstein_plant`), the exact plant in the
surrogates' interface (:class:`PlantModel`) and random training sequences (:func:`plant_dataset`). The surrogates and
the control optimization are :mod:`optrepro.models.input_convex_lstm`.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from optrepro.checks import check_int
from optrepro.models.input_convex_lstm import _check_seq, surrogate_input

__all__ = ["PlantModel", "hammerstein_plant", "plant_dataset"]


def hammerstein_plant(u: Tensor, x0: Tensor, a: float = 0.8, gain: float = 0.4, curvature: float = 0.6,
                      ripple: float = 0.0, frequency: float = 6.0) -> Tensor:
    r"""A nonlinear first-order plant (Hammerstein type: a static input nonlinearity feeding a first-order lag),

    .. math:: x_{k+1} = a\,x_k + g\,\big(u_k + \kappa u_k^2 + r \sin(\omega u_k)\big),\qquad y_k = x_{k+1},

    e.g. a heated tank whose heat input grows faster than linearly with the actuator, with a ripple of amplitude
    :math:`r` (valve characteristic) that makes the true response non-convex when :math:`r\omega^2 > 2\kappa`. ``u``: (batch, T) controls,
    ``x0``: (batch,) initial states; returns the outputs (batch, T)."""
    if u.ndim != 2 or x0.shape != (u.shape[0],):
        raise ValueError(f"invalid shapes u {tuple(u.shape)}, x0 {tuple(x0.shape)}: expected (batch, T) and (batch,)")
    if not 0 <= a < 1:
        raise ValueError(f"invalid a {a!r}: expected 0 <= a < 1 (a stable lag)")
    x, out = x0, []
    for k in range(u.shape[1]):
        x = a * x + gain * (u[:, k] + curvature * u[:, k] ** 2 + ripple * torch.sin(frequency * u[:, k]))
        out.append(x)
    return torch.stack(out, dim=1)


class PlantModel(nn.Module):
    """The exact plant in the surrogates' interface (input :func:`surrogate_input`, output (batch, T, 1)): the
    reference for what :func:`optimize_controls` finds on the true, non-convex problem."""

    def __init__(self, **plant: float):
        super().__init__()
        self.plant = plant
        self.anchor = nn.Parameter(torch.zeros(()))   # carries dtype and device; unused in the output

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x, 2)
        return hammerstein_plant(x[..., 0], x[:, 0, 1], **self.plant)[..., None] + 0 * self.anchor


def plant_dataset(n: int, T: int, lower: float, upper: float, x0_scale: float, generator: torch.Generator,
                  dtype: torch.dtype = torch.float32, **plant: float) -> tuple[Tensor, Tensor]:
    """``n`` random sequences: controls uniform in ``[lower, upper]``, initial states uniform in
    ``[-x0_scale, x0_scale]``; returns surrogate inputs (n, T, 2) and plant outputs (n, T, 1). ``plant``: keyword
    arguments of :func:`hammerstein_plant`."""
    n, T = check_int("n", n, 1), check_int("T", T, 1)
    if not lower < upper:
        raise ValueError(f"invalid box [{lower}, {upper}]: expected lower < upper")
    u = lower + (upper - lower) * torch.rand(n, T, generator=generator, dtype=dtype)
    x0 = x0_scale * (2 * torch.rand(n, generator=generator, dtype=dtype) - 1)
    return surrogate_input(u, x0), hammerstein_plant(u, x0, **plant)[..., None]
