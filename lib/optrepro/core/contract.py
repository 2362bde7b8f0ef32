"""A paper's pre-registered contract: its claim specs and scope, read from ``conf/paper/<slug>.yaml``.

The YAML's ``claims:`` and ``scope:`` keys are written before the claim seeds run and are not parameters: they are
kept out of ``run.paper`` and cannot be overridden. :func:`claims_table` renders them for the notebook's "What we
reproduce" section, so that each statement is written once, in the YAML.
"""
from __future__ import annotations

from typing import Any

from .claims import ClaimSpec, parse_scope, parse_specs
from .config import raw_contract


def has_contract(slug: str) -> bool:
    """Does the paper pre-register its claims (contract version 2)?"""
    return "claims" in raw_contract(slug)


def load_specs(slug: str, profile: str | None) -> list[ClaimSpec]:
    """The paper's claim specs, thresholds of ``profile`` (``None`` keeps ``{smoke, full}`` pairs)."""
    contract = raw_contract(slug)
    if "claims" not in contract:
        raise ValueError(f"conf/paper/{slug}.yaml pre-registers no claims (no claims: key): it is a pre-v2 notebook")
    return parse_specs(slug, contract["claims"], profile)


def load_scope(slug: str, profile: str | None) -> Any:
    """The paper's scope (paper, reduced, miniature) for ``profile``; ``None`` when it declares none (pre-v2)."""
    contract = raw_contract(slug)
    if "scope" not in contract:
        if "claims" in contract:
            raise ValueError(f"conf/paper/{slug}.yaml pre-registers claims but no scope: add scope: paper, reduced or miniature")
        return None
    return parse_scope(slug, contract["scope"], profile)


def _threshold(spec: ClaimSpec) -> str:
    t = spec.threshold
    if isinstance(t, dict):
        return f"{spec.op} {t['smoke']:g} (smoke), {t['full']:g} (full)"
    return f"{spec.op} {t:g}"


def _cell(text: Any) -> str:
    return "" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def claims_markdown(slug: str) -> str:
    """The paper's claims as a Markdown table (central and supporting first, then sanity), with the scope."""
    specs = load_specs(slug, None)
    scope = load_scope(slug, None)
    scope_text = (", ".join(f"{v} ({k})" for k, v in scope.items()) if isinstance(scope, dict) else scope)
    lines = [f"**Scope:** {scope_text}. Claims pre-registered in `conf/paper/{slug}.yaml`; each central or supporting "
             "claim is also measured on its control, which must fail.", "",
             "| claim | kind | must hold | threshold (from) | paper (where) | control |", "|---|---|---|---|---|---|"]
    for s in sorted(specs, key=lambda s: s.kind == "sanity"):
        control = s.control or (f"none: {s.no_control}" if s.no_control else "-")
        for profile, expect in (s.expect.items() if isinstance(s.expect, dict) else [(None, s.expect)]):
            if expect == "not-reproduced":
                control += f" *(registered: not reproduced{f' in {profile}' if profile else ''})*"
        for profile, why in (s.untestable.items() if isinstance(s.untestable, dict) else [(None, s.untestable)]):
            if why:
                control += f" *(untestable{f' in {profile}' if profile else ' here'}: {why})*"
        paper = f"{_cell(s.paper_value)} ({_cell(s.source)})" if s.paper_value is not None else _cell(s.source)
        lines.append(f"| `{s.id}` | {s.kind} | {_cell(s.statement)} | {_cell(_threshold(s))} ({_cell(s.threshold_from)}) "
                     f"| {paper} | {_cell(control)} |")
    return "\n".join(lines)


def claims_table(slug: str):
    """Display the paper's pre-registered claims in a notebook (Markdown), or return the text outside IPython."""
    text = claims_markdown(slug)
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
        if get_ipython() is not None:
            display(Markdown(text))
            return None
    except ImportError:
        pass
    return text
