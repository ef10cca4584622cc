"""Connect crash: Debezium redelivers after a SIGKILL; idempotent consumers absorb it, a careless one charges twice.

Each test first proves the fault was effective (the crash was injected with traffic and
a backlog behind it, and events really were sent twice); a crash that redelivered
nothing would prove nothing, so it fails the test instead of passing it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.checkers.anomaly import AnomalyKind
from harness.checkers.base import Validity
from harness.infra import postgres
from harness.runner import RunResult
from harness.scenario import Expect
from harness.testing import evidence
from scenarios._evidence import assert_faults_effective, duplicate_effects, history, redelivered_events
from scenarios.connect_crash import SCENARIO

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


def _fault_was_effective(result: RunResult) -> int:
    assert_faults_effective(result, "cdc")
    again = redelivered_events(history(result, "cdc"))
    assert again > 0, f"Debezium redelivered nothing after the crash; the scenario did not exercise dedup\n{evidence(result)}"
    return again


def test_idempotent_consumers_absorb_redelivery(chaos_run, chaos_infra) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(SCENARIO)
    _fault_was_effective(result)
    # Teardown dropped the run's replication slot: a forgotten slot keeps WAL forever.
    with postgres.connect_direct(chaos_infra.topology.postgres_port) as conn:
        slots = [r[0] for r in conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall()]
    assert slots == [], f"replication slots left behind: {slots}"
    dups = duplicate_effects(history(result, "cdc"))
    assert dups == {}, f"{len(dups)} effects happened twice, e.g. {sorted(dups)[:3]}\n{evidence(result)}"
    loss = result.verdict("cdc").result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.VALID, f"the crash lost effects:\n{evidence(result)}"
    assert result.exit_code == 0, evidence(result)


def test_consumers_without_idempotency_charge_twice(chaos_run) -> None:  # type: ignore[no-untyped-def]
    broken = replace(SCENARIO, variant="no_idempotency", expect=(
        Expect("cdc", (AnomalyKind.DUPLICATE_EFFECT,), "consumers without a processed-events check apply redeliveries again"),))
    result = chaos_run(broken)
    _fault_was_effective(result)
    dups = duplicate_effects(history(result, "cdc"))
    charges = {k: n for k, n in dups.items() if k[:2] == ("payment", "charge")}
    assert charges, f"no order was charged twice although Debezium redelivered paid events\n{evidence(result)}"
