r"""Neural-collapse metrics NC1-NC4 for features, labels and a linear classifier.

Conventions (shared by every function here): features ``H`` of shape (N, d), one row per sample; integer labels
``y`` of shape (N,) in {0, ..., K-1}; a linear classifier ``W`` of shape (K, d) (one row per class) with an
optional bias ``b`` of shape (K,). Class means are the rows of ``M`` (K, d),
:math:`\mu_k = \frac{1}{n_k}\sum_{i: y_i = k} h_i`, and the global mean is the mean over samples,
:math:`\mu_G = \frac{1}{N}\sum_i h_i` (for balanced classes this is also the mean of the class means).

* **NC1** (within-class variability collapse; Papyan, Han & Donoho 2020):

  .. math:: \mathrm{NC1} = \tfrac{1}{K}\,\mathrm{tr}\big(\Sigma_W \Sigma_B^{+}\big),\quad
            \Sigma_W = \tfrac{1}{N}\sum_i (h_i-\mu_{y_i})(h_i-\mu_{y_i})^\top,\quad
            \Sigma_B = \tfrac{1}{K}\sum_k (\mu_k-\mu_G)(\mu_k-\mu_G)^\top .

  It is 0 exactly when every feature equals its class mean, and scale invariant.

* **NC2** (the class means and the classifier rows form a frame): for vectors ``V`` (K, d) with Gram
  :math:`G = V V^\top`, the distance to a target Gram :math:`G^\star` after normalising both,

  .. math:: \mathrm{dist}(V, G^\star) = \Big\| \frac{G}{\|G\|_F} - \frac{G^\star}{\|G^\star\|_F} \Big\|_F \in [0, 2].

  Targets: the simplex equiangular tight frame (ETF), :math:`G^\star = \frac{K}{K-1}(I_K - \frac{1}{K}\mathbf 1\mathbf 1^\top)`
  (:func:`simplex_etf_gram`), used for *centred* class means and for classifier rows; and the orthogonal frame
  (OF), :math:`G^\star = I_K`, or, with given lengths :math:`r_k`, :math:`G^\star = \mathrm{diag}(r_k^2)`
  (:func:`orthogonal_frame_gram`), used for *uncentred* class means and classifier rows. Dang et al. (2023)
  prove that a deep linear head trained with MSE and weight decay has OF class means and classifier rows when
  it has no bias (balanced data: equal lengths; imbalanced data: lengths set by the class sizes), and a simplex
  ETF when the last layer has an (unregularised) bias. Centring an equal-length OF gives a simplex ETF, so the
  two cases differ in the classifier rows and the uncentred means, not in the centred means.

* **NC3** (self-duality: the classifier is the class means up to scale),

  .. math:: \mathrm{NC3} = \Big\| \frac{W}{\|W\|_F} - \frac{M}{\|M\|_F} \Big\|_F,

  with ``M`` the centred class means (the usual choice, and the one for a classifier with bias) or the
  uncentred ones (``center=False``, the bias-free case of Dang et al.).

* **NC4** (the classifier acts as the nearest-class-centre rule): the fraction of samples on which
  :math:`\arg\max_k (W h_i + b)_k = \arg\min_k \|h_i - \mu_k\|`; it is 1 under collapse.

References: V. Papyan, X. Y. Han, D. L. Donoho, "Prevalence of neural collapse during the terminal phase of deep
learning training", PNAS 2020. H. Dang, T. Tran, S. Osher, H. Tran-The, N. Ho, T. Nguyen, "Neural Collapse in
Deep Linear Networks: From Balanced to Imbalanced Data", ICML 2023, arXiv:2301.00437.

Inputs may be torch tensors or numpy arrays; every metric is computed in float64 on the input's device and
returned as a Python float.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "FRAMES",
    "CollapseMetrics",
    "class_means",
    "class_counts",
    "within_class_covariance",
    "between_class_covariance",
    "nc1",
    "simplex_etf_gram",
    "orthogonal_frame_gram",
    "frame_gram",
    "gram_distance",
    "frame_distance",
    "frame_separation",
    "nc3",
    "nc4",
    "collapse_metrics",
]

FRAMES = ("etf", "orthogonal")


# --------------------------------------------------------------------------------------------- inputs

def _tensor(name: str, x: Any, ndim: int) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != ndim:
        raise ValueError(f"invalid {name} of shape {tuple(t.shape)}: expected a {ndim}-D array")
    return t.detach().to(torch.float64)


def _labels(y: Any, n: int, num_classes: int | None) -> tuple[Tensor, int]:
    t = y if isinstance(y, Tensor) else torch.as_tensor(np.asarray(y))
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"invalid labels of shape {tuple(t.shape)}: expected shape ({n},), one label per feature row")
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"invalid labels of dtype {t.dtype}: expected integer class indices 0..K-1")
    t = t.to(torch.long)
    if n and int(t.min()) < 0:
        raise ValueError(f"invalid label {int(t.min())}: labels must be class indices 0..K-1")
    k = int(t.max()) + 1 if num_classes is None else int(num_classes)
    if num_classes is not None and (k < 1 or (n and int(t.max()) >= k)):
        raise ValueError(f"invalid label {int(t.max())} for num_classes={k}: labels must be in 0..{k - 1}")
    return t, k


def class_counts(y: Any, num_classes: int | None = None) -> Tensor:
    """Number of samples n_k in each class, shape (K,)."""
    t, k = _labels(y, len(y), num_classes)
    return torch.bincount(t, minlength=k)


def class_means(H: Any, y: Any, num_classes: int | None = None) -> Tensor:
    """Class means mu_k as the rows of a (K, d) float64 tensor; every class must have a sample."""
    H = _tensor("features H", H, 2)
    t, k = _labels(y, H.shape[0], num_classes)
    t = t.to(H.device)
    counts = torch.bincount(t, minlength=k)
    if bool((counts == 0).any()):
        empty = int(torch.nonzero(counts == 0)[0])
        raise ValueError(f"class {empty} has no samples: every class 0..{k - 1} needs at least one feature row")
    sums = torch.zeros(k, H.shape[1], dtype=H.dtype, device=H.device).index_add_(0, t, H)
    return sums / counts.unsqueeze(1).to(H.dtype)


def _features_labels_means(H: Any, y: Any, num_classes: int | None) -> tuple[Tensor, Tensor, Tensor]:
    """Features as float64, labels as long on the features' device, and the class means."""
    H = _tensor("features H", H, 2)
    t, _ = _labels(y, H.shape[0], num_classes)
    return H, t.to(H.device), class_means(H, y, num_classes)


