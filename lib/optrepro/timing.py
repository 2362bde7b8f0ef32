"""Clocks for timing solvers against each other.

``wall`` is :func:`time.perf_counter` (what a user waits; on a GPU, synchronize before reading it). ``cpu`` is
:func:`time.process_time`, the CPU time of this process: for single-threaded solvers on a CPU it is the wall time of
an idle machine, and, unlike wall time, it barely moves when other jobs share the cores (CI runs two notebooks at
once on two cores). Pass the same clock to every solver of a comparison.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from .checks import check_choice

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def clock(name: str) -> Callable[[], float]:
    """The clock called ``name`` (``wall`` or ``cpu``)."""
    return CLOCKS[check_choice("clock", name, tuple(CLOCKS))]
