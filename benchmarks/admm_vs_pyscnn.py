"""Time our ADMM for the convex ReLU program against cvxpy and pyscnn on the same problems (issue of convex-relu-admm).

Problems: the notebook's breast-cancer experiment (scikit-learn's breast cancer, features standardized, a bias
column appended, labels +-1, beta = paper.cls_beta = 1, patterns of Gaussian gate vectors, ADMM penalty
paper.cls_rho = 0.1, float64) at the smoke size (n = 100, 10 features, 16 gates) and, with ``--full``, the full
size (n = 569, 30 features, 50 gates). pyscnn's ConvexReLU + AL solver supports only the squared loss, so each
problem is timed with the **squared loss** 0.5 ||yhat - y||^2 (all three solvers) and with the notebook's
**logistic loss** (cvxpy and ADMM only). The gate vectors are drawn like ``optrepro.convex_nn.sample_patterns``
(blocks of 64 N(0, I) directions from ``torch.Generator().manual_seed(seed)``), deduplicated by pattern; the same
gates go to pyscnn. (The notebook draws its patterns from a generator that earlier experiments have advanced, so
the patterns here are the same kind but not the notebook's exact ones.)

Measured, per problem and seed:

* ``cvxpy``: ``solve_cvxpy`` (Clarabel) wall time of ``problem.solve``; its value is the reference optimum p*.
* ``ADMM``: ``optrepro.convex_nn.admm`` stopped at the first iteration whose objective (at the group-sparse iterate
  z) has relative gap |f - p*| / p* <= 1e-3 and keeps it for the next 50 iterations; its time includes building
  and factorizing the u-step matrix.
* ``pyscnn``: ``scnn.optimize.optimize_model(ConvexReLU(G), AL(...), regularizer=NeuronGL1(beta / n),
  unitize_data=False, bias=False, dtype="float64", return_convex=True)``. pyscnn minimizes
  ``||yhat - y||^2 / (2n) + lam * sum_i (||v_i|| + ||w_i||)`` (ConvexMLP._objective divides the squared error by
  2 * n * c, c = 1; the group-L1 penalty is not divided), so with lam = beta / n its objective is exactly ours / n.
  It has no per-iteration callback, so its time to 1e-3 is measured by re-running from scratch with the AL
  tolerances tol = constraint_tol = 1e-3, 1e-4, ..., 1e-8 and taking the first (loosest) run whose returned
  weights reach gap <= 1e-3 under OUR objective, evaluated at its weights with the patterns of its returned gates;
  the cone-constraint violation max(0, -(2D_i - I)X v_i) of those weights is reported too. If no run reaches it,
  the tightest run's gap and time are reported.

    PYTHONPATH=/tmp/pyscnn_pkgs .venv/bin/python benchmarks/admm_vs_pyscnn.py          # smoke, seeds 0 1 2
    PYTHONPATH=/tmp/pyscnn_pkgs .venv/bin/python benchmarks/admm_vs_pyscnn.py --full   # and the full problem

pyscnn is optional: install it without its dependencies (they pull a CUDA torch) with
``pip install --no-deps --target DIR pyscnn linalg-backends opt_einsum`` and run with ``PYTHONPATH=DIR``.
Writes outputs/benchmarks/admm_vs_pyscnn.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from optrepro.convex_nn import admm, solve_cvxpy
from optrepro.data.binary_classification import breast_cancer
from optrepro.convex_nn.arrangements import _BLOCK
from optrepro.convex_nn.convex_program import cone_violation, convex_objective

GAP = 1e-3
SETTLE = 50                              # iterations the gap must stay below GAP (the notebook's rule)
BETA, RHO = 1.0, 0.1                     # conf/paper/convex-relu-admm.yaml: cls_beta, cls_rho
SIZES = {"smoke": (100, 10, 16), "full": (569, 30, 50)}   # cls_n, cls_features, cls_patterns
ADMM_ITERS = 20000                       # cls_iters (full); the run stops at the first 1e-3 gap
AL_TOLS = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
OUT = Path(__file__).resolve().parents[1] / "outputs" / "benchmarks" / "admm_vs_pyscnn.md"


def gates_and_patterns(X: torch.Tensor, num: int, seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """Gaussian gate vectors drawn as sample_patterns draws them; one gate per distinct nonzero pattern."""
    gen = torch.Generator().manual_seed(seed)
    U = torch.cat([torch.randn(_BLOCK, X.shape[1], generator=gen, dtype=torch.float64)
                   for _ in range(-(-num // _BLOCK))])[:num].T
    A = (X @ U >= 0).T                    # (num, n)
    seen, keep = set(), []
    for i, row in enumerate(A.numpy()):
        if row.any() and row.tobytes() not in seen:
            seen.add(row.tobytes())
            keep.append(i)
    return U[:, keep].numpy(), A[keep].contiguous()


def try_import_scnn():
    try:
        import scnn.optimize  # noqa: F401
        return True
    except Exception:  # noqa: BLE001 -- any import failure means "not available"
        return False


def run_pyscnn(X: torch.Tensor, y: torch.Tensor, G: np.ndarray, beta: float, ref: float):
    from scnn.metrics import Metrics
    from scnn.models import ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL

    Xn, yn = X.numpy(), y.numpy()
    n = len(yn)
    last = None
    for tol in AL_TOLS:
        model = ConvexReLU(G.copy(), c=1, bias=False)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, _ = optimize_model(model, AL(model, tol=tol, constraint_tol=tol), Metrics(objective=False,
                                      grad_norm=False, time=False), Xn, yn, regularizer=NeuronGL1(beta / n),
                                      return_convex=True, unitize_data=False, device="cpu",
                                      dtype="float64", verbose=False)
        seconds = time.perf_counter() - start
        V = torch.as_tensor(np.asarray(model.parameters[0]), dtype=torch.float64).reshape(-1, X.shape[1])
        W = torch.as_tensor(np.asarray(model.parameters[1]), dtype=torch.float64).reshape(-1, X.shape[1])
        Gr = torch.as_tensor(np.asarray(model.G), dtype=torch.float64)
        D = (X @ Gr >= 0).T.contiguous()
        obj = convex_objective(X, y, D, V, W, beta)
        last = dict(tol=tol, seconds=seconds, gap=abs(obj - ref) / abs(ref), viol=cone_violation(X, D, V, W),
                    patterns=int(D.shape[0]))
        if last["gap"] <= GAP:
            last["reached"] = True
            return last
    last["reached"] = False
    return last


def run_problem(size: str, seed: int, loss: str, have_scnn: bool) -> dict:
    n, feats, num = SIZES[size]
    X, y = breast_cancer(n, feats, seed=seed)
    G, D = gates_and_patterns(X, num, seed)
    ref = solve_cvxpy(X, y, D, BETA, loss)
    gap = lambda value: abs(value - ref.value) / abs(ref.value)
    # settled: the gap has stayed <= 1e-3 for SETTLE iterations (as the notebook's rule); a single crossing is not
    # enough, since ADMM's iterate z need not satisfy the cone constraints and its objective can pass p* from below
    stop = lambda r: len(r.objective) >= SETTLE and all(gap(v) <= GAP for v in r.objective[-SETTLE:])
    res = admm(X, y, D, BETA, rho=RHO, iters=ADMM_ITERS, loss=loss, stop=stop)
    admm_gap = gap(res.objective[-1])
    first = len(res.objective) - SETTLE if stop(res) else len(res.objective) - 1  # start of the settled window
    row = dict(problem=f"breast cancer {size} (n={n}, d={feats + 1}, P={len(D)}), {loss}", seed=seed,
               ref=ref.value, cvxpy=ref.seconds, admm=res.seconds[first], admm_iters=first + 1,
               admm_gap=admm_gap, admm_reached=admm_gap <= GAP, admm_viol=cone_violation(X, D, res.V, res.W))
    if loss == "squared" and have_scnn:
        row["py"] = run_pyscnn(X, y, G, BETA, ref.value)
    return row


def fmt_row(r: dict) -> str:
    admm_s = f"{r['admm']:.3f} ({r['admm_iters']} it)" + ("" if r["admm_reached"] else f", gap {r['admm_gap']:.1e}")
    cells = [r["problem"], str(r["seed"]), f"{r['ref']:.6f}", f"{r['cvxpy']:.3f}", admm_s,
             f"{r['admm_viol']:.1e}", f"{r['cvxpy'] / r['admm']:.2f}"]
    py = r.get("py")
    if py is None:
        cells += ["n/a (squared loss only)" if "logistic" in r["problem"] else "not installed", "", "", ""]
    else:
        s = f"{py['seconds']:.3f} (tol {py['tol']:.0e})"
        if not py["reached"]:
            s += f", final gap {py['gap']:.1e}"
        cells += [s, f"{py['gap']:.1e}", f"{py['viol']:.1e}", f"{py['seconds'] / r['admm']:.2f}"]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| problem | seed | p* (cvxpy) | cvxpy s | ADMM s to 1e-3 | ADMM cone viol. | cvxpy / ADMM | "
          "pyscnn s to 1e-3 | pyscnn gap | pyscnn cone viol. | pyscnn / ADMM |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="also the full profile's problem (n=569, 30 features, 50 gates)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)              # the notebook's smoke setting (paper.cpu_threads); cvxpy is single-threaded
    have_scnn = try_import_scnn()
    if not have_scnn:
        print("pyscnn not importable: its column is skipped. Install it without dependencies (they pull a CUDA torch): "
              "pip install --no-deps --target DIR pyscnn linalg-backends opt_einsum; then run with PYTHONPATH=DIR")
    sizes = ["smoke", "full"] if args.full else ["smoke"]
    rows = []
    for size in sizes:
        for loss in ("squared", "logistic"):
            for seed in (int(s) for s in args.seeds.split(",")):
                r = run_problem(size, seed, loss, have_scnn)
                rows.append(r)
                print(fmt_row(r), flush=True)
                if not args.no_write:
                    write(rows, args.full)   # after every row, so an interrupted run keeps what it measured
    if not args.no_write:
        print(f"wrote {OUT}")


def write(rows: list[dict], full: bool) -> None:
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), torch {torch.__version__}"
    text = [
        "# ADMM vs cvxpy vs pyscnn on the convex ReLU program (breast cancer)", "",
        f"Machine: {machine}; torch with 1 thread; float64; written by `benchmarks/admm_vs_pyscnn.py`"
        f"{' --full' if full else ''}. Timings are single runs on a CPU shared with other jobs (noisy).", "",
        __doc__.split("\n\n", 1)[1].split("\n    PYTHONPATH")[0].strip(), "",
        HEADER, *[fmt_row(r) for r in rows], "",
        "Columns: p* the cvxpy optimum of OUR objective; times in seconds; `cvxpy / ADMM` > 1 means ADMM reached "
        "a 1e-3 gap faster than cvxpy solved the program; `pyscnn / ADMM` > 1 means ADMM was faster. Cone "
        "violation: largest max(0, -[(2D_i - I)X v_i]_j) of the returned weights (ADMM: its iterate z).",
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
