"""The checkers on hand-built histories: each anomaly caught, each clean history passed."""

from __future__ import annotations

from harness.attribution import Attribution
from harness.checkers.anomaly import Anomaly, AnomalyKind
from harness.checkers.base import CheckResult, Validity, merge, run_checker
from harness.checkers.loss import NoLostEffect
from harness.checkers.stats import Stats, fault_windows
from harness.expect import Expect
from harness.history.ops import History, OpType
from harness.scoring import Outcome, exit_code, judge
from harness.testing import HistoryBuilder


def test_every_acknowledged_order_charged_is_valid() -> None:
    h = HistoryBuilder().order("o1").order("o2").charge("o1").charge("o2").build()
    result = NoLostEffect().check(h)
    assert result.validity is Validity.VALID
    assert result.counts["acknowledged_orders"] == 2 and result.counts["lost"] == 0


def test_acknowledged_order_without_charge_is_lost_with_its_amount_and_chain() -> None:
    h = HistoryBuilder().order("o1", 1500).order("o2", 2500).charge("o1", 1500).build()
    result = NoLostEffect().check(h)
    assert result.validity is Validity.INVALID
    assert result.counts["lost"] == 1 and result.counts["lost_cents"] == 2500
    (example,) = result.examples
    assert example["order_id"] == "o2"
    stages = [step["stage"] for step in example["chain"]]  # type: ignore[index]
    assert "pay ok" in stages and "committed" in stages


def test_unknown_payment_outcome_requires_no_charge() -> None:
    h = HistoryBuilder().order("o1").order("o2", pay=OpType.INFO).charge("o1").build()
    assert NoLostEffect().check(h).validity is Validity.VALID


def test_failed_payment_requires_no_charge() -> None:
    h = HistoryBuilder().order("o1").order("o2", pay=OpType.FAIL).charge("o1").build()
    assert NoLostEffect().check(h).validity is Validity.VALID


def test_no_final_observation_is_unknown_not_valid() -> None:
    h = HistoryBuilder().order("o1").build()
    assert NoLostEffect().check(h).validity is Validity.UNKNOWN


def test_nothing_acknowledged_is_vacuous() -> None:
    h = HistoryBuilder().order("o1", place=OpType.FAIL).no_effects_observed().build()
    assert NoLostEffect().check(h).validity is Validity.UNKNOWN


def test_stats_valid_with_traffic_inside_an_effective_fault() -> None:
    h = HistoryBuilder().order("o1", at=0.5).fault_window(1.0, 3.0).order("o2", at=2.0).order("o3", at=4.0).build()
    result = Stats().check(h)
    assert result.validity is Validity.VALID, result.message
    assert result.counts["ops_during:outage@relay->kafka"] == 2  # place and pay invokes of o2


def test_stats_reports_whether_the_workload_kept_its_schedule() -> None:
    h = (HistoryBuilder().order("o1", at=0.5)
         .op("probe", OpType.OK, "workload", at=5.0, clients=256, max_start_late_s=1.25).build())
    result = Stats().check(h)
    assert (result.counts["clients"], result.counts["max_start_late_s"]) == (256, 1.25)


def test_fault_window_without_traffic_is_vacuous() -> None:
    h = HistoryBuilder().order("o1", at=0.5).fault_window(1.0, 3.0).order("o3", at=4.0).build()
    result = Stats().check(h)
    assert result.validity is Validity.UNKNOWN and "vacuous" in result.message


def test_fault_that_failed_to_inject_is_unknown() -> None:
    h = HistoryBuilder().fault_window(1.0, 3.0, injected=False).order("o2", at=2.0).build()
    result = Stats().check(h)
    assert result.validity is Validity.UNKNOWN and "injection failed" in result.message


def test_fault_without_observable_effect_is_unknown() -> None:
    h = HistoryBuilder().fault_window(1.0, 3.0, effect=0).order("o2", at=2.0).build()
    result = Stats().check(h)
    assert result.validity is Validity.UNKNOWN and "no observable effect" in result.message


def test_fault_window_never_healed_is_still_a_window() -> None:
    h = HistoryBuilder().op("nemesis", OpType.INVOKE, "inject", at=1.0, id=0, fault="outage", target="x")
    h.op("nemesis", OpType.OK, "inject", at=1.0, id=0, fault="outage", target="x")
    (window,) = fault_windows(h.build())
    assert window.end_s is None and window.injected


def test_crashing_checker_becomes_unknown() -> None:
    class Broken:
        name = "broken"
        invariant = "I1"

        def check(self, history: History) -> CheckResult:
            raise KeyError("boom")

    result = run_checker(Broken(), HistoryBuilder().build())
    assert result.validity is Validity.UNKNOWN and "boom" in result.message


def test_merge_is_worst_first() -> None:
    assert merge([Validity.VALID, Validity.UNKNOWN]) is Validity.UNKNOWN
    assert merge([Validity.UNKNOWN, Validity.INVALID, Validity.VALID]) is Validity.INVALID
    assert merge([Validity.VALID]) is Validity.VALID
    assert merge([]) is Validity.UNKNOWN


def _result(validity: Validity, invariant: str | None = "I1") -> CheckResult:
    lost = (Anomaly(AnomalyKind.LOST_EFFECT, "o1"),) if validity is Validity.INVALID else ()
    return CheckResult("c", invariant, validity, "m", anomalies=lost)


def _explained(result: CheckResult) -> tuple[Attribution, ...]:
    return tuple(Attribution(a, "outage@app->kafka", "in flight") for a in result.anomalies)


def test_expected_invalid_is_met_and_unexpected_invalid_is_not() -> None:
    lost = _result(Validity.INVALID)
    expect = (Expect("direct", (AnomalyKind.LOST_EFFECT,), "direct loses"),)
    assert judge("direct", (lost,), expect, _explained(lost)).outcome is Outcome.MET
    assert judge("outbox", (lost,), (), _explained(lost)).outcome is Outcome.UNEXPECTED
    # A planted defect the harness did not catch is an unmet expectation, not a pass.
    assert judge("direct", (_result(Validity.VALID),), expect).outcome is Outcome.UNEXPECTED


def test_unknown_is_inconclusive_and_exit_codes_follow_outcomes() -> None:
    met = judge("a", (_result(Validity.VALID),))
    unknown = judge("b", (_result(Validity.UNKNOWN, None),))
    broken = judge("c", (_result(Validity.INVALID),))
    assert unknown.outcome is Outcome.INCONCLUSIVE
    assert exit_code((met,)) == 0
    assert exit_code((met, unknown)) == 2
    assert exit_code((met, unknown, broken)) == 1
    assert exit_code(()) == 2
