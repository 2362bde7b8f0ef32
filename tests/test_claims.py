"""Claims: comparisons, sequences, the verdict table without numbers."""
import math

import pytest
import torch

from optrepro.core.claims import Claims


def test_scalar_and_sequence_claims():
    c = Claims()
    assert c.check("a", "small", 0.5, "<", 1.0).passed
    assert not c.check("b", "every stream large", [0.95, 0.85, 0.99], ">=", 0.9).passed
    worst = c.check("c", "every stream small", torch.tensor([[-0.99], [-0.91]]), "<=", -0.9)
    assert worst.passed and worst.measured == pytest.approx(-0.91)
    assert c.items[1].measured == pytest.approx(0.85)
    assert not c.passed


def test_nan_never_passes():
    assert not Claims().check("n", "nan", math.nan, "<", 1.0).passed
    assert not Claims().check("n", "nan", [0.0, math.nan], "<", 1.0).passed


def test_table_has_verdicts_without_numbers_and_numbers_on_request():
    c = Claims()
    c.check("first", "x below 1", 0.123456, "<", 1.0, paper_value=0.1, source="Fig. 1")
    c.check("second", "y above 2", 1.5, ">", 2.0)
    table = c.table()
    assert table.splitlines() == ["PASS  first   x below 1", "FAIL  second  y above 2"]
    assert "0.123456" not in table
    detailed = c.table(numbers=True)
    assert "measured 0.123456 < 1; paper: 0.1 [Fig. 1]" in detailed


def test_bad_claims_are_rejected():
    c = Claims()
    c.check("a", "x", 1, "<", 2)
    with pytest.raises(ValueError, match="unknown comparison '=<': choose one of"):
        c.check("b", "x", 1, "=<", 2)
    with pytest.raises(ValueError, match="duplicate claim id 'a'"):
        c.check("a", "x", 1, "<", 2)
    with pytest.raises(ValueError, match="measured nothing"):
        c.check("e", "x", [], "<", 2)


def test_a_claim_known_not_to_reproduce_is_reported_and_fails_loudly_if_it_starts_to_hold():
    c = Claims()
    c.check("holds", "x small", 0.5, "<", 1.0)
    known = c.check("paper-only", "the paper's gap", 0.2, ">=", 10.0, reproduces=False)
    assert not known.passed and known.as_expected and known.verdict == "NOT-REPRODUCED"
    assert c.passed  # the notebook runs through: the failure is the recorded finding
    assert c.table().splitlines() == ["PASS            holds       x small",
                                      "NOT-REPRODUCED  paper-only  the paper's gap"]
    now = Claims().check("paper-only", "the paper's gap", 12.0, ">=", 10.0, reproduces=False)
    assert now.passed and not now.as_expected and now.verdict == "UNEXPECTED-PASS"


# --------------------------------------------------------------------------- contract version 2

from optrepro.core.claims import SpecError, claims_status, parse_specs, status_from_verdicts  # noqa: E402

SPECS = {
    "fast": {"kind": "central", "statement": "the method is 10x faster", "source": "Table 1", "paper_value": "12x",
             "op": ">=", "threshold": {"smoke": 10.0, "full": 11.0}, "threshold_from": "paper's 12x less 20%",
             "control": "the baseline against itself (1x)"},
    "gap": {"kind": "supporting", "statement": "gap closes", "source": "Fig. 2", "op": "<=", "threshold": 1e-3,
            "threshold_from": "ours", "control": "untrained model", "expect": "not-reproduced"},
    "feasible": {"kind": "sanity", "statement": "plan is feasible", "source": "ours", "op": "<=", "threshold": 1e-9,
                 "threshold_from": "float64 round-off"},
}


def v2(profile="smoke"):
    return Claims(specs=parse_specs("probe", SPECS, profile))


def test_specs_pick_the_profile_threshold_and_reject_bad_specs():
    assert [s.threshold for s in parse_specs("p", SPECS, "full")] == [11.0, 1e-3, 1e-9]
    assert parse_specs("p", SPECS, None)[0].threshold == {"smoke": 10.0, "full": 11.0}  # kept for rendering
    bad = lambda **kw: {"fast": {**SPECS["fast"], **kw}}  # noqa: E731
    with pytest.raises(SpecError, match="unknown kind 'headline': choose one of central, supporting, sanity"):
        parse_specs("p", bad(kind="headline"), "smoke")
    with pytest.raises(SpecError, match="needs a control"):
        parse_specs("p", bad(control=None), "smoke")
    with pytest.raises(SpecError, match="unknown field 'thresold'"):
        parse_specs("p", bad(thresold=1), "smoke")
    with pytest.raises(SpecError, match="lacks threshold_from"):
        parse_specs("p", bad(threshold_from=""), "smoke")
    with pytest.raises(SpecError, match="no central claim"):
        parse_specs("p", {"feasible": SPECS["feasible"]}, "smoke")
    with pytest.raises(SpecError, match="sanity claim 'feasible' takes no control"):
        parse_specs("p", {**SPECS, "feasible": {**SPECS["feasible"], "control": "x"}}, "smoke")


