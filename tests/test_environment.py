"""environment.yml (conda) stays consistent with pyproject.toml and the Makefile (pip)."""
import re
import tomllib

import yaml
from packaging.specifiers import SpecifierSet

from optrepro.core.config import project_root

ROOT = project_root()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())


def _conda_and_pip():
    conda = [d for d in ENV["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in ENV["dependencies"] if isinstance(d, dict))
    return conda, pip


def test_conda_python_satisfies_requires_python():
    conda, _ = _conda_and_pip()
    python = next(d for d in conda if d.startswith("python"))
    version = python.split("=", 1)[1]
    assert version in SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert "pip" in conda


def test_pip_section_installs_the_package_with_its_test_extra():
    _, pip = _conda_and_pip()
    assert "-e .[test]" in pip
    assert "test" in PYPROJECT["project"]["optional-dependencies"]


def test_torch_pin_is_the_makefiles_and_satisfies_the_package():
    _, pip = _conda_and_pip()
    torch_env = next(p for p in pip if p.startswith("torch"))
    torch_make = re.search(r"^TORCH\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert torch_env == torch_make
    torch_dep = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch"))
    assert torch_env.split("==")[1] in SpecifierSet(torch_dep[len("torch"):])
    assert pip.index(torch_env) < pip.index("-e .[test]"), "torch must be installed before the package"
