r"""One-layer softmax attention and its max-margin SVM (Tarzanagh, Li, Thrampoulidis & Oymak, 2023).

Reference: D. A. Tarzanagh, Y. Li, C. Thrampoulidis, S. Oymak. "Transformers as Support Vector Machines."
arXiv:2308.16898, 2023 (NeurIPS 2023 M3L workshop). Official code: github.com/umich-sota/TF-as-SVM.

Model. A sample is a token matrix X in R^{T x d} (rows x_t), a query token z in R^d and a label Y in {-1, +1}.
With a fixed linear head v in R^d and the combined key-query matrix W in R^{d x d} (or its factorization
W = K Q^T with K, Q in R^{d x m}), the attention model is

    f(X, z) = v^T X^T softmax(X W z),      softmax(a)_t = exp(a_t) / sum_tau exp(a_tau),

and it is trained on the empirical risk with a strictly decreasing loss l (logistic l(u) = log(1 + e^{-u}),
or exponential l(u) = e^{-u}):

    L(W) = (1/n) sum_i l(Y_i f(X_i, z_i)).

Gradient. With h_i = X_i v, s_i = softmax(X_i W z_i) and f_i = s_i^T h_i,

    grad L(W) = (1/n) sum_i l'(Y_i f_i) Y_i X_i^T (diag(s_i) - s_i s_i^T) h_i z_i^T,

and for W = K Q^T the chain rule gives grad_K = grad L(W) Q and grad_Q = grad L(W)^T K.

Token scores and optimality (Definition 1). The score of token t of sample i is gamma_it = Y_i v^T x_it; since
f is a convex combination of the values x_it^T v, attending only to the highest-score token
opt_i = argmax_t gamma_it minimizes every term of the risk.

Att-SVM. For token indices alpha = (alpha_i) (alpha = opt gives the globally optimal problem), the
attention SVM separates each selected token from the other tokens of its sample:

    W^mm(alpha) = argmin_W ||W||   s.t.   (x_{i alpha_i} - x_it)^T W z_i >= 1   for all t != alpha_i, i in [n],

with the Frobenius norm for the W-parameterization and the nuclear norm ||W||_* for the (K, Q)-parameterization
(W^mm_*). Gradient descent on W converges in direction to W^mm(opt) under the paper's global-convergence
conditions (over-parameterization makes them likelier), and in general to W^mm(alpha) for a *locally-optimal*
alpha: with the support tokens T_i = {t : (x_{i alpha_i} - x_it)^T W^mm z_i = 1}, alpha is locally optimal when
gamma_{i alpha_i} > gamma_it for every i and every t in T_i. The regularization path of the (K, Q)
parameterization converges in direction to the nuclear-norm solution W^mm_* instead.

Numerics. Once the attention saturates, h_it - f_i must be summed as sum_tau s_itau (h_it - h_itau): computed as
h_it - f_i (as autograd's softmax backward does) the gradient of the selected token is pure rounding error and
the direction drifts away from W^mm. Later the gradient underflows to exactly zero (logits ~745 apart); normalized
GD needs only its direction, which is computed rescaled by a positive factor so that it never underflows.

Gradient descent. The paper's experiments use normalized GD, W <- W - eta grad L(W) / ||grad L(W)||_F (for (K, Q)
each factor is normalized by its own gradient norm), so that ||W|| grows and the direction W / ||W|| can be
compared with W^mm / ||W^mm|| by the correlation <W_1, W_2> / (||W_1|| ||W_2||).

Every tensor function here accepts leading batch dimensions: X (..., n, T, d), z (..., n, d), Y (..., n),
v (..., d) and W (..., d, d), so that many independent datasets train side by side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from ..checks import check_choice, check_int, check_positive

__all__ = [
    "LOSSES",
    "PARAMETERIZATIONS",
    "SVM_NORMS",
    "attention_scores",
    "attention_probs",
    "attention_output",
    "token_scores",
    "optimal_tokens",
    "empirical_risk",
    "risk_gradient",
    "kq_gradients",
    "correlation",
    "random_attention_data",
    "uniform_init",
    "AttentionGDResult",
    "attention_gd",
    "AttSVMSolution",
    "att_svm",
    "att_svm_batch",
    "support_tokens",
    "local_optimality_gap",
    "is_locally_optimal",
]

LOSSES = ("logistic", "exponential")
PARAMETERIZATIONS = ("W", "KQ")
SVM_NORMS = ("fro", "nuc")


# --------------------------------------------------------------------------------------------- checks



def _check_shapes(X: Tensor, z: Tensor, Y: Tensor | None = None, v: Tensor | None = None) -> None:
    if X.dim() < 3:
        raise ValueError(f"invalid X of shape {tuple(X.shape)}: expected (..., n, T, d)")
    *batch, n, _, d = X.shape
    if tuple(z.shape) != (*batch, n, d):
        raise ValueError(f"invalid z of shape {tuple(z.shape)}: expected {(*batch, n, d)} to match X {tuple(X.shape)}")
    if Y is not None and tuple(Y.shape) != (*batch, n):
        raise ValueError(f"invalid Y of shape {tuple(Y.shape)}: expected {(*batch, n)} to match X {tuple(X.shape)}")
    if v is not None and tuple(v.shape) != (*batch, d):
        raise ValueError(f"invalid v of shape {tuple(v.shape)}: expected {(*batch, d)} to match X {tuple(X.shape)}")


# --------------------------------------------------------------------------------------------- the model

def attention_scores(X: Tensor, z: Tensor, W: Tensor) -> Tensor:
    """The attention logits a_it = x_it^T W z_i, shape (..., n, T)."""
    return torch.einsum("...ntd,...de,...ne->...nt", X, W, z)


def attention_probs(X: Tensor, z: Tensor, W: Tensor) -> Tensor:
    """The attention map softmax(X_i W z_i) of every sample, shape (..., n, T)."""
    return torch.softmax(attention_scores(X, z, W), dim=-1)


def attention_output(X: Tensor, z: Tensor, W: Tensor, v: Tensor) -> Tensor:
    """The model f(X_i, z_i) = v^T X_i^T softmax(X_i W z_i), shape (..., n)."""
    h = torch.einsum("...ntd,...d->...nt", X, v)
    return (attention_probs(X, z, W) * h).sum(-1)


def token_scores(X: Tensor, Y: Tensor, v: Tensor) -> Tensor:
    """The paper's token scores gamma_it = Y_i v^T x_it (Definition 1), shape (..., n, T)."""
    return Y.unsqueeze(-1) * torch.einsum("...ntd,...d->...nt", X, v)


