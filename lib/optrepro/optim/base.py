r"""The base of the :mod:`optrepro.optim` family: ``torch.optim.Optimizer`` without its first-call import of dynamo.

``torch.optim.Optimizer.add_param_group`` (called by every constructor) and ``zero_grad`` are wrapped in
``torch._disable_dynamo``, which imports ``torch._dynamo`` on the first call: about 1 s on a CPU (measured
0.94-1.15 s for ``torch.optim.Adam([w])`` in a fresh process, torch 2.13), more than a whole smoke run of many
notebooks. :class:`Optimizer` calls the same two methods unwrapped (they do no tracing of their own), so the
family's optimizers construct and step in milliseconds and behave otherwise exactly like ``torch.optim``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["Optimizer"]


def _unwrapped(method):
    return getattr(method, "__wrapped__", method)   # the function under torch._disable_dynamo's wrapper


class Optimizer(torch.optim.Optimizer):
    """``torch.optim.Optimizer`` whose ``add_param_group`` and ``zero_grad`` skip the lazy ``torch._dynamo`` import.

    Subclasses write ``step`` as usual (``state_dict``/``load_state_dict`` keep torch's, import included).
    """

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _unwrapped(torch.optim.Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _unwrapped(torch.optim.Optimizer.zero_grad)(self, set_to_none)

    @staticmethod
    def _evaluate(closure: Callable[[], Any] | None) -> Any:
        """The loss of ``closure`` (re-evaluated with gradients enabled, as ``step(closure)`` promises), or None."""
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()
