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


def test_every_loss_is_explained_by_the_outage_and_a_planted_one_is_not(outage: RunResult) -> None:
    """Attribution on a real run: direct's losses all lie in the outage's window; then one order
    that lived and finished before the fault is made to lose its charge, and the same verdict
    code fails the run (exit 1) naming that order as unexplained."""
    from dataclasses import replace
    from types import MappingProxyType

    from harness.analysis import analyze, checkers
    from harness.attribution import _spans
    from harness.checkers.anomaly import AnomalyKind
    from harness.checkers.stats import LEAD_S
    from harness.history.ops import Observation, Table
    from harness.scoring import Outcome, exit_code
    from scenarios._evidence import history

    direct = outage.verdict("direct")
    assert direct.tallies and {t.kind for t in direct.tallies} == {AnomalyKind.LOST_EFFECT}, direct.reasons
    assert direct.unexplained == 0 and direct.explained > 0, direct.reasons
    h = history(outage, "direct")
    first_fault = min(op.time_s for op in h.ops if op.process == "nemesis" and op.f == "inject")
    charged = {str(e["order_id"]) for e in h.observed("effects") if e["kind"] == "charge"}
    # Charged, and its whole life (requests, events until applied) over before the outage's window
    # opens (LEAD_S before its inject): the spans attribution itself measures. The first ~second of
    # traffic holds several; a fixed cut on pay times alone once held none (cold service, cancels).
    spans = _spans(h, charged)
    early = sorted(o for o in charged if spans[o] and max(end for _, end in spans[o]) < first_fault - LEAD_S)
    assert early, f"no charged order lived entirely before {first_fault - LEAD_S:.1f} s: nothing to plant a loss on"
    victim = early[0]
    effects = Table.from_rows([e for e in h.observed("effects") if e["order_id"] != victim])
    planted = replace(h, observations=MappingProxyType({**h.observations, "effects": Observation("effects", effects)}))
    (verdict,) = analyze({"direct": planted}, SCENARIO.expect, checkers(SCENARIO.recovery_budget_s))
    assert verdict.outcome is Outcome.UNEXPECTED and exit_code((verdict,)) == 1, verdict.reasons
    assert verdict.unexplained >= 1 and any(victim in r and "not explained" in r for r in verdict.reasons), verdict.reasons