def optimal_tokens(X: Tensor, Y: Tensor, v: Tensor) -> Tensor:
    """The globally optimal token of every sample, opt_i = argmax_t gamma_it, shape (..., n)."""
    return token_scores(X, Y, v).argmax(-1)


def _loss(u: Tensor, loss: str) -> Tensor:
    if loss == "logistic":
        return torch.nn.functional.softplus(-u)
    return torch.exp(-u)


def _loss_derivative(u: Tensor, loss: str) -> Tensor:
    if loss == "logistic":
        return -torch.sigmoid(-u)
    return -torch.exp(-u)


def empirical_risk(W: Tensor, X: Tensor, z: Tensor, Y: Tensor, v: Tensor, loss: str = "logistic") -> Tensor:
    """L(W) = (1/n) sum_i l(Y_i f(X_i, z_i)), shape (...)."""
    check_choice("loss", loss, LOSSES)
    return _loss(Y * attention_output(X, z, W, v), loss).mean(-1)


def risk_gradient(W: Tensor, X: Tensor, z: Tensor, Y: Tensor, v: Tensor, loss: str = "logistic") -> Tensor:
    """The closed-form gradient of :func:`empirical_risk` in W, shape (..., d, d)."""
    check_choice("loss", loss, LOSSES)
    return _risk_gradient(W, X, z, Y, torch.einsum("...ntd,...d->...nt", X, v), loss)


