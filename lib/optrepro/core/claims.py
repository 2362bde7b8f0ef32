"""Claims: the named, falsifiable checks that end every notebook (the notebook contract, version 2).

Each claim is pre-registered in the paper's YAML (``conf/paper/<slug>.yaml``, key ``claims:``) before its claim seeds
run: its kind, statement, where the paper states it (and the paper's own number), the comparison
``measured <op> threshold``, where the threshold comes from, and the *control*. The notebook only passes measured
values::

    claims = run.claims()                                    # the specs, thresholds of the running profile
    claims.measure("sns-fewer-iterations", ratio, control=sinkhorn_vs_itself)
    claims.measure("plan-is-feasible", marginal_error)       # a sanity check: no control

Kinds. ``central`` (a headline quantitative claim of the paper, checked against the method the paper compares with),
``supporting`` (another claim the paper states) and ``sanity`` (identities, by-construction properties, solver
agreement: anything that fails only on a bug). Sanity checks are printed apart and never count toward a status.

Controls. A central or supporting claim is also measured, through the same code, on a deliberately wrong or trivial
variant (the untrained model, the baseline in place of the method, a sublinear sequence for a rate test). The control
must *fail* the same comparison; when it passes, the check cannot tell right from wrong at this scale and the verdict
is INCONCLUSIVE. A claim for which no control is possible says why (``no_control:``).

Verdicts, per run (see :func:`verdict`): PASS; FAIL (fails the notebook); NOT-REPRODUCED (a claim registered with
``expect: not-reproduced`` that fails while its control fails too); UNEXPECTED-PASS (such a claim now holds: fails
the notebook, revisit it); INCONCLUSIVE (the control passed, or the spec declares the claim ``untestable``). A missing
or NaN measurement, or a missing or NaN control, FAILs: nothing defaults to a passing value.

A measured sequence (one value per stream or problem) must satisfy the comparison in every element, and its worst
element is reported; a control sequence is rejected only if every element fails.

Notebooks written before version 2 use :meth:`Claims.check` (the spec passed inline, no kind, no control); their
catalog status is ``unverified`` until they are converted.
"""
from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from typing import Any

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
KINDS = ("central", "supporting", "sanity")
EXPECT = ("pass", "not-reproduced")
SCOPES = ("paper", "reduced", "miniature")
VERDICTS = ("PASS", "FAIL", "NOT-REPRODUCED", "INCONCLUSIVE", "UNEXPECTED-PASS")
#: verdicts that fail a notebook
FAILING = ("FAIL", "UNEXPECTED-PASS")
SPEC_FIELDS = {  # field -> required
    "kind": True, "statement": True, "source": True, "op": True, "threshold": True, "threshold_from": True,
    "paper_value": False, "control": False, "no_control": False, "expect": False, "untestable": False,
}


class ClaimsFailed(AssertionError):
    """Raised at the end of a notebook when a claim FAILs or UNEXPECTEDLY PASSes, so that a batch run fails loudly."""


class SpecError(ValueError):
    """A malformed claim spec in a paper's YAML (one line naming the paper, claim, bad value and the valid choices)."""


# --------------------------------------------------------------------------------------------- specs

@dataclass(frozen=True)
class ClaimSpec:
    """One pre-registered claim of a paper (``conf/paper/<slug>.yaml``, ``claims:``), for one profile."""
    id: str
    kind: str
    statement: str
    source: str
    op: str
    threshold: float
    threshold_from: str
    paper_value: Any = None
    control: str | None = None      # what the control is
    no_control: str | None = None   # why no control is possible
    expect: str = "pass"            # or "not-reproduced" (a registered failure); {smoke, full} pairs allowed
    untestable: str | None = None   # why this setup cannot test the claim: INCONCLUSIVE; {smoke, full} pairs allowed

    @property
    def needs_control(self) -> bool:
        return self.kind != "sanity" and self.no_control is None


def _pick(value: Any, profile: str | None) -> Any:
    """The value of ``profile`` from a ``{smoke: a, full: b}`` pair; ``profile=None`` keeps the pair."""
    if isinstance(value, dict) and set(value) == {"smoke", "full"} and profile is not None:
        return value[profile]
    return value


