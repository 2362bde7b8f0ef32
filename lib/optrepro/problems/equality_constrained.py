r"""Equality-constrained test problems :math:`\min f(x)` s.t. :math:`c(x) = 0` (torch, float64).

* Hock & Schittkowski (1981), "Test Examples for Nonlinear Programming Codes": the problems with only equality
  constraints and a nondegenerate solution, with their published starting points and optimal values
  (:func:`hock_schittkowski`). The published optima are checked against scipy's SLSQP in the tests.
* Constrained logistic regression (the ML setting of Hong, Na, Mahoney & Kolar, ICML 2023, arXiv:2305.18379):
  :math:`\min_x \frac1n\sum_i\log(1+e^{-y_i a_i^\top x}) + \frac\rho2\lVert x\rVert^2` s.t. :math:`Cx = b` with
  Gaussian :math:`C` (rows normalized) and :math:`b = C x_0` for a Gaussian :math:`x_0` (:func:`constrained_logistic`).
* Semilinear Poisson control (PDE-constrained): on the unit interval/square with homogeneous Dirichlet conditions,
  :math:`\min_{y,u} \frac h2\sum(y - y_d)^2 + \frac{\alpha h}2\sum u^2` s.t. :math:`-\Delta_h y + y^3 = u`
  (finite differences, :math:`h = 1/(n+1)`, constraint scaled by :math:`h^2`) (:func:`poisson_control`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable

import torch

from optrepro.checks import check_choice, check_int, check_positive

__all__ = ["EqualityProblem", "HS_NAMES", "hock_schittkowski", "constrained_logistic", "poisson_control"]


@dataclass
class EqualityProblem:
    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    c: Callable[[torch.Tensor], torch.Tensor]
    x0: torch.Tensor
    f_star: float | None = None     # published optimal value (None: no published value)
    source: str = ""

    @property
    def n(self) -> int:
        return self.x0.numel()

    @property
    def m(self) -> int:
        return self.c(self.x0).numel()


def _t(*v):
    return torch.stack(list(v))


R2 = math.sqrt(2.0)
# name: (f, c, x0, published f*)
_HS = {
    "HS6": (lambda x: (1 - x[0]) ** 2, lambda x: _t(10 * (x[1] - x[0] ** 2)), [-1.2, 1.0], 0.0),
    "HS7": (lambda x: torch.log(1 + x[0] ** 2) - x[1], lambda x: _t((1 + x[0] ** 2) ** 2 + x[1] ** 2 - 4),
            [2.0, 2.0], -math.sqrt(3.0)),
    "HS27": (lambda x: 0.01 * (x[0] - 1) ** 2 + (x[1] - x[0] ** 2) ** 2, lambda x: _t(x[0] + x[2] ** 2 + 1),
             [2.0, 2.0, 2.0], 0.04),
    "HS28": (lambda x: (x[0] + x[1]) ** 2 + (x[1] + x[2]) ** 2, lambda x: _t(x[0] + 2 * x[1] + 3 * x[2] - 1),
             [-4.0, 1.0, 1.0], 0.0),
    "HS39": (lambda x: -x[0], lambda x: _t(x[1] - x[0] ** 3 - x[2] ** 2, x[0] ** 2 - x[1] - x[3] ** 2),
             [2.0, 2.0, 2.0, 2.0], -1.0),
    "HS40": (lambda x: -x[0] * x[1] * x[2] * x[3],
             lambda x: _t(x[0] ** 3 + x[1] ** 2 - 1, x[0] ** 2 * x[3] - x[2], x[3] ** 2 - x[1]),
             [0.8, 0.8, 0.8, 0.8], -0.25),
    "HS42": (lambda x: (x[0] - 1) ** 2 + (x[1] - 2) ** 2 + (x[2] - 3) ** 2 + (x[3] - 4) ** 2,
             lambda x: _t(x[0] - 2, x[2] ** 2 + x[3] ** 2 - 2), [1.0, 1.0, 1.0, 1.0], 28.0 - 10.0 * R2),
    "HS48": (lambda x: (x[0] - 1) ** 2 + (x[1] - x[2]) ** 2 + (x[3] - x[4]) ** 2,
             lambda x: _t(x.sum() - 5, x[2] - 2 * (x[3] + x[4]) + 3), [3.0, 5.0, -3.0, 2.0, -2.0], 0.0),
    "HS51": (lambda x: (x[0] - x[1]) ** 2 + (x[1] + x[2] - 2) ** 2 + (x[3] - 1) ** 2 + (x[4] - 1) ** 2,
             lambda x: _t(x[0] + 3 * x[1] - 4, x[2] + x[3] - 2 * x[4], x[1] - x[4]),
             [2.5, 0.5, 2.0, -1.0, 0.5], 0.0),
    "HS52": (lambda x: (4 * x[0] - x[1]) ** 2 + (x[1] + x[2] - 2) ** 2 + (x[3] - 1) ** 2 + (x[4] - 1) ** 2,
             lambda x: _t(x[0] + 3 * x[1], x[2] + x[3] - 2 * x[4], x[1] - x[4]), [2.0] * 5, 1859.0 / 349.0),
    "HS61": (lambda x: 4 * x[0] ** 2 + 2 * x[1] ** 2 + 2 * x[2] ** 2 - 33 * x[0] + 16 * x[1] - 24 * x[2],
             lambda x: _t(3 * x[0] - 2 * x[1] ** 2 - 7, 4 * x[0] - x[2] ** 2 - 11), [0.0, 0.0, 0.0],
             -143.6461422),
    "HS77": (lambda x: (x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[2] - 1) ** 2 + (x[3] - 1) ** 4 + (x[4] - 1) ** 6,
             lambda x: _t(x[0] ** 2 * x[3] + torch.sin(x[3] - x[4]) - 2 * R2,
                          x[1] + x[2] ** 4 * x[3] ** 2 - 8 - R2), [2.0] * 5, 0.24150513),
    "HS78": (lambda x: x.prod(),
             lambda x: _t((x ** 2).sum() - 10, x[1] * x[2] - 5 * x[3] * x[4], x[0] ** 3 + x[1] ** 3 + 1),
             [-2.0, 1.5, 2.0, -1.0, -1.0], -2.91970041),
    "HS79": (lambda x: (x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 2 + (x[2] - x[3]) ** 4
             + (x[3] - x[4]) ** 4,
             lambda x: _t(x[0] + x[1] ** 2 + x[2] ** 3 - 2 - 3 * R2, x[1] - x[2] ** 2 + x[3] + 2 - 2 * R2,
                          x[0] * x[4] - 2), [2.0] * 5, 0.0787768209),
}
HS_NAMES = tuple(_HS)


def hock_schittkowski(name: str, dtype=torch.float64, device="cpu") -> EqualityProblem:
    """One Hock-Schittkowski problem (published start point and optimal value)."""
    name = check_choice("name", name, HS_NAMES)
    f, c, x0, fstar = _HS[name]
    return EqualityProblem(name, f, c, torch.tensor(x0, dtype=dtype, device=device), fstar,
                           "Hock & Schittkowski (1981)")


def constrained_logistic(A: torch.Tensor, y: torch.Tensor, m: int, *, ridge: float = 1e-2,
                         generator: torch.Generator | None = None, name: str = "logistic") -> EqualityProblem:
    """Logistic regression (labels +-1) with m random linear equality constraints C x = b."""
    m = check_int("m", m, 1)
    ridge = check_positive("ridge", ridge)
    if A.ndim != 2 or y.shape != (A.shape[0],):
        raise ValueError(f"invalid shapes A {tuple(A.shape)}, y {tuple(y.shape)}: expected (n, d) and (n,)")
    d = A.shape[1]
    C = torch.randn(m, d, generator=generator, dtype=A.dtype).to(A.device)
    C = C / C.norm(dim=1, keepdim=True)
    b = C @ torch.randn(d, generator=generator, dtype=A.dtype).to(A.device)
    yA = y.unsqueeze(1) * A

    def f(x):
        return torch.nn.functional.softplus(-(yA @ x)).mean() + 0.5 * ridge * x @ x

    return EqualityProblem(name, f, lambda x: C @ x - b, torch.zeros(d, dtype=A.dtype, device=A.device), None,
                           "constrained logistic regression")


def poisson_control(n: int, *, dim: int = 1, alpha: float = 1e-2, dtype=torch.float64,
                    device="cpu") -> EqualityProblem:
    """Semilinear Poisson tracking control on n (per axis) interior grid points; x = (y, u)."""
    n = check_int("n", n, 2)
    if dim not in (1, 2):
        raise ValueError(f"invalid dim {dim!r}: choose one of 1, 2")
    alpha = check_positive("alpha", alpha)
    h = 1.0 / (n + 1)
    t = torch.linspace(h, 1 - h, n, dtype=dtype, device=device)
    if dim == 1:
        yd = torch.sin(math.pi * t) * 2.0
    else:
        X, Y = torch.meshgrid(t, t, indexing="ij")
        yd = (2.0 * torch.sin(math.pi * X) * torch.sin(math.pi * Y)).reshape(-1)
    N = yd.numel()
    w = h ** dim

    def lap(y):   # h^2 * (-Laplacian_h y), Dirichlet zero boundary
        if dim == 1:
            p = torch.nn.functional.pad(y, (1, 1))
            return 2 * y - p[:-2] - p[2:]
        Y2 = torch.nn.functional.pad(y.reshape(n, n), (1, 1, 1, 1))
        return (4 * Y2[1:-1, 1:-1] - Y2[:-2, 1:-1] - Y2[2:, 1:-1] - Y2[1:-1, :-2] - Y2[1:-1, 2:]).reshape(-1)

    def f(x):
        y, u = x[:N], x[N:]
        return 0.5 * w * ((y - yd) ** 2).sum() + 0.5 * alpha * w * (u ** 2).sum()

    def c(x):
        y, u = x[:N], x[N:]
        return lap(y) + h * h * (y ** 3 - u)

    return EqualityProblem(f"poisson{dim}d-n{n}", f, c, torch.zeros(2 * N, dtype=dtype, device=device), None,
                           "semilinear Poisson control")
