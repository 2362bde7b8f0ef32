"""Reports over a run folder: ``report.md`` and a self-contained ``report.html`` (figures embedded).

At the top, the collection's coverage (papers by theme and catalog status). Then one row per job (paper, profile,
seed, overrides): whether it ran (PASS/FAIL/ERROR), the status its claims give (reproduced, partial, not-reproduced,
inconclusive; ``unverified`` for a notebook that predates contract version 2), its scope, "central k/n, supporting
k/n" (sanity apart), wall time, device and a link to the executed notebook. A row is coloured by that status, so a
notebook whose central claims are NOT-REPRODUCED is never a green row. Below, each job's claims with their numbers.
"""
from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from .claims import claims_status, count_by_kind
from .record import RECORD_NAME, read_json

MARK = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}


def find_records(folder: Path) -> list[tuple[Path, dict]]:
    """Every ``record.json`` below ``folder`` (hidden folders skipped), sorted by job folder."""
    out = []
    for path in sorted(Path(folder).rglob(RECORD_NAME)):
        if any(part.startswith(".") for part in path.relative_to(folder).parts[:-1]):
            continue
        record = read_json(path)
        if record is not None:
            out.append((path.parent, record))
    return out


def _catalog() -> list[dict]:
    try:
        from .catalog import load_catalog
        return load_catalog()
    except Exception:  # a report of copied runs still works without the project's catalog
        return []


def _counts(claims: list[dict]) -> str:
    """"central k/n, supporting k/n" (sanity apart); pre-v2 claims as "k/n claims (no kinds)"."""
    if not claims:
        return "-"
    n = count_by_kind(claims)
    if n["unkinded"][1]:
        return f"{n['unkinded'][0]}/{n['unkinded'][1]} claims (no kinds)"
    out = f"central {n['central'][0]}/{n['central'][1]}, supporting {n['supporting'][0]}/{n['supporting'][1]}"
    return out + (f"; sanity {n['sanity'][0]}/{n['sanity'][1]}" if n["sanity"][1] else "")


def _row(folder: Path, job: Path, record: dict) -> dict:
    claims = record.get("claims") or []
    status = record.get("status") or ("passed" if record.get("verdict") == "pass" else "failed")
    runner = record.get("runner") or {}
    notebook = job / runner.get("notebook", f"{record.get('paper')}.ipynb")
    return {
        "job": str(job.relative_to(folder)) if job != folder else ".",
        "paper": record.get("paper", "?"),
        "status": status,
        "claims": claims,
        "n_pass": sum(c.get("verdict") == "PASS" for c in claims),
        "claim_status": "failed" if status != "passed" else claims_status(claims),
        "counts": _counts(claims),
        "scope": record.get("scope") or "-",
        "wall": runner.get("wall_time_s", record.get("wall_time_s")),
        "device": record.get("device", "?"),
        "notebook": os.path.relpath(notebook, folder) if notebook.exists() else None,
        "figures": [job / f for f in record.get("figures", []) if (job / f).exists()],
        "error": record.get("error"),
        "profile": record.get("profile", "?"),
        "seed": record.get("seed", "?"),
    }


def _num(x) -> str:
    return "-" if x is None else f"{x:.4g}"


def _control(c: dict) -> str:
    """The control's value, or why the claim has none ("none: <reason>"), or "-" (sanity, pre-v2)."""
    if c.get("control") is not None:
        return _num(c["control"])
    what = c.get("control_what") or ""
    return what if what.startswith("none:") else "-"


def _wall(w) -> str:
    return "-" if w is None else f"{w:.1f} s"


def _summary(rows: list[dict]) -> str:
    counts = {s: sum(r["status"] == s for r in rows) for s in MARK}
    return f"{len(rows)} runs: {counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors"


