"""Time optrepro's log-domain Sinkhorn against POT's on the same problems and the same device (issue 5).

For each n, two uniform clouds of n points in [0, 1]^2, squared-Euclidean cost, uniform weights, eps = 0.05,
float64, and a fixed number of iterations with no convergence test on either side (POT checks its error every
10 iterations; ours not at all), one timed run after one small warm-up. Compared:

* ``pot_log``:   ``ot.bregman.sinkhorn_log`` -- the same log-domain algorithm (numpy on CPU; torch backend on CUDA);
* ``pot_scaling``: ``ot.sinkhorn`` -- POT's default scaling-domain Sinkhorn (faster per iteration, but it
  under/overflows at small eps: shown for reference);
* ``ours``:      ``optrepro.ot.sinkhorn(..., record=False)``.

Reported: seconds per iteration, the ratio POT / ours (> 1: ours faster), the largest plan difference to POT's
log-domain plan, and the effective memory traffic of ours in GB/s (two passes over the n x n cost per iteration,
8 bytes per entry) beside the device's peak bandwidth when known (GPU) or a measured large-copy bandwidth (CPU).

    python benchmarks/sinkhorn_vs_pot.py                      # CPU, n = 100 ... 10000
    python benchmarks/sinkhorn_vs_pot.py --device cuda        # GPU (POT's torch backend on the same GPU)
    python benchmarks/sinkhorn_vs_pot.py --sizes 100,1000     # a quick look

Writes outputs/benchmarks/sinkhorn_vs_pot_<device>.md (a table) and .csv next to it.
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import ot
import torch

from optrepro.ot import sinkhorn

PEAK_GBPS = {"H100": 3350.0, "H200": 4800.0, "A100": 2039.0}  # HBM peak, GB/s (vendor data sheets)


def iterations_for(n: int) -> int:
    return 200 if n <= 1000 else 50 if n <= 3000 else 20


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def peak_bandwidth(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in PEAK_GBPS.items():
            if key in name:
                return value, f"{name} peak (data sheet)"
        return float("nan"), f"{name} (peak unknown)"
    x = torch.empty(2 ** 25, dtype=torch.float64)  # 256 MiB, far beyond the caches: a read and a write per copy
    y = torch.empty_like(x)
    y.copy_(x)
    start = time.perf_counter()
    for _ in range(3):
        y.copy_(x)
    seconds = (time.perf_counter() - start) / 3
    return 2 * x.numel() * 8 / seconds / 1e9, "measured large copy (read + write)"


def problem(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    M = ot.dist(x, y)
    a = np.full(n, 1.0 / n)
    return a, M


def bench(n: int, eps: float, device: torch.device) -> dict:
    iters = iterations_for(n)
    a_np, M_np = problem(n)
    a, M = torch.from_numpy(a_np).to(device), torch.from_numpy(M_np).to(device)
    if device.type == "cuda":  # POT's torch backend on the same GPU
        pot_a, pot_M = a, M
    else:
        pot_a, pot_M = a_np, M_np
    ours = lambda k: sinkhorn(a, a, M, eps, max_iter=k, record=False)
    pot_log = lambda k: ot.bregman.sinkhorn_log(pot_a, pot_a, pot_M, eps, numItermax=k, stopThr=0.0)
    pot_scaling = lambda k: ot.sinkhorn(pot_a, pot_a, pot_M, eps, numItermax=k, stopThr=0.0, warn=False)
    for fn in (ours, pot_log, pot_scaling):  # warm-up (kernels, allocator, imports)
        fn(2)
    t_ours, res = timed(lambda: ours(iters), device)
    t_log, P_log = timed(lambda: pot_log(iters), device)
    t_scaling, _ = timed(lambda: pot_scaling(iters), device)
    P_log = torch.as_tensor(P_log).to(device)
    bytes_moved = 2 * n * n * 8 * iters
    return {"n": n, "iterations": iters,
            "ours_s_per_iter": t_ours / iters, "pot_log_s_per_iter": t_log / iters,
            "pot_scaling_s_per_iter": t_scaling / iters,
            "ratio_pot_log_over_ours": t_log / t_ours, "ratio_pot_scaling_over_ours": t_scaling / t_ours,
            "max_plan_diff_vs_pot_log": float((res.plan - P_log).abs().max()),
            "ours_GBps": bytes_moved / t_ours / 1e9}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--sizes", default="100,300,1000,3000,10000", help="comma-separated n")
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--out", default="outputs/benchmarks")
    args = parser.parse_args(argv)
    if args.device not in ("cpu", "cuda"):
        parser.error(f"invalid --device {args.device!r}: expected one of cpu, cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("invalid --device 'cuda': no CUDA device is available here; expected cpu")
    device = torch.device(args.device)
    warnings.filterwarnings("ignore", message="Sinkhorn did not converge")  # fixed iteration counts, on purpose
    sizes = [int(s) for s in args.sizes.split(",")]
    peak, peak_what = peak_bandwidth(device)
    rows = []
    for n in sizes:
        row = bench(n, args.eps, device)
        row["bandwidth_fraction"] = row["ours_GBps"] / peak
        rows.append(row)
        print(f"n={n:6d}  ours {row['ours_s_per_iter'] * 1e3:9.3f} ms/it  POT log {row['pot_log_s_per_iter'] * 1e3:9.3f}"
              f"  POT scaling {row['pot_scaling_s_per_iter'] * 1e3:9.3f}  ratio(log) {row['ratio_pot_log_over_ours']:.2f}"
              f"  {row['ours_GBps']:.1f} GB/s", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"sinkhorn_vs_pot_{args.device}"
    with open(stem.with_suffix(".csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    lines = [f"# Sinkhorn: optrepro vs POT {ot.__version__} on {args.device} ({name})", "",
             f"eps = {args.eps}, float64, uniform clouds in [0,1]^2, fixed iterations, one timed run each; torch "
             f"{torch.__version__}. Bandwidth reference: {peak:.0f} GB/s ({peak_what}).", "",
             "| n | iters | ours ms/it | POT log ms/it | POT scaling ms/it | POT log / ours | POT scaling / ours "
             "| max plan diff | ours GB/s | of reference |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['iterations']} | {r['ours_s_per_iter'] * 1e3:.3f} | {r['pot_log_s_per_iter'] * 1e3:.3f} "
                     f"| {r['pot_scaling_s_per_iter'] * 1e3:.3f} | {r['ratio_pot_log_over_ours']:.2f} "
                     f"| {r['ratio_pot_scaling_over_ours']:.2f} | {r['max_plan_diff_vs_pot_log']:.1e} "
                     f"| {r['ours_GBps']:.1f} | {100 * r['bandwidth_fraction']:.0f}% |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
