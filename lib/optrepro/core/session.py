"""A notebook's run: compose the config, seed every RNG, pick the device, make the output folder, and at the
end write the run record with the claims.

In a notebook::

    run = optrepro.setup("amsgrad", overrides)   # overrides from the papermill parameters cell
    cfg = run.cfg.paper                           # the paper's parameters for the chosen profile
    ...
    gen = run.generator()                         # seeded with run.seed; run.dtype is paper.dtype as a torch dtype
    run.savefig(fig, "regret")                    # PNG in the run folder
    run.finish(claims)                            # prints the verdicts, writes record.json, raises on a FAIL
"""
from __future__ import annotations

import datetime as _dt
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable

import numpy as np
import torch
import yaml
from omegaconf import DictConfig, OmegaConf

from .. import __version__
from .claims import Claims, ClaimsFailed
from .contract import has_contract, load_scope, load_specs
from .config import ConfigError, compose, identity, project_root, resolve_path
from .record import RECORD_NAME, git_commit, library_versions, write_json_atomic



def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and every CUDA device) random number generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; an explicit device that is not available is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name} was asked for but CUDA is not available here: use device=auto or device=cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={name} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps was asked for but MPS is not available here: use device=auto or device=cpu")
    return torch.device(name)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


@dataclass
class Run:
    """One execution of a paper's notebook: its config, device, output folder, figures and record."""
    cfg: DictConfig
    device: torch.device
    dir: Path
    overrides: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    figures: list[str] = field(default_factory=list)
    # taken when the run starts: a commit made while a long run is going does not describe the code it ran
    commit: str | None = field(default_factory=lambda: git_commit(project_root()))

    @property
    def paper(self) -> DictConfig:
        return self.cfg.paper

    @property
    def seed(self) -> int:
        return int(self.cfg.seed)

    @property
    def slug(self) -> str:
        return str(self.paper.slug)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded with ``seed + offset``: the explicit random stream a notebook draws its data from
        (``offset`` separates streams, e.g. data and initialization)."""
        return torch.Generator().manual_seed(self.seed + int(offset))

    @property
    def dtype(self) -> torch.dtype:
        """The paper's ``dtype`` parameter (``float32``, ``float64``) as a torch dtype; torch's default without one."""
        name = self.paper.get("dtype")
        if name is None:
            return torch.get_default_dtype()
        value = getattr(torch, str(name), None)
        if not isinstance(value, torch.dtype):
            raise ConfigError(f"invalid paper.dtype {name!r}: choose one of float32, float64, float16, bfloat16")
        return value

    def claims(self) -> Claims:
        """The paper's pre-registered claims (``conf/paper/<slug>.yaml``, ``claims:``), thresholds of this profile:
        the notebook passes them measured values and controls with ``claims.measure(id, value, control=...)``."""
        return Claims(specs=load_specs(self.slug, self.cfg.profile))

    @property
    def scope(self) -> str | None:
        """paper, reduced or miniature for this profile (``None`` for a pre-v2 notebook)."""
        return load_scope(self.slug, self.cfg.profile) if has_contract(self.slug) else None

    def show(self) -> None:
        """Print the resolved config and where this run writes."""
        print(f"paper {self.paper.slug} | profile {self.cfg.profile} | seed {self.seed} | "
              f"device {device_description(self.device)}\nrun folder: {self.dir}\n")
        print(OmegaConf.to_yaml(self.cfg))

    def savefig(self, fig, name: str, dpi: int = 90) -> Path:
        """Save a matplotlib figure as ``<run folder>/<name>.png`` (modest resolution keeps notebooks small)."""
        path = self.dir / f"{name}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        if path.name not in self.figures:
            self.figures.append(path.name)
        return path

    def record(self, claims: Claims) -> dict:
        return {
            "paper": self.paper.slug,
            "profile": self.cfg.profile,
            "seed": self.seed,
            "overrides": list(self.overrides),
            "device": device_description(self.device),
            "contract": 2 if claims.specs is not None else 1,
            "scope": self.scope,
            "claims": claims.to_records(),
            "verdict": "pass" if claims.passed else "fail",
            "wall_time_s": round(time.time() - self.started, 3),
            "started_at": _dt.datetime.fromtimestamp(self.started, _dt.timezone.utc).isoformat(timespec="seconds"),
            "figures": list(self.figures),
            "versions": library_versions(),
            "optrepro_version": __version__,
            "git_commit": self.commit,
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "identity": identity(self.cfg),
        }

    def finish(self, claims: Claims) -> dict:
        """Print the verdict table (no numbers), write the run record, and raise if any claim failed.

        Pre-registered specs that were never measured are recorded as FAIL (a missing measurement never passes).
        """
        if claims.specs is None and has_contract(self.slug):
            raise ClaimsFailed(f"conf/paper/{self.slug}.yaml pre-registers claims: build them with run.claims()")
        claims.complete()
        if not claims.items:
            raise ClaimsFailed("no claims were checked")
        print(claims.table())
        record = self.record(claims)
        write_json_atomic(self.dir / RECORD_NAME, record)
        if not claims.passed:
            failed = [f"{c.id} ({c.reason})" if c.reason else c.id for c in claims.items if c.verdict == "FAIL"]
            now_hold = [c.id for c in claims.items if c.verdict == "UNEXPECTED-PASS"]
            reasons = ([f"claims failed: {', '.join(failed)}"] if failed else []) + (
                [f"claims registered as not reproduced now hold (revisit the spec and the notebook): {', '.join(now_hold)}"]
                if now_hold else [])
            raise ClaimsFailed("; ".join(reasons))
        return record


def _override_list(overrides: Iterable[str] | str) -> list[str]:
    """A list of override strings. papermill's ``-p overrides ...`` passes a string: ``seed=1`` is one override,
    ``["seed=1", "profile=full"]`` (a YAML/JSON list) several."""
    if isinstance(overrides, str):
        text = overrides.strip()
        try:
            overrides = yaml.safe_load(text) if text.startswith("[") else [text]
        except yaml.YAMLError:
            pass
    if not isinstance(overrides, (list, tuple)) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"invalid overrides {overrides!r}: expected a list of strings such as ['seed=1', 'profile=full']")
    return list(overrides)


def setup(paper: str, overrides: Iterable[str] | str = ()) -> Run:
    """Compose ``paper``'s config with ``overrides`` (a list of Hydra overrides, or one string of them as papermill's
    ``-p`` passes it), seed every RNG, pick the device and make the run folder."""
    overrides = _override_list(overrides)
    cfg = compose(paper, overrides)
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    if cfg.run_dir is not None:
        run_dir = Path(cfg.run_dir)
    else:
        run_dir = resolve_path(cfg.out_dir) / "runs" / "interactive" / paper / f"{cfg.profile}-seed{cfg.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    run = Run(cfg=cfg, device=device, dir=run_dir, overrides=overrides)
    threads = cfg.paper.get("cpu_threads")
    if device.type == "cpu" and threads:  # the paper's cpu_threads (0 or absent: torch's default)
        torch.set_num_threads(int(threads))
    try:
        import matplotlib
        matplotlib.rcParams.update({"figure.dpi": 80, "savefig.dpi": 90, "figure.figsize": (9, 3.2)})
    except ImportError:
        pass
    return run