def _within(H: Tensor, t: Tensor, means: Tensor) -> Tensor:
    dev = H - means[t]
    return dev.T @ dev / H.shape[0]


def _between(H: Tensor, means: Tensor) -> Tensor:
    centred = means - H.mean(dim=0)
    return centred.T @ centred / means.shape[0]


def _nc1(H: Tensor, t: Tensor, means: Tensor) -> float:
    sw, sb = _within(H, t, means), _between(H, means)
    return float(torch.trace(sw @ torch.linalg.pinv(sb, hermitian=True)) / means.shape[0])


def within_class_covariance(H: Any, y: Any, num_classes: int | None = None) -> Tensor:
    """Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T, shape (d, d)."""
    H, t, means = _features_labels_means(H, y, num_classes)
    return _within(H, t, means)


def between_class_covariance(H: Any, y: Any, num_classes: int | None = None) -> Tensor:
    """Sigma_B = (1/K) sum_k (mu_k - mu_G)(mu_k - mu_G)^T with mu_G the mean over samples, shape (d, d)."""
    H, _, means = _features_labels_means(H, y, num_classes)
    return _between(H, means)


def nc1(H: Any, y: Any, num_classes: int | None = None) -> float:
    """NC1 = tr(Sigma_W Sigma_B^+) / K (0 under exact within-class collapse)."""
    return _nc1(*_features_labels_means(H, y, num_classes))


