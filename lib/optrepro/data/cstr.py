r"""The continuous stirred tank reactor (CSTR) of Wang & Wu (arXiv:2401.07494; the input convex Lipschitz RNN
paper): a second-order exothermic reaction simulated by forward Euler, mapping an initial state and a constant input
to the state trajectory (:func:`cstr_dataset`), and per-feature standardization of sequence data
(:func:`standardize`).

Used by notebooks/iclrnn.ipynb.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from optrepro.checks import check_int

__all__ = ["CSTR", "cstr_dataset", "standardize"]


# The reactor of the paper's code (deviation variables around the steady state C_As, T_s).
CSTR = {
    "T0": 300.0, "V": 1.0, "k0": 8.46e6, "Cp": 0.231, "rho": 1000.0, "F": 5.0, "E": 5e4, "dH": -1.15e4, "R": 8.314,
    "CA0s": 4.0, "CAs": 1.9537, "Ts": 401.8727, "Qs": 0.0, "dt": 1e-4, "record_every": 5,
    "u1": (-3.5, 3.5), "u2": (-5e5, 5e5), "T_init": (300.0, 600.0), "CA_init": (0.0, 6.0),
    "P": ((1060.0, 22.0), (22.0, 0.52)), "region": 372.0,
}


def cstr_dataset(n: int, steps: int = 10, seed: int = 0) -> tuple[Tensor, Tensor]:
    r"""``n`` simulated trajectories of the CSTR

    .. math:: \dot C_A = \tfrac FV (C_{A0} - C_A) - k_0 e^{-E/RT} C_A^2,\qquad
              \dot T = \tfrac FV (T_0 - T) - \tfrac{\Delta H}{\rho C_p} k_0 e^{-E/RT} C_A^2 + \tfrac{Q}{\rho C_p V}

    (forward Euler, step ``1e-4`` h, a state recorded every 5 steps). Initial deviations
    :math:`(C_A - C_{As}, T - T_s)` are uniform on the paper's box, kept inside its stability region
    :math:`x^\top P x < 372`; the inputs :math:`u_1 = C_{A0} - C_{A0s}`, :math:`u_2 = Q - Q_s` are uniform on
    :math:`[-3.5, 3.5]` and :math:`[-5\cdot10^5, 5\cdot10^5]`, held constant. Returns ``X`` of shape
    ``(n, steps, 4)`` (the features :math:`(T_{init}, C_{A,init}, u_2, u_1)` in deviation form, repeated at every
    step, as the paper feeds them) and ``Y`` of shape ``(n, steps, 2)`` (the deviations :math:`(T, C_A)` at the
    recorded times), both float64."""
    n, steps = check_int("n", n, 1), check_int("steps", steps, 1)
    p = CSTR
    rng = np.random.default_rng(seed)
    P = np.asarray(p["P"])
    init = np.empty((0, 2))
    while len(init) < n:                      # rejection sampling inside the stability region
        ca = rng.uniform(*p["CA_init"], 4 * n) - p["CAs"]
        T = rng.uniform(*p["T_init"], 4 * n) - p["Ts"]
        x = np.stack([ca, T], 1)
        init = np.concatenate([init, x[np.einsum("ni,ij,nj->n", x, P, x) < p["region"]]])
    ca_dev, T_dev = init[:n, 0], init[:n, 1]
    u1, u2 = rng.uniform(*p["u1"], n), rng.uniform(*p["u2"], n)
    CA, T = ca_dev + p["CAs"], T_dev + p["Ts"]
    CA0, Q = u1 + p["CA0s"], u2 + p["Qs"]
    out = np.empty((n, steps, 2))
    for i in range(steps * p["record_every"]):
        r = p["k0"] * np.exp(-p["E"] / (p["R"] * T)) * CA ** 2
        dCA = p["F"] / p["V"] * (CA0 - CA) - r
        dT = p["F"] / p["V"] * (p["T0"] - T) - p["dH"] / (p["rho"] * p["Cp"]) * r + Q / (p["rho"] * p["Cp"] * p["V"])
        CA, T = CA + p["dt"] * dCA, T + p["dt"] * dT
        if (i + 1) % p["record_every"] == 0:
            out[:, i // p["record_every"]] = np.stack([T - p["Ts"], CA - p["CAs"]], 1)
    X = np.repeat(np.stack([T_dev, ca_dev, u2, u1], 1)[:, None, :], steps, axis=1)
    return torch.from_numpy(X), torch.from_numpy(out)


def standardize(train: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """Scale every feature (last axis) to mean 0 and standard deviation 1 with the statistics of ``train`` (over
    all sequences and time steps); returns ``train`` and ``others`` scaled the same way."""
    flat = train.reshape(-1, train.shape[-1])
    mu, sd = flat.mean(0), flat.std(0).clamp_min(1e-12)
    return tuple((t - mu) / sd for t in (train, *others))
