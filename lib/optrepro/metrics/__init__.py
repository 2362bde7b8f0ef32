"""Measures of learned features and classifiers.

* :mod:`optrepro.metrics.neural_collapse` -- the neural-collapse metrics NC1-NC4 for features H (N, d), labels y
  and a classifier W (K, d): within-class variability, distance of class means / classifier rows from a simplex
  ETF or an orthogonal frame, self-duality, agreement with the nearest-class-centre rule.
* :mod:`optrepro.metrics.monotonicity` -- the largest decrease of a function on an ordered grid (``max_decrease``).
* :mod:`optrepro.metrics.fairness` -- demographic-parity gaps of predicted probabilities between two groups
  (imported by its module path).
"""

from .neural_collapse import (
    FRAMES,
    CollapseMetrics,
    between_class_covariance,
    class_counts,
    class_means,
    collapse_metrics,
    frame_distance,
    frame_gram,
    frame_separation,
    gram_distance,
    nc1,
    nc3,
    nc4,
    orthogonal_frame_gram,
    simplex_etf_gram,
    within_class_covariance,
)

__all__ = [
    "FRAMES", "CollapseMetrics", "between_class_covariance", "class_counts", "class_means", "collapse_metrics",
    "frame_distance", "frame_gram", "frame_separation", "gram_distance", "nc1", "nc3", "nc4",
    "orthogonal_frame_gram", "simplex_etf_gram", "within_class_covariance",
]
