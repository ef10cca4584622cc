"""The new fault kinds on real infrastructure: each one was injected, bit, and the checkers saw what it did.

  reorder position 2  order.shipped sits before order.paid on the topic, and per-entity-order says so
  scale a consumer    the payment group had two members while the fault was active (a rebalance)
  scale the relay     a second relay ran beside the first; the correct pipeline lost nothing
  group_reset         the payment consumer came back with no committed offset and re-read the topic
                      (earliest: absorbed); with ``latest`` the payments it skipped are lost-effect
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checkers.anomaly import AnomalyKind
from harness.checkers.base import Validity
from harness.history.ops import History, Op
from harness.runner import RunResult
from harness.scoring import Outcome
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, duplicate_effects, history
from scenarios.group_reset import SCENARIO as GROUP_RESET
from scenarios.reorder_pair import SCENARIO as REORDER_PAIR
from scenarios.scale_consumer import SCENARIO as SCALE_CONSUMER
from scenarios.scale_relay import SCENARIO as SCALE_RELAY

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


def _effect(h: History) -> Op:
    return next(op for op in h.ops if op.process == "nemesis" and op.f == "effect")


def _log(result: RunResult, process: str) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(Path(result.run_dir).rglob(f"*.{process}.log")))


def test_reorder_at_position_2_puts_shipped_before_paid_and_the_ordering_checker_sees_it(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(REORDER_PAIR)
    assert_faults_bit(result, "outbox", faults=1)
    h = history(result, "outbox")
    topic = sorted(h.observed("topic"), key=lambda r: (int(r["partition"]), int(r["offset"])))  # type: ignore[arg-type]
    first_at: dict[tuple[str, int], int] = {}
    for i, r in enumerate(topic):
        if r.get("order_id") is not None and r.get("seq") is not None:
            first_at.setdefault((str(r["order_id"]), int(r["seq"])), i)  # type: ignore[arg-type]
    touched = set(str(_effect(h).value["touched"]).split(","))
    swapped = {o for o in touched if (o, 2) in first_at and (o, 3) in first_at and first_at[(o, 3)] < first_at[(o, 2)]}
    assert swapped, f"no held order has its shipped before its paid on the topic: {touched}\n{evidence(result)}"
    assert all(first_at.get((o, 1), -1) < first_at[(o, 3)] for o in swapped), "position 2 must leave created first"
    assert _effect(h).value["observed"] == len(swapped) and len(touched) <= 5
    order = result.verdict("outbox").result("per-entity-order")
    assert order is not None and order.validity is Validity.INVALID, evidence(result)
    flagged = {a.entity for a in order.anomalies if a.kind is AnomalyKind.NONMONOTONIC_PUBLISH}
    assert flagged == swapped, (flagged, swapped)
    v = result.verdict("outbox")
    assert v.outcome is Outcome.MET and v.unexplained == 0, v.reasons


def test_scale_adds_a_second_member_to_the_consumer_group_and_the_correct_consumer_loses_nothing(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(SCALE_CONSUMER)
    assert_faults_bit(result, "outbox", faults=1)
    effect = _effect(history(result, "outbox"))
    assert effect.value["observed"] == 1 and effect.value["e.members"] == 2, effect.value
    assert effect.value["e.instances"] == "consumer.payment#1"
    assert "assigned" in _log(result, "consumer.payment#1"), "the second instance never got a partition"
    assert result.exit_code == 0 and result.verdict("outbox").outcome is Outcome.MET, evidence(result)
    assert duplicate_effects(history(result, "outbox")) == {}


def test_a_second_relay_beside_the_first_runs_and_the_correct_pipeline_loses_nothing(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(SCALE_RELAY)
    assert_faults_bit(result, "outbox", faults=1)
    h = history(result, "outbox")
    effect = _effect(h)
    assert effect.value["observed"] == 1 and effect.value["e.instances"] == "relay#1", effect.value
    assert "relay publishing outbox rows" in _log(result, "relay#1")
    alive = {str(r["process"]): r["alive"] for r in h.observed("processes")}
    assert "relay#1" not in alive and alive.get("relay") is True, alive  # removed at heal; the first one kept going
    assert result.exit_code == 0 and result.verdict("outbox").outcome is Outcome.MET, evidence(result)


def test_group_reset_with_earliest_re_reads_the_topic_and_absorbs_it(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(GROUP_RESET)
    assert_faults_bit(result, "outbox", faults=1)
    effect = _effect(history(result, "outbox"))
    assert int(effect.value["e.forgotten"]) > 0 and int(effect.value["observed"]) > int(effect.value["e.forgotten"]), \
        effect.value  # it had read something, and more was published while it was away
    absorbed = _log(result, "consumer.payment").count("duplicate delivery absorbed")
    assert absorbed > 0, "the consumer did not re-read what it had applied before its offsets were deleted"
    assert result.exit_code == 0 and result.verdict("outbox").outcome is Outcome.MET, evidence(result)


def test_group_reset_with_latest_skips_what_was_published_meanwhile_and_loss_flags_it(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(GROUP_RESET, target="scenarios.group_reset:outbox_latest")
    assert_faults_bit(result, "outbox_latest", faults=1)
    v = result.verdict("outbox_latest")
    loss = v.result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.INVALID, evidence(result)
    lost = [a for a in loss.anomalies if a.kind is AnomalyKind.LOST_EFFECT]
    assert lost and {a.consumer for a in lost} == {"payment"}, lost[:5]
    assert v.outcome is Outcome.MET and v.unexplained == 0, v.reasons
    assert {a.cause for a in v.attributions} == {"group_reset@consumer.payment"}, v.attributions
