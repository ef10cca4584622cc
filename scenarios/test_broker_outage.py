"""Broker outage on the publishing link, per pipeline: direct loses acknowledged orders, outbox and both cdc none.

Each test first proves the fault was effective (injected, traffic during it, a backlog
behind it); a fault that did nothing fails the test instead of passing it vacuously.
"""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_effective
from scenarios.broker_outage import SCENARIO

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def outage(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


def test_direct_publish_loses_acknowledged_orders(outage: RunResult) -> None:
    assert_faults_effective(outage, "direct")
    loss = outage.verdict("direct").result("no-lost-effect")
    assert loss is not None
    assert loss.validity is Validity.INVALID, f"direct publish lost nothing under the outage:\n{evidence(outage)}"
    assert int(loss.counts["lost"] or 0) > 0
    assert loss.examples and loss.examples[0]["chain"], "a lost order must come with its evidence chain"


def test_outbox_loses_nothing(outage: RunResult) -> None:
    assert_faults_effective(outage, "outbox")
    loss = outage.verdict("outbox").result("no-lost-effect")
    assert loss is not None
    assert loss.validity is Validity.VALID, f"the outbox lost orders:\n{evidence(outage)}"
    assert loss.counts["lost"] == 0 and int(loss.counts["acknowledged_orders"] or 0) > 0


@pytest.mark.parametrize("pipeline", ["cdc", "cdc_outbox"])
def test_debezium_loses_nothing(outage: RunResult, pipeline: str) -> None:
    assert_faults_effective(outage, pipeline)
    loss = outage.verdict(pipeline).result("no-lost-effect")
    assert loss is not None
    assert loss.validity is Validity.VALID, f"{pipeline} lost orders:\n{evidence(outage)}"
    assert loss.counts["lost"] == 0 and int(loss.counts["acknowledged_orders"] or 0) > 0


def test_scenario_expectations_met(outage: RunResult) -> None:
    assert outage.exit_code == 0, evidence(outage)
