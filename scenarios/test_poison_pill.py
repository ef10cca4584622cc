"""Malformed records reach every consumer's dead-letter topic with a reason; the swallow-errors variant loses them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.checkers.anomaly import AnomalyKind
from harness.faults.messages import POISON_PAYLOADS as POISON_VALUES
from harness.runner import RunResult
from harness.scenario import Expect
from harness.testing import evidence
from scenarios._evidence import assert_faults_effective, dlq_by_consumer, history, undecodable_on_topic
from scenarios.poison_pill import SCENARIO
from targets.domain import CONSUMERS

pytestmark = pytest.mark.chaos


def _poison_reached_the_topic(result: RunResult) -> int:
    assert_faults_effective(result, "outbox")  # the poison was injected while traffic flowed
    poison = undecodable_on_topic(history(result, "outbox"))
    assert poison == len(POISON_VALUES), f"expected {len(POISON_VALUES)} poison records on the topic, found {poison}"
    return poison


def test_malformed_events_reach_every_consumers_dlq_with_a_reason(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(SCENARIO)
    poison = _poison_reached_the_topic(result)
    dlq = dlq_by_consumer(history(result, "outbox"))
    for consumer in CONSUMERS:
        reasons = dlq.get(consumer, [])
        assert len(reasons) == poison, f"{consumer} dead-lettered {len(reasons)} of {poison} poison records: {reasons}"
        assert all(r.startswith("undecodable:") for r in reasons), f"{consumer} DLQ reasons: {reasons}"
    assert result.exit_code == 0, evidence(result)


def test_swallowing_consumers_lose_what_the_dlq_accounts_for(chaos_run) -> None:  # type: ignore[no-untyped-def]
    broken = replace(SCENARIO, variant="swallow_errors", expect=(
        Expect("outbox", (AnomalyKind.VANISHED,), "consumers that swallow decoding errors make events vanish"),))
    result = chaos_run(broken)
    poison = _poison_reached_the_topic(result)
    dlq = dlq_by_consumer(history(result, "outbox"))
    # On the topic, and neither applied (undecodable) nor dead-lettered: vanished, for every consumer.
    assert dlq == {}, f"the swallow-errors variant dead-lettered something: {dlq}"
    assert poison > 0
