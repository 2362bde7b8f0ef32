"""The batch runner on a throwaway project: records, failures, resume, launchers, reports."""
import json
import os
import subprocess
import sys

import nbformat
import pytest

from conftest import probe_notebook
from optrepro.core.config import compose, identity
from optrepro.core.record import read_json, write_json_atomic
from optrepro.core.report import write_report
from optrepro.core.runner import run_batch


def jobs_of(project):
    return {p.parent.name: read_json(p) for p in (project / "outputs" / "runs").rglob("record.json")}


def test_one_paper_run_writes_notebook_config_record_and_figure(project):
    assert run_batch(["paper=probe", "seed=1"], progress=False) == 0
    job = project / "outputs" / "runs" / "smoke" / "probe" / "seed=1"
    record = read_json(job / "record.json")
    assert record["status"] == "passed" and record["verdict"] == "pass"
    claim = record["claims"][0]
    assert (claim["id"], claim["measured"], claim["op"], claim["threshold"], claim["verdict"]) == \
        ("x-small", 1.0, "<", 1.5, "PASS")
    assert record["seed"] == 1 and record["device"] == "cpu" and record["wall_time_s"] > 0
    assert record["runner"]["wall_time_s"] >= record["wall_time_s"]
    assert {"python", "torch", "optrepro", "hydra-core"} <= set(record["versions"])
    assert "git_commit" in record and record["fingerprint"]["notebook"]
    assert (job / "probe.ipynb").exists() and (job / "config.yaml").exists() and (job / "line.png").exists()
    executed = nbformat.read(job / "probe.ipynb", as_version=4)
    assert "PASS  x-small" in "".join(o.get("text", "") for o in executed.cells[-1].outputs)


def test_notebook_and_runner_compose_the_same_config(project):
    overrides = ["paper=probe", "seed=2", "profile=full", "paper.limit=9.5"]
    assert run_batch(overrides, progress=False) == 0
    (record,) = jobs_of(project).values()
    assert record["identity"] == identity(compose("probe", overrides))
    assert record["config"]["paper"] == {"slug": "probe", "x": 2.0, "limit": 9.5, "crash": False}


def test_a_failing_and_a_crashing_notebook_do_not_stop_the_batch(project, capsys):
    code = run_batch(["-m", "paper=probe", "paper.x=1.0,3.0", "paper.crash=false,true"], progress=False)
    assert code == 1
    records = jobs_of(project)
    assert len(records) == 4
    status = {name.lower(): r["status"] for name, r in records.items()}  # Hydra writes booleans as True/False
    assert status["paper.crash=false,paper.x=1.0"] == "passed"
    assert status["paper.crash=false,paper.x=3.0"] == "failed"
    assert status["paper.crash=true,paper.x=1.0"] == "error"
    assert all("crashed on purpose" in r["error"] for r in records.values() if r["status"] == "error")
    for name in records:  # the executed notebook is kept, with the error in it
        assert (project / "outputs" / "runs" / "smoke" / "probe" / name / "probe.ipynb").exists()
    report = (project / "outputs" / "runs" / "smoke" / "report.md").read_text()
    assert "4 runs: 1 passed, 1 failed, 2 errors" in report
    assert "| probe | probe/paper.crash=True,paper.x=3.0 | ERROR | failed | - | - |" in report  # crashed before its claims
    assert "| probe | probe/paper.crash=False,paper.x=1.0 | PASS | unverified | - | 1/1 claims (no kinds) |" in report
    assert "1 passed, 3 failed" in capsys.readouterr().out


def test_rerun_skips_complete_records_unless_forced_or_changed(project, capsys):
    args = ["-m", "paper=probe", "paper.x=1.0,3.0"]
    assert run_batch(args, progress=False) == 1  # one pass, one claim failure
    before = {n: r["runner"]["finished_at"] for n, r in jobs_of(project).items()}
    mtimes = {p: p.stat().st_mtime_ns for p in (project / "outputs").rglob("record.json")}
    capsys.readouterr()
    assert run_batch(args, progress=False) == 1  # the failure is still a failure, but nothing re-ran
    assert "skipped, up to date" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert run_batch(args + ["force=true"], progress=False) == 1
    assert all(p.stat().st_mtime_ns != m for p, m in mtimes.items())
    # a changed notebook invalidates its records
    mtimes = {p: p.stat().st_mtime_ns for p in (project / "outputs").rglob("record.json")}
    nb = probe_notebook()
    nb.cells[0].source = "# probe, edited"
    nbformat.write(nb, project / "notebooks" / "probe.ipynb")
    run_batch(args, progress=False)
    assert all(p.stat().st_mtime_ns != m for p, m in mtimes.items())
    assert before.keys() == jobs_of(project).keys()


