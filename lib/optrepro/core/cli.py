"""The ``optrepro`` command: ``run`` (the batch runner), ``verify`` (evidence), ``status``, ``report`` and ``list``."""
from __future__ import annotations

import argparse
import sys

from .config import ConfigError

USAGE = """usage: optrepro run [-m] [--all] [key=value ...]    execute notebooks (Hydra overrides; see README)
       optrepro verify SLUG... [profile=full] [--seeds 0,1,2,3,4] [--jobs 2]
                                                    run the claim seeds, write outputs/evidence/SLUG.json and the
                                                    catalog status derived from it
       optrepro status [--write]                    compare the catalog's status/scope with the evidence (--write: fix it)
       optrepro report RUN_FOLDER                   write report.md and report.html for a run folder
       optrepro list [--theme T] [--status S] [--coverage] [--update-readme]   print the catalog"""


def _list(args: list[str]) -> int:
    from .catalog import coverage_table, filter_rows, load_catalog, with_coverage
    from .config import project_root
    p = argparse.ArgumentParser(prog="optrepro list", description="Print the catalog of papers.")
    p.add_argument("--theme")
    p.add_argument("--status")
    p.add_argument("--coverage", action="store_true", help="print the coverage table by theme (Markdown)")
    p.add_argument("--update-readme", action="store_true", help="rewrite the coverage table in README.md")
    a = p.parse_args(args)
    if a.update_readme:
        readme = project_root() / "README.md"
        readme.write_text(with_coverage(readme.read_text(), load_catalog()))
        print(f"updated the coverage table in {readme}")
        return 0
    rows = filter_rows(load_catalog(), theme=a.theme, status=a.status)
    if a.coverage:
        print(coverage_table(rows))
        return 0
    width = max((len(r["slug"]) for r in rows), default=4)
    for r in rows:
        print(f"{r['slug']:<{width}}  {r['status']:<14}  {r['theme']:<24}  {r['tier']}  {r['title']}")
    print(f"{len(rows)} papers")
    return 0


def _verify(args: list[str]) -> int:
    from .evidence import CLAIM_SEEDS, verify
    p = argparse.ArgumentParser(prog="optrepro verify", description="Run notebooks on their claim seeds and write "
                                "their evidence and catalog status.")
    p.add_argument("items", nargs="+", metavar="SLUG or key=value", help="papers, then overrides such as profile=full")
    p.add_argument("--seeds", default=",".join(map(str, CLAIM_SEEDS)), help="comma-separated (default 0-4)")
    p.add_argument("--jobs", type=int, default=2, help="notebooks at once (default 2)")
    a = p.parse_args(args)
    slugs = [x for x in a.items if "=" not in x]
    overrides = [x for x in a.items if "=" in x]
    profile = "smoke"
    extra = []
    for o in overrides:
        key, value = o.split("=", 1)
        if key == "profile":
            profile = value
        elif key == "seed":
            raise ConfigError("verify runs the claim seeds: give them with --seeds, not seed=")
        else:
            extra.append(o)
    if profile not in ("smoke", "full"):
        raise ConfigError(f"unknown profile {profile!r}: choose one of smoke, full")
    try:
        seeds = tuple(int(s) for s in a.seeds.split(","))
    except ValueError:
        raise ConfigError(f"invalid --seeds {a.seeds!r}: expected comma-separated integers such as 0,1,2,3,4") from None
    if seeds != CLAIM_SEEDS:
        print(f"note: seeds {seeds} are not the claim seeds {CLAIM_SEEDS}: the evidence says so", file=sys.stderr)
    if not slugs:
        raise ConfigError("no paper given: optrepro verify <slug>...")
    from .config import check_paper_name
    for slug in slugs:
        check_paper_name(slug)
    return verify(slugs, profile=profile, seeds=seeds, jobs=a.jobs, extra=extra)


def _status(args: list[str]) -> int:
    from .catalog import load_catalog
    from .evidence import catalog_differences, sync_catalog
    p = argparse.ArgumentParser(prog="optrepro status", description="Compare (or --write) the catalog's derived "
                                "columns (status, scope, full_status) with the evidence.")
    p.add_argument("--write", action="store_true")
    a = p.parse_args(args)
    if a.write:
        n = sync_catalog()
        print(f"catalog and README coverage written ({n} cells changed)")
        return 0
    diffs = catalog_differences(load_catalog(check_status=False))
    for line in diffs:
        print(line)
    print("the catalog agrees with the evidence" if not diffs else f"{len(diffs)} cells disagree: optrepro status --write")
    return 1 if diffs else 0


def _report(args: list[str]) -> int:
    from .report import write_report
    p = argparse.ArgumentParser(prog="optrepro report", description="Write report.md and report.html.")
    p.add_argument("folder")
    a = p.parse_args(args)
    try:
        md, page = write_report(a.folder)
    except FileNotFoundError as e:
        raise ConfigError(str(e)) from None
    print(f"wrote {md}\nwrote {page}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "run":
            from .runner import run_batch
            return run_batch(rest)
        if command == "report":
            return _report(rest)
        if command == "verify":
            return _verify(rest)
        if command == "status":
            return _status(rest)
        if command == "list":
            return _list(rest)
        raise ConfigError(f"unknown command {command!r}: choose one of run, verify, status, report, list")
    except ConfigError as e:
        print(f"optrepro: error: {e}", file=sys.stderr)
        return 2


def console() -> None:
    """Entry point of the console script."""
    sys.exit(main())


if __name__ == "__main__":
    console()
