r"""Primal-dual (dual ascent) constrained learning and the final iterate's constraint violation.

Reference: J. Elenter, L. F. O. Chamon, A. Ribeiro. "Near-Optimal Solutions of Constrained Learning Problems",
ICLR 2024, arXiv:2403.11844.

The constrained learning problem over a parametrized model :math:`f_\theta`, with constraint levels :math:`c`,

.. math::
    P^\star = \min_\theta\ \ell_0(f_\theta) \quad\text{s.t.}\quad \ell_i(f_\theta) \le c_i,\ i = 1..m,

is solved through its Lagrangian :math:`L(\theta, \lambda) = \ell_0(f_\theta) + \lambda^\top(\ell(f_\theta) - c)`
and the dual problem :math:`D^\star = \max_{\lambda \ge 0} \min_\theta L(\theta, \lambda)`. **Dual ascent**
(the paper's Algorithm 1) alternates an (approximate) Lagrangian minimization in :math:`\theta` with a projected
supergradient step on the duals,

.. math::
    \theta_{t+1} \approx \arg\min_\theta L(\theta, \lambda_t)\ \ (\text{k gradient steps}),\qquad
    \lambda_{t+1} = \big[\lambda_t + \eta_\lambda\,(\ell(f_{\theta_{t+1}}) - c)\big]_+ .

The dual iterates converge, but the primal iterates need not be feasible: classical guarantees hold only for a
predictor *randomized* over all iterates. The paper shows that the Lagrangian minimizer at the optimal dual is
nonetheless near-feasible, with a violation bounded by terms that vanish as the parametrization gets richer
(closer to the convex functional problem, whose Lagrangian minimizer is unique and feasible). This module gives the
generic loop (:func:`primal_dual`), the pieces (:func:`lagrangian`, :func:`project_duals`, :func:`dual_step`),
models of growing capacity (:func:`mlp`, width 0 = linear), a synthetic two-group classification set
(:func:`fair_tabular`), the COMPAS loader of the ``full`` profile (:func:`load_compas`) and the demographic-parity
constraint (:func:`demographic_parity_gaps`):

.. math::
    \ell_0 = \mathbb E[\mathrm{BCE}(f_\theta(x), y)],\qquad
    \pm\big(\mathbb E[\sigma(f_\theta(x)) \mid z = 1] - \mathbb E[\sigma(f_\theta(x)) \mid z = 0]\big) \le c .
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from optrepro.checks import check_choice, check_int, check_nonnegative, check_positive
from optrepro.models.mlp import activation as make_activation
from optrepro.models.mlp import mlp as _mlp
from optrepro.optim import SGD, Adam
from optrepro.threads import one_cpu_thread_if

__all__ = ["PrimalDualResult", "FairData", "WidthEnsemble", "WidthSweep", "width_sweep", "lagrangian", "project_duals", "dual_step", "violation", "mlp",
           "fair_tabular", "load_compas", "demographic_parity_gaps", "primal_dual"]

ACTIVATIONS = ("sigmoid", "relu", "tanh")   # those WidthEnsemble's members use
OPTIMIZERS = ("sgd", "adam")


def lagrangian(objective: torch.Tensor, constraints: torch.Tensor, duals: torch.Tensor) -> torch.Tensor:
    r""":math:`L = \ell_0 + \lambda^\top s` with the slacks ``constraints`` :math:`s = \ell(f) - c` (shape ``(m,)``).

    A batch of K independent problems (``objective`` of shape ``(K,)``, slacks and duals ``(K, m)``) gives the sum of
    their Lagrangians: its gradient in each problem's own parameters is that problem's Lagrangian gradient.
    """
    if constraints.shape != duals.shape:
        raise ValueError(f"invalid duals shape {tuple(duals.shape)}: expected the constraints' shape "
                         f"{tuple(constraints.shape)}")
    return objective + (duals * constraints).sum()


def project_duals(duals: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the nonnegative orthant: ``max(duals, 0)``."""
    return duals.clamp_min(0.0)


def dual_step(duals: torch.Tensor, slacks: torch.Tensor, lr: float) -> torch.Tensor:
    r"""Projected dual ascent :math:`[\lambda + \eta\, s]_+` (``s``: the constraint slacks, a supergradient)."""
    lr = check_positive("dual_lr", lr)
    if slacks.shape != duals.shape:
        raise ValueError(f"invalid slacks shape {tuple(slacks.shape)}: expected the duals' shape {tuple(duals.shape)}")
    return project_duals(duals + lr * slacks)


def violation(slacks: torch.Tensor | np.ndarray) -> np.ndarray:
    """Constraint violation ``max(slack, 0)``, elementwise (any shape)."""
    return np.maximum(np.asarray(torch.as_tensor(slacks).detach().cpu()), 0.0)


