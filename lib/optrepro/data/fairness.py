r"""Two-group tabular data for fairness constraints: a synthetic set with a nonlinear label (:func:`fair_tabular`)
and ProPublica's COMPAS two-year recidivism table read from a local file (:func:`load_compas`), both as
:class:`FairData` (features, labels, protected group).

Used by notebooks/constrained-learning-dual-feasibility.ipynb (Elenter, Chamon & Ribeiro, ICLR 2024).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from optrepro.checks import check_int, check_nonnegative

__all__ = ["FairData", "fair_tabular", "load_compas", "COMPAS_FILE"]


@dataclass
class FairData:
    """Features ``X`` (n, d, the protected attribute not among them), labels ``y`` in {0, 1}, groups ``z`` in {0, 1}."""
    X: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor

    def to(self, device, dtype=None) -> FairData:
        return FairData(self.X.to(device, dtype), self.y.to(device, dtype), self.z.to(device))


def fair_tabular(n: int, d: int = 5, *, shift: float = 1.0, noise: float = 0.5,
                 generator: torch.Generator | None = None) -> FairData:
    r"""Synthetic two-group tabular data with a nonlinear label.

    :math:`z \sim \mathrm{Bern}(1/2)`, :math:`x \sim \mathcal N(\text{shift}\cdot z\, e_1, I_d)` (the groups differ
    along the first feature), and :math:`y = 1[\,x_1 + \sin(2x_2) + x_3x_4 + \text{noise}\,\varepsilon > 0]`, so the
    positive rate differs between the groups and the Bayes classifier is not linear.
    """
    n = check_int("n", n, 4)
    d = check_int("d", d, 4)
    shift = check_nonnegative("shift", shift)
    noise = check_nonnegative("noise", noise)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    z = (torch.rand(n, generator=g) < 0.5).long()
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    X[:, 0] += shift * z
    score = X[:, 0] + torch.sin(2 * X[:, 1]) + X[:, 2] * X[:, 3] + noise * torch.randn(n, generator=g, dtype=torch.float64)
    return FairData(X, (score > 0).double(), z)


COMPAS_FILE = "compas-scores-two-years.csv"


def load_compas(data_dir: str | Path) -> FairData:
    """ProPublica's COMPAS two-year recidivism table from ``<data_dir>/compas-scores-two-years.csv``.

    The usual filtering (``days_b_screening_arrest`` within 30 days, ``is_recid != -1``, ``c_charge_degree != 'O'``,
    ``score_text != 'N/A'``); features: standardized age, priors count, juvenile counts, charge degree and sex; the
    group ``z`` is race (1: African-American); the label is ``two_year_recid``.
    """
    import csv

    path = Path(data_dir).expanduser() / COMPAS_FILE
    if not path.exists():
        raise FileNotFoundError(f"COMPAS not found at {path}: put ProPublica's {COMPAS_FILE} there or set data_dir=...")
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh)
                if r["days_b_screening_arrest"] != "" and abs(float(r["days_b_screening_arrest"])) <= 30
                and r["is_recid"] != "-1" and r["c_charge_degree"] != "O" and r["score_text"] != "N/A"]
    cols = ["age", "priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count"]
    X = np.array([[float(r[k]) for k in cols] for r in rows])
    X = (X - X.mean(0)) / X.std(0).clip(1e-12)
    extra = np.array([[float(r["c_charge_degree"] == "F"), float(r["sex"] == "Male")] for r in rows])
    X = np.concatenate([X, extra], 1)
    z = np.array([int(r["race"] == "African-American") for r in rows], dtype=np.int64)
    y = np.array([float(r["two_year_recid"]) for r in rows])
    return FairData(torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(z))
