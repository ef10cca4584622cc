"""Keyless publishing under load: shipments reach fulfillment before payments; counted, listed, refused."""

from __future__ import annotations

import pytest

from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import history
from scenarios.paid_before_shipped import PIPELINE, shipped_before_paid

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


@pytest.fixture(scope="module")
def race(keyless_race: RunResult) -> RunResult:
    # The session's run (scenarios/conftest.py): this scenario with 6 s of load, shared with
    # test_keyless_publisher, which checks the same experiment.
    return keyless_race


def test_the_keyless_publisher_scattered_orders(race: RunResult) -> None:
    partitions: dict[str, set[object]] = {}
    for r in history(race, PIPELINE).observed("topic"):
        if r.get("order_id"):
            partitions.setdefault(str(r["order_id"]), set()).add(r["partition"])
    assert any(len(p) > 1 for p in partitions.values()), f"no order spread over partitions\n{evidence(race)}"


def test_shipments_before_payment_are_counted_listed_and_refused(race: RunResult) -> None:
    early = shipped_before_paid(history(race, PIPELINE))
    assert early, f"no shipment reached fulfillment before its payment under load\n{evidence(race)}"
    assert race.exit_code == 0, f"the race is this scenario's expected outcome\n{evidence(race)}"
    story = race.story
    assert story is not None, "the scenario tells its story"
    assert story.claims[0].measured.startswith(f"{len(early):,} of "), story
    assert early[0][:8] in story.claims[1].measured, story
    assert story.claims[2].measured.startswith("0 "), "the reference fulfillment never ships an unpaid order"
