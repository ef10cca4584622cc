"""One schema drift, three consumers of it: swallowed (silent loss), dead-lettered (quarantined), refused at registration."""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, history
from scenarios.silent_schema_drift import (PIPELINE, SCENARIO, quarantined, registry_row, silently_dropped,
                                           v2_on_topic)

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


@pytest.fixture(scope="module")
def swallowed(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


@pytest.fixture(scope="module")
def dead_lettered(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO.with_variant("correct"))


@pytest.fixture(scope="module")
def refused(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO.with_variant("schema_registry"))


def test_swallowing_consumers_lose_the_drift_silently(swallowed: RunResult) -> None:
    assert_faults_bit(swallowed, PIPELINE, faults=1)
    h = history(swallowed, PIPELINE)
    assert v2_on_topic(h), f"no v2 event reached the topic: the drift did not happen\n{evidence(swallowed)}"
    assert quarantined(h) == {}, "a swallowing consumer dead-lettered a v2 event"
    assert silently_dropped(h) > 0, evidence(swallowed)
    loss = swallowed.verdict(PIPELINE).result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.INVALID, evidence(swallowed)
    assert swallowed.exit_code == 0, f"the silent loss is this leg's expected outcome\n{evidence(swallowed)}"
    assert swallowed.story is not None and "skipped without a trace" in swallowed.story.claims[0].measured


def test_dead_letter_consumers_quarantine_every_v2_event_with_its_reason(dead_lettered: RunResult) -> None:
    assert_faults_bit(dead_lettered, PIPELINE, faults=1)
    h = history(dead_lettered, PIPELINE)
    dlq = quarantined(h)
    assert dlq and all("amount_cents" in r for reasons in dlq.values() for r in reasons), dlq
    assert silently_dropped(h) == 0, "with a DLQ nothing may vanish"
    assert dead_lettered.exit_code == 0, evidence(dead_lettered)
    assert dead_lettered.story is not None and "quarantined" in dead_lettered.story.claims[2].measured


def test_the_registry_refuses_v2_at_registration_and_nothing_is_lost(refused: RunResult) -> None:
    assert_faults_bit(refused, PIPELINE, faults=1)
    h = history(refused, PIPELINE)
    row = registry_row(h)
    assert row is not None and row["versions"] == "1", f"the registry holds versions {row}: v2 was registered"
    assert int(row["refused"] or 0) > 0, f"the service refused no v2 event: the drift never reached the gate: {row}"
    assert v2_on_topic(h) == set(), "a refused v2 event reached the topic"
    loss = refused.verdict(PIPELINE).result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.VALID, evidence(refused)
    assert refused.exit_code == 0, evidence(refused)
