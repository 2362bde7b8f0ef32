"""Evidence and the status derived from it: the catalog agrees with the committed evidence, the evidence with the
notebooks' specs and their committed (nbval-checked) seed-0 verdicts; ``optrepro verify`` end to end on a probe."""
import json
import os
import subprocess
import sys

import nbformat
import pytest

from optrepro.core.catalog import load_catalog
from optrepro.core.claims import KINDS, VERDICTS
from optrepro.core.config import paper_names, project_root
from optrepro.core.contract import claims_markdown, has_contract, load_specs
from optrepro.core.evidence import CLAIM_SEEDS, aggregate, catalog_differences, load_evidence, spec_records

ROOT = project_root()
V2 = [s for s in paper_names() if has_contract(s)]


def test_aggregate_over_seeds():
    assert aggregate(["PASS"] * 5) == ("PASS", "")
    assert aggregate(["PASS", "FAIL", "PASS"])[0] == "FAIL"
    assert aggregate(["NOT-REPRODUCED", "UNEXPECTED-PASS"])[0] == "UNEXPECTED-PASS"
    verdict, reason = aggregate(["PASS", "NOT-REPRODUCED", "PASS"])
    assert verdict == "INCONCLUSIVE" and "seeds disagree" in reason


def test_the_catalog_status_is_the_one_the_evidence_gives():
    diffs = catalog_differences(load_catalog())
    assert not diffs, "the catalog's derived columns were edited by hand or are stale (optrepro status --write):\n" + \
        "\n".join(diffs)


def test_the_three_worked_examples_follow_contract_v2():
    assert {"amsgrad", "sinkhorn-newton-sparse", "convex-relu-admm"} <= set(V2)


def seed0_verdicts(slug: str) -> dict[str, str]:
    """{claim id: verdict} printed by the committed notebook's claims cell (the output nbval checks)."""
    nb = nbformat.read(ROOT / "notebooks" / f"{slug}.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]
    assert len(cells) == 1, f"{slug}: expected one claims cell marked NBVAL_CHECK_OUTPUT"
    text = "".join(o.get("text", "") for o in cells[0].outputs)
    out = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] in VERDICTS and words[1] in KINDS:
            out[words[2]] = words[0]
    return out


@pytest.mark.parametrize("slug", V2)
def test_evidence_matches_the_specs_and_the_committed_notebook(slug):
    evidence = load_evidence(slug)
    assert evidence, f"{slug} pre-registers claims but has no outputs/evidence/{slug}.json: run optrepro verify {slug}"
    for profile, entry in evidence["profiles"].items():
        stored = [{k: v for k, v in c.items() if k not in ("seeds", "verdict", "reason")} for c in entry["claims"]]
        assert stored == spec_records(slug, profile), \
            f"{slug} [{profile}]: the specs changed since the evidence was written: run optrepro verify {slug}"
        assert tuple(entry["seeds"]) == CLAIM_SEEDS
        for c in entry["claims"]:
            assert set(c["seeds"]) == {str(s) for s in CLAIM_SEEDS}
            for per_seed in c["seeds"].values():  # a verdict never rests on a missing number
                assert per_seed["verdict"] == "FAIL" or per_seed["measured"] is not None
                assert c["kind"] == "sanity" or c["no_control"] or per_seed["control"] is not None
    smoke = evidence["profiles"]["smoke"]
    printed = seed0_verdicts(slug)
    assert printed == {c["id"]: c["seeds"]["0"]["verdict"] for c in smoke["claims"]}, \
        f"{slug}: the committed notebook's verdicts differ from the evidence's seed 0"


@pytest.mark.parametrize("slug", V2)
def test_the_claims_table_of_the_notebook_is_rendered_from_the_spec(slug):
    nb = nbformat.read(ROOT / "notebooks" / f"{slug}.ipynb", as_version=4)
    assert any(f'claims_table("{slug}")' in c.source for c in nb.cells if c.cell_type == "code")
    table = claims_markdown(slug)
    assert all(f"`{s.id}`" in table for s in load_specs(slug, None))


# --------------------------------------------------------------------------- verify end to end, on a probe paper

