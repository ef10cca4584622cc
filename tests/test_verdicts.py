"""Verdicts that name the anomaly and its cause: per-kind expectations, attribution, and the new anomalies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis import analyze
from harness.attribution import attribute
from harness.checkers.anomaly import KIND_INFO, Anomaly, AnomalyKind
from harness.checkers.base import Validity
from harness.checkers.dlq import DlqAccounted
from harness.checkers.duplicates import ExactlyOnceEffect
from harness.checkers.loss import NoLostEffect
from harness.checkers.stats import Stats
from harness.errors import UsageError
from harness.expect import Cause, Expect, expectations_from_json
from harness.history.ops import OpType
from harness.scoring import Outcome, exit_code
from harness.testing import HistoryBuilder

ROOT = Path(__file__).resolve().parents[1]
LOST = (Expect("direct", (AnomalyKind.LOST_EFFECT,), "direct publish drops what it cannot deliver"),)


def outage_run(lost: tuple[str, ...] = ("o5",)) -> HistoryBuilder:
    """Orders every second for 20 s, an outage from 8 to 11 s; ``lost`` orders lose their charge."""
    h = HistoryBuilder("direct").consumers("payment").fault_window(8.0, 11.0, target="app->kafka")
    for i in range(20):
        h.flow(f"o{i}", at=float(i))
    for order in lost:
        h.observations["effects"] = [e for e in h.observations["effects"] if e["order_id"] != order]
        h.observations["applied"] = [r for r in h.observations["applied"] if r["order_id"] != order]
        h.observations["topic"] = [r for r in h.observations["topic"] if r["order_id"] != order or r["seq"] == 1]
    return h


def verdict(h: HistoryBuilder, expects: tuple[Expect, ...] = LOST, variant: str = "correct"):  # type: ignore[no-untyped-def]
    history = h.build()
    (v,) = analyze({history.pipeline: history}, expects, (Stats(), NoLostEffect()), variant)
    return v


def test_an_expected_loss_inside_the_outage_is_explained_and_met() -> None:
    v = verdict(outage_run(lost=("o9", "o10")))
    assert v.outcome is Outcome.MET, v.reasons
    assert (v.explained, v.unexplained) == (2, 0)
    assert {a.cause for a in v.attributions} == {"outage@app->kafka"}


def test_a_planted_loss_no_fault_explains_fails_with_exit_1() -> None:
    """o1 lived and died at 1-2 s, the outage is at 8-11 s: nothing injected explains its loss."""
    v = verdict(outage_run(lost=("o9", "o1")))
    assert v.outcome is Outcome.UNEXPECTED and exit_code((v,)) == 1
    assert (v.explained, v.unexplained) == (1, 1)
    (reason,) = v.reasons
    assert "1 of 2 lost-effect (I1) not explained" in reason and "o1" in reason and "o9" not in reason
    tally = v.to_json()["anomalies"]
    assert tally["unexplained"] == 1 and tally["unexplained_examples"][0]["entity"] == "o1"  # type: ignore[index]


def test_an_anomaly_of_a_kind_nobody_expected_fails_naming_it() -> None:
    h = outage_run(lost=("o9",))
    h.effect("o9", "payment", "charge", event_id="o9/2x")  # a stray charge: the loss still stands, plus...
    h.effect("o3", "payment", "charge", event_id="o3/2")  # ...o3 charged twice
    history = h.build()
    (v,) = analyze({history.pipeline: history}, LOST, (Stats(), NoLostEffect(), ExactlyOnceEffect()))
    assert v.outcome is Outcome.UNEXPECTED
    assert any(r.startswith("unexpected duplicate-effect (I2)") for r in v.reasons), v.reasons


def test_an_expected_break_that_did_not_happen_says_the_fault_bit_and_what_appeared_instead() -> None:
    v = verdict(outage_run(lost=()))
    assert v.outcome is Outcome.UNEXPECTED
    (reason,) = v.reasons
    assert "expected lost-effect (I1) did not happen although the faults bit" in reason
    assert "instead: no anomaly at all" in reason


def test_an_expected_break_that_did_not_happen_because_the_fault_did_not_bite_is_inconclusive() -> None:
    h = HistoryBuilder("direct").consumers("payment").fault_window(8.0, 11.0, effect=0)
    for i in range(20):
        h.flow(f"o{i}", at=float(i))
    v = verdict(h)
    assert v.outcome is Outcome.INCONCLUSIVE, v.reasons
    assert any("expected lost-effect did not happen, and the faults may not have bitten" in r for r in v.reasons)


def test_a_message_fault_explains_only_the_entities_it_touched() -> None:
    h = HistoryBuilder("outbox").consumers("payment")
    for i in range(6):
        h.flow(f"o{i}", at=float(i))
    h.op("nemesis", OpType.INVOKE, "inject", at=1.0, id=0, fault="reorder", target="events")
    h.op("nemesis", OpType.OK, "inject", at=1.0, id=0, fault="reorder", target="events")
    h.op("nemesis", OpType.INVOKE, "heal", at=4.0, id=0, fault="reorder", target="events")
    h.op("nemesis", OpType.OK, "heal", at=4.0, id=0, fault="reorder", target="events")
    h.op("nemesis", OpType.OK, "effect", at=4.0, id=0, fault="reorder", target="events", observed=1, touched="o2")
    history = h.build()
    swapped, bystander = Anomaly(AnomalyKind.NONMONOTONIC_PUBLISH, "o2"), Anomaly(AnomalyKind.NONMONOTONIC_PUBLISH, "o3")
    got = attribute(history, [swapped, bystander])
    assert got[0].cause == "reorder@events" and not got[1].explained
    assert "not in flight" in got[1].how or "touched" not in got[1].how


def test_a_planted_variant_explains_the_kinds_its_expectation_says_it_produces() -> None:
    h = HistoryBuilder("outbox").consumers("payment")
    for i in range(3):
        h.flow(f"o{i}", at=float(i))
    history = h.build()
    split = Anomaly(AnomalyKind.SPLIT_ENTITY, "o1")
    (by_variant,) = attribute(history, [split], variant="keyless", variant_kinds={AnomalyKind.SPLIT_ENTITY})
    (by_nothing,) = attribute(history, [split], variant="keyless", variant_kinds=())
    assert by_variant.cause == "variant:keyless" and not by_nothing.explained
    assert by_nothing.how == "no fault was injected"


def test_expect_names_anomaly_kinds_and_refuses_unknown_ones() -> None:
    e = Expect("direct", ("lost-effect",), "why", may=(AnomalyKind.VANISHED,))
    assert e.anomalies == (AnomalyKind.LOST_EFFECT,) and e.allowed == {AnomalyKind.LOST_EFFECT, AnomalyKind.VANISHED}
    with pytest.raises(UsageError, match="unknown anomaly kind 'lost-order'; valid kinds: lost-effect, "):
        Expect("direct", ("lost-order",), "why")
    with pytest.raises(UsageError, match="names the invariant 'I1'.*lost-effect, acknowledged-then-missing"):
        Expect("direct", "I1", "why")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="names no anomaly kind"):
        Expect("direct", (), "why")
    assert expectations_from_json([e.to_json()]) == (e,)


def test_a_stored_run_with_invariant_expectations_is_rejudged_leniently() -> None:
    (old,) = expectations_from_json([{"pipeline": "direct", "invariant": "I1", "validity": "invalid", "why": "w"}])
    assert old.by is Cause.VARIANT and AnomalyKind.LOST_EFFECT in old.may and old.anomalies == ()


def test_a_scenario_file_with_an_unknown_anomaly_kind_exits_4_listing_the_kinds(tmp_path: Path) -> None:
    bad = tmp_path / "bad_kind.py"
    bad.write_text(
        "from harness.scenario import Expect, Scenario\n"
        "from harness.workload.rate import Constant\n"
        "SCENARIO = Scenario(name='bad_kind', description='d', pipelines=('direct',), shape=Constant(5),\n"
        "    duration_s=5, faults=(), expect=(Expect('direct', ('lost-orders',), 'why'),))\n")
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(bad)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 4, proc.stderr
    assert "unknown anomaly kind 'lost-orders'; valid kinds: lost-effect" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_acknowledged_then_missing_from_the_rows_and_from_a_refused_next_step() -> None:
    h = HistoryBuilder("direct").consumers("payment")
    for i in range(4):
        h.flow(f"o{i}", at=float(i))
    h.observations["orders"] = [r for r in h.observations["orders"] if r["order_id"] != "o1"]  # acked, then gone
    for r in h.observations["orders"]:
        if r["order_id"] == "o2":  # its payment was acknowledged; the row still reads created
            r["status"] = "created"
    h.op("client-1", OpType.INVOKE, "place", "o8", at=5.0, amount_cents=100)
    h.op("client-1", OpType.OK, "place", "o8", amount_cents=100, correlation_id="o8/place")
    h.row("orders", order_id="o8", status="created", amount_cents=100, version=1, correlation_id="o8/place")
    h.op("client-1", OpType.INVOKE, "pay", "o8", amount_cents=100)
    h.op("client-1", OpType.FAIL, "pay", "o8", error="HTTP 404: no such order", amount_cents=100)
    result = NoLostEffect().check(h.build())
    assert result.validity is Validity.INVALID
    missing = {a.entity for a in result.anomalies if a.kind is AnomalyKind.ACKNOWLEDGED_THEN_MISSING}
    assert missing == {"o1", "o2", "o8"} and result.counts["acknowledged_then_missing"] == 3
    shown = {e["order_id"]: e for e in result.examples if e["anomaly"] == "acknowledged-then-missing"}
    assert shown["o1"]["reads_as"] == "missing" and shown["o2"]["reads_as"] == "created"
    assert shown["o8"]["refused"] == "pay" and str(shown["o8"]["error"]).startswith("HTTP 404")


def test_bookkeeping_that_disagrees_with_the_sink_is_reported_as_such_not_as_loss() -> None:
    """A target whose processed-events table forgot an event (retention) that the sink shows applied."""
    h = HistoryBuilder("outbox").consumers("payment")
    for i in range(3):
        h.flow(f"o{i}", at=float(i))
    h.observations["applied"] = [r for r in h.observations["applied"] if r["order_id"] != "o1"]
    history = h.build()
    assert NoLostEffect().check(history).validity is Validity.VALID  # the charge is in the sink: nothing lost
    i5 = DlqAccounted().check(history)
    assert [a.kind for a in i5.anomalies] == [AnomalyKind.BOOKKEEPING_DISAGREES]
    assert i5.counts["vanished"] == 0 and i5.counts["unlisted_applied"] == 1
    assert "do not list" in i5.message


def test_a_dead_letter_is_recognised_by_the_event_it_carries_without_this_projects_headers() -> None:
    """A DLQ record another framework wrote (no source coordinates, a reason under its own name)."""
    h = HistoryBuilder("outbox").consumers("payment")
    h.flow("o1", at=0.0)
    paid = next(r for r in h.observations["applied"] if r["order_id"] == "o1" and r["type"] == "order.paid")
    h.observations["applied"].remove(paid)
    h.observations["effects"] = [e for e in h.observations["effects"] if e["order_id"] != "o1"]
    h.row("dlq", consumer="payment", event_id=paid["event_id"], order_id="o1", type="order.paid",
          reason="spring: ListenerExecutionFailedException", convention="spring")
    assert DlqAccounted().check(h.build()).validity is Validity.VALID


def amplified_run(budget: float | None, copies: int, fault: str = "outage") -> HistoryBuilder:
    h = HistoryBuilder("outbox").consumers("payment").fault_window(4.0, 6.0, fault=fault, target="relay->kafka")
    h.op("probe", OpType.OK, "clock", at=0.0, epoch_ms=1_000_000)
    for i in range(10):
        h.flow(f"o{i}", at=float(i))
    for r in h.observations["topic"]:
        r["timestamp_ms"] = 1_000_000 + 1000 * int(str(r["order_id"])[1:])
    paid = [r for r in h.observations["topic"] if r["type"] == "order.paid"]
    for r in paid[3:3 + copies]:  # o3, o4, o5: published 1 s before, at and after the outage's start
        h.observations["topic"].append({**r, "offset": int(r["offset"]) + 1000})  # the same event, again
    if budget is not None:
        h.row("budgets", redelivery_ratio=budget)
    return h


def test_redelivery_is_counted_per_fault_window_and_over_budget_is_amplified() -> None:
    quiet = ExactlyOnceEffect().check(amplified_run(None, 3).build())
    assert quiet.validity is Validity.VALID and quiet.counts["redelivered"] == 3 and quiet.counts["absorbed"] == 3
    assert quiet.counts["redelivered:outage@relay->kafka"] >= 1 and quiet.counts["redelivery_budget"] is None
    over = ExactlyOnceEffect().check(amplified_run(0.05, 3).build())
    assert over.validity is Validity.INVALID and [a.kind for a in over.anomalies] == [AnomalyKind.AMPLIFIED]
    within = ExactlyOnceEffect().check(amplified_run(0.5, 3).build())
    assert within.validity is Validity.VALID


def test_redelivery_during_crash_recovery_is_not_charged_against_the_budget() -> None:
    h = HistoryBuilder("outbox").consumers("payment").fault_window(0.0, 20.0, fault="kill", target="relay")
    h.op("probe", OpType.OK, "clock", at=0.0, epoch_ms=1_000_000)
    for i in range(5):
        h.flow(f"o{i}", at=float(i))
    for r in h.observations["topic"]:
        r["timestamp_ms"] = 1_000_000 + 1000 * int(str(r["order_id"])[1:])
    for r in list(h.observations["topic"]):
        h.observations["topic"].append({**r, "offset": int(r["offset"]) + 1000})
    h.row("budgets", redelivery_ratio=0.0)
    result = ExactlyOnceEffect().check(h.build())
    assert result.validity is Validity.VALID and result.counts["amplification_counted"] == 0


def test_the_readme_lists_every_anomaly_kind_with_its_meaning() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| I\d \| (.+?) \|$", readme, re.M))
    assert rows == {k.value: info.meaning for k, info in KIND_INFO.items()}
