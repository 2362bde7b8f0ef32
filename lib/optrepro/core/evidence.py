"""Evidence: a notebook run on its claim seeds, and the catalog status derived from it (contract version 2).

``optrepro verify <slug>... [profile=full]`` executes each notebook on seeds 0-4 (through the batch runner's job
function, two at a time), and writes ``outputs/evidence/<slug>.json`` (committed). Per profile it holds, for every
claim, its spec (id, kind, statement, source, paper value, comparison, threshold and where it comes from, the
control) and per seed the measured value, the control's value and the verdict; the claim's verdict over the seeds;
the notebook's status; the scope, seeds, git commit, library versions and wall times.

Over the seeds a claim keeps its verdict only when every seed gives it; a FAIL or UNEXPECTED-PASS on any seed is the
claim's verdict; seeds that disagree otherwise make it INCONCLUSIVE ("seeds disagree"). The status follows
:func:`optrepro.core.claims.status_from_verdicts`. The catalog's ``status``, ``scope`` and ``full_status`` columns are
written from the evidence by :func:`sync_catalog`, never by hand; a test fails when they disagree.
"""
from __future__ import annotations

import datetime as _dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from .claims import FAILING, claims_status
from .config import ConfigError, check_overrides, compose, project_root
from .contract import has_contract, load_scope, load_specs
from .record import git_commit, library_versions, read_json, write_json_atomic

CLAIM_SEEDS = (0, 1, 2, 3, 4)
PROFILES = ("smoke", "full")


def evidence_dir() -> Path:
    return project_root() / "outputs" / "evidence"


def evidence_path(slug: str) -> Path:
    return evidence_dir() / f"{slug}.json"


def load_evidence(slug: str) -> dict | None:
    """The committed evidence of a paper, or None."""
    return read_json(evidence_path(slug))


def spec_records(slug: str, profile: str) -> list[dict]:
    """The specs as the evidence stores them (a test compares them with the YAML's, so an edit shows)."""
    return [asdict(s) for s in load_specs(slug, profile)]


def aggregate(verdicts: list[str]) -> tuple[str, str]:
    """(verdict, reason) of one claim over its seeds."""
    for failing in FAILING:
        if failing in verdicts:
            return failing, f"{failing} on some seed"
    if len(set(verdicts)) == 1:
        return verdicts[0], ""
    return "INCONCLUSIVE", "seeds disagree: " + ", ".join(sorted(set(verdicts)))


