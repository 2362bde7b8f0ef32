r"""Low-rank matrix sensing by factorized gradient descent: symmetric :math:`XX^\top` and asymmetric :math:`FG^\top`.

Reference: N. Xiong, L. Ding, S. S. Du. "How Over-Parameterization Slows Down Gradient Descent in Matrix Sensing:
The Curses of Symmetry and Initialization." ICLR 2024, arXiv:2310.01769.

**Problem.** An unknown rank-``r`` matrix :math:`M^\star \in \mathbb{R}^{n_1\times n_2}` is observed through ``m``
linear measurements :math:`y_i = \langle A_i, M^\star\rangle`, :math:`i = 1..m`. We write the measurement operator
:math:`\mathcal{A}(Z) = (\langle A_i, Z\rangle)_{i\le m}` and its adjoint :math:`\mathcal{A}^*(v) = \sum_i v_i A_i`.
The sensing matrices are Gaussian (:func:`gaussian_measurements`): i.i.d. :math:`N(0, 1)` entries, or their
symmetrization :math:`(B_i + B_i^\top)/2`; either way :math:`\mathbb{E}\,\tfrac1m\|\mathcal{A}(Z)\|^2 = \|Z\|_F^2` for
symmetric ``Z``. The ground truth of the symmetric setting is PSD, :math:`M^\star = X^\star X^{\star\top}` with
:math:`X^\star \in \mathbb{R}^{n\times r}` (:func:`planted_psd`).

**Symmetric parameterization** :math:`X \in \mathbb{R}^{n\times k}` (``k = r`` exact, ``k > r`` over-parameterized):

.. math:: f(X) = \frac{1}{4m}\sum_{i=1}^m \big(\langle A_i, XX^\top\rangle - y_i\big)^2, \qquad
          \nabla f(X) = \frac1m\,\mathrm{sym}\big(\mathcal{A}^*(\mathcal{A}(XX^\top) - y)\big)\,X,

with :math:`\mathrm{sym}(Z) = (Z + Z^\top)/2`; only the symmetric part of each :math:`A_i` matters. Gradient descent
:math:`X_{t+1} = X_t - \eta\nabla f(X_t)` from a small random :math:`X_0` (:func:`small_init`, scale :math:`\alpha`).
With ``k = r`` the rate is linear, :math:`\exp(-\Omega(T))`; for ``k > r`` the paper proves the *lower bound*
:math:`\|X_TX_T^\top - M^\star\|_F^2 = \Omega(1/T^2)` for ``k > r`` (Theorem 3.1): the ``k - r`` surplus directions
of ``X`` shrink only like :math:`u_{t+1} = u_t(1 - \eta u_t^2)`, so :math:`u_t^2 \sim 1/(2\eta t)`.

**Asymmetric parameterization** :math:`F \in \mathbb{R}^{n_1\times k}`, :math:`G \in \mathbb{R}^{n_2\times k}`:

.. math:: L(F, G) = \frac{1}{2m}\sum_{i=1}^m \big(\langle A_i, FG^\top\rangle - y_i\big)^2, \qquad
          \nabla_F L = \frac1m\mathcal{A}^*(r)\,G,\quad \nabla_G L = \frac1m\mathcal{A}^*(r)^\top F,\quad
          r = \mathcal{A}(FG^\top) - y,

with simultaneous GD steps on ``F`` and ``G``. The paper initializes the two factors at *different* scales,
:math:`F_0` at :math:`\alpha` and :math:`G_0` at :math:`\alpha/3` (:func:`imbalanced_init`). The imbalance
:math:`\Delta = F^\top F - G^\top G` is conserved by gradient flow (GD changes it only at order
:math:`\eta^2`), keeps :math:`F^\top F \succeq \Delta \succ 0` and so lets the surplus part of ``G`` contract at a
linear rate of order :math:`\eta\lambda_{\min}(\Delta) \propto \eta\alpha^2`: the paper's
:math:`\exp(-\Omega(\alpha^2 T))` (Theorem 1.3), a linear rate even when ``k > r``, whose dependence on
:math:`\alpha` it shows cannot be removed in the worst case.

**One-step modification** (the paper's Section 5): once the iterate is near the optimum, one step changes the
factors so that the imbalance is of the order of the signal rather than :math:`\alpha^2`; afterwards plain GD
converges at a rate independent of :math:`\alpha`. :func:`rebalance` is the product-preserving version of that
step used here,

.. math:: F \leftarrow s\,F\,(F^\top F)^{-1/2}, \qquad G \leftarrow \tfrac1s\,G\,(F^\top F)^{1/2},
          \qquad s^2 = \sigma_1(FG^\top),

which leaves :math:`FG^\top` (hence the loss) unchanged and sets :math:`F^\top F = s^2 I_k`. (We could not read the
exact formula of the paper's step (5.1); this is our construction of the step it describes.)

**Rates from error curves**: :func:`asymptotic_rate` is the slope :math:`\rho` of :math:`\ln e_t \approx c - \rho t`
on the curve's asymptotic window (a sublinear rate's exponent: :func:`optrepro.analysis.rates.power_law_exponent`).

Every function is vectorized over optional leading batch dimensions of the factors (independent runs side by
side) and runs on whatever device its tensors live on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..analysis.rates import geometric_rate
from ..checks import check_int, check_positive
from ..threads import one_cpu_thread_if

__all__ = [
    "GDResult",
    "SensingProblem",
    "adjoint",
    "asymmetric_grad",
    "asymmetric_loss",
    "asymptotic_rate",
    "gaussian_measurements",
    "imbalanced_init",
    "make_problem",
    "measure",
    "planted_psd",
    "rebalance",
    "run_asymmetric_gd",
    "run_symmetric_gd",
    "small_init",
    "symmetric_grad",
    "symmetric_loss",
]


# --------------------------------------------------------------------------- the problem
def gaussian_measurements(m: int, n1: int, n2: int | None = None, *, symmetric: bool = False,
                          generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                          device: torch.device | str | None = None) -> Tensor:
    """``m`` Gaussian sensing matrices, shape (m, n1, n2): i.i.d. N(0, 1) entries, or with ``symmetric=True``
    (square only) their symmetrizations (B + B^T)/2."""
    check_int("m", m, 1)
    check_int("n1", n1, 1)
    n2 = n1 if n2 is None else n2
    check_int("n2", n2, 1)
    if symmetric and n1 != n2:
        raise ValueError(f"invalid symmetric=True with n1={n1} != n2={n2}: symmetric sensing matrices are square")
    B = torch.randn(m, n1, n2, generator=generator, dtype=dtype, device="cpu" if generator is not None else device)
    B = B.to(device) if device is not None else B
    return (B + B.transpose(-1, -2)) / 2 if symmetric else B


def planted_psd(n: int, r: int, cond: float = 1.0, *, generator: torch.Generator | None = None,
                dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """A PSD ground truth ``M* = X* X*^T`` of rank ``r`` with eigenvalues evenly spaced from 1 down to 1/cond.

    Returns ``(M_star, X_star)``; the eigenvectors are a uniformly random orthonormal ``n x r`` frame."""
    check_int("n", n, 1)
    check_int("r", r, 1)
    if r > n:
        raise ValueError(f"invalid r={r}: expected 1 <= r <= n = {n}")
    check_positive("cond", cond)
    if cond < 1:
        raise ValueError(f"invalid cond {cond!r}: expected a condition number cond >= 1")
    G = torch.randn(n, r, generator=generator, dtype=dtype)
    U, _ = torch.linalg.qr(G)
    sigma = torch.linspace(1.0, 1.0 / cond, r, dtype=dtype) if r > 1 else torch.ones(1, dtype=dtype)
    X_star = (U * sigma.sqrt()).to(device)
    return X_star @ X_star.T, X_star


@dataclass
class SensingProblem:
    r"""Sensing matrices ``A`` (m, n1, n2), the ground truth ``M_star`` (n1, n2) and ``y = A(M_star)`` (m,).

    GD only ever needs :math:`\tfrac1m\mathcal{A}^*(\mathcal{A}(Z) - y) = \mathrm{mat}(H\,\mathrm{vec}(Z)) - b` with the
    Gram matrix :math:`H = \tfrac1m \mathbf{A}^\top\mathbf{A}` (:math:`n_1n_2 \times n_1n_2`, rows of
    :math:`\mathbf{A}` the flattened :math:`A_i`) and :math:`b = \tfrac1m\mathcal{A}^*(y)`; both are computed once, so a
    step costs the same for any number of measurements ``m``."""
    A: Tensor
    M_star: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.A.dim() != 3 or self.M_star.shape != self.A.shape[1:] or self.y.shape != self.A.shape[:1]:
            raise ValueError(f"invalid shapes A {tuple(self.A.shape)}, M_star {tuple(self.M_star.shape)}, "
                             f"y {tuple(self.y.shape)}: expected (m, n1, n2), (n1, n2) and (m,)")
        flat = self.A.reshape(self.m, -1)
        self.gram = flat.T @ flat / self.m
        self.rhs = adjoint(self.A, self.y) / self.m
        self.y_sq = (self.y @ self.y) / self.m

    @property
    def m(self) -> int:
        return self.A.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.A.shape[1:])

    def normal_residual(self, Z: Tensor) -> Tensor:
        """``(1/m) A*(A(Z) - y)`` (batched over leading dimensions of ``Z``), through the Gram matrix."""
        return (Z.reshape(*Z.shape[:-2], -1) @ self.gram).reshape(Z.shape) - self.rhs

    def relative_residual(self, Z: Tensor) -> Tensor:
        """``||A(Z) - y|| / ||y||`` (computable without ``M*``), through the Gram matrix:
        ``(1/m)||A(Z) - y||^2 = vec(Z)^T H vec(Z) - 2 <b, Z> + ||y||^2 / m``."""
        z = Z.reshape(*Z.shape[:-2], -1)
        sq = ((z @ self.gram) * z).sum(-1) - 2 * (z * self.rhs.reshape(-1)).sum(-1) + self.y_sq
        return (sq.clamp_min(0) / self.y_sq).sqrt()

    def error(self, Z: Tensor) -> Tensor:
        """``||Z - M*||_F`` (batched over leading dimensions of ``Z``)."""
        return torch.linalg.matrix_norm(Z - self.M_star)

    def relative_error(self, Z: Tensor) -> Tensor:
        return self.error(Z) / torch.linalg.matrix_norm(self.M_star)


def make_problem(n: int, r: int, m: int, *, cond: float = 1.0, symmetric_operator: bool = False,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> SensingProblem:
    """A planted PSD rank-``r`` matrix (:func:`planted_psd`) seen through ``m`` Gaussian measurements."""
    M_star, _ = planted_psd(n, r, cond, generator=generator, dtype=dtype, device=device)
    A = gaussian_measurements(m, n, symmetric=symmetric_operator, generator=generator, dtype=dtype, device=device)
    return SensingProblem(A, M_star, measure(A, M_star))


def measure(A: Tensor, Z: Tensor) -> Tensor:
    """``A(Z)``: the m inner products ``<A_i, Z>``; ``Z`` may carry leading batch dimensions (..., n1, n2) -> (..., m)."""
    if A.dim() != 3 or Z.shape[-2:] != A.shape[1:]:
        raise ValueError(f"invalid shapes A {tuple(A.shape)} and Z {tuple(Z.shape)}: expected A (m, n1, n2) and Z (..., n1, n2)")
    m = A.shape[0]
    return Z.reshape(*Z.shape[:-2], -1) @ A.reshape(m, -1).T


def adjoint(A: Tensor, v: Tensor) -> Tensor:
    """``A*(v) = sum_i v_i A_i``; ``v`` may carry leading batch dimensions (..., m) -> (..., n1, n2)."""
    if A.dim() != 3 or v.shape[-1] != A.shape[0]:
        raise ValueError(f"invalid shapes A {tuple(A.shape)} and v {tuple(v.shape)}: expected A (m, n1, n2) and v (..., m)")
    m, n1, n2 = A.shape
    return (v @ A.reshape(m, -1)).reshape(*v.shape[:-1], n1, n2)


def _sym(Z: Tensor) -> Tensor:
    return (Z + Z.transpose(-1, -2)) / 2


def symmetric_loss(problem: SensingProblem, X: Tensor) -> Tensor:
    """``f(X) = (1/4m) ||A(X X^T) - y||^2`` (batched over leading dimensions of ``X``)."""
    r = measure(problem.A, X @ X.transpose(-1, -2)) - problem.y
    return (r * r).sum(-1) / (4 * problem.m)


def symmetric_grad(problem: SensingProblem, X: Tensor) -> Tensor:
    """``grad f(X) = (1/m) sym(A*(A(X X^T) - y)) X``."""
    return _sym(problem.normal_residual(X @ X.transpose(-1, -2))) @ X


def asymmetric_loss(problem: SensingProblem, F: Tensor, G: Tensor) -> Tensor:
    """``L(F, G) = (1/2m) ||A(F G^T) - y||^2``."""
    r = measure(problem.A, F @ G.transpose(-1, -2)) - problem.y
    return (r * r).sum(-1) / (2 * problem.m)


def asymmetric_grad(problem: SensingProblem, F: Tensor, G: Tensor) -> tuple[Tensor, Tensor]:
    """``(grad_F L, grad_G L) = (S G, S^T F)`` with ``S = (1/m) A*(A(F G^T) - y)``."""
    S = problem.normal_residual(F @ G.transpose(-1, -2))
    return S @ G, S.transpose(-1, -2) @ F


# --------------------------------------------------------------------------- initialization and the one step
def small_init(n: int, k: int, alpha: float, *, batch: tuple[int, ...] = (), generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> Tensor:
    """A small random factor, shape (*batch, n, k), entries i.i.d. N(0, alpha^2 / n): each column has norm ~ alpha
    and ``X^T X ~ alpha^2 I_k`` for n >> k."""
    check_int("n", n, 1)
    check_int("k", k, 1)
    check_positive("alpha", alpha)
    X = torch.randn(*batch, n, k, generator=generator, dtype=dtype) * (alpha / math.sqrt(n))
    return X.to(device) if device is not None else X


def imbalanced_init(n1: int, n2: int, k: int, alpha: float, ratio: float = 3.0, **kw) -> tuple[Tensor, Tensor]:
    """The paper's imbalanced start for ``F G^T``: ``F_0`` at scale ``alpha`` and ``G_0`` at ``alpha / ratio``
    (``ratio = 3`` in the paper); see :func:`small_init` for the convention."""
    check_positive("ratio", ratio)
    return small_init(n1, k, alpha, **kw), small_init(n2, k, alpha / ratio, **kw)


def rebalance(F: Tensor, G: Tensor, scale: float | Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The one-step modification: ``F <- s F (F^T F)^{-1/2}``, ``G <- G (F^T F)^{1/2} / s``.

    ``F G^T`` is unchanged and ``F^T F`` becomes ``s^2 I``; ``scale`` is ``s`` (default ``sqrt(sigma_1(F G^T))``,
    computed from the iterate, so the step needs no knowledge of ``M*``). ``F`` must have full column rank."""
    P = F.transpose(-1, -2) @ F
    evals, V = torch.linalg.eigh(P)
    if bool((evals <= 0).any()):
        raise ValueError("invalid F: F^T F is singular, so F cannot be rebalanced (F needs full column rank)")
    if scale is None:
        scale = torch.linalg.matrix_norm(F @ G.transpose(-1, -2), ord=2).sqrt()
    s = torch.as_tensor(scale, dtype=F.dtype, device=F.device)[..., None, None]
    root = (V * evals.sqrt().unsqueeze(-2)) @ V.transpose(-1, -2)
    inv_root = (V * evals.rsqrt().unsqueeze(-2)) @ V.transpose(-1, -2)
    return s * (F @ inv_root), (G @ root) / s


