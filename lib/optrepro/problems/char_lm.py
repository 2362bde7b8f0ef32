r"""A tiny character-level transformer language model on synthetic text (no download, seconds on a CPU).

**The text.** A Markov source of order :math:`r` (``order``) over the first :math:`V` (``vocab``) letters: every
context :math:`c \in \{1..V\}^r` gets ``branching`` likely successors with random weights, mixed with the uniform
distribution, :math:`P(a \mid c) = (1 - \epsilon)\, q_c(a) + \epsilon / V` (``noise`` :math:`\epsilon > 0` makes the
chain irreducible and aperiodic). Each sequence of ``context + 1`` characters starts from the stationary distribution
:math:`\pi` of the contexts; inputs are its first ``context`` characters, targets the next ones. The source is
known, so the Bayes-optimal mean loss of a model that sees the sequence so far is known too (:attr:`CharLM.floor`):

.. math::
    L^\star = \frac1T \sum_{t=1}^{T} H(s_{t+1} \mid s_1, \dots, s_t),\qquad
    H(s_{t+1} \mid s_1, \dots, s_t) = h = \sum_c \pi(c)\, H(P(\cdot \mid c))\ \ (t \ge r),

with :math:`T` = ``context`` and, for :math:`t < r`, the conditional entropy of the stationary marginals. An
untrained model predicts uniformly, loss :math:`\log V`; a bigram model reaches at best
:math:`H(s_{t+1} \mid s_t) \ge L^\star` when :math:`r \ge 2`, so closing that gap needs attention to earlier
characters.

**The model.** :class:`TinyTransformer`: token and position embeddings, ``layers`` pre-LayerNorm blocks (causal
multi-head self-attention, then an MLP :func:`optrepro.models.mlp` of width ``4 d``, GELU), a final LayerNorm and
a linear read-out initialized at :math:`\mathcal N(0, 0.02^2)` with zero bias (GPT-2's scale), so the first loss is
:math:`\log V` to within about 0.02. The defaults (:math:`V = 8`, :math:`r = 2`, ``d_model=16``, 2 heads, 1 layer,
32 characters of context) have 4088 parameters; there Adam (lr 1e-2, batches of 32) comes within 0.04 nats of
:math:`L^\star = 0.90` in 1000 steps (about 3 s on one CPU thread) while SGD (lr 0.5, untuned) is still 0.6 above it.

Used by optimizer comparisons on attention models: Adam vs SGD on transformers (Zhang et al., "Why are adaptive
methods good for attention models?", NeurIPS 2020; Kunstner et al., "Noise is not the main factor behind the gap
between SGD and Adam on transformers", ICLR 2023), and the character-level language model of Wilson et al.,
"The marginal value of adaptive gradient methods in machine learning" (NeurIPS 2017), here on synthetic text.
"""
from __future__ import annotations

import dataclasses
import math
import string
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int, check_nonnegative, check_positive
from ..models.mlp import mlp
from .suite import Problem, seeded_generator