def _risk_gradient(W: Tensor, X: Tensor, z: Tensor, Y: Tensor, h: Tensor, loss: str, scaled: bool = False,
                   pairs: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """:func:`risk_gradient` given the values h = X v (batched matrix products, the training loop's hot path).

    dL/da_it = dL/df_i s_it (h_it - f_i) = dL/df_i sum_tau s_it s_itau (h_it - h_itau): summing the differences
    keeps full relative precision once the attention saturates (s_i nearly one-hot), where h_it - f_i computed
    directly is all rounding error. With ``scaled`` the gradient is returned multiplied by a positive factor
    exp(-c) per batch element (c = the largest log(s_it s_itau), tau != t): the same direction, but without the
    underflow to exactly zero that stops normalized GD once the logits are ~745 apart. ``pairs`` = the constant
    (h_it - h_itau, -inf on the diagonal) from :func:`_pairs`, precomputed by the training loop.
    """
    diff, off_diagonal = _pairs(h) if pairs is None else pairs
    logs = torch.log_softmax((X @ (z @ W.transpose(-1, -2)).unsqueeze(-1)).squeeze(-1), dim=-1)   # (..., n, T)
    coef = _loss_derivative(Y * (logs.exp() * h).sum(-1), loss) * (Y / X.shape[-3])   # dL/df_i, shape (..., n)
    log_pairs = logs.unsqueeze(-1) + (logs.unsqueeze(-2) + off_diagonal)   # log(s_it s_itau), -inf at tau = t
    if scaled:
        # One scale per batch element; clamped so that T = 1 (nothing to select, gradient 0) gives no nan.
        c = log_pairs.flatten(-3).amax(-1).clamp_min(torch.finfo(logs.dtype).min)
        log_pairs = log_pairs - c[..., None, None, None]
    g_logits = coef.unsqueeze(-1) * (log_pairs.exp() * diff).sum(-1)    # dL/da_it (times exp(-c) if scaled)
    u = (g_logits.unsqueeze(-2) @ X).squeeze(-2)                       # sum_t g_it x_it, shape (..., n, d)
    return u.transpose(-1, -2) @ z                                     # sum_i (sum_t g_it x_it) z_i^T


def _pairs(h: Tensor) -> tuple[Tensor, Tensor]:
    """The differences h_it - h_itau (..., n, T, T) and a T x T matrix, 0 off the diagonal and -inf on it."""
    T = h.shape[-1]
    eye = torch.eye(T, dtype=torch.bool, device=h.device)
    return h.unsqueeze(-1) - h.unsqueeze(-2), torch.zeros(T, T, dtype=h.dtype, device=h.device).masked_fill(eye, -torch.inf)


def kq_gradients(K: Tensor, Q: Tensor, X: Tensor, z: Tensor, Y: Tensor, v: Tensor,
                 loss: str = "logistic") -> tuple[Tensor, Tensor]:
    """Gradients of L(K Q^T) in K and in Q: (grad L(W) Q, grad L(W)^T K)."""
    check_choice("loss", loss, LOSSES)
    return _kq_gradients(K, Q, X, z, Y, torch.einsum("...ntd,...d->...nt", X, v), loss)


def _kq_gradients(K: Tensor, Q: Tensor, X: Tensor, z: Tensor, Y: Tensor, h: Tensor, loss: str,
                  scaled: bool = False, pairs: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    G = _risk_gradient(K @ Q.transpose(-1, -2), X, z, Y, h, loss, scaled, pairs)
    return G @ Q, G.transpose(-1, -2) @ K


def correlation(A: Tensor, B: Tensor) -> Tensor:
    """The paper's correlation coefficient <A, B> / (||A||_F ||B||_F) over the last two dimensions."""
    num = (A * B).sum((-2, -1))
    return num / (torch.linalg.matrix_norm(A) * torch.linalg.matrix_norm(B))


# --------------------------------------------------------------------------------------------- data

def _unit(x: Tensor) -> Tensor:
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)


def random_attention_data(runs: int, n: int, T: int, d: int, seed: int, *, device=None,
                          dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``runs`` independent datasets as in the paper's synthetic experiments (official code, ``data_generator``).

    Head v, tokens x_it and queries z_i uniform on the unit sphere of R^d, labels Y_i uniform in {-1, +1}.
    Returns (X, z, Y, v) of shapes (runs, n, T, d), (runs, n, d), (runs, n), (runs, d). The draw happens on the
    CPU from ``seed``, so the data do not depend on the device.
    """
    runs, n, T, d = (check_int(k, x, 1) for k, x in (("runs", runs), ("n", n), ("T", T), ("d", d)))
    gen = torch.Generator().manual_seed(int(seed))
    v = _unit(torch.randn(runs, d, generator=gen, dtype=dtype))
    Y = torch.where(torch.rand(runs, n, generator=gen) < 0.5, -1.0, 1.0).to(dtype)
    X = _unit(torch.randn(runs, n, T, d, generator=gen, dtype=dtype))
    z = _unit(torch.randn(runs, n, d, generator=gen, dtype=dtype))
    return tuple(t.to(device) for t in (X, z, Y, v))  # type: ignore[return-value]


def uniform_init(shape: tuple[int, ...], fan_in: int, seed: int, *, device=None,
                 dtype: torch.dtype = torch.float64) -> Tensor:
    """Entries uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)], torch.nn.Linear's default (the official code's init)."""
    gen = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / float(check_int("fan_in", fan_in, 1)) ** 0.5
    return ((2 * torch.rand(shape, generator=gen, dtype=dtype) - 1) * bound).to(device)


# --------------------------------------------------------------------------------------------- gradient descent

@dataclass
class AttentionGDResult:
    """What :func:`attention_gd` records: the combined W = K Q^T every ``record_every`` steps, and more."""
    steps: Tensor                  # (R,) the recorded iteration counts k (0 = initialization)
    W: Tensor                      # (R, ..., d, d) the combined W(k) at the recorded steps
    loss: Tensor                   # (R, ...) the risk L(W(k))
    probs: Tensor                  # (..., n, T) the final attention maps
    K: Tensor | None = None        # final factors for the (K, Q)-parameterization
    Q: Tensor | None = None
    frozen: Tensor | None = field(default=None)  # (...) bool: the gradient underflowed to exactly zero at some step

    @property
    def W_final(self) -> Tensor:
        return self.W[-1]

    @property
    def norm(self) -> Tensor:
        """||W(k)||_F at the recorded steps, shape (R, ...)."""
        return torch.linalg.matrix_norm(self.W)

    @property
    def selected(self) -> Tensor:
        """The token each sample attends to most at the end, alpha_i = argmax_t softmax(X_i W z_i)_t."""
        return self.probs.argmax(-1)


def _step(G: Tensor, lr: float, normalized: bool) -> tuple[Tensor, Tensor]:
    """The step lr * G / ||G||_F (per batch element; lr * G if not ``normalized``) and a mask of zero gradients."""
    norm = torch.linalg.matrix_norm(G)
    if not normalized:
        return lr * G, norm == 0
    return G * (lr / norm.clamp_min(torch.finfo(G.dtype).tiny))[..., None, None], norm == 0


def attention_gd(X: Tensor, z: Tensor, Y: Tensor, v: Tensor, steps: int, lr: float, *,
                 parameterization: str = "W", normalized: bool = True, loss: str = "logistic",
                 W0: Tensor | None = None, K0: Tensor | None = None, Q0: Tensor | None = None,
                 reg: float = 0.0, record_every: int = 10) -> AttentionGDResult:
    """Gradient descent on the attention risk with v fixed, for every dataset in the batch at once.

    ``parameterization="W"``: W(k+1) = W(k) - lr * G / ||G||_F with G = grad L(W(k)) (``normalized=False``: plain
    GD, W(k+1) = W(k) - lr * G). ``"KQ"``: the same step on K and on Q, each normalized by its own gradient norm,
    and W = K Q^T. ``reg`` = lambda adds lambda ||W||_F^2 (or lambda (||K||_F^2 + ||Q||_F^2)) to the risk: the
    official code uses lambda = float64 machine epsilon for (K, Q), so that the step stays defined once the
    risk's own gradient underflows. Normalized GD without ``reg`` only needs the gradient's direction, which is
    computed rescaled so that it never underflows (see :func:`_risk_gradient`); otherwise a dataset whose
    gradient is exactly zero stops moving, and ``frozen`` says which did.
    """
    _check_shapes(X, z, Y, v)
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("loss", loss, LOSSES)
    steps = check_int("steps", steps, minimum=0)
    record_every = check_int("record_every", record_every, 1)
    lr = check_positive("lr", lr)
    if isinstance(reg, bool) or not isinstance(reg, (int, float)) or reg < 0:
        raise ValueError(f"invalid reg {reg!r}: expected a number reg >= 0")
    batch, d = X.shape[:-3], X.shape[-1]
    if parameterization == "W":
        if W0 is None:
            raise ValueError("parameterization 'W' needs W0 (e.g. uniform_init((*batch, d, d), d, seed))")
        if tuple(W0.shape) != (*batch, d, d):
            raise ValueError(f"invalid W0 of shape {tuple(W0.shape)}: expected {(*batch, d, d)}")
        W = W0.clone()
    else:
        if K0 is None or Q0 is None:
            raise ValueError("parameterization 'KQ' needs K0 and Q0 of shape (..., d, m)")
        if K0.shape != Q0.shape or tuple(K0.shape[:-1]) != (*batch, d):
            raise ValueError(f"invalid K0/Q0 of shapes {tuple(K0.shape)}/{tuple(Q0.shape)}: expected {(*batch, d)} + (m,)")
        K, Q = K0.clone(), Q0.clone()
        W = K @ Q.transpose(-1, -2)
    frozen = torch.zeros(batch, dtype=torch.bool, device=X.device)
    h = torch.einsum("...ntd,...d->...nt", X, v)
    scaled = normalized and reg == 0     # normalized GD needs only the direction: rescale it past underflow
    pairs = _pairs(h)
    rec_steps, rec_W, rec_loss = [], [], []

    def record(k: int) -> None:
        rec_steps.append(k)
        rec_W.append(W.clone())
        rec_loss.append(empirical_risk(W, X, z, Y, v, loss))

    for k in range(steps):
        if k % record_every == 0:
            record(k)
        if parameterization == "W":
            G = _risk_gradient(W, X, z, Y, h, loss, scaled, pairs)
            step, zero = _step(G + 2 * reg * W if reg else G, lr, normalized)
            W = W - step
        else:
            GK, GQ = _kq_gradients(K, Q, X, z, Y, h, loss, scaled, pairs)
            if reg:
                GK, GQ = GK + 2 * reg * K, GQ + 2 * reg * Q
            (step_K, zero_K), (step_Q, zero_Q) = _step(GK, lr, normalized), _step(GQ, lr, normalized)
            K, Q = K - step_K, Q - step_Q
            zero = zero_K & zero_Q
            W = K @ Q.transpose(-1, -2)
        frozen |= zero
    record(steps)
    return AttentionGDResult(
        steps=torch.tensor(rec_steps), W=torch.stack(rec_W), loss=torch.stack(rec_loss),
        probs=attention_probs(X, z, W), K=None if parameterization == "W" else K,
        Q=None if parameterization == "W" else Q, frozen=frozen)


# --------------------------------------------------------------------------------------------- the Att-SVM

@dataclass
class AttSVMSolution:
    """The solution W^mm of one Att-SVM problem and its margins."""
    W: np.ndarray                  # (d, d)
    norm: str                      # "fro" or "nuc"
    margins: np.ndarray            # (n, T) (x_{i alpha_i} - x_it)^T W z_i, +inf at t = alpha_i
    status: str

    @property
    def min_margin(self) -> float:
        return float(self.margins.min())


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def _margins(X: np.ndarray, z: np.ndarray, alpha: np.ndarray, W: np.ndarray) -> np.ndarray:
    n = X.shape[0]
    sel = X[np.arange(n), alpha]                                          # (n, d)
    diff = sel[:, None, :] - X                                            # (n, T, d)
    m = np.einsum("ntd,de,ne->nt", diff, W, z)
    m[np.arange(n), alpha] = np.inf
    return m


@lru_cache(maxsize=32)
def _svm_program(rows: int, d: int, norm: str):
    """The Att-SVM as a parametrized cvxpy problem (constraint matrix A a Parameter): compiled once per size."""
    import cvxpy as cp

    A = cp.Parameter((rows, d * d))
    w = cp.Variable(d * d)
    objective = cp.sum_squares(w) if norm == "fro" else cp.normNuc(cp.reshape(w, (d, d), order="C"))
    return cp.Problem(cp.Minimize(objective), [A @ w >= 1]), A, w


def att_svm(X, z, alpha, norm: str = "fro", *, solver: str | None = None) -> AttSVMSolution:
    """Solve the Att-SVM for one dataset with cvxpy: min ||W|| s.t. (x_{i alpha_i} - x_it)^T W z_i >= 1, t != alpha_i.

    X (n, T, d), z (n, d), alpha (n,) token indices; ``norm="fro"`` (W-parameterization, solved as the QP
    min ||W||_F^2) or ``"nuc"`` (the nuclear norm of the (K, Q)-parameterization, an SDP); the default solver is
    Clarabel. Raises ValueError when the problem is infeasible (no W selects these tokens). Solutions are
    remembered: the same inputs again return the same (shared) solution without solving.
    """
    check_choice("norm", norm, SVM_NORMS)
    X, z, alpha = _as_numpy(X), _as_numpy(z), _as_numpy(alpha).astype(int)
    key = (norm, solver, X.shape, X.tobytes(), z.tobytes(), alpha.tobytes())
    if key not in _SOLVED:
        if len(_SOLVED) >= 1024:
            _SOLVED.clear()
        _SOLVED[key] = _solve_att_svm(X, z, alpha, norm, solver)
    return _SOLVED[key]


_SOLVED: dict = {}


def _solve_att_svm(X: np.ndarray, z: np.ndarray, alpha: np.ndarray, norm: str, solver: str | None) -> AttSVMSolution:
    if X.ndim != 3 or z.shape != (X.shape[0], X.shape[2]) or alpha.shape != (X.shape[0],):
        raise ValueError(f"invalid shapes X {X.shape}, z {z.shape}, alpha {alpha.shape}: expected (n, T, d), (n, d), (n,)")
    n, T, d = X.shape
    if alpha.min() < 0 or alpha.max() >= T:
        raise ValueError(f"invalid alpha {alpha.tolist()}: token indices must lie in 0..{T - 1}")
    sel = X[np.arange(n), alpha]
    rows = [np.outer(sel[i] - X[i, t], z[i]).ravel() for i in range(n) for t in range(T) if t != alpha[i]]
    problem, A, w = _svm_program(len(rows), d, norm)
    A.value = np.array(rows)                                              # (n (T-1), d^2), row-major vec(W)
    problem.solve(solver=solver or "CLARABEL")
    if problem.status in ("infeasible", "infeasible_inaccurate") or w.value is None:
        raise ValueError(f"Att-SVM is {problem.status} for alpha {alpha.tolist()}: no W selects these tokens")
    W = np.asarray(w.value).reshape(d, d).copy()
    return AttSVMSolution(W=W, norm=norm, margins=_margins(X, z, alpha, W), status=problem.status)


def att_svm_batch(X: Tensor, z: Tensor, alpha: Tensor, norm: str = "fro", *,
                  solver: str | None = None) -> tuple[Tensor, list[AttSVMSolution]]:
    """:func:`att_svm` for every dataset of a batch: X (R, n, T, d), z (R, n, d), alpha (R, n).

    Returns the solutions stacked as a tensor (R, d, d) on X's device and dtype, and the solutions themselves.
    """
    _check_shapes(X, z)
    if X.dim() != 4 or tuple(alpha.shape) != tuple(X.shape[:2]):
        raise ValueError(f"invalid shapes X {tuple(X.shape)}, alpha {tuple(alpha.shape)}: expected (R, n, T, d), (R, n)")
    sols = [att_svm(X[r], z[r], alpha[r], norm, solver=solver) for r in range(X.shape[0])]
    W = torch.as_tensor(np.stack([s.W for s in sols]), dtype=X.dtype, device=X.device)
    return W, sols


def support_tokens(X, z, alpha, W, tol: float = 1e-5) -> np.ndarray:
    """The support tokens of W^mm: t != alpha_i with margin (x_{i alpha_i} - x_it)^T W z_i <= 1 + tol, (n, T) bool."""
    X, z, alpha, W = _as_numpy(X), _as_numpy(z), _as_numpy(alpha).astype(int), _as_numpy(W)
    return _margins(X, z, alpha, W) <= 1 + tol


def local_optimality_gap(X, Y, v, z, alpha, W, tol: float = 1e-5) -> np.ndarray:
    """Per sample, gamma_{i alpha_i} - max_{t in T_i} gamma_it over the support tokens T_i of W = W^mm(alpha).

    alpha is locally optimal (the paper's definition) when every entry is > 0; a sample without support tokens
    gets +inf. X (n, T, d), Y (n,), v (d,), z (n, d), alpha (n,), W (d, d).
    """
    X, Y, v, alpha = _as_numpy(X), _as_numpy(Y), _as_numpy(v), _as_numpy(alpha).astype(int)
    n = X.shape[0]
    gamma = Y[:, None] * (X @ v)
    support = support_tokens(X, z, alpha, W, tol)
    best_support = np.where(support, gamma, -np.inf).max(axis=1)
    return gamma[np.arange(n), alpha] - best_support


def is_locally_optimal(X, Y, v, z, alpha, W, tol: float = 1e-5) -> bool:
    """Whether alpha is locally optimal given W = W^mm(alpha) (see :func:`local_optimality_gap`)."""
    return bool(np.all(local_optimality_gap(X, Y, v, z, alpha, W, tol) > 0))
