r"""Standard and parallel deep linear networks with weight decay, and their convex dual bound.

Reference: Y. Wang, T. Ergen, M. Pilanci, *Parallel Deep Neural Networks Have Zero Duality Gap*, ICLR 2023,
arXiv:2110.06482 (deep linear networks with vector outputs).

**Networks.** Data :math:`X \in \mathbb R^{n\times d}`, targets :math:`Y \in \mathbb R^{n\times c}`. A network of
depth :math:`L` with :math:`m` branches (``branches``), each a chain of :math:`L` linear layers,

.. math:: f(X) = \sum_{j=1}^m X W_{1,j} W_{2,j} \cdots W_{L,j},

is the *standard* architecture for :math:`m = 1` (hidden width ``width``) and the *parallel* one for :math:`m > 1`
(each branch of hidden width ``width``, e.g. 1). Both are trained on

.. math:: \tfrac12\|f(X) - Y\|_F^2 + \frac{\beta}{p}\sum_{j=1}^m\sum_{l=1}^L \|W_{l,j}\|_F^{p},

with the paper's weight decay of power :math:`p = L` (its "modified regularization"; :math:`p = 2` is the usual
squared weight decay). Rescaling the layers of a branch (:math:`W_l \to t_l W_l`, :math:`\prod t_l = 1`) and AM-GM
turn the regularizer of a branch into :math:`\beta\prod_l\|W_{l,j}\|_F`, and the minimum of that product over the
factorizations of :math:`W_j = W_{1,j}\cdots W_{L,j}` is the Schatten-:math:`2/L` quasi-norm
:math:`\|W_j\|_{S_{2/L}} = (\sum_i\sigma_i(W_j)^{2/L})^{L/2}`. Hence (widths large enough)

.. math:: P_{\rm std} = \min_W \tfrac12\|XW - Y\|_F^2 + \beta\|W\|_{S_{2/L}}, \qquad
          P_{\rm par} = \min_W \tfrac12\|XW - Y\|_F^2 + \beta\|W\|_*,

the second because each branch costs at least :math:`\beta\|W_j\|_*` (equality for rank-one branches) and the
nuclear norm is subadditive. :math:`D = P_{\rm par}` is the **convex dual bound**: the Lagrangian dual of either
network problem (the paper: the dual constraint is a spectral-norm ball, whose dual is the nuclear norm), so
:math:`P_{\rm std} \ge D = P_{\rm par}`, with a strict gap for :math:`L \ge 3` when the optimal :math:`W` needs rank
:math:`\ge 2` (for :math:`L = 2` both are the nuclear norm: no gap).

**Closed forms** (whitened data, :math:`X^\top X = I_d`): with :math:`A = X^\top Y` and its singular values
:math:`a_i`, :math:`\tfrac12\|XW - Y\|^2 = \tfrac12\|W - A\|^2 + \mathrm{const}`, both regularizers are unitarily
invariant, so the optimal :math:`W` shares :math:`A`'s singular vectors and only its singular values :math:`s_i`
remain: :math:`D` by singular-value soft-thresholding :math:`s_i = (a_i - \beta)_+`; :math:`P_{\rm std}` by a
low-dimensional (non-convex) search over :math:`s \ge 0` (:func:`standard_optimum`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..checks import check_int, check_nonnegative, check_positive
from ..optim.functional import adam_step

__all__ = [
    "DeepLinearResult",
    "convex_bound",
    "convex_bound_cvxpy",
    "network_objective",
    "network_product",
    "parallel_from_matrix",
    "schatten_quasi_norm",
    "standard_from_matrix",
    "standard_optimum",
    "train_deep_linear",
    "whitened_problem",
]


def _check_whitened(X: Tensor, tol: float = 1e-8) -> None:
    gram = X.T @ X
    err = float((gram - torch.eye(X.shape[1], dtype=X.dtype, device=X.device)).abs().max())
    if err > tol:
        raise ValueError(f"invalid X: X^T X differs from the identity by {err:.2e}; expected whitened data "
                         f"(orthonormal columns, see whitened_problem) for the closed form")


def whitened_problem(n: int, d: int, c: int, singular_values, noise: float,
                     generator: torch.Generator | None = None, dtype=torch.float64):
    """A regression instance: ``X`` (n, d) with orthonormal columns, ``Y = X W0 + noise * E`` with ``W0`` (d, c)
    of the given singular values and random singular vectors. Returns ``(X, Y, W0)`` on the CPU."""
    n, d, c = check_int("n", n, 1), check_int("d", d, 1), check_int("c", c, 1)
    noise = check_nonnegative("noise", noise)
    if n < d:
        raise ValueError(f"invalid n {n}: expected n >= d = {d} for whitened data")
    s = torch.as_tensor(list(singular_values), dtype=torch.float64)
    if len(s) > min(d, c) or (s < 0).any():
        raise ValueError(f"invalid singular_values {s.tolist()}: expected at most min(d, c) = {min(d, c)} values >= 0")
    X, _ = torch.linalg.qr(torch.randn(n, d, generator=generator, dtype=torch.float64))
    U, _ = torch.linalg.qr(torch.randn(d, len(s), generator=generator, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(c, len(s), generator=generator, dtype=torch.float64))
    W0 = U @ torch.diag(s) @ V.T
    Y = X @ W0 + noise * torch.randn(n, c, generator=generator, dtype=torch.float64)
    return X.to(dtype), Y.to(dtype), W0.to(dtype)


def schatten_quasi_norm(W: Tensor, depth: int) -> float:
    r""":math:`\|W\|_{S_{2/L}} = (\sum_i \sigma_i^{2/L})^{L/2}` (the nuclear norm for ``depth = 2``)."""
    depth = check_int("depth", depth, 1)
    s = torch.linalg.svdvals(W.double())
    return float((s ** (2.0 / depth)).sum() ** (depth / 2.0))


def _const(X: Tensor, Y: Tensor) -> float:
    # 1/2 ||XW - Y||^2 = 1/2 ||W - X^T Y||^2 + 1/2 (||Y||^2 - ||X^T Y||^2) for whitened X
    return 0.5 * float((Y ** 2).sum() - ((X.T @ Y) ** 2).sum())


def convex_bound(X: Tensor, Y: Tensor, beta: float):
    r"""The convex dual bound :math:`D = \min_W \frac12\|XW - Y\|^2 + \beta\|W\|_*` for whitened ``X``, by
    singular-value soft-thresholding. Returns ``(value, W)``."""
    beta = check_nonnegative("beta", beta)
    _check_whitened(X)
    A = (X.T @ Y).double()
    U, a, Vh = torch.linalg.svd(A, full_matrices=False)
    s = torch.clamp(a - beta, min=0)
    value = 0.5 * float(((s - a) ** 2).sum()) + beta * float(s.sum()) + _const(X.double(), Y.double())
    return value, (U * s) @ Vh


def convex_bound_cvxpy(X: Tensor, Y: Tensor, beta: float) -> float:
    """The same convex program for any ``X``, solved by cvxpy (a reference for tests)."""
    import cvxpy as cp

    beta = check_nonnegative("beta", beta)
    Xn, Yn = X.double().cpu().numpy(), Y.double().cpu().numpy()
    W = cp.Variable((Xn.shape[1], Yn.shape[1]))
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(Xn @ W - Yn) + beta * cp.normNuc(W)))
    prob.solve()
    return float(prob.value)


def _std_reg(s: np.ndarray, depth: int) -> float:
    return float((s ** (2.0 / depth)).sum() ** (depth / 2.0)) if s.size else 0.0


def standard_optimum(X: Tensor, Y: Tensor, beta: float, depth: int, starts: int = 4, iters: int = 4000):
    r"""The global optimum :math:`P_{\rm std} = \min_W \frac12\|XW - Y\|^2 + \beta\|W\|_{S_{2/L}}` of the standard
    network (hidden widths at least the rank) for whitened ``X``. Only the singular values :math:`s` of :math:`W`
    (those of :math:`A = X^\top Y` keep their vectors) are searched: for every support of :math:`s` (each subset of
    the :math:`r = \mathrm{rank}\,A` values, so :math:`r` must be small) projected gradient descent on
    :math:`s > 0` from ``starts`` points, all supports and starts batched. Returns ``(value, W)``."""
    beta = check_nonnegative("beta", beta)
    depth = check_int("depth", depth, 1)
    starts, iters = check_int("starts", starts, 1), check_int("iters", iters, 1)
    _check_whitened(X)
    A = (X.T @ Y).double().cpu()
    U, a_t, Vh = torch.linalg.svd(A, full_matrices=False)
    a = a_t.numpy()
    r = len(a)
    if r > 10:
        raise ValueError(f"invalid rank {r} of X^T Y: standard_optimum enumerates supports, expected rank <= 10")
    q = 2.0 / depth
    rng = np.random.default_rng(0)
    masks = np.array([[i in sup for i in range(r)] for k in range(1, r + 1)
                      for sup in itertools.combinations(range(r), k)], dtype=float)
    masks = np.repeat(masks, starts, axis=0)
    scale = np.ones_like(masks)
    scale[1::starts] = a.mean() / np.maximum(a, 1e-12)               # equal singular values
    if starts > 2:
        scale[2::starts] = 0
        for j in range(2, starts):
            scale[j::starts] = rng.uniform(0.05, 1.0, scale[j::starts].shape)
    s = np.maximum(a * scale, 1e-3) * masks
    floor = 1e-12
    for _ in range(iters):                                         # projected gradient, step 0.2 (the loss is 1-smooth)
        tot = (np.maximum(s, floor) ** q * masks).sum(1, keepdims=True)
        grad = (s - a) + beta * tot ** (1 / q - 1) * np.maximum(s, floor) ** (q - 1)
        s = np.maximum(s - 0.2 * grad * masks, floor) * masks
    s[s < 1e-9] = 0.0

    def value(s):
        return 0.5 * float(((s - a) ** 2).sum()) + beta * _std_reg(s[s > 0], depth)

    candidates = [np.zeros(r)] + list(s)
    best_s = min(candidates, key=value)
    W = (U * torch.as_tensor(best_s)) @ Vh
    return value(best_s) + _const(X.double().cpu(), Y.double().cpu()), W.to(X.dtype)


# ----------------------------------------------------------------------------------------------------------------
# The networks: a list of L tensors, layer l of shape (runs, branches, fan_in, fan_out).

def network_product(layers: list[Tensor]) -> Tensor:
    r"""The end-to-end matrix :math:`\sum_j W_{1,j}\cdots W_{L,j}`, shape ``(runs, d, c)``."""
    P = layers[0]
    for W in layers[1:]:
        P = P @ W
    return P.sum(1)


def network_objective(X: Tensor, Y: Tensor, layers: list[Tensor], beta: float, power: float | None = None) -> Tensor:
    r"""Per run :math:`\frac12\|\sum_j XW_{1,j}\cdots W_{L,j} - Y\|_F^2 + \frac\beta p\sum_{j,l}\|W_{l,j}\|_F^p`
    (``power`` :math:`p`, default the depth :math:`L`), shape ``(runs,)``."""
    p = len(layers) if power is None else check_positive("power", power)
    fit = X @ network_product(layers) - Y
    reg = sum(((W ** 2).sum((2, 3)) ** (p / 2)).sum(1) for W in layers)
    return 0.5 * (fit ** 2).sum((1, 2)) + beta / p * reg


def _balanced_roots(W: Tensor, depth: int, size: int | None, name: str):
    """SVD of ``W``, its numerical rank r, and the per-layer factors sigma_j^(1/L) padded with zeros to ``size``
    (default r) entries: what both balanced constructions below share."""
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    r = int((s > 1e-12 * max(float(s.max()), 1e-300)).sum())
    n = r if size is None else check_int(name, size, max(r, 1))
    root = torch.zeros(n, dtype=W.dtype, device=W.device)
    root[:r] = s[:r] ** (1.0 / depth)
    return U, Vh, r, root


def standard_from_matrix(W: Tensor, depth: int, width: int | None = None) -> list[Tensor]:
    r"""Balanced standard network (one branch) with product ``W``: :math:`W_1 = U\Sigma^{1/L}`,
    :math:`W_l = \Sigma^{1/L}`, :math:`W_L = \Sigma^{1/L}V^\top`, hidden width ``width`` (default the rank; padded
    with zeros). Its regularizer is :math:`\beta\|W\|_{S_{2/L}}`. Returns layers with ``runs = 1``."""
    depth = check_int("depth", depth, 2)
    U, Vh, r, root = _balanced_roots(W, depth, width, "width")
    h = root.shape[0]
    Uh = torch.zeros(W.shape[0], h, dtype=W.dtype, device=W.device)
    Vhh = torch.zeros(h, W.shape[1], dtype=W.dtype, device=W.device)
    Uh[:, :r], Vhh[:r] = U[:, :r], Vh[:r]
    layers = [Uh * root] + [torch.diag(root) for _ in range(depth - 2)] + [root[:, None] * Vhh]
    return [L[None, None] for L in layers]


def parallel_from_matrix(W: Tensor, depth: int, branches: int | None = None) -> list[Tensor]:
    r"""Parallel network of rank-one branches (width 1) with product ``W``: branch :math:`j` carries
    :math:`\sigma_j^{1/L}u_j`, :math:`\sigma_j^{1/L}`, ..., :math:`\sigma_j^{1/L}v_j^\top`, so its regularizer is
    :math:`\beta\sigma_j` and the network's :math:`\beta\|W\|_*`. ``branches`` (default the rank) pads with zeros."""
    depth = check_int("depth", depth, 2)
    U, Vh, r, root = _balanced_roots(W, depth, branches, "branches")
    m = root.shape[0]
    first = torch.zeros(m, W.shape[0], 1, dtype=W.dtype, device=W.device)
    last = torch.zeros(m, 1, W.shape[1], dtype=W.dtype, device=W.device)
    first[:r, :, 0] = (U[:, :r] * root[:r]).T
    last[:r, 0] = root[:r, None] * Vh[:r]
    middle = [root[:, None, None].clone() for _ in range(depth - 2)]
    return [t[None] for t in [first] + middle + [last]]


