r"""The problem suite: small learning problems for "optimizer X vs Y on problem Z" notebooks.

A :class:`Problem` is data, a model and an objective that meet an optimizer in :func:`optrepro.train.fit` (the
benchopt split: problem, solver, run). With training pairs :math:`(x_i, y_i)_{i=1}^n`, a per-example loss
:math:`\ell` and the L2 coefficient :math:`\lambda` (``l2``) on the weight matrices :math:`W` (biases, norms'
scales and vectors are not penalized), the training objective is

.. math::
    F(\theta) = \frac1n \sum_{i=1}^n \ell(f_\theta(x_i), y_i) + \frac{\lambda}{2} \sum_{W} \|W\|_F^2 ,

and step :math:`k` of a run with ``batch_size`` :math:`B` uses the batch :math:`S_k` of random reshuffling: epoch
:math:`e = \lfloor k / \lfloor n/B \rfloor \rfloor` draws a permutation from a ``torch.Generator`` seeded by
``(seed, e)`` and is cut into consecutive batches (the last incomplete one dropped), so a batch is a function of
``(seed, k)`` alone; ``batch_size=None`` is the full batch.

* ``problem.model(seed)`` -- a new model, initialized from ``seed`` (built on the CPU in ``dtype``, then moved to the
  problem's device: the same numbers on every device; the global RNG is left as it was).
* ``problem.loss(model, seed)`` -- the closure ``loss(k)`` for :func:`~optrepro.train.fit` (a stochastic :math:`F`
  on :math:`S_k`).
* ``problem.metrics(model)`` -- the callable for ``fit(metrics=...)``: ``train_loss`` (the full :math:`F`),
  ``test_loss`` (the mean test loss, no penalty) and ``test_acc``; ``problem.evaluate(model)`` gives them now.
* ``problem.trial(optimizer, steps)`` -- ``run(step_size, seed) -> score`` for :func:`~optrepro.train.tune` and
  :func:`~optrepro.train.compare`.

:func:`get_problem` builds one by name (:data:`PROBLEMS`):

* ``logistic``, ``softmax``, ``mlp`` -- :mod:`optrepro.problems.classification` (scikit-learn's bundled data sets,
  MNIST-1D);
* ``char_lm`` -- :mod:`optrepro.problems.char_lm` (a tiny transformer on a synthetic Markov source).

Example: Adam vs SGD with momentum on softmax regression, tuned on one step-size grid and tuning seeds >= 100 (the
same trials for each, GUIDE section 3), best and median reported, then the claim seeds at the tuned step sizes::

    from optrepro.optim import SGD, Adam
    from optrepro.problems import get_problem
    from optrepro.train import compare

    problem = get_problem("softmax", dataset="digits", batch_size=64, seed=0)
    methods = {"adam": Adam, "sgd": lambda params, lr: SGD(params, lr=lr, momentum=0.9)}
    tuned = compare({name: problem.trial(opt, steps=200) for name, opt in methods.items()},
                    grid=[1e-3, 1e-2, 1e-1, 1.0], seeds=(100, 101, 102))
    for name, r in tuned.items():
        print(f"{name}: lr {r.best_step_size:g}, best {r.best:.4f}, median {r.median:.4f} ({r.trials} trials)")
    traces = {name: [problem.train(methods[name], tuned[name].best_step_size, seed, 200)[1] for seed in range(5)]
              for name in methods}
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_choice
from ..threads import one_cpu_thread_if

__all__ = ["PROBLEMS", "Problem", "batch_indices", "get_problem", "seeded_generator"]

PROBLEMS = ("logistic", "softmax", "mlp", "char_lm")
SCORES = ("train_loss", "test_loss", "test_error")


def seeded_generator(*key: int) -> torch.Generator:
    """A CPU generator seeded from the integers ``key`` (hashed by NumPy's SeedSequence: no collisions by sums)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0]))


def batch_indices(n: int, batch_size: int, seed: int, k: int) -> Tensor:
    """The indices of step ``k``'s batch under random reshuffling (see the module docstring), on the CPU."""
    epoch, j = divmod(k, max(n // batch_size, 1))
    return torch.randperm(n, generator=seeded_generator(seed, epoch))[j * batch_size:(j + 1) * batch_size]


@dataclass(eq=False)
class Problem:
    """A learning problem; subclasses give :meth:`build`, :meth:`criterion` and :meth:`correct`."""
    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    batch_size: int | None = None     # None: full batch
    l2: float = 0.0
    info: dict = field(default_factory=dict)   # what the problem was built from (data set, sizes, options)

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype: the inputs' (or ``info["dtype"]`` when the inputs are indices)."""
        return self.x_train.dtype if self.x_train.is_floating_point() else self.info["dtype"]

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    # --- what a subclass defines -------------------------------------------------------------------------------
    def build(self) -> nn.Module:
        """The architecture, on the CPU in :attr:`dtype`, initialized from the global RNG."""
        raise NotImplementedError

    def criterion(self, out: Tensor, y: Tensor) -> Tensor:
        """The mean loss of outputs ``out`` on targets ``y``."""
        raise NotImplementedError

    def correct(self, out: Tensor, y: Tensor) -> Tensor:
        """A boolean tensor: whether each prediction is right."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------------------------
    def model(self, seed: int = 0) -> nn.Module:
        """A new model initialized from ``seed`` (the global RNG state is restored afterwards)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self.build()
        return net.to(self.device)

    def penalty(self, model: nn.Module) -> Tensor:
        """:math:`\\frac{\\lambda}{2} \\sum_W \\|W\\|_F^2` over the parameters with two or more dimensions."""
        total = torch.zeros((), dtype=self.dtype, device=self.device)
        if self.l2:
            for p in model.parameters():
                if p.ndim >= 2:
                    total = total + p.square().sum()
        return 0.5 * self.l2 * total

    def objective(self, model: nn.Module, idx: Tensor | None = None) -> Tensor:
        """:math:`F` on the training rows ``idx`` (default: all of them), with the penalty."""
        x, y = (self.x_train, self.y_train) if idx is None else (self.x_train[idx], self.y_train[idx])
        return self.criterion(model(x), y) + self.penalty(model)

    def loss(self, model: nn.Module, seed: int = 0) -> Callable[[int], Tensor]:
        """``loss(k)``: the objective on step ``k``'s batch, for :func:`optrepro.train.fit`."""
        if self.batch_size is None or self.batch_size >= self.n_train:
            return lambda k: self.objective(model)
        n, b = self.n_train, self.batch_size
        cache: dict[int, Tensor] = {}     # this epoch's permutation (batch_indices without redrawing every step)

        def closure(k: int) -> Tensor:
            epoch, j = divmod(k, max(n // b, 1))
            if epoch not in cache:
                cache.clear()
                cache[epoch] = torch.randperm(n, generator=seeded_generator(seed, epoch)).to(self.device)
            return self.objective(model, cache[epoch][j * b:(j + 1) * b])
        return closure

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """``train_loss`` (:math:`F` on all training data), ``test_loss`` and ``test_acc`` of ``model`` now."""
        out = model(self.x_test)
        return {"train_loss": float(self.objective(model)),
                "test_loss": float(self.criterion(out, self.y_test)),
                "test_acc": float(self.correct(out, self.y_test).double().mean())}

    def metrics(self, model: nn.Module) -> Callable[[], dict[str, float]]:
        """The ``metrics`` argument of :func:`optrepro.train.fit` for ``model``."""
        return lambda: self.evaluate(model)

    def train(self, optimizer: Callable[..., torch.optim.Optimizer], lr: float, seed: int = 0, steps: int = 100,
              *, every: int = 10, **fit_options):
        """A new model from ``seed`` trained by ``optimizer(params, lr=lr)`` for ``steps`` steps on batches from
        ``seed``; returns ``(model, trace)``, the trace with :meth:`metrics` every ``every`` steps (on one CPU
        thread when the problem is on the CPU)."""
        from ..train import fit

        model = self.model(seed)
        with one_cpu_thread_if(True, self.device):      # small kernels: extra CPU threads only add overhead
            trace = fit(self.loss(model, seed), optimizer(model.parameters(), lr=lr), steps, every=every,
                        metrics=self.metrics(model), **fit_options)
        return model, trace

    def trial(self, optimizer: Callable[..., torch.optim.Optimizer], steps: int, *, score: str = "train_loss",
              **train_options) -> Callable[[float, int], float]:
        """``run(lr, seed)`` for :func:`optrepro.train.tune`: :meth:`train`, then the last ``score``
        (``train_loss``, ``test_loss`` or ``test_error``; lower is better), metrics recorded at the first and last
        steps only unless ``every`` is given."""
        check_choice("score", score, SCORES)
        train_options.setdefault("every", steps)

        def run(lr: float, seed: int) -> float:
            _, trace = self.train(optimizer, lr, seed, steps, **train_options)
            return 1.0 - trace.last("test_acc") if score == "test_error" else trace.last(score)
        return run


def get_problem(name: str, **options) -> Problem:
    """The problem ``name`` (one of :data:`PROBLEMS`) built with ``options``, e.g.
    ``get_problem("softmax", dataset="digits", batch_size=64, seed=0)``; a bad name or option is a one-line
    ``ValueError`` naming the valid choices."""
    from . import char_lm, classification

    factories = {"logistic": classification.logistic, "softmax": classification.softmax,
                 "mlp": classification.mlp_classifier, "char_lm": char_lm.char_lm}
    check_choice("problem", name, PROBLEMS)
    factory = factories[name]
    valid = tuple(inspect.signature(factory).parameters)
    for key in options:
        if key not in valid:
            raise ValueError(f"unknown option {key!r} for problem {name!r}: choose from {', '.join(valid)}")
    return factory(**options)
