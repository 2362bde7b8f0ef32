"""The catalog: all papers, valid statuses, notebooks and configs in step, README coverage up to date."""
import json
import os
import subprocess
import sys

import pytest

from optrepro.core.catalog import STATUSES, WITH_NOTEBOOK, coverage_table, filter_rows, load_catalog, with_coverage
from optrepro.core.config import ConfigError, paper_names, project_root

ROOT = project_root()
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
CATALOG = load_catalog()
BY_SLUG = {r["slug"]: r for r in CATALOG}


def test_catalog_holds_every_paper_of_the_collection():
    assert len(CATALOG) == 368
    assert all(r["status"] in STATUSES and r["title"] and r["theme"] and r["tier"] in "ABCD" for r in CATALOG)


@pytest.mark.parametrize("slug", NOTEBOOKS)
def test_every_notebook_has_a_catalog_entry_and_a_config(slug):
    assert slug in BY_SLUG, f"notebooks/{slug}.ipynb has no catalog entry"
    assert slug in paper_names(), f"notebooks/{slug}.ipynb has no conf/paper/{slug}.yaml"
    assert BY_SLUG[slug]["notebook"] == f"notebooks/{slug}.ipynb"
    assert BY_SLUG[slug]["status"] in WITH_NOTEBOOK


def test_every_config_has_a_notebook():
    assert set(paper_names()) <= set(NOTEBOOKS)


@pytest.mark.parametrize("row", [r for r in CATALOG if r["status"] == "unverified"], ids=lambda r: r["slug"])
def test_every_unverified_entry_has_its_notebook_and_claims(row):
    path = ROOT / row["notebook"]
    assert path.is_file(), f"{row['slug']} is {row['status']} but {row['notebook']} does not exist"
    source = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
    claims = row["claims"].split()
    assert claims, f"{row['slug']} lists no claim ids"
    for claim in claims:
        assert f'"{claim}"' in source, f"claim {claim} of the catalog is not checked in {row['notebook']}"


def test_readme_coverage_table_is_generated_from_the_catalog():
    readme = (ROOT / "README.md").read_text()
    assert with_coverage(readme, CATALOG) == readme, "run `make coverage` to regenerate the README's tables"
    assert f"**{len(CATALOG)}**" in coverage_table(CATALOG)


def test_filters_and_their_errors():
    assert {r["status"] for r in filter_rows(CATALOG, status="planned")} == {"planned"}
    assert {r["theme"] for r in filter_rows(CATALOG, theme="first-order")} == {"first-order"}
    with pytest.raises(ConfigError, match="unknown theme 'firstorder': choose one of"):
        filter_rows(CATALOG, theme="firstorder")
    with pytest.raises(ConfigError, match="unknown status 'done': choose one of reproduced"):
        filter_rows(CATALOG, status="done")


def test_optrepro_list_prints_the_catalog():
    run = subprocess.run([sys.executable, "-m", "optrepro.core.cli", "list", "--theme", "first-order"], capture_output=True,
                         text=True, env={**os.environ, "OPTREPRO_ROOT": str(ROOT)}, timeout=60)
    assert run.returncode == 0 and "amsgrad" in run.stdout
    assert run.stdout.strip().endswith(f"{len(filter_rows(CATALOG, theme='first-order'))} papers")
    bad = subprocess.run([sys.executable, "-m", "optrepro.core.cli", "list", "--status", "done"], capture_output=True,
                         text=True, env={**os.environ, "OPTREPRO_ROOT": str(ROOT)}, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_lib_components_are_read_from_the_notebooks_imports(tmp_path):
    from optrepro.core.catalog import notebook_components
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import optrepro\nfrom optrepro.optim import Adam\n%matplotlib inline\n"
                                          "from optrepro.problems.online_linear import run_online\nimport optrepro.ot.sinkhorn as sk"),
                nbformat.v4.new_code_cell("from optrepro import claims_table, timing")]
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert notebook_components(tmp_path / "x.ipynb") == "optim ot.sinkhorn problems.online_linear timing"