@dataclass
class DeepLinearResult:
    layers: list[Tensor]   # L tensors (runs, branches, fan_in, fan_out)
    objective: Tensor      # (steps, runs): objective before each step
    final: Tensor          # (runs,): objective at the end
    product: Tensor        # (runs, d, c): the end-to-end matrix


def train_deep_linear(X: Tensor, Y: Tensor, beta: float, depth: int, branches: int = 1, width: int = 1,
                      runs: int = 10, steps: int = 2000, lr: float = 1e-2, lr_final: float = 1e-4,
                      init_scale: float = 0.5, power: float | None = None,
                      generator: torch.Generator | None = None) -> DeepLinearResult:
    r"""Train ``runs`` networks (``branches = 1``: standard, hidden width ``width``; ``branches > 1``: parallel,
    each branch of hidden width ``width``) from independent Gaussian initializations (entries
    :math:`\mathcal N(0, \mathrm{init\_scale}^2/\mathrm{fan\_in})`), full batch, with Adam whose step
    size decays geometrically from ``lr`` to ``lr_final`` (:func:`adam_step`). All runs are one batched tensor per layer; each run's
    gradient is its own (the runs' objectives are summed for autograd)."""
    beta = check_nonnegative("beta", beta)
    depth, branches, width = check_int("depth", depth, 1), check_int("branches", branches, 1), check_int("width", width, 1)
    runs, steps = check_int("runs", runs, 1), check_int("steps", steps, 1)
    lr, lr_final, init_scale = check_positive("lr", lr), check_positive("lr_final", lr_final), check_positive("init_scale", init_scale)
    dims = [X.shape[1]] + [width] * (depth - 1) + [Y.shape[1]]
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        W = torch.randn(runs, branches, a, b, generator=generator, dtype=torch.float64) * (init_scale / a ** 0.5)
        layers.append(W.to(X.device, X.dtype).requires_grad_(True))
    decay = (lr_final / lr) ** (1.0 / max(steps - 1, 1))
    m1 = [torch.zeros_like(W) for W in layers]
    m2 = [torch.zeros_like(W) for W in layers]
    trace = []
    for t in range(1, steps + 1):
        obj = network_objective(X, Y, layers, beta, power)
        grads = torch.autograd.grad(obj.sum(), layers)
        adam_step(layers, grads, m1, m2, t, lr * decay ** (t - 1))
        trace.append(obj.detach())
    with torch.no_grad():
        layers = [W.detach() for W in layers]
        final = network_objective(X, Y, layers, beta, power)
    return DeepLinearResult(layers, torch.stack(trace), final, network_product(layers))
