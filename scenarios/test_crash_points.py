"""Boundary crashes: outbox turns each into a redelivery (absorbed); direct loses the committed event."""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.testing import evidence
from scenarios import crash_direct, crash_points
from scenarios._evidence import (assert_faults_bit, duplicate_effects, history, redelivered_events,
                                 unpublished_commits)

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def outbox(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(crash_points.SCENARIO)


@pytest.fixture(scope="module")
def direct(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(crash_direct.SCENARIO)


def test_every_crash_point_fired_and_was_restarted(outbox: RunResult) -> None:
    assert_faults_bit(outbox, "outbox", faults=len(crash_points.SCENARIO.faults))


def test_relay_crash_after_publish_redelivers_and_nothing_is_charged_twice(outbox: RunResult) -> None:
    h = history(outbox, "outbox")
    assert redelivered_events(h) > 0, f"the relay crash re-sent nothing:\n{evidence(outbox)}"
    assert duplicate_effects(h) == {}, f"a redelivery was charged twice:\n{evidence(outbox)}"
    assert unpublished_commits(h) == [], "the outbox left a committed event unpublished"
    loss = outbox.verdict("outbox").result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.VALID, evidence(outbox)
    assert outbox.exit_code == 0, evidence(outbox)


def test_direct_crash_after_commit_never_publishes_the_committed_event(direct: RunResult) -> None:
    assert_faults_bit(direct, "direct", faults=1)
    h = history(direct, "direct")
    missing = unpublished_commits(h)
    assert missing, f"the crash between commit and publish lost nothing:\n{evidence(direct)}"
    unknown = {op.key for op in h.client_ops() if op.type.value == "info"}
    assert {order for order, _ in missing} & unknown, "the lost event should belong to a request left unanswered"
    assert direct.exit_code == 0, f"only the expected I4 break may show:\n{evidence(direct)}"
