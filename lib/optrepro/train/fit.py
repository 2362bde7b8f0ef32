r"""One training loop: steps of an optimizer on a loss closure, a recorded trace, stopping rules.

Step :math:`k = 0, 1, \dots` of :func:`fit` is

.. math::
    \ell_k = \texttt{loss}(k)\ \text{(at } \theta_k\text{)},\qquad \theta_{k+1} = \texttt{optimizer}(\theta_k, \nabla\ell_k),

with ``optimizer`` a ``torch.optim.Optimizer`` (``zero_grad``, ``backward``, ``step``, then ``scheduler.step()``)
or a functional update ``update(k, loss)`` that does the step itself (e.g. ``torch.autograd.grad`` then
:func:`optrepro.optim.functional.adam_step`). Every ``every`` steps and at the last one the trace records the step,
:math:`\ell_k`, the metrics the closure returned with it (on the same batch, before the update), the metrics of
``metrics()`` (after the update: test error, a constraint) and the training wall time (CUDA synchronized before the
clock is read; time spent in ``metrics()`` is not counted). The run stops at the step budget, when the recorded
``target_key`` first reaches ``target`` (AlgoPerf's time-to-result: Dahl et al., "Benchmarking Neural Network Training
Algorithms", 2023, arXiv:2306.07179), when ``stop(trace)`` says so, or on a non-finite loss.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..checks import check_choice, check_int

__all__ = ["STOPS", "Trace", "fit"]

STOPS = ("steps", "target", "callback", "nonfinite")
LossOut = Tensor | tuple[Tensor, Mapping[str, float]]


@dataclass
class Trace:
    """What :func:`fit` recorded: one entry per record (``step``, ``loss``, ``time`` and each metric)."""
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)           # training seconds since the start
    metrics: dict[str, list[float]] = field(default_factory=dict)
    steps: int = 0                                            # steps taken
    stopped: str = "steps"                                    # one of STOPS
    target_step: int | None = None                            # first recorded step that reached the target
    target_time: float | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        """``trace["loss"]``, ``trace["time"]``, ``trace["step"]`` or a metric, as an array."""
        return np.asarray(self.metrics[name] if name in self.metrics else getattr(self, name))

    def last(self, name: str = "loss") -> float:
        return float(self[name][-1])


def _device(optimizer) -> torch.device | None:
    if isinstance(optimizer, torch.optim.Optimizer):
        for group in optimizer.param_groups:
            for p in group["params"]:
                return p.device
    return None


def fit(loss: Callable[[int], LossOut], optimizer: torch.optim.Optimizer | Callable[[int, Tensor], None],
        steps: int, *, scheduler=None, every: int = 1, metrics: Callable[[], Mapping[str, float]] | None = None,
        target: float | None = None, target_key: str = "loss", mode: str = "min",
        stop: Callable[[Trace], bool] | None = None, stop_on_nonfinite: bool = True,
        device: torch.device | str | None = None) -> Trace:
    """Run up to ``steps`` steps of ``optimizer`` on ``loss`` and return the :class:`Trace`.

    Parameters
    ----------
    loss : ``loss(k)`` returns the scalar loss tensor of step ``k`` (draw the step's batch inside it), or
        ``(loss, {name: value})`` to record values computed with it (on records only, as floats).
    optimizer : a ``torch.optim.Optimizer``, or ``update(k, loss)`` that takes the step itself (functional).
    steps : the step budget.
    scheduler : stepped after each optimizer step (``torch.optim.lr_scheduler``), optional.
    every : record every ``every`` steps (``k % every == 0``) and at the last step.
    metrics : ``metrics()`` evaluated after the update at each record, not timed.
    target, target_key, mode : stop at the first record where ``target_key`` is ``<= target`` (``mode="min"``) or
        ``>= target`` (``"max"``); its step and time go to ``trace.target_step`` / ``target_time``.
    stop : ``stop(trace)`` checked at each record; true stops the run.
    stop_on_nonfinite : stop when a recorded loss is NaN or infinite.
    device : the device to synchronize before reading the clock (default: the optimizer's parameters').
    """
    steps, every = check_int("steps", steps, 1), check_int("every", every, 1)
    check_choice("mode", mode, ("min", "max"))
    device = torch.device(device) if device is not None else _device(optimizer)
    sync = (lambda: torch.cuda.synchronize(device)) if device is not None and device.type == "cuda" else (lambda: None)
    functional = not isinstance(optimizer, torch.optim.Optimizer)
    trace = Trace()
    sync()
    t_start = time.perf_counter()
    paused = 0.0
    for k in range(steps):
        out = loss(k)
        value, extra = out if isinstance(out, tuple) else (out, None)
        if functional:
            optimizer(k, value)
        else:
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        trace.steps = k + 1
        if k % every and k != steps - 1:
            continue
        sync()
        t = time.perf_counter()
        trace.step.append(k)
        trace.loss.append(float(value.detach()))
        trace.time.append(t - t_start - paused)
        more = dict(extra or {})
        if metrics is not None:
            more.update(metrics())
        for name, v in more.items():
            trace.metrics.setdefault(name, []).append(float(v))
        paused += time.perf_counter() - t
        if stop_on_nonfinite and not math.isfinite(trace.loss[-1]):
            trace.stopped = "nonfinite"
            break
        if target is not None:
            v = trace[target_key][-1]
            if (v <= target) if mode == "min" else (v >= target):
                trace.stopped, trace.target_step, trace.target_time = "target", k, trace.time[-1]
                break
        if stop is not None and stop(trace):
            trace.stopped = "callback"
            break
    return trace