def test_atomic_record_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    write_json_atomic(path, {"status": "passed"})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(path, {"status": "half"})
    monkeypatch.undo()
    assert read_json(path) == {"status": "passed"}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_atomic_record_write_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "record.json", {"status": "passed"})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_submitit_local_launcher_runs_the_jobs(project):
    code = run_batch(["-m", "hydra/launcher=submitit_local", "paper=probe", "seed=0,1"], progress=False)
    assert code == 0
    assert sorted(jobs_of(project)) == ["seed=0", "seed=1"]
    assert (project / "outputs" / "runs" / "smoke" / ".submitit").is_dir()


def test_report_is_self_contained_with_links_to_notebooks(project):
    assert run_batch(["paper=probe"], progress=False) == 0
    md, page = write_report(project / "outputs" / "runs" / "smoke")
    text = page.read_text()
    assert "data:image/png;base64," in text and "<img" in text
    assert "src='http" not in text and "<link" not in text and "<script" not in text
    assert "href='probe/default/probe.ipynb'" in text
    assert (md.parent / "probe" / "default" / "probe.ipynb").exists()
    assert "| probe | probe/default | PASS | unverified | - | 1/1 claims (no kinds) |" in md.read_text()
    assert "<tr class='unverified'>" in text


def cli(project, *args):
    env = {**os.environ, "OPTREPRO_ROOT": str(project)}
    return subprocess.run([sys.executable, "-m", "optrepro.core.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("args,mentions", [
    (["paper=prboe"], "closest: probe"),
    (["paper=probe", "profile=huge"], "unknown profile 'huge'"),
    (["paper=probe", "paper.limt=2"], "did you mean paper.limit"),
    (["paper=probe", "paper.limit=high"], "invalid value 'high' for paper.limit"),
    (["paper=probe", "sed=1"], "did you mean seed"),
    (["-m", "paper=probe,nope"], "unknown paper 'nope'"),
    (["seed=1"], "no paper given"),
    (["paper=probe", "device=cuda:7"], "device=cuda:7"),  # no machine here has 8 GPUs: refused before it runs
    (["verify", "probe", "seed=3"], "give them with --seeds"),
    (["verify", "probe"], "pre-registers no claims"),
    (["verify", "probe", "profile=huge"], "unknown profile 'huge'"),
])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(project, args, mentions):
    result = cli(project, *args) if args[0] == "verify" else cli(project, "run", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and mentions in result.stderr
    assert not (project / "outputs").exists()


def test_cli_runs_a_paper_and_exits_0(project):
    result = cli(project, "run", "paper=probe")
    assert result.returncode == 0, result.stderr
    assert "PASS  probe" in result.stdout
    assert cli(project, "report", str(project / "nowhere")).returncode == 2
    assert cli(project, "report", str(project / "outputs" / "runs" / "smoke")).returncode == 0


def test_a_v2_run_row_is_coloured_by_the_status_its_claims_give(tmp_path):
    from optrepro.core.record import write_json_atomic
    claims = [{"id": "c", "kind": "central", "statement": "s", "op": "<", "threshold": 1.0, "measured": 2.0,
               "control": 3.0, "verdict": "NOT-REPRODUCED", "paper_value": None}]
    write_json_atomic(tmp_path / "p" / "default" / "record.json",
                      {"paper": "p", "status": "passed", "claims": claims, "scope": "reduced"})
    md, page = write_report(tmp_path)
    assert "<tr class='not-reproduced'>" in page.read_text()  # not a green row
    assert "| p | p/default | PASS | not-reproduced | reduced | central 0/1, supporting 0/0 |" in md.read_text()


def test_a_claim_without_a_possible_control_shows_why_in_the_report(tmp_path):
    from optrepro.core.record import write_json_atomic
    claims = [{"id": "c", "kind": "central", "statement": "s", "op": "<", "threshold": 1.0, "measured": 0.5,
               "control": None, "control_what": "none: the paper's constant is a theorem", "verdict": "PASS",
               "paper_value": None}]
    write_json_atomic(tmp_path / "p" / "default" / "record.json", {"paper": "p", "status": "passed", "claims": claims})
    md, page = write_report(tmp_path)
    assert "| none: the paper's constant is a theorem |" in md.read_text()
    assert "none: the paper&#x27;s constant is a theorem" in page.read_text()