def mlp(in_dim: int, width: int, activation: str = "sigmoid", depth: int = 1) -> nn.Module:
    """A scalar-output network: linear for ``width = 0``, else ``depth`` hidden layers of ``width`` units
    (:func:`optrepro.models.mlp.mlp`)."""
    in_dim = check_int("in_dim", in_dim, 1)
    width = check_int("width", width, 0)
    depth = check_int("depth", depth, 1)
    check_choice("activation", activation, ACTIVATIONS)
    if width == 0:
        return nn.Linear(in_dim, 1)
    return _mlp(in_dim, width, 1, depth=depth, activation=activation)


class WidthEnsemble(nn.Module):
    """K independent one-hidden-layer networks of the given widths, evaluated in one batched pass.

    Member k is exactly ``mlp(in_dim, widths[k], activation)``: its hidden units beyond ``widths[k]`` are masked out
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
class FairData:
    """Features ``X`` (n, d, the protected attribute not among them), labels ``y`` in {0, 1}, groups ``z`` in {0, 1}."""
    X: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor

    def to(self, device, dtype=None) -> FairData:
        return FairData(self.X.to(device, dtype), self.y.to(device, dtype), self.z.to(device))


def fair_tabular(n: int, d: int = 5, *, shift: float = 1.0, noise: float = 0.5,
                 generator: torch.Generator | None = None) -> FairData:
    r"""Synthetic two-group tabular data with a nonlinear label.

    :math:`z \sim \mathrm{Bern}(1/2)`, :math:`x \sim \mathcal N(\text{shift}\cdot z\, e_1, I_d)` (the groups differ
    along the first feature), and :math:`y = 1[\,x_1 + \sin(2x_2) + x_3x_4 + \text{noise}\,\varepsilon > 0]`, so the
    positive rate differs between the groups and the Bayes classifier is not linear.
    """
    n = check_int("n", n, 4)
    d = check_int("d", d, 4)
    shift = check_nonnegative("shift", shift)
    noise = check_nonnegative("noise", noise)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    z = (torch.rand(n, generator=g) < 0.5).long()
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    X[:, 0] += shift * z
    score = X[:, 0] + torch.sin(2 * X[:, 1]) + X[:, 2] * X[:, 3] + noise * torch.randn(n, generator=g, dtype=torch.float64)
    return FairData(X, (score > 0).double(), z)


COMPAS_FILE = "compas-scores-two-years.csv"


def load_compas(data_dir: str | Path) -> FairData:
    """ProPublica's COMPAS two-year recidivism table from ``<data_dir>/compas-scores-two-years.csv``.

    The usual filtering (``days_b_screening_arrest`` within 30 days, ``is_recid != -1``, ``c_charge_degree != 'O'``,
    ``score_text != 'N/A'``); features: standardized age, priors count, juvenile counts, charge degree and sex; the
    group ``z`` is race (1: African-American); the label is ``two_year_recid``.
    """
    import csv

    path = Path(data_dir).expanduser() / COMPAS_FILE
    if not path.exists():
        raise FileNotFoundError(f"COMPAS not found at {path}: put ProPublica's {COMPAS_FILE} there or set data_dir=...")
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh)
                if r["days_b_screening_arrest"] != "" and abs(float(r["days_b_screening_arrest"])) <= 30
                and r["is_recid"] != "-1" and r["c_charge_degree"] != "O" and r["score_text"] != "N/A"]
    cols = ["age", "priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count"]
    X = np.array([[float(r[k]) for k in cols] for r in rows])
    X = (X - X.mean(0)) / X.std(0).clip(1e-12)
    extra = np.array([[float(r["c_charge_degree"] == "F"), float(r["sex"] == "Male")] for r in rows])
    X = np.concatenate([X, extra], 1)
    z = np.array([int(r["race"] == "African-American") for r in rows], dtype=np.int64)
    y = np.array([float(r["two_year_recid"]) for r in rows])
    return FairData(torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(z))


def demographic_parity_gaps(prob: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""The two gaps :math:`(\bar p_1 - \bar p_0,\ \bar p_0 - \bar p_1)` of mean predicted probability per group.

    ``prob`` is ``(n,)`` or a batch ``(K, n)``; the result is ``(2,)`` or ``(K, 2)``.
    """
    if prob.shape[-1:] != z.shape:
        raise ValueError(f"invalid z shape {tuple(z.shape)}: expected (n,) with n = {prob.shape[-1]} predictions")
    mask = z == 1
    if mask.all() or (~mask).all():
        raise ValueError("invalid z: both groups (z = 0 and z = 1) must be present")
    gap = prob[..., mask].mean(-1) - prob[..., ~mask].mean(-1)
    return torch.stack([gap, -gap], -1)