# --------------------------------------------------------------------------------------------- frames

def simplex_etf_gram(num_classes: int, dtype: torch.dtype = torch.float64, device: Any = None) -> Tensor:
    """Gram matrix of a unit-length simplex ETF: K/(K-1) (I - 11^T/K)."""
    k = _num_classes(num_classes, minimum=2)
    eye = torch.eye(k, dtype=dtype, device=device)
    return k / (k - 1) * (eye - torch.full((k, k), 1.0 / k, dtype=dtype, device=device))


def orthogonal_frame_gram(num_classes: int, lengths: Any = None, dtype: torch.dtype = torch.float64,
                          device: Any = None) -> Tensor:
    """Gram matrix of an orthogonal frame: I_K, or diag(r_k^2) for given lengths r_k."""
    k = _num_classes(num_classes, minimum=1)
    if lengths is None:
        return torch.eye(k, dtype=dtype, device=device)
    r = _tensor("lengths", lengths, 1).to(dtype=dtype, device=device)
    if r.shape[0] != k:
        raise ValueError(f"invalid lengths of shape {tuple(r.shape)}: expected one length per class, shape ({k},)")
    return torch.diag(r**2)


def frame_gram(frame: str, num_classes: int, lengths: Any = None, dtype: torch.dtype = torch.float64,
               device: Any = None) -> Tensor:
    """The target Gram of ``frame`` ('etf' or 'orthogonal'; lengths only for 'orthogonal')."""
    if frame == "etf":
        if lengths is not None:
            raise ValueError("lengths are only meaningful for frame='orthogonal': a simplex ETF has equal lengths")
        return simplex_etf_gram(num_classes, dtype, device)
    if frame == "orthogonal":
        return orthogonal_frame_gram(num_classes, lengths, dtype, device)
    raise ValueError(f"unknown frame {frame!r}: choose one of {', '.join(FRAMES)}")


def gram_distance(V: Any, target_gram: Any) -> float:
    """|| V V^T / ||V V^T||_F - G* / ||G*||_F ||_F for vectors V (K, d) and a target Gram G* (K, K)."""
    V = _tensor("vectors V", V, 2)
    target = _tensor("target Gram", target_gram, 2).to(V.device)
    k = V.shape[0]
    if target.shape != (k, k):
        raise ValueError(f"invalid target Gram of shape {tuple(target.shape)}: expected ({k}, {k}) for {k} vectors")
    gram = V @ V.T
    norm = torch.linalg.matrix_norm(gram)
    if norm == 0:
        raise ValueError("the vectors V are all zero: their Gram matrix cannot be normalised")
    return float(torch.linalg.matrix_norm(gram / norm - target / torch.linalg.matrix_norm(target)))


def frame_distance(V: Any, frame: str = "etf", lengths: Any = None) -> float:
    """NC2: distance of the normalised Gram of the rows of V (K, d) from the ``frame`` ('etf' or 'orthogonal').

    Pass centred class means (or classifier rows) for 'etf', uncentred ones for 'orthogonal'; ``lengths`` gives
    the orthogonal frame unequal lengths r_k (target Gram diag(r_k^2)).
    """
    V = _tensor("vectors V", V, 2)
    return gram_distance(V, frame_gram(frame, V.shape[0], lengths, device=V.device))


def frame_separation(num_classes: int) -> float:
    """The distance between the two ideal frames, || E/||E||_F - I/sqrt(K) ||_F (E the simplex ETF Gram).

    A measured frame that is at least half this far from one frame is clearly not that frame.
    """
    k = _num_classes(num_classes, minimum=2)
    e = simplex_etf_gram(k)
    return float(torch.linalg.matrix_norm(e / torch.linalg.matrix_norm(e) - torch.eye(k, dtype=e.dtype) / k**0.5))


# --------------------------------------------------------------------------------------------- NC3, NC4

