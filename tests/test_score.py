"""The score on hand-built histories: gates, inconclusive runs, each measured term, defensive counts."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from harness.analysis import analyze
from harness.checkers.anomaly import AnomalyKind
from harness.checkers.loss import NoLostEffect
from harness.checkers.stats import Stats
from harness.checkers.base import CheckResult, Validity
from harness.expect import Expect
from harness.history.ops import OpType
from harness.score import SCORE_VERSION, WEIGHTS, measure, score
from harness.scoring import judge
from harness.testing import HistoryBuilder


def _clean_history(fault: bool = True) -> HistoryBuilder:
    h = HistoryBuilder("outbox")
    h.op("probe", OpType.OK, "clock", at=0.0, epoch_ms=1_000_000)
    for i in range(40):
        h.order(f"o{i}", 1000 + i, at=i * 0.25)
        h.charge(f"o{i}", 1000 + i)
    if fault:
        h.fault_window(3.0, 6.0)
    return h


# These histories are skeleton-shaped (orders and charges, no topic records): the score's terms are
# under test here, so only the checkers those histories can feed run; the others have their own tests.
SKELETON_CHECKERS = (Stats(), NoLostEffect())


def _scored(h: HistoryBuilder, *expected: AnomalyKind):  # type: ignore[no-untyped-def]
    history = h.build()
    expects = (Expect(history.pipeline, expected, "planted"),) if expected else ()
    (verdict,) = analyze({history.pipeline: history}, expects, SKELETON_CHECKERS)
    m = measure(history, verdict)
    return verdict, m, score(verdict, m)


def test_a_broken_safety_invariant_scores_zero_whatever_else() -> None:
    h = _clean_history()
    h.order("lost", 9900, at=4.0)
    _, m, s = _scored(h, AnomalyKind.LOST_EFFECT)
    assert s.value == 0.0 and s.gate == "failed" and "I1" in s.why
    assert m.lost_orders == 1 and m.lost_cents == 9900
    assert s.reliability == pytest.approx(40 / 41)


def test_unknown_result_gives_no_score() -> None:
    h = _clean_history(fault=False)
    h.fault_window(50.0, 60.0)  # no traffic inside: vacuous
    verdict, _, s = _scored(h)
    assert s.value is None and s.gate == "inconclusive" and "stats" in s.why


def test_clean_run_scores_between_0_and_100_with_every_term() -> None:
    h = _clean_history()
    for t, backlog in ((1.0, 0), (4.0, 30), (6.5, 10), (7.5, 0)):
        h.op("probe", OpType.OK, "lag", at=t, backlog=backlog, lag=0)
    _, m, s = _scored(h)
    assert s.gate == "passed" and s.value is not None and 0 <= s.value <= 100
    assert set(s.penalties) == set(WEIGHTS) and not s.unmeasured
    assert m.recovery_source == "lag probes" and m.recovery_s == pytest.approx(1.5)
    assert m.peak_publish_backlog == 30 and m.peak_lag == 30
    assert s.value == pytest.approx(100 - sum(s.penalties.values()), abs=0.05)


def test_latency_is_end_to_end_with_a_clock_anchor_else_client() -> None:
    h = HistoryBuilder()
    h.op("probe", OpType.OK, "clock", at=0.0, epoch_ms=1_000_000)
    h.order("o1", at=1.0)  # pay invoked at 1.02
    h.effect("o1", at_ms=1_000_000 + 1520)
    m = measure(h.build())
    assert m.latency_kind == "end-to-end" and m.latency_p99_s == pytest.approx(0.5, abs=0.001)

    h2 = HistoryBuilder().order("o1", at=1.0).charge("o1")
    m2 = measure(h2.build())
    assert m2.latency_kind == "client" and m2.latency_p50_s == pytest.approx(0.01, abs=0.001)


def test_throughput_dip_compares_ok_rates_inside_and_outside_faults() -> None:
    h = HistoryBuilder()
    for i in range(100):  # 10 orders/s outside, none acknowledged between 4 and 6 s
        t = i * 0.1
        h.order(f"o{i}", at=t, place=OpType.FAIL if 4.0 <= t <= 6.0 else OpType.OK)
    h.fault_window(4.0, 6.0)
    m = measure(h.build())
    assert m.throughput_dip == pytest.approx(1.0, abs=0.05)
    assert m.throughput and max(v for _, v in m.throughput if v is not None) > 0


def test_counts_of_other_checkers_are_read_defensively() -> None:
    history = _clean_history().build()
    i2 = CheckResult("exactly-once-effect", "I2", Validity.INVALID, "2 charged twice",
                     MappingProxyType({"duplicates": 2, "duplicate_cents": 2500}))
    i3 = CheckResult("per-entity-order", "I3", Validity.VALID, "in order", MappingProxyType({}))
    i7 = CheckResult("bounded-recovery", "I7", Validity.VALID, "ok", MappingProxyType({"recovery_s": "n/a"}))
    verdict = judge("outbox", (i2, i3, i7))
    m = measure(history, verdict)
    assert (m.duplicate_effects, m.duplicate_cents, m.duplicates_source) == (2, 2500, "I2")
    assert m.ordering_violations == 0
    assert m.recovery_source != "I7"  # a non-numeric count is ignored, not trusted
    assert score(verdict, m).value == 0.0


def test_duplicate_charges_in_the_effects_close_the_gate_when_no_i2_ran() -> None:
    h = _clean_history()
    h.charge("o1", 1001)
    verdict, m, s = _scored(h)
    assert verdict.validity is Validity.VALID  # the verdict is the checkers'; the score sees the money
    assert m.duplicate_effects == 1 and m.duplicate_cents == 1001 and m.duplicates_source == "effects"
    assert s.value == 0.0 and s.gate == "failed"


def test_not_recovered_costs_the_full_recovery_term() -> None:
    h = _clean_history()
    h.op("probe", OpType.INFO, "drain", at=20.0)
    _, m, s = _scored(h)
    assert m.recovered is False and s.penalties["recovery"] == WEIGHTS["recovery"]


def test_score_json_carries_its_version() -> None:
    _, _, s = _scored(_clean_history())
    assert s.to_json()["version"] == SCORE_VERSION