def build_profile_entry(slug: str, profile: str, records: dict[int, dict], wall: dict[int, float]) -> dict:
    """The evidence of one profile from the run records of the claim seeds (``{seed: record}``)."""
    specs = spec_records(slug, profile)
    claims = []
    for spec in specs:
        per_seed = {}
        for seed, record in sorted(records.items()):
            c = next((c for c in record.get("claims", []) if c["id"] == spec["id"]), None)
            per_seed[str(seed)] = ({"measured": None, "control": None, "verdict": "FAIL", "reason": "no record"}
                                   if c is None else
                                   {"measured": c["measured"], "values": c["values"], "control": c.get("control"),
                                    "control_values": c.get("control_values"), "verdict": c["verdict"],
                                    "reason": c.get("reason", "")})
        verdict, reason = aggregate([s["verdict"] for s in per_seed.values()])
        claims.append({**spec, "seeds": per_seed, "verdict": verdict, "reason": reason})
    central = [c["verdict"] for c in claims if c["kind"] == "central"]
    counts = {k: [sum(c["verdict"] == "PASS" for c in claims if c["kind"] == k),
                  sum(c["kind"] == k for c in claims)] for k in ("central", "supporting", "sanity")}
    return {
        "profile": profile,
        "scope": load_scope(slug, profile),
        "seeds": sorted(records),
        "status": claims_status(claims),
        "verdict": "pass" if all(c["verdict"] not in FAILING for c in claims) else "fail",
        "counts": counts,
        "central_verdicts": central,
        "claims": claims,
        "git_commit": git_commit(project_root()),
        "versions": library_versions(),
        "devices": sorted({str(r.get("device")) for r in records.values()}),
        "wall_time_s": {str(s): round(w, 2) for s, w in sorted(wall.items())},
        "written_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_evidence(slug: str, entry: dict) -> Path:
    """Put one profile's entry into the paper's evidence file (the other profile's entry is kept)."""
    path = evidence_path(slug)
    data = read_json(path) or {"paper": slug, "contract": 2, "profiles": {}}
    data["profiles"][entry["profile"]] = entry
    return write_json_atomic(path, data)


# --------------------------------------------------------------------------------------------- the command

def _run_seed(slug: str, seed: int, cfg, overrides: list[str], out: Path, log) -> tuple[int, dict | None, float]:
    from .runner import execute_job
    started = time.time()
    record = execute_job(slug, cfg, overrides, out / slug / f"seed={seed}", force=True)
    wall = time.time() - started
    log(f"  {slug} seed {seed}: {record.get('status')} in {wall:.1f} s  ({out / slug / f'seed={seed}'})")
    return seed, record, wall


def verify(slugs: list[str], profile: str = "smoke", seeds: tuple[int, ...] = CLAIM_SEEDS, jobs: int = 2,
           extra: list[str] | None = None, log=print) -> int:
    """Run each paper's notebook on the claim seeds, write its evidence, sync the catalog; 0 when nothing FAILs."""
    extra = list(extra or [])
    for slug in slugs:
        if not has_contract(slug):
            raise ConfigError(f"paper {slug!r} pre-registers no claims (conf/paper/{slug}.yaml has no claims:): "
                              "convert it to contract version 2 first")
        load_specs(slug, profile)
        check_overrides([f"paper={slug}", f"profile={profile}", *extra])
    out = project_root() / "outputs" / "runs" / f"verify-{profile}"
    code = 0
    for slug in slugs:
        jobs_of = {s: [f"seed={s}", f"profile={profile}", *extra] for s in seeds}
        cfgs = {s: compose(slug, o) for s, o in jobs_of.items()}  # Hydra's global state: compose in this thread
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(lambda s: _run_seed(slug, s, cfgs[s], jobs_of[s], out, log), seeds))  # noqa: B023
        records = {seed: rec for seed, rec, _ in results if rec is not None}
        wall = {seed: w for seed, _, w in results}
        errors = [f"seed {seed}: {rec.get('error')}" for seed, rec, _ in results
                  if rec is not None and rec.get("status") == "error"]
        entry = build_profile_entry(slug, profile, records, wall)
        if errors:
            entry["errors"] = errors
            entry["verdict"] = "fail"
        path = write_evidence(slug, entry)
        log(f"{slug} [{profile}]: status {entry['status']}, central {entry['counts']['central'][0]}/"
            f"{entry['counts']['central'][1]}, supporting {entry['counts']['supporting'][0]}/"
            f"{entry['counts']['supporting'][1]} PASS on seeds {entry['seeds']}  -> {path.relative_to(project_root())}")
        for c in entry["claims"]:
            log(f"  {c['verdict']:<15} {c['kind']:<10} {c['id']}" + (f"  ({c['reason']})" if c["reason"] else ""))
        for e in errors:
            log(f"  ERROR {e}")
        if entry["verdict"] == "fail":
            code = 1
    sync_catalog(log=log)
    return code


# --------------------------------------------------------------------------------------------- catalog status

def derived_columns(slug: str, has_notebook: bool) -> dict[str, str]:
    """The catalog's status, scope, full_status (from the evidence) and lib_components (from the notebook's imports)
    of one paper; a paper without a notebook keeps its planned lib_components."""
    if not has_notebook:
        return {"status": "planned", "scope": "", "full_status": ""}
    from .catalog import notebook_components
    evidence = load_evidence(slug) if has_contract(slug) else None
    profiles = (evidence or {}).get("profiles", {})
    smoke, full = profiles.get("smoke"), profiles.get("full")
    return {"status": smoke["status"] if smoke else "unverified",
            "scope": str(smoke.get("scope") or "") if smoke else "",
            "full_status": full["status"] if full else "",
            "lib_components": notebook_components(project_root() / "notebooks" / f"{slug}.ipynb")}


def catalog_differences(rows: list[dict]) -> list[str]:
    """Lines naming every catalog cell that disagrees with the evidence."""
    root = project_root()
    out = []
    for r in rows:
        has_nb = (root / "notebooks" / f"{r['slug']}.ipynb").is_file()
        for key, value in derived_columns(r["slug"], has_nb).items():
            if r.get(key, "") != value:
                out.append(f"{r['slug']}: {key} is {r.get(key, '')!r} in the catalog, {value!r} derived (evidence, notebook imports)")
    return out


def sync_catalog(log=print) -> int:
    """Write the derived columns into ``conf/catalog.tsv`` and the README's coverage; return the cells changed."""
    from .catalog import load_catalog, save_catalog, update_readme
    rows = load_catalog(check_status=False)
    changed = catalog_differences(rows)
    root = project_root()
    for r in rows:
        r.update(derived_columns(r["slug"], (root / "notebooks" / f"{r['slug']}.ipynb").is_file()))
        if (root / "notebooks" / f"{r['slug']}.ipynb").is_file() and has_contract(r["slug"]):
            r["claims"] = " ".join(s.id for s in load_specs(r["slug"], "smoke"))
    save_catalog(rows)
    update_readme(rows)
    for line in changed:
        log(f"catalog: {line}")
    return len(changed)
