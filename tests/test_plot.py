"""Plot helpers draw what they say: the fitted rate of a geometric sequence, medians and ranges of bars."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from optrepro import plot  # noqa: E402


def test_convergence_draws_the_fitted_geometric_rate():
    fig, ax = plt.subplots()
    y = 0.9 ** np.arange(50)
    plot.convergence(ax, {"GD": y}, rate={"GD": (10, 40)}, target=1e-2)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["GD", "GD: factor 0.9 per step"]
    assert ax.get_yscale() == "log"
    plt.close(fig)


def test_method_bars_show_median_and_range():
    fig, ax = plt.subplots()
    plot.method_bars(ax, {"method": [1.0, 2.0, 10.0], "baseline": [3.0, 3.0]}, threshold=2.5)
    heights = [p.get_height() for p in ax.patches]
    assert heights == [2.0, 3.0]  # medians, not the mean 4.33 that one run would drag up
    assert [t.get_text() for t in ax.get_xticklabels()] == ["method", "baseline"]
    plt.close(fig)
