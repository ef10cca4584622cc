"""Duplicates are absorbed, poison is dead-lettered with a reason, a slow consumer catches up."""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, duplicate_effects, history, redelivered_events
from scenarios.message_faults import SCENARIO

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def messages(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


def test_every_message_fault_had_an_effect(messages: RunResult) -> None:
    assert_faults_bit(messages, "outbox", faults=len(SCENARIO.faults))


def test_duplicates_reach_the_consumer_and_are_not_charged_twice(messages: RunResult) -> None:
    h = history(messages, "outbox")
    assert redelivered_events(h) >= 20, f"the duplicates are not on the topic:\n{evidence(messages)}"
    assert duplicate_effects(h) == {}, f"a duplicate was charged twice:\n{evidence(messages)}"


def test_poison_messages_are_dead_lettered_with_a_reason(messages: RunResult) -> None:
    dlq = history(messages, "outbox").observed("dlq")
    consumers = {str(r["consumer"]) for r in history(messages, "outbox").observed("consumers")}
    # Every consumer reads every record of the topic: each dead-letters each of the 3 poison messages.
    for consumer in consumers:
        mine = [r for r in dlq if r.get("consumer") == consumer]
        assert len(mine) == 3 and all(r.get("reason") for r in mine), f"{consumer} DLQ: {mine[:5]}"


def test_outbox_loses_nothing(messages: RunResult) -> None:
    loss = messages.verdict("outbox").result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.VALID, evidence(messages)
    assert messages.exit_code == 0, evidence(messages)