# --------------------------------------------------------------------------- gradient descent runs
@dataclass
class GDResult:
    """Errors ``||F G^T - M*||_F`` (or ``||X X^T - M*||_F``) after every step, shape (steps + 1, *batch), on CPU."""
    error: Tensor
    relative_error: Tensor
    factors: tuple[Tensor, ...]          # the final factors (X,) or (F, G)
    modified_at: Tensor | None = None    # asymmetric runs: step of the one-step modification (-1: never)

    @property
    def t(self) -> Tensor:
        return torch.arange(self.error.shape[0], dtype=torch.float64)


def _check_run(lr: object, steps: object) -> None:
    check_positive("lr", lr)
    check_int("steps", steps, 1)


SMALL_GRAM = 1024  # n1 * n2 up to which a CPU step loop runs on one thread




def run_symmetric_gd(problem: SensingProblem, X0: Tensor, lr: float, steps: int) -> GDResult:
    """Gradient descent ``X <- X - lr * grad f(X)`` from ``X0`` (batched), recording the error every step."""
    _check_run(lr, steps)
    A = problem.A
    X = X0.to(A.device, A.dtype).clone()
    errors = torch.empty(steps + 1, *X.shape[:-2], dtype=A.dtype, device=A.device)
    errors[0] = problem.error(X @ X.transpose(-1, -2))
    with one_cpu_thread_if(problem.gram.shape[0] <= SMALL_GRAM, problem.A.device):
        for t in range(steps):
            X = X - lr * symmetric_grad(problem, X)
            errors[t + 1] = problem.error(X @ X.transpose(-1, -2))
    errors = errors.cpu()
    return GDResult(errors, errors / torch.linalg.matrix_norm(problem.M_star).cpu(), (X,))