def parse_specs(slug: str, raw: Any, profile: str | None) -> list[ClaimSpec]:
    """Validate the ``claims:`` mapping of a paper's YAML and return its specs (thresholds of ``profile``).

    With ``profile=None`` a threshold written ``{smoke: a, full: b}`` is kept as that dict (for rendering).
    """
    where = f"conf/paper/{slug}.yaml"
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"{where}: claims must be a non-empty mapping of claim id -> spec")
    specs = []
    for cid, spec in raw.items():
        if not isinstance(spec, dict):
            raise SpecError(f"{where}: claim {cid!r} must be a mapping with the fields {', '.join(SPEC_FIELDS)}")
        unknown = sorted(set(spec) - set(SPEC_FIELDS))
        if unknown:
            raise SpecError(f"{where}: claim {cid!r} has unknown field {unknown[0]!r}: choose from {', '.join(SPEC_FIELDS)}")
        missing = [k for k, required in SPEC_FIELDS.items() if required and spec.get(k) in (None, "")]
        if missing:
            raise SpecError(f"{where}: claim {cid!r} lacks {', '.join(missing)}")
        if spec["kind"] not in KINDS:
            raise SpecError(f"{where}: claim {cid!r} has unknown kind {spec['kind']!r}: choose one of {', '.join(KINDS)}")
        if spec["op"] not in OPERATORS:
            raise SpecError(f"{where}: claim {cid!r} has unknown comparison {spec['op']!r}: choose one of {', '.join(OPERATORS)}")
        expect = _pick(spec.get("expect", "pass"), profile)
        untestable = _pick(spec.get("untestable"), profile)
        if isinstance(expect, dict) or isinstance(untestable, dict):  # kept per profile for rendering (profile=None)
            for e in (expect.values() if isinstance(expect, dict) else [expect]):
                if e not in EXPECT:
                    raise SpecError(f"{where}: claim {cid!r} has unknown expect {e!r}: choose one of {', '.join(EXPECT)}")
        elif expect not in EXPECT:
            raise SpecError(f"{where}: claim {cid!r} has unknown expect {expect!r}: choose one of {', '.join(EXPECT)}")
        if spec["kind"] != "sanity" and not (spec.get("control") or spec.get("no_control")):
            raise SpecError(f"{where}: {spec['kind']} claim {cid!r} needs a control (or no_control: the reason)")
        if spec["kind"] == "sanity" and (spec.get("control") or expect != "pass" or untestable):
            raise SpecError(f"{where}: sanity claim {cid!r} takes no control, expect or untestable (it fails only on a bug)")
        threshold = _pick(spec["threshold"], profile)
        for t in (threshold.values() if isinstance(threshold, dict) else [threshold]):
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                raise SpecError(f"{where}: claim {cid!r} has threshold {t!r}: expected a number or {{smoke: a, full: b}}")
        threshold = {k: float(v) for k, v in threshold.items()} if isinstance(threshold, dict) else float(threshold)
        specs.append(ClaimSpec(id=str(cid), kind=spec["kind"], statement=str(spec["statement"]),
                               source=str(spec["source"]), op=spec["op"], threshold=threshold,
                               threshold_from=str(spec["threshold_from"]), paper_value=spec.get("paper_value"),
                               control=spec.get("control"), no_control=spec.get("no_control"), expect=expect,
                               untestable=untestable))
    if not any(s.kind == "central" for s in specs):
        raise SpecError(f"{where}: no central claim: every notebook checks at least one headline claim of its paper")
    return specs


def parse_scope(slug: str, raw: Any, profile: str | None) -> Any:
    """The ``scope:`` of a paper's YAML for ``profile`` (paper, reduced or miniature)."""
    value = _pick(raw, profile) if profile else raw
    for v in (value.values() if isinstance(value, dict) else [value]):
        if v not in SCOPES:
            raise SpecError(f"conf/paper/{slug}.yaml: unknown scope {v!r}: choose one of {', '.join(SCOPES)}")
    return value


# --------------------------------------------------------------------------------------------- measurements

def _as_floats(measured: Any) -> list[float]:
    if measured is None:
        return [math.nan]
    if hasattr(measured, "detach"):
        measured = measured.detach().cpu().reshape(-1).tolist()
    elif hasattr(measured, "tolist"):
        measured = measured.tolist()
    if isinstance(measured, (list, tuple)):
        flat = []
        for m in measured:
            flat += _as_floats(m)
        return flat
    return [float(measured)]


def _holds(values: list[float], op: str, threshold: float) -> list[bool]:
    """Per element: does it satisfy the comparison? NaN never does."""
    return [not math.isnan(v) and OPERATORS[op](v, threshold) for v in values]


def _worst(values: list[float], op: str) -> float:
    """The element farthest on the failing side (NaN first: a NaN anywhere is the worst)."""
    if any(math.isnan(v) for v in values):
        return math.nan
    return min(values) if op in (">", ">=") else max(values)


def _best(values: list[float], op: str) -> float:
    """The element closest to passing (for a control: the one that would make the check inconclusive)."""
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values) if op in (">", ">=") else min(values)


