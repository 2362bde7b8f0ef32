r"""Robust (adversarial) training of a two-layer ReLU network as a convex program, and its PGD baseline.

Reference: Y. Bai, T. Gautam, Y. Gai, S. Sojoudi. "Practical Convex Formulation of Robust One-hidden-layer Neural
Network Training." American Control Conference 2022, arXiv:2105.12237 (extended in arXiv:2201.01965, Sec. 4).

**Threat model.** Every input may be moved by :math:`\delta` with :math:`\|M\delta\|_\infty \le \epsilon` on the
perturbed coordinates (``perturbed``, a boolean mask of length ``d``; the appended constant column of the data is
not perturbed: :math:`M\delta` keeps the perturbed coordinates, the others of :math:`\delta` are zero).

**Robust convex program** over activation patterns :math:`D_1..D_P` of the training data (:mod:`.arrangements`),
with :math:`z_k = \sum_i d_{ik}(v_i - w_i)` the linear model the convex network applies to sample :math:`k`:

.. math:: \min_{v_i, w_i}\ \sum_{k=1}^n \ell\big(y_k x_k^\top z_k - \epsilon\|Mz_k\|_1\big)
          + \beta\sum_{i=1}^P\big(\|v_i\|_2 + \|w_i\|_2\big)
          \quad\text{s.t.}\quad (2D_i - I)Xv_i \ge \epsilon\|Mv_i\|_1\mathbb 1,\ (2D_i - I)Xw_i \ge \epsilon\|Mw_i\|_1\mathbb 1,

with the hinge loss :math:`\ell(m) = (1 - m)_+` (the paper's) or the logistic loss :math:`\ell(m) = \log(1 + e^{-m})`.
The *robust cone constraints* keep every pattern on its side for **every** admissible perturbation
(:math:`(x_k + \delta)^\top v_i = x_k^\top v_i + \delta^\top Mv_i \ge x_k^\top v_i - \epsilon\|Mv_i\|_1`), so on the ball
around a training point the recovered network is the linear map :math:`x \mapsto x^\top z_k` and its worst-case
margin is exactly :math:`y_k x_k^\top z_k - \epsilon\|Mz_k\|_1` (the dual norm of :math:`\ell_\infty` is
:math:`\ell_1`). The objective is therefore the exact worst-case (adversarial) training loss of the recovered network;
with :math:`\epsilon = 0` it is the standard convex program (:mod:`.convex_program`). The network is recovered as
there (:func:`~optrepro.convex_nn.convex_program.recover_network`).

**Baseline: PGD adversarial training** (Madry et al. 2018) of the same network
:math:`f(x) = \sum_j (x^\top u_j)_+\alpha_j` on the same objective, non-convex:

.. math:: \min_{U,\alpha}\ \sum_k \ell\big(y_k f(x_k + \delta_k^\star)\big) + \frac\beta2\big(\|U\|_F^2 + \|\alpha\|^2\big),
          \qquad \delta_k^\star \approx \arg\max_{\|M\delta\|_\infty\le\epsilon} -y_kf(x_k + \delta),

with :math:`\delta^\star` found by the **PGD attack** (:func:`pgd_attack`): from :math:`\delta = 0` (or a random
start), :math:`\delta \leftarrow \Pi_\epsilon\big(\delta - a\,\mathrm{sign}(M\nabla_\delta\, y f(x + \delta))\big)`, the
projection :math:`\Pi_\epsilon` clipping each perturbed coordinate to :math:`[-\epsilon, \epsilon]`. It minimizes the
margin :math:`yf` directly (for a binary classifier the strongest choice of attack loss). Full batch, Adam.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..checks import check_choice, check_int, check_nonnegative, check_positive
from ..optim import adam_step
from ..threads import one_cpu_thread_if
from ..train import fit as train
from .convex_program import ConvexSolution

__all__ = [
    "ROBUST_LOSSES",
    "PGDTrainingResult",
    "certified_margins",
    "margin_loss",
    "perturbation_mask",
    "pgd_accuracy",
    "pgd_adversarial_training",
    "pgd_attack",
    "relu_input_grad",
    "relu_predict",
    "robust_cone_violation",
    "solve_robust_cvxpy",
]

ROBUST_LOSSES = ("hinge", "logistic")


def _check_loss(loss: str) -> str:
    return check_choice("loss", loss, ROBUST_LOSSES)


def perturbation_mask(d: int, perturbed: Tensor | None = None, device=None) -> Tensor:
    """The boolean mask of perturbed coordinates (all ``d`` when ``perturbed`` is None)."""
    if perturbed is None:
        return torch.ones(d, dtype=torch.bool, device=device)
    perturbed = torch.as_tensor(perturbed, dtype=torch.bool, device=device)
    if perturbed.shape != (d,):
        raise ValueError(f"invalid perturbed mask of shape {tuple(perturbed.shape)}: expected a boolean mask of shape ({d},)")
    return perturbed


def margin_loss(margin: Tensor, loss: str = "hinge") -> Tensor:
    """:math:`\\ell(m)` elementwise: hinge :math:`(1 - m)_+` or logistic :math:`\\log(1 + e^{-m})`."""
    _check_loss(loss)
    return torch.relu(1 - margin) if loss == "hinge" else torch.nn.functional.softplus(-margin)


def certified_margins(X: Tensor, y: Tensor, D: Tensor, V: Tensor, W: Tensor, eps: float,
                      perturbed: Tensor | None = None) -> Tensor:
    """:math:`y_kx_k^\\top z_k - \\epsilon\\|Mz_k\\|_1`, :math:`z_k = \\sum_i d_{ik}(v_i - w_i)`: the worst-case margin of the
    convex model on training sample ``k`` (exact when the robust cone constraints hold); ``(n,)``."""
    eps = check_nonnegative("eps", eps)
    mask = perturbation_mask(X.shape[1], perturbed, X.device)
    Z = D.to(X.dtype).T @ (V - W)                     # (n, d)
    return y * (X * Z).sum(1) - eps * Z[:, mask].abs().sum(1)


def robust_cone_violation(X: Tensor, D: Tensor, V: Tensor, W: Tensor, eps: float,
                          perturbed: Tensor | None = None) -> float:
    """Largest violation of :math:`(2D_i - I)Xv_i \\ge \\epsilon\\|Mv_i\\|_1` (and of the same for :math:`w_i`); 0 when feasible."""
    eps = check_nonnegative("eps", eps)
    mask = perturbation_mask(X.shape[1], perturbed, X.device)
    sign = 2 * D.to(X.dtype) - 1                      # (P, n)
    worst = []
    for A in (V, W):
        slack = sign * (A @ X.T) - eps * A[:, mask].abs().sum(1, keepdim=True)
        worst.append((-slack).max())
    return max(float(max(worst)), 0.0)


def solve_robust_cvxpy(X: Tensor, y: Tensor, D: Tensor, beta: float, eps: float, loss: str = "hinge",
                       perturbed: Tensor | None = None, solver: str | None = None, **solver_options) -> ConvexSolution:
    """The robust convex program (module docstring) solved by cvxpy (Clarabel by default); labels ``y`` in {-1, +1}."""
    import cvxpy as cp

    beta, eps = check_nonnegative("beta", beta), check_nonnegative("eps", eps)
    _check_loss(loss)
    mask = perturbation_mask(X.shape[1], perturbed).cpu().numpy()
    Xn, yn = X.detach().cpu().double().numpy(), y.detach().cpu().double().numpy()
    if not np.all(np.isin(yn, (-1.0, 1.0))):
        raise ValueError("invalid labels y: expected values in {-1, +1}")
    Dn = D.detach().cpu().numpy().astype(float)       # (P, n)
    P, d = Dn.shape[0], Xn.shape[1]
    V, W = cp.Variable((P, d)), cp.Variable((P, d))
    Z = Dn.T @ (V - W)                                 # (n, d): z_k
    margin = cp.multiply(yn, cp.sum(cp.multiply(Xn, Z), axis=1))
    constraints = []
    S = (2 * Dn - 1)                                   # (P, n)
    if eps > 0 and mask.any():
        margin = margin - eps * cp.sum(cp.abs(Z[:, mask]), axis=1)
        tv, tw = cp.Variable(P), cp.Variable(P)        # epigraphs of ||M v_i||_1, ||M w_i||_1
        constraints += [cp.sum(cp.abs(V[:, mask]), axis=1) <= tv, cp.sum(cp.abs(W[:, mask]), axis=1) <= tw]
        ones = np.ones((1, Xn.shape[0]))
        constraints += [cp.multiply(S, V @ Xn.T) >= eps * (cp.reshape(tv, (P, 1), order="C") @ ones),
                        cp.multiply(S, W @ Xn.T) >= eps * (cp.reshape(tw, (P, 1), order="C") @ ones)]
    else:
        constraints += [cp.multiply(S, V @ Xn.T) >= 0, cp.multiply(S, W @ Xn.T) >= 0]
    fit = cp.sum(cp.pos(1 - margin)) if loss == "hinge" else cp.sum(cp.logistic(-margin))
    reg = cp.sum(cp.norm(V, 2, axis=1)) + cp.sum(cp.norm(W, 2, axis=1))
    problem = cp.Problem(cp.Minimize(fit + beta * reg), constraints)
    start = time.perf_counter()
    problem.solve(solver=solver or cp.CLARABEL, **solver_options)
    seconds = time.perf_counter() - start
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"cvxpy returned status {problem.status!r}")
    as_t = lambda A: torch.as_tensor(np.ascontiguousarray(A.value), dtype=X.dtype, device=X.device)
    return ConvexSolution(as_t(V), as_t(W), float(problem.value), seconds)


def relu_predict(X: Tensor, U: Tensor, alpha: Tensor) -> Tensor:
    """:math:`\\sum_j (x^\\top u_j)_+\\alpha_j`, batched: ``X`` ``(..., n, d)``, ``U`` ``(..., m, d)``, ``alpha`` ``(..., m)``."""
    return (torch.relu(X @ U.transpose(-1, -2)) * alpha[..., None, :]).sum(-1)


def relu_input_grad(X: Tensor, U: Tensor, alpha: Tensor) -> Tensor:
    r""":math:`\nabla_x f(x) = \sum_j \mathbb 1[x^\top u_j > 0]\alpha_ju_j` per sample, shape of ``X`` (batched as
    :func:`relu_predict`; written out: cheaper than autograd inside the training loop)."""
    return ((X @ U.transpose(-1, -2) > 0).to(X.dtype) * alpha[..., None, :]) @ U


def pgd_attack(predict: Callable[[Tensor], Tensor], X: Tensor, y: Tensor, eps: float, steps: int,
               step_size: float | None = None, perturbed: Tensor | None = None, restarts: int = 0,
               generator: torch.Generator | None = None,
               input_grad: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """``X + delta`` with :math:`\\|M\\delta\\|_\\infty \\le \\epsilon` that (locally) minimizes the margin ``y * predict``.

    ``predict`` maps inputs of ``X``'s shape ``(..., n, d)`` to scores ``(..., n)``. Signed-gradient steps of size
    ``step_size`` (default :math:`2.5\\epsilon/\\text{steps}`) from :math:`\\delta = 0`, then from ``restarts`` uniform
    random starts; per sample, the perturbation with the smallest margin is kept. ``input_grad`` (optional) gives
    :math:`\nabla_x` predict per sample in closed form (else autograd).
    """
    eps = check_nonnegative("eps", eps)
    steps, restarts = check_int("steps", steps, 1), check_int("restarts", restarts, 0)
    a = 2.5 * eps / steps if step_size is None else check_positive("step_size", step_size)
    mask = perturbation_mask(X.shape[-1], perturbed, X.device).to(X.dtype)
    X = X.detach()
    best, best_margin = X.clone(), None
    for r in range(restarts + 1):
        if r == 0:
            delta = torch.zeros_like(X)
        else:
            u = torch.rand(X.shape, generator=generator, dtype=torch.float64).to(X.device, X.dtype)
            delta = (2 * u - 1) * eps * mask
        for _ in range(steps):
            if input_grad is None:
                delta.requires_grad_(True)
                (grad,) = torch.autograd.grad((y * predict(X + delta)).sum(), delta)
            else:
                grad = y[..., None] * input_grad(X + delta)
            with torch.no_grad():
                delta = (delta - a * grad.sign() * mask).clamp(-eps, eps)
        with torch.no_grad():
            margin = y * predict(X + delta)
            if best_margin is None:
                best, best_margin = X + delta, margin
            else:
                worse = margin < best_margin
                best = torch.where(worse[..., None], X + delta, best)
                best_margin = torch.where(worse, margin, best_margin)
    return best.detach()


def pgd_accuracy(predict: Callable[[Tensor], Tensor], X: Tensor, y: Tensor, eps: float, steps: int,
                 perturbed: Tensor | None = None, restarts: int = 0, generator: torch.Generator | None = None,
                 input_grad: Callable[[Tensor], Tensor] | None = None) -> float:
    """Fraction of samples still classified correctly (margin > 0) after :func:`pgd_attack`; ``eps = 0``: clean accuracy."""
    if eps == 0:
        with torch.no_grad():
            return float((y * predict(X) > 0).to(torch.float64).mean())
    Xa = pgd_attack(predict, X, y, eps, steps, perturbed=perturbed, restarts=restarts, generator=generator,
                    input_grad=input_grad)
    with torch.no_grad():
        return float((y * predict(Xa) > 0).to(torch.float64).mean())


@dataclass
class PGDTrainingResult:
    U: Tensor              # (runs, m, d)
    alpha: Tensor          # (runs, m)
    objective: Tensor      # (steps, runs): adversarial objective at each step (loss at the PGD points + decay)


def pgd_adversarial_training(X: Tensor, y: Tensor, width: int, beta: float, eps: float, loss: str = "hinge",
                             runs: int = 1, steps: int = 500, lr: float = 1e-2, attack_steps: int = 10,
                             perturbed: Tensor | None = None,
                             generator: torch.Generator | None = None) -> PGDTrainingResult:
    """PGD adversarial training (module docstring) of ``runs`` width-``width`` networks side by side, full batch, Adam.

    Each step attacks the current networks with ``attack_steps`` PGD steps from :math:`\\delta = 0`, then takes one
    Adam step on the loss at the attacked points plus the weight decay (:func:`optrepro.optim.adam_step`, the update
    of ``torch.optim.Adam``, as a functional update of :func:`optrepro.train.fit`). Initialization: PyTorch's ``nn.Linear``
    default (uniform :math:`\\pm 1/\\sqrt{\\text{fan-in}}`), drawn on the CPU.
    """
    _check_loss(loss)
    width, runs, steps = check_int("width", width, 1), check_int("runs", runs, 1), check_int("steps", steps, 1)
    attack_steps = check_int("attack_steps", attack_steps, 1)
    beta, eps, lr = check_nonnegative("beta", beta), check_nonnegative("eps", eps), check_positive("lr", lr)
    d = X.shape[1]
    U = ((torch.rand(runs, width, d, generator=generator, dtype=torch.float64) * 2 - 1) / d ** 0.5).to(X.device, X.dtype)
    alpha = ((torch.rand(runs, width, generator=generator, dtype=torch.float64) * 2 - 1) / width ** 0.5).to(X.device, X.dtype)
    U.requires_grad_(True)
    alpha.requires_grad_(True)
    params = [U, alpha]
    moments = [torch.zeros_like(t) for t in params], [torch.zeros_like(t) for t in params]
    Xr = X.expand(runs, *X.shape)
    trace = []

    def adversarial_objective(k: int) -> Tensor:   # the PGD attack on the current networks, then the summed objective
        Ud, ad = U.detach(), alpha.detach()
        Xa = Xr if eps == 0 else pgd_attack(lambda Z, U_=Ud, a_=ad: relu_predict(Z, U_, a_), Xr, y, eps,
                                            attack_steps, perturbed=perturbed,
                                            input_grad=lambda Z, U_=Ud, a_=ad: relu_input_grad(Z, U_, a_))
        obj = margin_loss(y * relu_predict(Xa, U, alpha), loss).sum(-1) \
            + 0.5 * beta * ((U ** 2).sum((1, 2)) + (alpha ** 2).sum(1))
        trace.append(obj.detach())                       # (runs,): fit's trace holds scalars
        return obj.sum()

    def update(k: int, value: Tensor) -> None:
        grads = torch.autograd.grad(value, params)   # runs are independent: each gets its own gradient
        adam_step(params, grads, moments[0], moments[1], k + 1, lr)

    with one_cpu_thread_if(X.shape[0] * width * d < 1_000_000, X.device):
        train(adversarial_objective, update, steps, every=steps, stop_on_nonfinite=False)
    return PGDTrainingResult(U.detach(), alpha.detach(), torch.stack(trace))
