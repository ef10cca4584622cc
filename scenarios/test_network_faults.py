"""Every network fault bites on the outbox pipeline, and it loses nothing and duplicates no effect."""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, duplicate_effects, history
from scenarios.network_faults import SCENARIO

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def network(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


def test_every_network_fault_had_an_effect(network: RunResult) -> None:
    assert_faults_bit(network, "outbox", faults=len(SCENARIO.faults))


def test_outbox_loses_nothing_and_charges_once(network: RunResult) -> None:
    loss = network.verdict("outbox").result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.VALID, evidence(network)
    assert duplicate_effects(history(network, "outbox")) == {}
    assert network.exit_code == 0, evidence(network)
