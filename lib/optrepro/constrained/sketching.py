r"""Randomized iterative sketching (block sketch-and-project) for a square linear system :math:`Kz = r`.

Gower & Richtarik (2015) sketch-and-project with row sketches: at each step a random block :math:`S` of
:math:`s` rows is drawn and the iterate is projected onto the solutions of the sketched system,

.. math::  z \leftarrow z + K_S^\top (K_S K_S^\top)^{-1}(r_S - K_S z).

With :math:`s = 1` and rows drawn with probability :math:`\propto\lVert K_i\rVert^2` this is randomized Kaczmarz
(Strohmer & Vershynin 2009), which converges linearly in expectation for any consistent system. Blocks here are a
random partition of the rows, redrawn every epoch (one pass over the rows). Used by the sketched SQP of Hong, Na,
Mahoney & Kolar (ICML 2023, arXiv:2305.18379) to solve each Newton-KKT system **inexactly**: the solver stops at
the first epoch end where the adaptive accuracy condition holds,

.. math::  \lVert K z - r\rVert \le \theta\,\lVert r\rVert \quad\text{and}\quad \texttt{accept}(z)

(``accept`` is the caller's extra test, e.g. that :math:`z` is a descent direction of the merit function).

Flop counts (multiply-adds counted as 2): a block step costs :math:`2sN` (sketched residual)
:math:`+\,2s^2N` (Gram) :math:`+\,s^3/3` (Cholesky) :math:`+\,2sN` (update); the residual check at an epoch end
costs :math:`2N^2`. A dense LU solve costs :math:`\tfrac23N^3 + 2N^2`.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import torch

from optrepro.checks import check_int, check_nonnegative

__all__ = ["SketchResult", "sketch_solve", "direct_solve_flops"]


@dataclass
class SketchResult:
    z: torch.Tensor
    relative_residual: float   # ||K z - r|| / ||r||
    steps: int                 # block projections
    epochs: int
    flops: float
    converged: bool


def direct_solve_flops(n: int) -> float:
    """Flops of a dense LU solve of an n x n system."""
    return 2.0 * n ** 3 / 3.0 + 2.0 * n ** 2


def sketch_solve(K: torch.Tensor, r: torch.Tensor, *, theta: float, block: int = 1, z0: torch.Tensor | None = None,
                 max_epochs: int = 1000, accept: Callable[[torch.Tensor], bool] | None = None,
                 generator: torch.Generator | None = None) -> SketchResult:
    """Block sketch-and-project on K z = r until ||K z - r|| <= theta ||r|| (and ``accept(z)``), checked per epoch."""
    if K.ndim != 2 or K.shape[0] != K.shape[1] or r.shape != (K.shape[0],):
        raise ValueError(f"invalid shapes K {tuple(K.shape)}, r {tuple(r.shape)}: expected (N, N) and (N,)")
    theta = check_nonnegative("theta", theta)
    N = K.shape[0]
    block = check_int("block", block, 1)
    if block > N:
        raise ValueError(f"invalid block {block}: expected 1 <= block <= N = {N}")
    max_epochs = check_int("max_epochs", max_epochs, 1)
    z = torch.zeros_like(r) if z0 is None else z0.clone()
    rnorm = float(r.norm())
    flops, steps = 0.0, 0

    def done(z):
        nonlocal flops
        flops += 2.0 * N * N
        rel = float((K @ z - r).norm()) / rnorm if rnorm > 0 else 0.0
        return rel, rel <= theta and (accept is None or accept(z))

    rel, ok = done(z)
    epochs = 0
    while not ok and epochs < max_epochs:
        if block == 1:   # randomized Kaczmarz: rows drawn proportionally to their squared norms
            rows = torch.multinomial(K.square().sum(1).cpu(), N, replacement=True, generator=generator).to(K.device)
            blocks = rows.unsqueeze(1)
        else:
            perm = torch.randperm(N, generator=generator).to(K.device)
            blocks = [perm[i:i + block] for i in range(0, N, block)]
        for S in blocks:
            KS = K[S]
            s = KS.shape[0]
            gram = KS @ KS.T
            res = r[S] - KS @ z
            if s == 1:
                z = z + KS[0] * (res[0] / gram[0, 0])
            else:
                w, info = torch.linalg.solve_ex(gram, res)
                if int(info) != 0:   # dependent rows in the block: the projection is the pseudo-inverse one
                    w = torch.linalg.pinv(gram) @ res
                z = z + KS.T @ w
            flops += 4.0 * s * N + 2.0 * s * s * N + s ** 3 / 3.0
            steps += 1
        epochs += 1
        rel, ok = done(z)
    return SketchResult(z, rel, steps, epochs, flops, ok)