def test_a_control_that_passes_makes_the_claim_inconclusive():
    c = v2()
    assert c.measure("fast", 12.0, control=1.0).verdict == "PASS"
    c = v2()
    inconclusive = c.measure("fast", 12.0, control=[1.0, 10.5])  # one element of the control passes
    assert inconclusive.verdict == "INCONCLUSIVE" and "cannot discriminate" in inconclusive.reason
    assert inconclusive.control == 10.5  # the control element closest to passing is reported


def test_missing_or_nan_measurements_and_controls_fail():
    assert v2().measure("fast", math.nan, control=1.0).verdict == "FAIL"
    assert v2().measure("fast", None, control=1.0).verdict == "FAIL"
    assert v2().measure("fast", 12.0).verdict == "FAIL"                 # central without its control
    assert v2().measure("fast", 12.0, control=math.nan).verdict == "FAIL"  # a NaN control does not "fail" its way to PASS
    c = v2()
    c.measure("fast", 12.0, control=1.0)
    c.complete()  # "gap" and "feasible" were never measured
    assert [(x.id, x.verdict) for x in c.items] == [("fast", "PASS"), ("gap", "FAIL"), ("feasible", "FAIL")]
    assert not c.passed


def test_registered_failures_and_sanity_checks():
    c = v2()
    assert c.measure("gap", 0.5, control=0.9).verdict == "NOT-REPRODUCED"
    assert v2().measure("gap", 1e-4, control=0.9).verdict == "UNEXPECTED-PASS"
    assert v2().measure("gap", 0.5, control=1e-4).verdict == "INCONCLUSIVE"
    assert v2().measure("feasible", 1e-12).verdict == "PASS"
    assert v2().measure("feasible", 1e-3).verdict == "FAIL"
    with pytest.raises(ValueError, match="sanity check: it takes no control"):
        v2().measure("feasible", 1e-12, control=1.0)
    with pytest.raises(ValueError, match="unknown claim 'fats'"):
        v2().measure("fats", 1.0, control=1.0)
    with pytest.raises(ValueError, match="use measure"):
        v2().check("fast", "x", 1.0, "<", 2.0)


def test_untestable_claims_are_inconclusive_whatever_is_measured():
    specs = {"fast": {**SPECS["fast"], "untestable": "2-core shared CPU: timings too noisy"}}
    c = Claims(specs=parse_specs("p", specs, "smoke"))
    assert c.measure("fast", 100.0, control=1.0).verdict == "INCONCLUSIVE"


def test_the_verdict_table_keeps_sanity_apart_and_counts_by_kind():
    c = v2()
    c.measure("fast", 12.0, control=1.0)
    c.measure("gap", 0.5, control=0.9)
    c.measure("feasible", 0.0)
    lines = c.table().splitlines()
    assert lines[0] == "claims: central 1/1 PASS, supporting 0/1 PASS"
    assert lines[1].startswith("PASS            central     fast")
    assert lines[3] == "sanity checks (not counted): 1/1 PASS"
    assert "control 1" in c.table(numbers=True)


@pytest.mark.parametrize("central, status", [
    (["PASS", "PASS"], "reproduced"), (["PASS", "NOT-REPRODUCED"], "partial"), (["PASS", "INCONCLUSIVE"], "partial"),
    (["NOT-REPRODUCED", "INCONCLUSIVE"], "not-reproduced"), (["INCONCLUSIVE"], "inconclusive"),
    (["PASS", "FAIL"], "unverified"), ([], "unverified")])
def test_status_from_central_verdicts(central, status):
    assert status_from_verdicts(central) == status


def test_sanity_and_supporting_claims_never_decide_the_status_but_a_failing_one_blocks_it():
    claims = [{"kind": "central", "verdict": "PASS"}, {"kind": "supporting", "verdict": "NOT-REPRODUCED"},
              {"kind": "sanity", "verdict": "PASS"}]
    assert claims_status(claims) == "reproduced"
    assert claims_status(claims + [{"kind": "sanity", "verdict": "FAIL"}]) == "unverified"
    assert claims_status([{"kind": None, "verdict": "PASS"}]) == "unverified"  # a pre-v2 notebook


def test_untestable_and_expect_may_differ_by_profile():
    specs = {"fast": {**SPECS["fast"], "untestable": {"smoke": "too small here", "full": None},
                      "expect": {"smoke": "pass", "full": "not-reproduced"}}}
    smoke = Claims(specs=parse_specs("p", specs, "smoke"))
    assert smoke.measure("fast", 100.0, control=1.0).verdict == "INCONCLUSIVE"
    full = Claims(specs=parse_specs("p", specs, "full"))
    assert full.measure("fast", 1.0, control=1.0).verdict == "NOT-REPRODUCED"
    with pytest.raises(SpecError, match="unknown expect 'fails'"):
        parse_specs("p", {"fast": {**SPECS["fast"], "expect": {"smoke": "pass", "full": "fails"}}}, None)
