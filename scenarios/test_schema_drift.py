"""A breaking schema change mid-run: the v1 consumer dead-letters v2 events and the harness flags the loss."""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, history
from scenarios.schema_drift import SCENARIO

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def drift(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


def test_v2_events_reached_the_topic(drift: RunResult) -> None:
    assert_faults_bit(drift, "outbox", faults=1)
    topic = history(drift, "outbox").observed("topic")
    assert any(r.get("schema_version") == 2 for r in topic)
    assert any(r.get("schema_version") == 1 for r in topic), "the producer never went back to v1"


def test_v1_consumer_dead_letters_v2_and_the_harness_flags_the_lost_charges(drift: RunResult) -> None:
    h = history(drift, "outbox")
    v2 = {r["event_id"] for r in h.observed("topic") if r.get("schema_version") == 2}
    # The payment consumer reads v1 only: every v2 record is dead-lettered for the renamed field.
    # (Fulfillment then also dead-letters shipments whose paid event it never saw: a knock-on.)
    dlq = [r for r in h.observed("dlq") if r.get("consumer") == "payment"]
    assert dlq and all("amount_cents" in str(r.get("reason")) for r in dlq), list(dlq)[:3]
    assert {r["event_id"] for r in dlq} == v2, "every v2 event must sit in the DLQ, and nothing else"
    loss = drift.verdict("outbox").result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.INVALID, evidence(drift)
    assert drift.exit_code == 0, f"the loss is the expected outcome of this scenario:\n{evidence(drift)}"