@dataclass
class PrimalDualResult:
    """Traces over the dual iterations t = 0..T-1 (evaluated at the primal iterate after the t-th primal phase)."""
    objective: np.ndarray     # (T,)   l_0(theta_t)            (T, K) for a batch of K problems
    slacks: np.ndarray        # (T, m) l(theta_t) - c          (T, K, m)
    duals: np.ndarray         # (T, m) lambda_t used in the t-th primal phase
    final_duals: np.ndarray   # (m,)   lambda_T                (K, m)
    model: nn.Module          # the final (last) primal iterate

    @property
    def final_violation(self) -> float | np.ndarray:
        """Largest violation ``max_i max(s_i, 0)`` of the last primal iterate (one per problem for a batch)."""
        v = violation(self.slacks[-1]).max(-1)
        return float(v) if v.ndim == 0 else v


def primal_dual(model: nn.Module, losses: Callable[[nn.Module], tuple[torch.Tensor, torch.Tensor]], levels, *,
                steps: int, primal_lr: float, dual_lr: float, primal_steps: int = 1, optimizer: str = "adam",
                duals: torch.Tensor | None = None) -> PrimalDualResult:
    r"""Dual ascent on :math:`L(\theta, \lambda)`: ``primal_steps`` gradient steps in :math:`\theta` (SGD or Adam,
    full batch) at fixed :math:`\lambda_t`, then :math:`\lambda_{t+1} = [\lambda_t + \eta_\lambda(\ell(\theta) - c)]_+`
    with the constraints at the last primal phase's iterate; ``steps`` dual iterations.

    ``losses(model)`` returns ``(objective, constraints)``: a scalar and the ``(m,)`` constraint values; ``levels``
    the ``(m,)`` levels :math:`c`. A batch of K independent problems sharing one model object (e.g.
    :class:`WidthEnsemble`) returns ``(K,)`` objectives and ``(K, m)`` constraints, with one dual vector each.
    The traces hold the values at the iterate each dual step used; ``slacks[-1]`` is recomputed at the final
    iterate. Returns the traces and the final primal iterate (the model, trained in place).
    """
    steps = check_int("steps", steps, 1)
    primal_steps = check_int("primal_steps", primal_steps, 1)
    primal_lr = check_positive("primal_lr", primal_lr)
    dual_lr = check_positive("dual_lr", dual_lr)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    params = list(model.parameters())
    if not params:
        raise ValueError("invalid model: it has no parameters to train")
    device, dtype = params[0].device, params[0].dtype
    c = torch.as_tensor(levels, device=device, dtype=dtype)
    c = c.reshape(-1) if c.ndim <= 1 else c   # (m,), or one row of levels per problem of a batch
    with torch.no_grad():
        shape = losses(model)[1].shape
    if shape[-1:] != c.shape[-1:] or (c.ndim > 1 and c.shape != shape):
        raise ValueError(f"invalid constraints output shape {tuple(shape)}: expected (..., {c.shape[-1]}), one per level")
    lam = (torch.zeros(shape, device=device, dtype=dtype) if duals is None
           else torch.as_tensor(duals, device=device, dtype=dtype).clone())
    if lam.shape != shape:
        raise ValueError(f"invalid duals shape {tuple(lam.shape)}: expected the constraints' shape {tuple(shape)}")
    if (lam < 0).any():
        raise ValueError(f"invalid duals {lam.tolist()}: expected nonnegative initial duals")
    opt = SGD(params, lr=primal_lr) if optimizer == "sgd" else Adam(params, lr=primal_lr)
    obj_tr, slack_tr, dual_tr = [], [], []
    small = sum(p.numel() for p in params) < 200_000
    with one_cpu_thread_if(small, device):
        for t in range(steps):
            dual_tr.append(lam)
            for _ in range(primal_steps):
                opt.zero_grad(set_to_none=True)
                f0, g = losses(model)
                s = g.detach() - c
                lagrangian(f0.sum(), g - c, lam).backward()
                opt.step()
            if primal_steps == 1 and t:  # gradient descent-ascent: f0, s are at the iterate of the previous phase
                obj_tr.append(f0.detach())
                slack_tr.append(s)
            if primal_steps > 1 or t == steps - 1:  # the values at the iterate this phase produced
                with torch.no_grad():
                    f0, g = losses(model)
                    s = g - c
                obj_tr.append(f0)
                slack_tr.append(s)
            lam = dual_step(lam, s, dual_lr)
    as_np = lambda xs: torch.stack(xs).cpu().numpy()  # noqa: E731
    return PrimalDualResult(as_np(obj_tr), as_np(slack_tr), as_np(dual_tr), lam.cpu().numpy(), model)


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
