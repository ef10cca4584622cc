"""Reordering through the interposer: entities' events really arrive swapped, and no charge is lost."""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.scoring import Outcome
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, duplicate_effects, history, swapped_entities
from scenarios.reorder import SCENARIO

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def reorder(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


def test_events_of_the_held_entities_arrive_swapped(reorder: RunResult) -> None:
    assert_faults_bit(reorder, "outbox", faults=1)
    h = history(reorder, "outbox")
    swapped = swapped_entities(h)
    assert 1 <= len(swapped) <= 5, f"expected up to 5 swapped orders on the topic, got {len(swapped)}"
    effect = next(op for op in h.ops if op.process == "nemesis" and op.f == "effect")
    assert effect.value["observed"] == len(swapped), "the interposer's count and the topic disagree"


def test_every_anomaly_is_explained_by_the_swap(reorder: RunResult) -> None:
    """Nothing is lost or reordered but what the swap itself explains.

    The interposer usually holds an order's first event; when it holds a *paid* event behind
    its *shipped*, fulfillment refuses to ship an unpaid order and dead-letters the shipment
    (seen once in CI): a lost effect the scenario allows (``may``) for the swapped orders only.
    Attribution holds every anomaly to the entities the interposer says it touched.
    """
    v = reorder.verdict("outbox")
    swapped = swapped_entities(history(reorder, "outbox"))
    assert v.outcome is Outcome.MET and reorder.exit_code == 0, evidence(reorder)
    assert v.unexplained == 0 and v.explained >= len(swapped), v.reasons
    assert {a.cause for a in v.attributions} == {"reorder@events"}, v.attributions
    assert {a.anomaly.entity for a in v.attributions} <= swapped, "an anomaly outside the swapped orders"
    assert duplicate_effects(history(reorder, "outbox")) == {}


def test_the_ordering_checker_sees_the_swap_on_the_topic(reorder: RunResult) -> None:
    order = reorder.verdict("outbox").result("per-entity-order")
    assert order is not None and order.validity is Validity.INVALID, evidence(reorder)
    kinds = {str(e.get("anomaly")) for e in order.examples}
    assert "nonmonotonic-publish" in kinds, f"the swap was not named as a publish-order anomaly: {kinds}"
