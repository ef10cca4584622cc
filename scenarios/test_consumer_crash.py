"""Auto-commit loses what a crashed consumer had fetched but not applied; commit-after-effect loses nothing.

The faults here act on a consumer, so the publish backlog (the stats checker's effect
probe) stays empty and the verdict may read inconclusive; each test instead proves the
faults were injected while traffic flowed, then asserts on the charges themselves.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.checkers.anomaly import AnomalyKind
from harness.runner import RunResult
from harness.scenario import Expect
from harness.testing import evidence
from scenarios._evidence import assert_traffic_during
from scenarios.consumer_crash import SCENARIO

FAULTS = ("outage@consumer.payment->postgres", "kill@consumer.payment")

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


def _missing_charges(result: RunResult) -> int:
    loss = result.verdict("outbox").result("no-lost-effect")
    assert loss is not None, evidence(result)
    return int(loss.counts.get("missing:payment") or 0)


def test_commit_after_effect_survives_a_crash_mid_stall(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(SCENARIO)
    assert_traffic_during(result, "outbox", *FAULTS)
    assert _missing_charges(result) == 0, f"a crashed correct consumer lost charges:\n{evidence(result)}"


def test_auto_commit_loses_the_event_it_was_stuck_on(chaos_run) -> None:  # type: ignore[no-untyped-def]
    broken = replace(SCENARIO, variant="auto_commit", expect=(
        Expect("outbox", (AnomalyKind.LOST_EFFECT, AnomalyKind.VANISHED),
               "auto-commit committed offsets of events never applied: the skipped events were neither applied "
               "nor dead-lettered"),))
    result = chaos_run(broken)
    assert_traffic_during(result, "outbox", *FAULTS)
    assert _missing_charges(result) > 0, f"auto-commit lost no charge across the crash:\n{evidence(result)}"
