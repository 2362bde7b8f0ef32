"""The batch runner behind ``optrepro run``: a Hydra app that executes papers' notebooks with papermill.

One *job* is one paper with one set of overrides. Its folder, ``<out_dir>/runs/<batch>/<paper>/<overrides>``, holds
the executed notebook, ``config.yaml`` (the resolved config), ``record.json`` (claims with measured values,
thresholds and verdicts, wall time, device, versions, git commit) and the figures. Several jobs (``-m``, ``--all``)
go through a Hydra launcher: joblib on one machine by default, submitit (SLURM) or Ray on clusters.

* A failing notebook does not stop the others; its executed notebook and record are kept, and the command exits 1.
* A job whose record is complete for the same notebook content, resolved config and library is skipped unless
  ``force=true``. Records are written atomically, so an interrupted batch loses no completed result.
* Each finished job drops a line into a *ledger* folder; the launching process counts them for the progress bar
  and the exit status, whichever launcher ran the jobs.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .. import __version__
from .config import (ConfigError, check_overrides, conf_dir, expand_sweep, finalize, identity, paper_names,
                     parse_overrides, project_root, resolve_path)
from .record import RECORD_NAME, read_json, write_json_atomic

CONFIG_NAME = "config.yaml"
LEDGER_ENV = "OPTREPRO_LEDGER"
COMPLETE = ("passed", "failed")  # statuses of a record whose claims were all evaluated
#: overrides that steer the runner and are not passed on to the notebook
RUNNER_ONLY = ("paper", "batch", "force")
#: the kernel's own log (e.g. "Kernel is running over TCP without encryption", once per job) stays out of the
#: runner's output; the notebook's outputs and errors still reach the executed notebook and the record
KERNEL_QUIET = ["--IPKernelApp.log_level=CRITICAL"]


# --------------------------------------------------------------------------------------------- fingerprints

def notebook_path(slug: str) -> Path:
    path = project_root() / "notebooks" / f"{slug}.ipynb"
    if not path.is_file():
        raise ConfigError(f"paper {slug!r} has a config but no notebook notebooks/{slug}.ipynb")
    return path


def notebook_digest(path: Path) -> str:
    """Hash of a notebook's cells (type, source, tags), not its outputs: re-executing it changes nothing."""
    nb = json.loads(path.read_text())
    cells = [(c.get("cell_type"), "".join(c.get("source", "")), sorted(c.get("metadata", {}).get("tags", [])))
             for c in nb.get("cells", [])]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()[:16]


