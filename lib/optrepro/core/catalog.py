"""The catalog: every paper of the collection, its theme, tier, status and notebook (``conf/catalog.tsv``).

The ``status``, ``scope`` and ``full_status`` columns are derived from the committed evidence
(``outputs/evidence/<slug>.json``, :mod:`optrepro.core.evidence`), never typed: ``reproduced`` (every central claim
PASS on every claim seed), ``partial`` (some central PASS, some NOT-REPRODUCED or INCONCLUSIVE), ``not-reproduced``
(no central PASS, some NOT-REPRODUCED), ``inconclusive`` (every central claim INCONCLUSIVE), ``unverified`` (a
notebook without current evidence: the notebooks written before contract version 2), ``planned`` (no notebook).
``scope`` is ``paper``, ``reduced`` or ``miniature``.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from .config import ConfigError, conf_dir

STATUSES = ("reproduced", "partial", "not-reproduced", "inconclusive", "unverified", "planned")
WITH_NOTEBOOK = STATUSES[:5]
COLUMNS = ("slug", "title", "year", "arxiv", "venue", "theme", "tier", "priority", "status", "scope", "full_status",
           "notebook", "claims", "seeds", "planned_claim", "smoke_plan", "full_plan", "lib_components", "peer", "notes")


def catalog_path() -> Path:
    return conf_dir() / "catalog.tsv"


def load_catalog(path: Path | None = None, check_status: bool = True) -> list[dict]:
    """The catalog's rows, in file order; a row with an unknown status or a duplicate slug is an error."""
    path = path or catalog_path()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    seen = set()
    for i, row in enumerate(rows, start=2):
        for key in COLUMNS:
            row.setdefault(key, "")
            row[key] = row[key] or ""
        if check_status and row["status"] not in STATUSES:
            raise ConfigError(f"{path.name}:{i}: unknown status {row['status']!r}: choose one of {', '.join(STATUSES)}")
        if row["slug"] in seen:
            raise ConfigError(f"{path.name}:{i}: duplicate slug {row['slug']!r}")
        seen.add(row["slug"])
    return rows


def save_catalog(rows: list[dict], path: Path | None = None) -> None:
    path = path or catalog_path()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in COLUMNS} for row in rows)
    tmp.replace(path)


#: what ``import optrepro`` and ``optrepro.core`` give every notebook (setup, claims): not a library component
FRAMEWORK = {f"optrepro.{m}" for m in ("claims_table", "setup", "Claims", "ClaimsFailed", "ConfigError", "Run")}


def notebook_components(path: Path) -> str:
    """The library modules a notebook imports (``from optrepro.x.y import ...``, ``import optrepro.x``), sorted and
    space-separated without the ``optrepro.`` prefix; the framework (setup, claims) is left out. The catalog's
    ``lib_components`` column is this, written by ``optrepro status --write``."""
    import ast
    import json
    modules = set()
    for cell in json.loads(Path(path).read_text()).get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", ""))
        try:
            tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optrepro"):
                if node.module == "optrepro":
                    modules.update(f"optrepro.{a.name}" for a in node.names)
                else:
                    modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules.update(a.name for a in node.names if a.name.startswith("optrepro."))
    return " ".join(sorted(m.removeprefix("optrepro.") for m in modules - FRAMEWORK if not m.startswith("optrepro.core")))


def filter_rows(rows: list[dict], theme: str | None = None, status: str | None = None) -> list[dict]:
    """Rows of one theme and/or status; an unknown theme or status is an error naming the valid ones."""
    if theme is not None:
        themes = sorted({r["theme"] for r in rows})
        if theme not in themes:
            raise ConfigError(f"unknown theme {theme!r}: choose one of {', '.join(themes)}")
        rows = [r for r in rows if r["theme"] == theme]
    if status is not None:
        if status not in STATUSES:
            raise ConfigError(f"unknown status {status!r}: choose one of {', '.join(STATUSES)}")
        rows = [r for r in rows if r["status"] == status]
    return rows


def coverage_table(rows: list[dict]) -> str:
    """A Markdown table: papers per theme and status, with a total row."""
    by_theme: dict[str, Counter] = {}
    for r in rows:
        by_theme.setdefault(r["theme"], Counter())[r["status"]] += 1
    head = "| theme | papers | " + " | ".join(STATUSES) + " |"
    lines = [head, "|" + "---|" * (len(STATUSES) + 2)]
    total = Counter()
    for theme in sorted(by_theme):
        c = by_theme[theme]
        total.update(c)
        lines.append(f"| {theme} | {sum(c.values())} | " + " | ".join(str(c[s]) for s in STATUSES) + " |")
    lines.append(f"| **all** | **{sum(total.values())}** | " + " | ".join(f"**{total[s]}**" for s in STATUSES) + " |")
    return "\n".join(lines)


def notebook_table(rows: list[dict]) -> str:
    """A Markdown table, one row per notebook: status, scope, central and supporting claims passed (sanity apart)."""
    from .evidence import load_evidence
    lines = ["| notebook | theme | status | scope | central | supporting | sanity | full profile |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted((r for r in rows if r["status"] != "planned"), key=lambda r: (STATUSES.index(r["status"]), r["slug"])):
        smoke = ((load_evidence(r["slug"]) or {}).get("profiles") or {}).get("smoke") if r["status"] != "unverified" else None
        n = smoke["counts"] if smoke else {}
        cell = lambda k: f"{n[k][0]}/{n[k][1]}" if k in n else "-"  # noqa: B023 (used in this iteration)
        lines.append(f"| [{r['slug']}]({r['notebook']}) | {r['theme']} | {r['status']} | {r['scope'] or '-'} | "
                     f"{cell('central')} | {cell('supporting')} | {cell('sanity')} | {r['full_status'] or '-'} |")
    return "\n".join(lines)


COVERAGE_START, COVERAGE_END = "<!-- coverage:start -->", "<!-- coverage:end -->"


def coverage_block(rows: list[dict]) -> str:
    return (coverage_table(rows) + "\n\nStatus, scope and claims passed on all claim seeds (0-4), from "
            "`outputs/evidence/`; `unverified` notebooks predate the contract's version 2.\n\n" + notebook_table(rows))


def with_coverage(readme: str, rows: list[dict]) -> str:
    """``readme`` with the block between the coverage markers replaced by the current coverage tables."""
    start, end = readme.find(COVERAGE_START), readme.find(COVERAGE_END)
    if start < 0 or end < start:
        raise ConfigError(f"README has no {COVERAGE_START} ... {COVERAGE_END} block")
    return readme[:start + len(COVERAGE_START)] + "\n" + coverage_block(rows) + "\n" + readme[end:]


def update_readme(rows: list[dict]) -> None:
    from .config import project_root
    readme = project_root() / "README.md"
    readme.write_text(with_coverage(readme.read_text(), rows))
