"""A pipeline that is not Python: examples/go_outbox, a Go order service, forwarder and consumers.

It plugs in through its target.toml alone (no change to harness/), every process its own Go
binary (the order service in outbox mode, the forwarder, the payment and notification
consumers). The correct pipeline survives a broker outage, a consumer crash mid-stall and
boundary crashes (the order service's among them); the broken forwarder (``mark_before_ack``:
rows marked sent before the broker acknowledged them) is flagged with loss by the very
scenario the correct one passes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.checkers.base import Validity
from harness.testing import evidence
from scenarios import broker_outage, consumer_crash, crash_points
from scenarios._evidence import (assert_faults_bit, assert_faults_effective, assert_traffic_during, duplicate_effects,
                                 history)

TARGET = str(Path(__file__).resolve().parent.parent / "examples" / "go_outbox" / "target.toml")
NAME = "go_outbox"

pytestmark = [pytest.mark.chaos, pytest.mark.extended]

# The outage keeps its 8 s (four of the forwarder's 2 s delivery budgets); 14 s of traffic still
# puts it mid-run (4.2-12.2 s) with traffic on both sides, 6 s sooner than the scenario's 20.
OUTAGE_RUN_S = 14


def _no_expectations(scenario: object) -> object:
    return replace(scenario, expect=())  # type: ignore[type-var]


def test_go_forwarder_loses_nothing_in_a_broker_outage(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(_no_expectations(broker_outage.SCENARIO), target=TARGET, duration_s=OUTAGE_RUN_S)
    assert_faults_effective(result, NAME)  # the outage backed rows up in the outbox: it bit
    assert result.exit_code == 0, evidence(result)
    # The forwarder sends the provenance header, so `chaos trace` shows each record's outbox row.
    topic = history(result, NAME).observed("topic")
    assert topic and all(type(r.get("outbox_id")) is int for r in topic), [dict(r) for r in topic[:2]]


def test_go_forwarder_marking_before_ack_is_flagged_with_loss(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(_no_expectations(broker_outage.SCENARIO), target=TARGET, duration_s=OUTAGE_RUN_S,
                       variant="mark_before_ack")
    assert_faults_effective(result, NAME)
    loss = result.verdict(NAME).result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.INVALID, f"the planted bug lost nothing:\n{evidence(result)}"
    assert result.exit_code == 1, "an unexpected loss must exit 1"


def test_go_consumer_survives_a_crash_mid_stall(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(consumer_crash.SCENARIO, target=TARGET)
    assert_traffic_during(result, NAME, "outage@consumer.payment->postgres", "kill@consumer.payment")
    loss = result.verdict(NAME).result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.VALID, evidence(result)


def test_go_pipeline_turns_boundary_crashes_into_redeliveries(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(crash_points.SCENARIO, target=TARGET)
    assert_faults_bit(result, NAME, faults=len(crash_points.SCENARIO.faults))
    assert duplicate_effects(history(result, NAME)) == {}, f"a redelivery was charged twice:\n{evidence(result)}"
    loss = result.verdict(NAME).result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.VALID, evidence(result)