def library_digest() -> str:
    """The library's version and a hash of its sources (an edited algorithm invalidates old records)."""
    package = Path(__file__).resolve().parents[1]  # the whole optrepro package
    h = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode())
        h.update(path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def fingerprint(slug: str, cfg: DictConfig) -> dict:
    config_hash = hashlib.sha256(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()[:16]
    return {"notebook": notebook_digest(notebook_path(slug)), "config": config_hash, "library": library_digest()}


# --------------------------------------------------------------------------------------------- one job

def quote(text: str) -> str:
    """A string as a quoted Hydra override value (a path may hold '=', ',' or spaces)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def execute_job(slug: str, cfg: DictConfig, overrides: list[str], job_dir: Path, force: bool = False) -> dict:
    """Run (or skip) one paper's notebook into ``job_dir``; return the record (with ``status``)."""
    import logging

    import papermill
    from papermill.exceptions import PapermillExecutionError

    logging.getLogger("papermill").setLevel(logging.ERROR)  # its notes on parsing the parameters cell are noise here

    job_dir.mkdir(parents=True, exist_ok=True)
    record_path = job_dir / RECORD_NAME
    fp = fingerprint(slug, cfg)
    old = read_json(record_path)
    if not force and old and old.get("status") in COMPLETE and old.get("fingerprint") == fp:
        return {**old, "skipped": True}
    if old is not None:
        record_path.unlink()  # superseded: it must not pass for this run's record
    OmegaConf.save(cfg, job_dir / CONFIG_NAME, resolve=True)

    source = notebook_path(slug)
    executed = job_dir / f"{slug}.ipynb"
    params = {"overrides": [*overrides, f"run_dir={quote(str(job_dir))}"]}
    started, error = time.time(), None
    try:
        papermill.execute_notebook(str(source), str(executed), parameters=params, cwd=str(source.parent),
                                   progress_bar=False, log_output=False, extra_arguments=KERNEL_QUIET)
    except PapermillExecutionError as e:
        error = f"{e.ename}: {e.evalue}".strip()
    except Exception as e:  # a kernel that died, an unreadable notebook...: the job fails, the batch goes on
        error = f"{type(e).__name__}: {e}".strip()
    wall = time.time() - started

    record = read_json(record_path)
    if record is None:
        status = "error"
        error = error or "the notebook finished without writing a record (did it call run.finish(claims)?)"
        record = {"paper": slug, "profile": cfg.profile, "seed": cfg.seed, "claims": []}
    elif record.get("verdict") == "fail":
        status = "failed"
    elif error:
        status = "error"
    elif record.get("identity") != identity(cfg):
        status, error = "error", "the notebook composed a different config than the runner"
    else:
        status = "passed"
    record.update(status=status, error=error, fingerprint=fp, runner={
        "wall_time_s": round(wall, 3),
        "notebook": executed.name,
        "overrides": params["overrides"],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    write_json_atomic(record_path, record)
    return {**record, "skipped": False}


def _ledger_write(result: dict, job_dir: Path) -> None:
    ledger = os.environ.get(LEDGER_ENV)
    if not ledger:
        return
    entry = {"paper": result.get("paper"), "status": result.get("status"), "skipped": result.get("skipped", False),
             "error": result.get("error"), "job_dir": str(job_dir),
             "wall_time_s": (result.get("runner") or {}).get("wall_time_s")}
    write_json_atomic(Path(ledger) / f"{uuid.uuid4().hex}.json", entry)


def hydra_task(cfg: DictConfig) -> str:
    """The Hydra task function: one job. Never raises, so one failure cannot stop a batch."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    slug = hc.runtime.choices["paper"]
    job_dir = Path(hc.runtime.output_dir)
    try:
        final = finalize(cfg, slug)
        overrides = [o for o in hc.overrides.task if o.split("=", 1)[0].lstrip("+~") not in RUNNER_ONLY]
        result = execute_job(slug, final, overrides, job_dir, force=bool(final.force))
    except Exception as e:
        result = {"paper": slug, "status": "error", "error": f"{type(e).__name__}: {e}", "skipped": False}
        traceback.print_exc()
    _ledger_write(result, job_dir)
    return str(result["status"])


# --------------------------------------------------------------------------------------------- the batch

def _register_resolvers() -> None:
    OmegaConf.register_new_resolver("optrepro.path", lambda p: str(resolve_path(p)), replace=True)
    OmegaConf.register_new_resolver("optrepro.job_tag", lambda s: str(s).replace("/", "_") or "default", replace=True)


class Progress:
    """A progress bar over the ledger folder: jobs done, failed and remaining."""

    def __init__(self, ledger: Path, total: int, enabled: bool = True):
        self.ledger, self.total, self.enabled = ledger, total, enabled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def entries(self) -> list[dict]:
        return [e for e in (read_json(p) for p in sorted(self.ledger.glob("*.json"))) if e]

    def _loop(self) -> None:
        from tqdm import tqdm
        with tqdm(total=self.total, unit="job", file=sys.stderr, mininterval=1.0, dynamic_ncols=True) as bar:
            while True:
                stopping = self._stop.wait(0.5)
                entries = self.entries()
                failed = sum(e["status"] not in ("passed",) for e in entries)
                bar.n = len(entries)
                bar.set_postfix_str(f"passed {len(entries) - failed}, failed {failed}, remaining {self.total - len(entries)}",
                                    refresh=False)
                bar.refresh()
                if stopping:
                    return

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._thread.join()


def _split_args(args: list[str]) -> tuple[bool, list[str], list[str]]:
    """(multirun, Hydra flags, overrides) from the command line; ``--all`` means ``-m paper=glob(*)``."""
    multirun, flags, overrides = False, [], []
    for a in args:
        if a in ("-m", "--multirun"):
            multirun = True
        elif a == "--all":
            multirun = True
            overrides.append("paper=glob(*)")
        elif a.startswith("-"):
            flags.append(a)
        else:
            overrides.append(a)
    return multirun, flags, overrides


def _explicit_papers(overrides: list[str]) -> list[str]:
    """Replace a ``paper=glob(...)`` sweep by the explicit list, so that Hydra runs the jobs we counted."""
    from hydra.core.override_parser.types import ValueType
    out = []
    for text, o in zip(overrides, parse_overrides(overrides)):
        if o.get_key_element() == "paper" and o.value_type == ValueType.GLOB_CHOICE_SWEEP:
            text = "paper=" + ",".join(o.value().filter(paper_names()))
        out.append(text)
    return out


def check_device_available(device: str) -> None:
    """Refuse, before anything is written, a device this machine does not have (``device=cuda`` without CUDA)."""
    if device in ("auto", "cpu"):
        return
    from .session import pick_device  # imports torch: only when a device is named
    pick_device(device)


def _launch(hydra_args: list[str]) -> int:
    import hydra
    saved = sys.argv
    sys.argv = ["optrepro run", *hydra_args]
    try:
        hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(hydra_task)()
        return 0
    except SystemExit as e:
        return int(e.code or 0)
    finally:
        sys.argv = saved


def run_batch(args: list[str], progress: bool = True) -> int:
    """``optrepro run ARGS``: validate every job first (exit 2, nothing written), run them, report, exit 0/1."""
    from .report import write_report

    multirun, flags, overrides = _split_args(args)
    _register_resolvers()
    if flags:  # --cfg, --info, --help ...: Hydra's own inspection commands
        return _launch(flags + (["-m"] if multirun else []) + overrides)
    jobs = expand_sweep(overrides)
    multirun = multirun or len(jobs) > 1
    out_dirs = set()
    for job in jobs:
        values = check_overrides(job)
        notebook_path(values["paper"])
        check_device_available(values.get("device", OmegaConf.load(conf_dir() / "config.yaml").device))
        out_dirs.add(values.get("out_dir", OmegaConf.load(conf_dir() / "config.yaml").out_dir))
    if len(out_dirs) > 1:
        raise ConfigError(f"one batch writes to one out_dir, not {sorted(out_dirs)}")
    hydra_overrides = _explicit_papers(overrides)

    ledger = resolve_path(out_dirs.pop()) / ".ledger" / uuid.uuid4().hex
    ledger.mkdir(parents=True)
    # each job sets the variable itself (launchers may reuse worker processes started for an earlier batch)
    ledger_override = f"++hydra.job.env_set.{LEDGER_ENV}={quote(str(ledger))}"
    try:
        monitor = Progress(ledger, total=len(jobs), enabled=progress and multirun)
        with monitor:
            code = _launch((["-m"] if multirun else []) + hydra_overrides + [ledger_override])
        entries = monitor.entries()
    finally:
        shutil.rmtree(ledger, ignore_errors=True)

    for e in sorted(entries, key=lambda e: e["job_dir"]):
        mark = {"passed": "PASS", "failed": "FAIL"}.get(e["status"], "ERROR")
        how = "skipped, up to date" if e.get("skipped") else f"{e.get('wall_time_s') or 0:.1f} s"
        print(f"{mark:5} {e['paper']}  ({how})  {e['job_dir']}" + (f"\n      {e['error']}" if e.get("error") else ""))
    batches = {Path(e["job_dir"]).parent.parent for e in entries}
    for batch in sorted(batches):
        md, html = write_report(batch)
        print(f"report: {html}")
    bad = [e for e in entries if e["status"] != "passed"]
    missing = len(jobs) - len(entries)
    if missing:
        print(f"{missing} job(s) reported no result (launcher exit status {code})", file=sys.stderr)
    print(f"{len(entries) - len(bad)} passed, {len(bad) + missing} failed")
    return 0 if not bad and not missing and code == 0 else 1