def run_asymmetric_gd(problem: SensingProblem, F0: Tensor, G0: Tensor, lr: float, steps: int, *,
                      modify_below: float | None = None, scale: float | None = None) -> GDResult:
    """Simultaneous gradient descent on ``(F, G)`` from ``(F0, G0)`` (batched), recording the error every step.

    With ``modify_below`` set, each run takes the one-step modification (:func:`rebalance`, with ``scale``)
    once, at the first step where its relative residual ``||A(F G^T) - y|| / ||y||`` (computable without ``M*``)
    is at most ``modify_below``; plain GD before and after."""
    _check_run(lr, steps)
    if modify_below is not None:
        check_positive("modify_below", modify_below)
    A = problem.A
    F = F0.to(A.device, A.dtype).clone()
    G = G0.to(A.device, A.dtype).clone()
    batch = F.shape[:-2]
    errors = torch.empty(steps + 1, *batch, dtype=A.dtype, device=A.device)
    errors[0] = problem.error(F @ G.transpose(-1, -2))
    done = torch.zeros(batch, dtype=torch.bool, device=A.device)
    modified_at = torch.full(batch, -1, dtype=torch.long)
    with one_cpu_thread_if(problem.gram.shape[0] <= SMALL_GRAM, problem.A.device):
        for t in range(steps):
            if modify_below is not None and not bool(done.all()):
                residual = problem.relative_residual(F @ G.transpose(-1, -2))
                now = (residual <= modify_below) & ~done
                if bool(now.any()):
                    F2, G2 = rebalance(F, G, scale)
                    F = torch.where(now[..., None, None], F2, F)
                    G = torch.where(now[..., None, None], G2, G)
                    modified_at[now.cpu()] = t
                    done = done | now
            gF, gG = asymmetric_grad(problem, F, G)
            F, G = F - lr * gF, G - lr * gG
            errors[t + 1] = problem.error(F @ G.transpose(-1, -2))
    errors = errors.cpu()
    return GDResult(errors, errors / torch.linalg.matrix_norm(problem.M_star).cpu(), (F, G),
                    modified_at if modify_below is not None else None)


