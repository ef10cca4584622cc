"""The article's double charge: a redelivered batch charges twice without idempotency, once with it."""

from __future__ import annotations

import pytest

from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, history
from scenarios.double_charge import PIPELINE, SCENARIO, charged_twice, redelivered_paid

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def careless(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


@pytest.fixture(scope="module")
def idempotent(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO.with_variant("correct"))


def test_the_partition_and_the_redelivery_bit(careless: RunResult) -> None:
    assert_faults_bit(careless, PIPELINE, faults=2)
    assert redelivered_paid(history(careless, PIPELINE)) > 0, (
        f"no order.paid event was delivered twice: the redelivery proved nothing\n{evidence(careless)}")


def test_without_idempotency_customers_are_charged_twice(careless: RunResult) -> None:
    twice = charged_twice(history(careless, PIPELINE))
    assert twice, f"no order was charged twice although paid events were redelivered\n{evidence(careless)}"
    assert careless.exit_code == 0, f"the double charges are this scenario's expected outcome\n{evidence(careless)}"
    story = careless.story
    assert story is not None and story.claims[1].what == "customers charged twice"
    assert int(story.claims[1].measured) > 0 and story.claims[2].measured != "$0.00", story


def test_the_idempotent_consumer_charges_once(idempotent: RunResult) -> None:
    assert_faults_bit(idempotent, PIPELINE, faults=2)
    h = history(idempotent, PIPELINE)
    assert redelivered_paid(h) > 0, f"nothing was redelivered: the absorption proved nothing\n{evidence(idempotent)}"
    assert charged_twice(h) == {}, evidence(idempotent)
    assert idempotent.exit_code == 0, evidence(idempotent)
    assert idempotent.story is not None and idempotent.story.claims[1].measured.startswith("0"), idempotent.story