def verdict(spec: ClaimSpec, values: list[float] | None, control: list[float] | None) -> tuple[str, str]:
    """(verdict, reason) of one claim in one run; the rules are in the module docstring."""
    if not values or any(math.isnan(v) for v in values):
        return "FAIL", "no measurement, or a NaN one"
    passed = all(_holds(values, spec.op, spec.threshold))
    if spec.kind == "sanity":
        return ("PASS", "") if passed else ("FAIL", "a sanity check failed: a bug")
    if spec.needs_control:
        if not control or any(math.isnan(v) for v in control):
            return "FAIL", "no control measurement, or a NaN one"
        if spec.untestable:
            return "INCONCLUSIVE", f"untestable here: {spec.untestable}"
        if any(_holds(control, spec.op, spec.threshold)):
            return "INCONCLUSIVE", "the control passes too: the check cannot discriminate at this scale"
    elif spec.untestable:
        return "INCONCLUSIVE", f"untestable here: {spec.untestable}"
    if spec.expect == "not-reproduced":
        return ("UNEXPECTED-PASS", "registered as not reproduced, now holds") if passed else ("NOT-REPRODUCED", "")
    return ("PASS", "") if passed else ("FAIL", "the claim does not hold")


@dataclass
class Claim:
    """One claim's result in one run."""
    id: str
    statement: str
    op: str
    threshold: float
    measured: float              # the worst element when a sequence was measured
    values: list[float]          # every measured element
    verdict: str
    kind: str | None = None      # central, supporting, sanity (None: a pre-v2 claim)
    source: str = ""             # where in the paper (figure, table, theorem)
    paper_value: Any = None      # the paper's own number, where it reports one
    control: float | None = None         # the control's element closest to passing
    control_values: list[float] | None = None
    control_what: str | None = None      # what the control is
    reason: str = ""             # why the verdict, where it is not a plain PASS
    threshold_from: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict in ("PASS", "UNEXPECTED-PASS")

    @property
    def as_expected(self) -> bool:
        return self.verdict not in FAILING


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