def nc3(W: Any, means: Any) -> float:
    """NC3 = || W/||W||_F - M/||M||_F ||_F for a classifier W (K, d) and class means M (K, d) (centred or not)."""
    W = _tensor("classifier W", W, 2)
    M = _tensor("class means M", means, 2).to(W.device)
    if W.shape != M.shape:
        raise ValueError(f"classifier W of shape {tuple(W.shape)} does not match class means of shape {tuple(M.shape)}")
    wn, mn = torch.linalg.matrix_norm(W), torch.linalg.matrix_norm(M)
    if wn == 0 or mn == 0:
        raise ValueError("W or the class means are all zero: NC3 needs both to be non-zero")
    return float(torch.linalg.matrix_norm(W / wn - M / mn))


def nc4(H: Any, W: Any, means: Any, bias: Any = None) -> float:
    """NC4: fraction of rows h of H where argmax_k (W h + b)_k equals argmin_k ||h - mu_k|| (1 under collapse)."""
    H = _tensor("features H", H, 2)
    W = _tensor("classifier W", W, 2).to(H.device)
    M = _tensor("class means M", means, 2).to(H.device)
    if W.shape[1] != H.shape[1] or M.shape != W.shape:
        raise ValueError(f"shapes do not match: features {tuple(H.shape)}, classifier {tuple(W.shape)}, "
                         f"class means {tuple(M.shape)} (expected (N, d), (K, d), (K, d))")
    logits = H @ W.T
    if bias is not None:
        b = _tensor("bias b", bias, 1).to(H.device)
        if b.shape[0] != W.shape[0]:
            raise ValueError(f"invalid bias of shape {tuple(b.shape)}: expected ({W.shape[0]},)")
        logits = logits + b
    ncc = torch.cdist(H, M).argmin(dim=1)
    return float((logits.argmax(dim=1) == ncc).to(torch.float64).mean())


# --------------------------------------------------------------------------------------------- all at once

@dataclass
class CollapseMetrics:
    """NC1-NC4 of one layer (see the module docstring); ``nc2_*`` are distances to the named frame."""
    nc1: float
    nc2_means_etf: float          # centred class means vs simplex ETF
    nc2_means_orthogonal: float   # uncentred class means vs equal-length orthogonal frame
    nc2_classifier_etf: float     # classifier rows vs simplex ETF
    nc2_classifier_orthogonal: float  # classifier rows vs equal-length orthogonal frame
    nc3: float                    # self-duality, with centred or uncentred means (see ``center``)
    nc4: float                    # agreement of the classifier with the nearest class centre

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def collapse_metrics(H: Any, y: Any, W: Any, bias: Any = None, center: bool = True,
                     num_classes: int | None = None) -> CollapseMetrics:
    """All of NC1-NC4 for features H (N, d), labels y, classifier W (K, d) and optional bias b (K,).

    ``center`` picks the class means used in NC3: centred by the global mean (True, the classifier-with-bias
    case) or uncentred (False, the bias-free case of Dang et al. 2023).
    """
    H = _tensor("features H", H, 2)
    W = _tensor("classifier W", W, 2).to(H.device)
    k = W.shape[0] if num_classes is None else num_classes
    H, t, means = _features_labels_means(H, y, k)
    if means.shape != W.shape:
        raise ValueError(f"classifier W of shape {tuple(W.shape)} does not match {means.shape[0]} classes of "
                         f"{H.shape[1]}-dimensional features: expected ({means.shape[0]}, {H.shape[1]})")
    centred = means - H.mean(dim=0)
    return CollapseMetrics(
        nc1=_nc1(H, t, means),
        nc2_means_etf=frame_distance(centred, "etf"),
        nc2_means_orthogonal=frame_distance(means, "orthogonal"),
        nc2_classifier_etf=frame_distance(W, "etf"),
        nc2_classifier_orthogonal=frame_distance(W, "orthogonal"),
        nc3=nc3(W, centred if center else means),
        nc4=nc4(H, W, means, bias),
    )


def _num_classes(k: Any, minimum: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < minimum:
        raise ValueError(f"invalid num_classes {k!r}: expected an integer >= {minimum}")
    return int(k)