def _markdown(folder: Path, rows: list[dict], titles: dict, catalog: list[dict]) -> str:
    from .catalog import coverage_table
    lines = [f"# optrepro report: {folder.name}", ""]
    if catalog:
        lines += ["## Coverage of the collection (catalog status, from the committed evidence)", "",
                  coverage_table(catalog), "", "## This run", ""]
    lines += [_summary(rows), "",
              "| paper | job | run | status | scope | claims | wall time | device | notebook |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        nb = f"[notebook]({r['notebook']})" if r["notebook"] else "-"
        lines.append(f"| {r['paper']} | {r['job']} | {MARK.get(r['status'], r['status'])} | {r['claim_status']} | "
                     f"{r['scope']} | {r['counts']} | {_wall(r['wall'])} | {r['device']} | {nb} |")
    for r in rows:
        lines += ["", f"## {r['paper']}: {titles.get(r['paper'], '')}", "",
                  f"job `{r['job']}`, profile {r['profile']}, seed {r['seed']}: **{MARK.get(r['status'], r['status'])}**"]
        if r["error"]:
            lines += ["", f"error: `{r['error']}`"]
        if r["claims"]:
            lines += ["", "| claim | kind | statement | measured | control | threshold | paper | verdict |",
                      "|---|---|---|---|---|---|---|---|"]
            for c in r["claims"]:
                paper = "" if c.get("paper_value") is None else c["paper_value"]
                lines.append(f"| {c['id']} | {c.get('kind') or '-'} | {c['statement']} | {_num(c['measured'])} | "
                             f"{_control(c)} | {c['op']} {c['threshold']:.4g} | {paper} | {c['verdict']} |")
        for fig in r["figures"]:
            lines += ["", f"![{fig.stem}]({os.path.relpath(fig, folder)})"]
    return "\n".join(lines) + "\n"


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.reproduced,.PASS{background:#dff3df}.partial{background:#fff4c8}.not-reproduced,.NOT-REPRODUCED{background:#e4e4ec}
.inconclusive,.INCONCLUSIVE{background:#f0f0f0}.unverified{background:#ffffff}.failed,.FAIL,.UNEXPECTED-PASS{background:#fbe3e3}
.error{background:#ffe2b8}img{max-width:100%}code{background:#f4f4f4;padding:0 .2em}"""

#: the colour legend (row class = the status its claims give)
LEGEND = ("reproduced", "partial", "not-reproduced", "inconclusive", "unverified", "failed")


def _coverage_html(catalog: list[dict]) -> str:
    from .catalog import STATUSES
    e = html.escape
    themes = sorted({r["theme"] for r in catalog})
    out = ["<h2>Coverage of the collection</h2><p>Papers by theme and catalog status (derived from the committed "
           "evidence, seeds 0-4).</p><table><tr><th>theme</th><th>papers</th>"
           + "".join(f"<th class='{s}'>{s}</th>" for s in STATUSES) + "</tr>"]
    for theme in themes + [None]:
        sel = [r for r in catalog if theme is None or r["theme"] == theme]
        name = "<b>all</b>" if theme is None else e(theme)
        out.append(f"<tr><td>{name}</td><td>{len(sel)}</td>"
                   + "".join(f"<td class='{s}'>{sum(r['status'] == s for r in sel) or ''}</td>" for s in STATUSES) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _html(folder: Path, rows: list[dict], titles: dict, catalog: list[dict]) -> str:
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>optrepro report: {e(folder.name)}</title>"
           f"<style>{CSS}</style></head><body><h1>optrepro report: {e(folder.name)}</h1>"]
    if catalog:
        out.append(_coverage_html(catalog))
    out += [f"<h2>This run</h2><p>{e(_summary(rows))}. Rows are coloured by the status their claims give: "
            + " ".join(f"<span class='{s}'>&nbsp;{s}&nbsp;</span>" for s in LEGEND) + "</p>",
            "<table><tr><th>paper</th><th>job</th><th>run</th><th>status</th><th>scope</th><th>claims</th>"
            "<th>wall time</th><th>device</th><th>notebook</th></tr>"]
    for i, r in enumerate(rows):
        nb = f"<a href='{e(r['notebook'])}'>notebook</a>" if r["notebook"] else "-"
        out.append(f"<tr class='{e(r['claim_status'])}'><td><a href='#run{i}'>{e(r['paper'])}</a></td><td>{e(r['job'])}</td>"
                   f"<td>{e(MARK.get(r['status'], r['status']))}</td><td>{e(r['claim_status'])}</td><td>{e(r['scope'])}</td>"
                   f"<td>{e(r['counts'])}</td><td>{_wall(r['wall'])}</td><td>{e(str(r['device']))}</td><td>{nb}</td></tr>")
    out.append("</table>")
    for i, r in enumerate(rows):
        out.append(f"<h2 id='run{i}'>{e(r['paper'])}: {e(titles.get(r['paper'], ''))}</h2>"
                   f"<p>job <code>{e(r['job'])}</code>, profile {e(str(r['profile']))}, seed {e(str(r['seed']))}: "
                   f"<b>{e(MARK.get(r['status'], r['status']))}</b></p>")
        if r["error"]:
            out.append(f"<p>error: <code>{e(r['error'])}</code></p>")
        if r["claims"]:
            out.append("<table><tr><th>claim</th><th>kind</th><th>statement</th><th>measured</th><th>control</th>"
                       "<th>threshold</th><th>paper</th><th>verdict</th></tr>")
            for c in r["claims"]:
                paper = "" if c.get("paper_value") is None else str(c["paper_value"])
                why = f" ({c['reason']})" if c.get("reason") else ""
                out.append(f"<tr class='{e(c['verdict'])}'><td>{e(c['id'])}</td><td>{e(c.get('kind') or '-')}</td>"
                           f"<td>{e(c['statement'])}</td><td>{_num(c['measured'])}</td><td>{e(_control(c))}</td>"
                           f"<td>{e(c['op'])} {c['threshold']:.4g}</td><td>{e(paper)}</td>"
                           f"<td>{e(c['verdict'] + why)}</td></tr>")
            out.append("</table>")
        for fig in r["figures"]:
            data = base64.b64encode(fig.read_bytes()).decode()
            out.append(f"<figure><img alt='{e(fig.stem)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{e(fig.stem)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(folder: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``folder`` from the records below it."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"no run folder {folder}")
    rows = [_row(folder, job, rec) for job, rec in find_records(folder)]
    catalog = _catalog()
    titles = {r["slug"]: r["title"] for r in catalog}
    md, page = folder / "report.md", folder / "report.html"
    md.write_text(_markdown(folder, rows, titles, catalog))
    page.write_text(_html(folder, rows, titles, catalog))
    return md, page