# --------------------------------------------------------------------------- rates from error curves
def asymptotic_rate(error: Tensor, *, below: float = 1e-3, floor: float = 1e-11, tail: float = 0.5) -> Tensor:
    """The asymptotic linear rate ``rho`` of ``e_t ~ c exp(-rho t)``, per run (batched over trailing dims):
    ``-ln`` of :func:`optrepro.analysis.rates.geometric_rate` on a window of the curve.

    The window starts when ``e_t`` first drops to ``below`` and ends at the last step or when it first reaches the
    numerical ``floor``; its last ``tail`` fraction (the asymptotic regime) is fitted. NaN where that has fewer than
    3 points (the run never got there)."""
    if not 0 < tail <= 1:
        raise ValueError(f"invalid tail {tail!r}: expected a fraction 0 < tail <= 1")
    if not 0 < floor < below:
        raise ValueError(f"invalid below={below!r}, floor={floor!r}: expected 0 < floor < below")
    e = error.double().reshape(error.shape[0], -1)
    out = torch.full((e.shape[1],), float("nan"), dtype=torch.float64)
    for j in range(e.shape[1]):
        col = e[:, j]
        hit = torch.nonzero(col <= below)
        if hit.numel() == 0:
            continue
        start = int(hit[0])
        end_hit = torch.nonzero(col[start:] <= floor)
        end = start + int(end_hit[0]) if end_hit.numel() else col.shape[0]
        start = max(start, end - math.ceil(tail * (end - start)))
        if end - start >= 3:
            out[j] = -math.log(geometric_rate(col[start:end]))
    return out.reshape(error.shape[1:])
