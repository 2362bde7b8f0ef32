"""The README's benchmark command runs and writes its table (a smoke test of the script, not a timing test)."""
import csv
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "sinkhorn_vs_pot.py"


def _load():
    spec = importlib.util.spec_from_file_location("sinkhorn_vs_pot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sinkhorn_benchmark_writes_table_and_agrees_with_pot(tmp_path):
    _load().main(["--sizes", "40,60", "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "sinkhorn_vs_pot_cpu.csv")))
    assert [int(r["n"]) for r in rows] == [40, 60]
    assert all(float(r["max_plan_diff_vs_pot_log"]) < 1e-10 for r in rows)  # same algorithm, same plan
    assert all(float(r["ours_s_per_iter"]) > 0 for r in rows)
    assert "| 40 | 200 |" in (tmp_path / "sinkhorn_vs_pot_cpu.md").read_text()


def test_sinkhorn_benchmark_rejects_a_bad_device(capsys):
    with pytest.raises(SystemExit):
        _load().main(["--device", "tpu"])
    assert "invalid --device 'tpu': expected one of cpu, cuda" in capsys.readouterr().err
