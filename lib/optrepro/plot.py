"""The figures notebooks repeat: convergence curves on log axes (with a fitted geometric rate drawn over them) and
method-against-baseline bars with the spread over seeds or runs.

Each function draws on a matplotlib ``Axes`` it is given and returns it, so a notebook keeps control of the figure
(``fig, ax = plt.subplots(); plot.convergence(ax, ...); run.savefig(fig, "name")``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .analysis.rates import geometric_rate


def convergence(ax, curves: Mapping[str, Sequence[float]], x: Sequence[float] | None = None, *, logx: bool = False,
                logy: bool = True, rate: Mapping[str, tuple[int, int]] | None = None, target: float | None = None,
                xlabel: str = "iteration", ylabel: str = "error"):
    """One line per method (``{label: values}``) against ``x`` (default 1, 2, ...), log-scaled as asked.

    ``rate`` maps a label to an index window ``(start, stop)``: the least-squares line of ``log(values)`` over that
    window (:func:`optrepro.analysis.rates.geometric_rate`) is drawn dashed and its per-step factor given in the legend (a geometric rate, meaningful only
    where the curve is log-linear). ``target`` draws a horizontal line (an accuracy to reach).
    """
    for label, values in curves.items():
        y = np.asarray(values, dtype=float)
        xs = np.arange(1, len(y) + 1) if x is None else np.asarray(x, dtype=float)[: len(y)]
        (line,) = ax.plot(xs, y, label=label)
        if rate and label in rate:
            start, stop = rate[label]
            k, v = xs[start:stop], np.maximum(y[start:stop], np.finfo(float).tiny)
            q = geometric_rate(v, k)  # least-squares log-linear fit; its line passes through the means
            log_c = np.log(v).mean() - np.log(q) * k.mean()
            ax.plot(k, np.exp(log_c + np.log(q) * k), "--", color=line.get_color(), lw=1,
                    label=f"{label}: factor {q:.4g} per step")
    if target is not None:
        ax.axhline(target, color="gray", ls=":", lw=0.8)
    ax.set(xscale="log" if logx else "linear", yscale="log" if logy else "linear", xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=7)
    return ax


def method_bars(ax, values: Mapping[str, Sequence[float]], *, ylabel: str = "", log: bool = False,
                threshold: float | None = None):
    """One bar per method at the median of its values (seeds or runs), every value drawn as a dot, and the range as an
    error bar: the best, the median and the spread are visible, never a mean that hides collapsed runs."""
    for i, vals in enumerate(values.values()):
        v = np.asarray(vals, dtype=float)
        med = float(np.median(v))
        ax.bar(i, med, color=f"C{i}", alpha=0.5)
        ax.errorbar(i, med, yerr=[[med - v.min()], [v.max() - med]], color="k", capsize=4, lw=1)
        ax.plot(np.full(len(v), i) + np.linspace(-0.15, 0.15, len(v)), v, "o", color="k", ms=3)
    ax.set_xticks(range(len(values)), list(values))
    if threshold is not None:
        ax.axhline(threshold, color="gray", ls=":", lw=0.8)
    ax.set(ylabel=ylabel, yscale="log" if log else "linear")
    return ax
