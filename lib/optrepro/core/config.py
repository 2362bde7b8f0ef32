"""Configuration: the one composition that the notebooks and the batch runner share.

A run's configuration is ``conf/config.yaml`` (defaults: paper, profile, device, seed, folders) with the
paper's ``conf/paper/<slug>.yaml`` under the key ``paper``, composed by Hydra, then *finalized*:

* every ``{smoke: a, full: b}`` pair in the paper's file becomes the value of the chosen profile, so
  ``paper.steps=500`` overrides both profiles and ``paper.steps.full=500`` only one;
* every value is checked against the schema: the top-level keys below, and for ``paper.*`` the type of the
  default in the paper's own file (an int stays an int, a float accepts an int);
* relative folders are resolved against the project root.

Bad input raises :class:`ConfigError`, whose message is one line naming the bad value and the valid choices
or the closest matches. The same checks run on raw override strings before anything is composed or written
(:func:`check_overrides`), which is what the command line uses.
"""
from __future__ import annotations

import difflib
import itertools
import os
import re
from functools import cache
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

PROFILES = ("smoke", "full")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"
#: keys that steer the batch runner only; they are not part of an experiment's identity
RUNNER_KEYS = ("batch", "force")
#: keys that say where a run is written; not part of an experiment's identity either
LOCATION_KEYS = ("run_dir",)
#: top-level keys of a paper's YAML that pre-register its claims and scope: not parameters, not overridable
CONTRACT_KEYS = ("claims", "scope")


class ConfigError(ValueError):
    """A configuration problem, reported as one line (the bad value and the valid choices)."""


# --------------------------------------------------------------------------------------------- locations

def project_root() -> Path:
    """The project folder holding ``conf/`` and ``notebooks/`` (``$OPTREPRO_ROOT`` overrides it)."""
    env = os.environ.get("OPTREPRO_ROOT")
    root = Path(env).resolve() if env else Path(__file__).resolve().parents[3]
    if not (root / "conf" / "config.yaml").is_file():
        raise ConfigError(f"no conf/config.yaml under project root {root} (set OPTREPRO_ROOT to the project folder)")
    return root


def conf_dir() -> Path:
    return project_root() / "conf"


def paper_names() -> list[str]:
    """Slugs of every paper that has a config (``conf/paper/<slug>.yaml``), sorted."""
    return sorted(p.stem for p in (conf_dir() / "paper").glob("*.yaml"))


def resolve_path(path: str | os.PathLike) -> Path:
    """A folder from the config: absolute as given, relative to the project root otherwise."""
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else project_root() / p


# --------------------------------------------------------------------------------------------- schema

def _check_device(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
        raise ConfigError(f"invalid device {value!r}: choose one of {DEVICE_CHOICES}")
    return value


def _check_profile(value: Any) -> str:
    if value not in PROFILES:
        raise ConfigError(f"unknown profile {value!r}: choose one of {', '.join(PROFILES)}")
    return value


def _check_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"invalid seed {value!r}: expected a non-negative integer")
    return value


def _check_str(key: str):
    def check(value: Any) -> str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"invalid {key} {value!r}: expected a path or name")
        return str(value)
    return check


def _check_optional_str(key: str):
    def check(value: Any):
        return None if value is None else _check_str(key)(value)
    return check


def _check_bool(key: str):
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"invalid {key} {value!r}: expected true or false")
        return value
    return check


#: the top-level schema: key -> checker returning the normalized value
TOP_LEVEL = {
    "profile": _check_profile,
    "device": _check_device,
    "seed": _check_seed,
    "data_dir": _check_str("data_dir"),
    "out_dir": _check_str("out_dir"),
    "run_dir": _check_optional_str("run_dir"),
    "batch": _check_str("batch"),
    "force": _check_bool("force"),
}


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(type(value), type(value).__name__)


def check_paper_value(key: str, value: Any, default: Any) -> Any:
    """Check one ``paper.*`` value against its default's type; return it normalized (int -> float where needed)."""
    if isinstance(default, dict):
        if isinstance(value, dict):
            return value
        raise ConfigError(f"{key} is a group of keys ({', '.join(default)}), not a value: set {key}.<key>=...")
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        value = str(value) if ok else value
    elif isinstance(default, list):
        ok = isinstance(value, list)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"invalid value {value!r} for {key}: expected {_type_name(default)} like the default {default!r}")
    return value


# --------------------------------------------------------------------------------------------- papers

