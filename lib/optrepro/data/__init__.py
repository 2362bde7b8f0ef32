"""Datasets for the notebooks, all loaded without a download.

* :mod:`optrepro.data.mnist1d` -- MNIST-1D (Greydanus 2020), generated procedurally by the ``mnist1d`` package:
  a small 10-class real-network benchmark that a CPU trains in seconds.
* :mod:`optrepro.data.vision` -- MNIST from ``<data_dir>/mnist.npz`` (the Keras layout); a missing file is a
  one-line error naming the expected path.
* :mod:`optrepro.data.subsets` -- class-balanced and class-imbalanced subsets of a labelled dataset.
* :mod:`optrepro.data.binary_classification` -- breast cancer (scikit-learn) and a binary MNIST subset, standardized
  with a bias column and labels +-1 (imported by its module path).
* :mod:`optrepro.data.cstr` -- the simulated continuous stirred tank reactor of the ICLRNN paper, sequence
  standardization (imported by its module path).
* :mod:`optrepro.data.monotone_targets` -- synthetic monotone non-convex regression targets on [-1, 1]^d
  (imported by its module path).
* :mod:`optrepro.data.two_moons` -- scikit-learn's two-moons construction without scikit-learn (imported by its
  module path).
* :mod:`optrepro.data.image_classification` -- flattened digits (scikit-learn's bundled file) or local MNIST as
  train/test tensors (imported by its module path).
* :mod:`optrepro.data.fairness` -- two-group tabular data for fairness constraints: a synthetic set and COMPAS
  from ``<data_dir>/compas-scores-two-years.csv`` (imported by its module path).
"""

from .mnist1d import Dataset, load_mnist1d
from .subsets import class_subset
from .vision import MNISTArrays, load_mnist

__all__ = ["Dataset", "load_mnist1d", "class_subset", "MNISTArrays", "load_mnist"]