PROBE_V2 = """\
x: {smoke: 1.0, full: 2.0}
scope: miniature
claims:
  x-small:
    kind: central
    statement: x is below 1.5
    source: ours (a probe)
    op: "<"
    threshold: 1.5
    threshold_from: ours
    control: x + 1
  x-positive:
    kind: sanity
    statement: x is positive
    source: ours
    op: ">"
    threshold: 0.0
    threshold_from: ours
"""

PROBE_V2_CODE = """\
import optrepro
run = optrepro.setup("probe", overrides)
claims = run.claims()
claims.measure("x-small", run.paper.x + 0.1 * run.seed, control=run.paper.x + 1)
claims.measure("x-positive", run.paper.x)
"""


@pytest.fixture
def v2_project(project):
    from conftest import probe_notebook
    (project / "conf" / "paper" / "probe.yaml").write_text(PROBE_V2)
    nbformat.write(probe_notebook(PROBE_V2_CODE), project / "notebooks" / "probe.ipynb")
    header = (ROOT / "conf" / "catalog.tsv").read_text().splitlines()[0]
    row = {k: "" for k in header.split("\t")}
    row.update(slug="probe", title="Probe", theme="other", tier="D", status="unverified",
               notebook="notebooks/probe.ipynb", claims="x-small")
    (project / "conf" / "catalog.tsv").write_text(header + "\n" + "\t".join(row[k] for k in header.split("\t")) + "\n")
    (project / "README.md").write_text("# probe\n<!-- coverage:start -->\n<!-- coverage:end -->\n")
    return project


def test_verify_writes_evidence_and_the_derived_status(v2_project):
    env = {**os.environ, "OPTREPRO_ROOT": str(v2_project)}
    run = subprocess.run([sys.executable, "-m", "optrepro.core.cli", "verify", "probe", "--seeds", "0,6"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr  # seed 6: x = 1.6, the central claim FAILs
    evidence = json.loads((v2_project / "outputs" / "evidence" / "probe.json").read_text())
    smoke = evidence["profiles"]["smoke"]
    x_small = smoke["claims"][0]
    assert x_small["seeds"]["0"] == {**x_small["seeds"]["0"], "measured": 1.0, "control": 2.0, "verdict": "PASS"}
    assert x_small["seeds"]["6"]["verdict"] == "FAIL" and x_small["verdict"] == "FAIL"
    assert smoke["status"] == "unverified" and smoke["scope"] == "miniature" and smoke["verdict"] == "fail"
    assert "TCP without encryption" not in run.stdout + run.stderr

    run = subprocess.run([sys.executable, "-m", "optrepro.core.cli", "verify", "probe", "--seeds", "0,1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    catalog = (v2_project / "conf" / "catalog.tsv").read_text()
    assert "\treproduced\tminiature\t" in catalog
    assert "| [probe](notebooks/probe.ipynb) | other | reproduced | miniature | 1/1 | 0/0 | 1/1 | - |" in \
        (v2_project / "README.md").read_text()
    from optrepro.core.report import write_report
    md, page = write_report(v2_project / "outputs" / "runs" / "verify-smoke")
    assert "Coverage of the collection" in page.read_text() and "<tr class='reproduced'>" in page.read_text()
    # a status typed by hand is caught
    (v2_project / "conf" / "catalog.tsv").write_text(catalog.replace("\treproduced\t", "\tpartial\t"))
    check = subprocess.run([sys.executable, "-m", "optrepro.core.cli", "status"], capture_output=True, text=True, env=env,
                           timeout=60)
    assert check.returncode == 1 and "probe: status is 'partial' in the catalog, 'reproduced' derived" in check.stdout


def test_claims_cannot_be_overridden(v2_project):
    from optrepro.core.config import ConfigError, compose
    with pytest.raises(ConfigError, match="paper.claims.x-small.threshold cannot be overridden: claims and scope are "
                                          "pre-registered"):
        compose("probe", ["paper.claims.x-small.threshold=9"])
    assert "claims" not in compose("probe", []).paper


def test_a_v2_notebook_that_forgets_a_claim_fails(v2_project):
    import optrepro
    from optrepro.core.claims import ClaimsFailed
    run = optrepro.setup("probe", [])
    claims = run.claims()
    claims.measure("x-positive", 1.0)
    with pytest.raises(ClaimsFailed, match=r"x-small \(never measured\)"):
        run.finish(claims)
    with pytest.raises(ClaimsFailed, match="pre-registers claims: build them with run.claims"):
        run.finish(optrepro.Claims())