def _is_profile_pair(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == set(PROFILES)


def select_profile(node: Any, profile: str) -> Any:
    """Replace every ``{smoke: a, full: b}`` pair in a plain container by the chosen profile's value."""
    if _is_profile_pair(node):
        return select_profile(node[profile], profile)
    if isinstance(node, dict):
        return {k: select_profile(v, profile) for k, v in node.items()}
    if isinstance(node, list):
        return [select_profile(v, profile) for v in node]
    return node


@cache
def _raw_paper_cached(path: str, mtime: float) -> tuple[dict, dict]:
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    data.pop("defaults", None)
    contract = {k: data.pop(k) for k in CONTRACT_KEYS if k in data}
    return data, contract


def _paper_file(slug: str) -> Path:
    check_paper_name(slug)
    return conf_dir() / "paper" / f"{slug}.yaml"


def raw_paper(slug: str) -> dict:
    """A paper's parameters as written (profile pairs kept), without its contract (``claims:``, ``scope:``)."""
    path = _paper_file(slug)
    return _raw_paper_cached(str(path), path.stat().st_mtime)[0]


def raw_contract(slug: str) -> dict:
    """A paper's pre-registered contract as written: ``{"claims": ..., "scope": ...}`` (empty before version 2)."""
    path = _paper_file(slug)
    return _raw_paper_cached(str(path), path.stat().st_mtime)[1]


def check_paper_name(slug: Any) -> str:
    names = paper_names()
    if slug in names:
        return slug
    close = difflib.get_close_matches(str(slug), names, n=3, cutoff=0.5)
    hint = f"closest: {', '.join(close)}" if close else f"{len(names)} papers; `optrepro list` shows them"
    raise ConfigError(f"unknown paper {slug!r} ({hint})")


def _dotted_keys(node: Any, prefix: str) -> list[str]:
    keys = []
    if isinstance(node, dict):
        for k, v in node.items():
            keys.append(f"{prefix}.{k}")
            keys += _dotted_keys(v, f"{prefix}.{k}")
    return keys


def _lookup(node: Any, parts: list[str]) -> tuple[bool, Any]:
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _unknown_key(key: str, known: Iterable[str]) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "use +key=value to add a new key"
    return ConfigError(f"unknown key {key!r}: {hint}")


# --------------------------------------------------------------------------------------------- overrides

def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    return OverridesParser.create()


def parse_overrides(overrides: Iterable[str]):
    """Parse Hydra override strings; a syntax error becomes a one-line ConfigError."""
    from hydra.errors import HydraException
    overrides = list(overrides)
    try:
        return _parser().parse_overrides(overrides)
    except HydraException as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "syntax error"
        raise ConfigError(f"cannot parse overrides {' '.join(overrides)!r}: {first}") from None


def _values(override) -> list[Any]:
    """The values an override takes: one, or each of a sweep (a paper glob is expanded here)."""
    from hydra.core.override_parser.types import Glob, ValueType
    if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
        value = override.value()
        assert isinstance(value, Glob)
        if override.get_key_element() != "paper":
            raise ConfigError(f"glob() sweeps only apply to paper, not {override.get_key_element()!r}")
        matched = value.filter(paper_names())
        if not matched:
            raise ConfigError(f"paper=glob(...) matches no paper: {override.input_line!r}")
        return matched
    if override.is_sweep_override():
        return [_parse_element(s) for s in override.sweep_string_iterator()]
    return [override.value()]


def _parse_element(text: str) -> Any:
    return _parser().parse_override(f"x={text}").value()


def _format(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace("'", "")


def expand_sweep(overrides: Iterable[str]) -> list[list[str]]:
    """Expand the sweeps in ``overrides`` into one override list per job (cartesian product).

    Hydra's own overrides (``hydra.*``, ``hydra/launcher=...``) are left out: they steer the launch, not a job.
    """
    parsed = [o for o in parse_overrides(overrides) if not o.is_hydra_override()]
    choices = []
    for o in parsed:
        key = o.get_key_element()
        choices.append([f"{key}={_format(v)}" for v in _values(o)])
    return [list(job) for job in itertools.product(*choices)]


def check_overrides(overrides: Iterable[str], paper: str | None = None) -> dict:
    """Validate one job's overrides without composing anything; return ``{key: value}`` of the job.

    Checks: a paper is named (or given as ``paper``) and exists; top-level keys are known and their values
    valid; ``paper.*`` keys exist in that paper's config and have the default's type.
    """
    parsed = parse_overrides(overrides)
    job: dict[str, Any] = {}
    for o in parsed:
        if o.is_hydra_override():
            continue
        key = o.get_key_element().lstrip("+~")
        if o.is_sweep_override():
            raise ConfigError(f"{o.input_line!r} is a sweep: run it with -m (multirun)")
        job[key] = (o.type.name, o.value())
    if "paper" in job:
        given = job.pop("paper")[1]
        if paper is not None and given != paper:
            raise ConfigError(f"this notebook is for paper {paper!r}, not {given!r}")
        paper = given
    if paper is None:
        raise ConfigError(f"no paper given: add paper=<slug> (one of {len(paper_names())}; `optrepro list` shows them)")
    check_paper_name(paper)
    raw = raw_paper(paper)
    top_keys = list(TOP_LEVEL) + ["paper"]
    values: dict[str, Any] = {"paper": paper}
    for key, (kind, value) in job.items():
        if key.startswith("paper."):
            parts = key.split(".")[1:]
            if parts[0] in CONTRACT_KEYS:
                raise ConfigError(f"{key} cannot be overridden: claims and scope are pre-registered in "
                                  f"conf/paper/{paper}.yaml before the claim seeds run")
            found, default = _lookup(raw, parts)
            if kind == "ADD":
                values[key] = value
                continue
            if not found:
                raise _unknown_key(key, _dotted_keys(raw, "paper"))
            if kind == "DEL":
                continue
            default = default[PROFILES[0]] if _is_profile_pair(default) else default
            values[key] = check_paper_value(key, value, default)
        elif key in TOP_LEVEL:
            if kind == "DEL":
                raise ConfigError(f"{key} cannot be deleted: it is part of every run's config")
            values[key] = TOP_LEVEL[key](value)
        elif kind == "ADD":
            raise ConfigError(f"cannot add {key!r}: top-level keys are fixed ({', '.join(top_keys)}); "
                              f"add paper parameters with +paper.<key>=...")
        else:
            raise _unknown_key(key, top_keys)
    return values


# --------------------------------------------------------------------------------------------- compose

def finalize(cfg: DictConfig, paper: str) -> DictConfig:
    """Turn the Hydra-composed config of ``paper`` into the run's config (see the module docstring).

    The result is read-only and holds ``paper.slug``.
    """
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    for key, check in TOP_LEVEL.items():
        if key not in data:
            raise ConfigError(f"config lacks the key {key!r} (conf/config.yaml must define it)")
        data[key] = check(data[key])
    unknown = sorted(set(data) - set(TOP_LEVEL) - {"paper"})
    if unknown:
        raise _unknown_key(unknown[0], list(TOP_LEVEL) + ["paper"])
    profile = data["profile"]
    params = {k: v for k, v in data["paper"].items() if k not in CONTRACT_KEYS}
    params = select_profile(params, profile)
    _check_tree("paper", params, select_profile(raw_paper(paper), profile))
    data["paper"] = {"slug": paper, **params}
    for key in ("data_dir", "out_dir"):
        data[key] = str(resolve_path(data[key]))
    if data["run_dir"] is not None:
        data["run_dir"] = str(resolve_path(data["run_dir"]))
    out = OmegaConf.create(data)
    OmegaConf.set_readonly(out, True)
    return out


def _check_tree(prefix: str, node: dict, default: dict) -> None:
    for key, value in list(node.items()):
        if key not in default:
            continue  # added with +key=value
        node[key] = check_paper_value(f"{prefix}.{key}", value, default[key])
        if isinstance(value, dict) and isinstance(default[key], dict):
            _check_tree(f"{prefix}.{key}", value, default[key])


def compose(paper: str, overrides: Iterable[str] = ()) -> DictConfig:
    """Compose and finalize the config of ``paper`` with Hydra overrides: what a notebook's setup uses.

    ``overrides`` may also name ``paper=<slug>`` (it must then be this paper).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    overrides = [o for o in overrides]
    check_overrides(overrides, paper=paper)
    overrides = [o for o in overrides if not re.match(r"^paper=", o)]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=[f"paper={paper}", *overrides])
    return finalize(cfg, paper)


def identity(cfg: DictConfig) -> dict:
    """The part of a finalized config that defines the experiment (no runner or location keys)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in RUNNER_KEYS + LOCATION_KEYS:
        data.pop(key, None)
    return data
