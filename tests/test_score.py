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


def test_counts_are_read_through_their_typed_records_and_anything_else_is_not_trusted() -> None:
    history = _clean_history().build()
    i2 = CheckResult("exactly-once-effect", "I2", Validity.INVALID, "2 charged twice",
                     MappingProxyType({"duplicates": 2, "duplicate_cents": 2500}))  # v1's names: no checker emits them
    i3 = CheckResult("per-entity-order", "I3", Validity.VALID, "in order", MappingProxyType({}))
    i7 = CheckResult("bounded-recovery", "I7", Validity.VALID, "ok", MappingProxyType({"recovery_s": "n/a"}))
    verdict = judge("outbox", (i2, i3, i7))
    m = measure(history, verdict)
    assert m.duplicates_source == "effects"  # no DuplicateCounts record: counted from the effects instead
    assert m.ordering_violations is None  # no OrderingCounts record: not measured, never guessed
    assert m.recovery_source != "I7"  # a non-numeric count is ignored, not trusted
    assert score(verdict, m).value == 0.0


def test_i2_and_i3_counts_reach_the_measurements_in_full() -> None:
    """Score v1 read count names no checker emitted: duplicates "not measured", ordering capped at 5."""
    from harness.checkers.counts import DuplicateCounts, OrderingCounts

    history = _clean_history().build()
    dup = DuplicateCounts(effects=10, steps=7, duplicated=3, extra_effects=3, extra_cents=4200, redelivered=5,
                          absorbed=2, reapplied=0, amplification=0.5, injected_copies=0, amplification_counted=5,
                          amplification_counted_ratio=0.5, redelivery_budget=None)
    order = OrderingCounts(applied=9, entities=4, nonmonotonic=2, shipments=3, shipped_before_paid=4,
                           applied_past_dead_letter=0, topic_records=9, split_entities=3, nonmonotonic_publish=0)
    i2 = CheckResult("exactly-once-effect", "I2", Validity.INVALID, "m", MappingProxyType(dup.as_counts()))
    i3 = CheckResult("per-entity-order", "I3", Validity.INVALID, "m", MappingProxyType(order.as_counts()))
    m = measure(history, judge("outbox", (i2, i3)))
    assert (m.duplicate_effects, m.duplicate_cents, m.duplicates_source) == (3, 4200, "I2")
    assert m.ordering_violations == 9


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


def test_lag_is_the_worst_group_during_the_faults_not_a_sum_and_not_the_drain() -> None:
    """Four groups each 10 behind are one group 10 behind, not 40; the drain after the heal is recovery's."""
    h = _clean_history()
    for t, lags in ((2.0, (0, 0, 0, 0)), (4.0, (10, 10, 10, 10)), (5.0, (10, 25, 10, 10)), (8.0, (90, 90, 90, 90))):
        h.op("probe", OpType.OK, "lag", at=t, backlog=0, lag=sum(lags),
             **{f"lag:{g}": n for g, n in zip(("payment", "inventory", "fulfillment", "notification"), lags)})
    _, m, _ = _scored(h)
    assert m.worst_group == "inventory" and m.peak_lag == 25
    assert m.peak_lag_by_group == {"payment": 10, "inventory": 25, "fulfillment": 10, "notification": 10}
    assert m.offered_rate_outside is not None and m.peak_lag_s == pytest.approx(25 / m.offered_rate_outside)


def test_a_ramp_through_a_fault_window_is_no_dip() -> None:
    """Offered load doubles across the window and every request is acknowledged: the dip is 0, not a gain."""
    h = HistoryBuilder()
    t, i = 0.0, 0
    while t < 10.0:
        h.order(f"o{i}", at=t)
        t += 0.2 if t < 4.0 else 0.1
        i += 1
    h.fault_window(4.0, 6.0)
    m = measure(h.build())
    assert m.throughput_dip == pytest.approx(0.0, abs=1e-9)
    assert m.ok_rate_in_faults == 1.0 and m.ok_rate_outside == 1.0


def test_when_the_gate_closes_it_is_the_only_charge() -> None:
    h = _clean_history()
    h.order("lost", 9900, at=4.0)
    _, _, s = _scored(h, AnomalyKind.LOST_EFFECT)
    assert s.penalties == {"safety": 100.0}


def test_latency_is_normal_operations_the_backlog_is_lag_and_recovery() -> None:
    """Requests invoked during the fault wait behind the backlog: charged as lag and recovery, not again as latency."""
    h = HistoryBuilder()
    h.op("probe", OpType.OK, "clock", at=0.0, epoch_ms=1_000_000)
    for i in range(20):
        t = float(i)
        h.order(f"o{i}", at=t)
        slow = 4.0 <= t <= 6.0  # invoked inside the fault: its effect came 30 s later
        h.effect(f"o{i}", at_ms=1_000_000 + int((t + (30.0 if slow else 0.2)) * 1000))
    h.fault_window(4.0, 6.0)
    for t, backlog in ((3.0, 0), (5.0, 40), (7.0, 0)):
        h.op("probe", OpType.OK, "lag", at=t, backlog=backlog, lag=0)
    m = measure(h.build())
    assert m.latency_kind == "end-to-end" and m.latency_p99_s is not None and m.latency_p99_s < 1.0
    assert max(v for _, v in m.latency_p99 if v is not None) > 25  # the chart still shows the slow ones