__all__ = ["CharLM", "MarkovSource", "TinyTransformer", "char_lm"]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position :math:`t` attends to positions :math:`\\le t`."""

    def __init__(self, d_model: int, heads: int, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model, dtype=dtype)
        self.proj = nn.Linear(d_model, d_model, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)          # (B, heads, T, D / heads)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, d_model: int, heads: int, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model, dtype=dtype), nn.LayerNorm(d_model, dtype=dtype)
        self.attn = CausalSelfAttention(d_model, heads, dtype)
        self.mlp = mlp(d_model, (4 * d_model,), d_model, activation="gelu", dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    """A decoder-only transformer: ``(B, T)`` character indices to ``(B, T, vocab)`` next-character logits."""

    def __init__(self, vocab: int, context: int, d_model: int = 16, heads: int = 2, layers: int = 1,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"invalid heads {heads!r}: expected a divisor of d_model {d_model}")
        self.tok = nn.Embedding(vocab, d_model, dtype=dtype)
        self.pos = nn.Embedding(context, d_model, dtype=dtype)
        self.blocks = nn.Sequential(*(Block(d_model, heads, dtype) for _ in range(layers)))
        self.ln = nn.LayerNorm(d_model, dtype=dtype)
        self.head = nn.Linear(d_model, vocab, dtype=dtype)
        with torch.no_grad():
            nn.init.normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    def forward(self, idx: Tensor) -> Tensor:
        h = self.tok(idx) + self.pos(torch.arange(idx.shape[-1], device=idx.device))
        return self.head(self.ln(self.blocks(h)))


@dataclasses.dataclass
class MarkovSource:
    """The order-``order`` source: ``probs[c, a] = P(a | c)`` for the context index
    :math:`c = \\sum_i c_i V^{r-1-i}`, and the stationary distribution ``stationary`` of the contexts (float64)."""
    vocab: int
    order: int
    probs: Tensor        # (V^r, V)
    stationary: Tensor   # (V^r,)

    @classmethod
    def random(cls, vocab: int, order: int, branching: int, noise: float, generator: torch.Generator):
        n_ctx = vocab ** order
        q = torch.zeros(n_ctx, vocab, dtype=torch.float64)
        for c in range(n_ctx):
            succ = torch.randperm(vocab, generator=generator)[:branching]
            q[c, succ] = 0.5 + torch.rand(branching, generator=generator, dtype=torch.float64)
        probs = (1 - noise) * q / q.sum(1, keepdim=True) + noise / vocab
        # the chain on contexts: c = (c_1..c_r) -> (c_2..c_r, a) with probability probs[c, a]
        trans = torch.zeros(n_ctx, n_ctx, dtype=torch.float64)
        nxt = (torch.arange(n_ctx) % vocab ** (order - 1))[:, None] * vocab + torch.arange(vocab)
        trans.scatter_(1, nxt, probs)
        vals, vecs = np.linalg.eig(trans.numpy().T)
        pi = np.abs(np.real(vecs[:, np.argmin(np.abs(vals - 1))]))
        return cls(vocab, order, probs, torch.as_tensor(pi / pi.sum()))

    def _digits(self, c: Tensor) -> list[Tensor]:
        return [(c // self.vocab ** (self.order - 1 - i)) % self.vocab for i in range(self.order)]

    def sample(self, n: int, length: int, generator: torch.Generator) -> Tensor:
        """``n`` sequences (n, length) of character indices, each started from the stationary distribution."""
        c = torch.multinomial(self.stationary, n, replacement=True, generator=generator)
        seq = self._digits(c)
        for _ in range(length - self.order):
            a = torch.multinomial(self.probs[c], 1, generator=generator).squeeze(1)
            seq.append(a)
            c = (c % self.vocab ** (self.order - 1)) * self.vocab + a
        return torch.stack(seq, 1)[:, :length]

    def floor(self, context: int) -> float:
        """The Bayes-optimal mean next-character loss (nats) over ``context`` predictions (module docstring)."""
        def entropy(p: Tensor) -> float:
            return float(-(p * p.clamp_min(1e-300).log()).sum())

        pi = self.stationary.reshape((self.vocab,) * self.order)
        marginals = [pi.sum(tuple(range(j, self.order))) if j < self.order else pi for j in range(1, self.order + 1)]
        joint = [entropy(m) for m in marginals]                       # H(s_1..s_j), j = 1..r
        rate = float((self.stationary * -(self.probs * self.probs.log()).sum(1)).sum())
        per_step = [joint[t] - joint[t - 1] for t in range(1, self.order)]   # H(s_{t+1} | s_1..s_t), t < r
        per_step += [rate] * (context - len(per_step))
        return float(np.mean(per_step[:context]))


@dataclasses.dataclass(eq=False)
class CharLM(Problem):
    """Inputs and targets (N, context) of character indices; ``alphabet`` spells them, ``floor`` is
    :math:`L^\\star`, ``source`` the :class:`MarkovSource`."""
    vocab: int = 8
    context: int = 32
    d_model: int = 16
    heads: int = 2
    layers: int = 1
    alphabet: str = ""
    floor: float = math.nan
    source: MarkovSource | None = None

    def build(self) -> nn.Module:
        return TinyTransformer(self.vocab, self.context, self.d_model, self.heads, self.layers, dtype=self.dtype)

    def criterion(self, out: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(out.reshape(-1, self.vocab), y.reshape(-1))

    def correct(self, out: Tensor, y: Tensor) -> Tensor:
        return out.argmax(-1) == y

    def decode(self, idx: Tensor) -> str:
        """The text of one sequence of indices."""
        return "".join(self.alphabet[i] for i in idx.tolist())


def char_lm(*, vocab: int = 8, order: int = 2, branching: int = 2, noise: float = 0.05, context: int = 32,
            n_train: int = 1024, n_test: int = 256, d_model: int = 16, heads: int = 2, layers: int = 1,
            batch_size: int | None = 32, l2: float = 0.0, seed: int = 0, dtype: torch.dtype = torch.float32,
            device: Any = None) -> CharLM:
    """The character-level language model problem (module docstring); ``seed`` draws the source and the text."""
    vocab = check_int("vocab", vocab, 2)
    if vocab > len(string.ascii_lowercase):
        raise ValueError(f"invalid vocab {vocab!r}: expected 2 <= vocab <= 26")
    order, context = check_int("order", order, 1), check_int("context", context, 1)
    if context < order:
        raise ValueError(f"invalid context {context!r}: expected context >= order {order}")
    branching = check_int("branching", branching, 1)
    if branching > vocab:
        raise ValueError(f"invalid branching {branching!r}: expected 1 <= branching <= vocab {vocab}")
    noise = check_positive("noise", noise)
    if not noise <= 1:
        raise ValueError(f"invalid noise {noise!r}: expected 0 < noise <= 1")
    n_train, n_test = check_int("n_train", n_train, 1), check_int("n_test", n_test, 1)
    d_model, heads = check_int("d_model", d_model, 1), check_int("heads", heads, 1)
    layers = check_int("layers", layers, 0)
    if d_model % heads:
        raise ValueError(f"invalid heads {heads!r}: expected a divisor of d_model {d_model}")
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed, 0)
    source = MarkovSource.random(vocab, order, branching, noise, seeded_generator(seed, 0))
    train = source.sample(n_train, context + 1, seeded_generator(seed, 1)).to(device)
    test = source.sample(n_test, context + 1, seeded_generator(seed, 2)).to(device)
    info = {"vocab": vocab, "order": order, "branching": branching, "noise": noise, "context": context,
            "n_train": n_train, "n_test": n_test, "seed": seed, "dtype": dtype}
    return CharLM("char_lm", train[:, :-1], train[:, 1:], test[:, :-1], test[:, 1:], batch_size=batch_size,
                  l2=check_nonnegative("l2", l2), info=info, vocab=vocab, context=context, d_model=d_model,
                  heads=heads, layers=layers, alphabet=string.ascii_lowercase[:vocab],
                  floor=source.floor(context), source=source)
