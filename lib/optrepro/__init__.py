"""optrepro: a shared PyTorch library behind notebooks that reproduce papers on optimization for ML.

``optrepro.setup(slug, overrides)`` starts a notebook's run (see :mod:`optrepro.core.session`);
``run.claims()`` holds its pre-registered, falsifiable checks (see :mod:`optrepro.core.claims`), and
``optrepro.claims_table(slug)`` renders them (see :mod:`optrepro.core.contract`).
"""
__version__ = "0.1.0"

__all__ = ["Claims", "ClaimsFailed", "ConfigError", "Run", "claims_table", "setup", "__version__"]

_LAZY = {"Claims": "core.claims", "ClaimsFailed": "core.claims", "ConfigError": "core.config", "Run": "core.session",
         "setup": "core.session",
         "claims_table": "core.contract"}


def __getattr__(name):  # import torch only when a notebook needs it, not for `optrepro list`
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'optrepro' has no attribute {name!r}")
