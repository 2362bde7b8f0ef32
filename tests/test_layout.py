"""The README's layout row names every package and top-level module of lib/optrepro, and no package that is gone."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib" / "optrepro"


def test_readme_layout_matches_the_tree():
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `lib/optrepro/` |"))
    packages = sorted(p.name for p in LIB.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    modules = sorted(p.stem for p in LIB.glob("*.py") if p.stem != "__init__")
    for name in packages:
        assert f"`{name}/`" in row, f"README layout does not name lib/optrepro/{name}/"
    for name in modules:
        assert f"`{name}`" in row, f"README layout does not name lib/optrepro/{name}.py"
    named = set(re.findall(r"`(\w+)/`", row))
    assert named <= set(packages), f"README layout names packages that do not exist: {sorted(named - set(packages))}"
    papers = sorted(p.stem for p in (LIB / "papers").glob("*.py") if p.stem != "__init__")
    assert all(f"`{p}`" in row for p in papers), "README layout lists every papers/<slug>.py"