@dataclass
class Claims:
    """The claims of one notebook: bound to its pre-registered specs (version 2), or checked inline (pre-v2)."""
    specs: list[ClaimSpec] | None = None
    items: list[Claim] = field(default_factory=list)

    # ------------------------------------------------------------------ version 2
    def measure(self, id: str, measured: Any, control: Any = None) -> Claim:
        """Record the measured value (and the control's) of the pre-registered claim ``id``."""
        if self.specs is None:
            raise ValueError("these claims have no specs: use run.claims() for the specs of conf/paper/<slug>.yaml")
        spec = {s.id: s for s in self.specs}.get(id)
        if spec is None:
            raise ValueError(f"unknown claim {id!r}: the specs hold {', '.join(s.id for s in self.specs)}")
        if any(c.id == id for c in self.items):
            raise ValueError(f"claim {id!r} was measured twice")
        if spec.kind == "sanity" and control is not None:
            raise ValueError(f"claim {id!r} is a sanity check: it takes no control")
        values = _as_floats(measured)
        controls = _as_floats(control) if control is not None else None
        result, reason = verdict(spec, values, controls)
        claim = Claim(id, spec.statement, spec.op, spec.threshold, _worst(values, spec.op) if values else math.nan,
                      values, result, kind=spec.kind, source=spec.source, paper_value=spec.paper_value,
                      control=_best(controls, spec.op) if controls else None, control_values=controls,
                      control_what=spec.control or (f"none: {spec.no_control}" if spec.no_control else None),
                      reason=reason, threshold_from=spec.threshold_from)
        self.items.append(claim)
        return claim

    def complete(self) -> None:
        """Record every spec that was never measured as a FAIL (a missing measurement never passes)."""
        if self.specs is None:
            return
        done = {c.id for c in self.items}
        for spec in self.specs:
            if spec.id not in done:
                result, reason = verdict(spec, None, None)
                self.items.append(Claim(spec.id, spec.statement, spec.op, spec.threshold, math.nan, [], result,
                                        kind=spec.kind, source=spec.source, paper_value=spec.paper_value,
                                        control_what=spec.control, reason="never measured", threshold_from=spec.threshold_from))
        order = {s.id: i for i, s in enumerate(self.specs)}
        self.items.sort(key=lambda c: order[c.id])

    # ------------------------------------------------------------------ pre-v2 notebooks
    def check(self, id: str, statement: str, measured: Any, op: str, threshold: float, *,
              source: str = "", paper_value: Any = None, reproduces: bool = True) -> Claim:
        """Pre-v2: record ``measured <op> threshold`` with the spec inline (no kind, no control).

        ``reproduces=False`` marks a claim known not to hold at our scale: NOT-REPRODUCED while it fails,
        UNEXPECTED-PASS if it starts to hold.
        """
        if self.specs is not None:
            raise ValueError(f"claim {id!r}: this notebook's claims are pre-registered in its YAML: use measure()")
        if op not in OPERATORS:
            raise ValueError(f"unknown comparison {op!r}: choose one of {', '.join(OPERATORS)}")
        if any(c.id == id for c in self.items):
            raise ValueError(f"duplicate claim id {id!r}")
        values = _as_floats(measured)
        if not values:
            raise ValueError(f"claim {id!r} measured nothing")
        passed = all(_holds(values, op, threshold))
        result = ("UNEXPECTED-PASS" if passed else "NOT-REPRODUCED") if not reproduces else ("PASS" if passed else "FAIL")
        claim = Claim(id, statement, op, float(threshold), _worst(values, op), values, result, source=source,
                      paper_value=paper_value)
        self.items.append(claim)
        return claim

    # ------------------------------------------------------------------ summaries
    @property
    def passed(self) -> bool:
        """No claim FAILs or UNEXPECTEDLY PASSes."""
        return bool(self.items) and all(c.as_expected for c in self.items)

    def counts(self) -> dict[str, tuple[int, int]]:
        """``{kind: (passed, total)}`` for central, supporting and sanity."""
        return count_by_kind([asdict(c) for c in self.items])

    def table(self, numbers: bool = False) -> str:
        """The verdicts (central and supporting, then sanity apart); with ``numbers`` the measured value, the
        control's, the threshold and the paper's value beside each."""
        if self.specs is None:
            return self._lines(self.items, numbers)
        counted = [c for c in self.items if c.kind != "sanity"]
        sanity = [c for c in self.items if c.kind == "sanity"]
        n = self.counts()
        head = (f"claims: central {n['central'][0]}/{n['central'][1]} PASS, "
                f"supporting {n['supporting'][0]}/{n['supporting'][1]} PASS")
        out = [head, self._lines(counted, numbers)]
        if sanity:
            out += [f"sanity checks (not counted): {n['sanity'][0]}/{n['sanity'][1]} PASS", self._lines(sanity, numbers)]
        return "\n".join(out)

    @staticmethod
    def _lines(items: list[Claim], numbers: bool) -> str:
        width = max((len(c.id) for c in items), default=2)
        pad = max((len(c.verdict) for c in items), default=4)
        kpad = max((len(c.kind or "") for c in items), default=0)
        lines = []
        for c in items:
            kind = f"{c.kind:<{kpad}}  " if kpad else ""
            line = f"{c.verdict:<{pad}}  {kind}{c.id:<{width}}  {c.statement}"
            if numbers:
                paper = "" if c.paper_value is None else f"; paper: {c.paper_value}"
                src = f" [{c.source}]" if c.source else ""
                ctrl = f"; control {_fmt(c.control)}" if c.control is not None else ""
                line += f"\n      measured {_fmt(c.measured)} {c.op} {c.threshold:.6g}{ctrl}{paper}{src}"
                if c.reason:
                    line += f"\n      ({c.reason})"
            lines.append(line)
        return "\n".join(lines)

    def to_records(self) -> list[dict]:
        return [asdict(c) for c in self.items]


def count_by_kind(claims: list[dict]) -> dict[str, tuple[int, int]]:
    """``{kind: (PASS count, total)}`` over claim records (pre-v2 claims, kind None, count as ``unkinded``)."""
    out = {k: (0, 0) for k in (*KINDS, "unkinded")}
    for c in claims:
        k = c.get("kind") or "unkinded"
        p, t = out[k]
        out[k] = (p + (c.get("verdict") == "PASS"), t + 1)
    return out


def status_from_verdicts(central: list[str]) -> str:
    """The status of a notebook from the verdicts of its central claims (``../shared/GUIDE.md`` section 4).

    ``reproduced``: every central claim PASS; ``partial``: some PASS and some NOT-REPRODUCED or INCONCLUSIVE;
    ``not-reproduced``: no PASS, some NOT-REPRODUCED; ``inconclusive``: every central claim INCONCLUSIVE. A failing
    verdict (FAIL, UNEXPECTED-PASS) or no central claim leaves nothing to derive: ``unverified``.
    """
    if not central or any(v in FAILING or v not in VERDICTS for v in central):
        return "unverified"
    if all(v == "PASS" for v in central):
        return "reproduced"
    if any(v == "PASS" for v in central):
        return "partial"
    if any(v == "NOT-REPRODUCED" for v in central):
        return "not-reproduced"
    return "inconclusive"


def claims_status(claims: list[dict]) -> str:
    """The status of one run (or of aggregated evidence) from its claim records."""
    if not claims or any(c.get("kind") is None or c.get("verdict") in FAILING for c in claims):
        return "unverified"
    return status_from_verdicts([c["verdict"] for c in claims if c.get("kind") == "central"])
