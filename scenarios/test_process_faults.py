"""kill -9, SIGSTOP and clean restarts of pipeline and broker processes: each bites, outbox holds."""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, duplicate_effects, history
from scenarios.process_faults import SCENARIO

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


@pytest.fixture(scope="module")
def processes(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


def test_every_process_fault_had_an_effect_and_healed(processes: RunResult) -> None:
    assert_faults_bit(processes, "outbox", faults=len(SCENARIO.faults))
    h = history(processes, "outbox")
    heals = [op for op in h.ops if op.process == "nemesis" and op.f in ("heal", "heal-all") and op.type.value != "invoke"]
    assert heals and all(op.type.value == "ok" for op in heals), [op.error for op in heals if op.error]


def test_outbox_loses_nothing_and_charges_once(processes: RunResult) -> None:
    loss = processes.verdict("outbox").result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.VALID, evidence(processes)
    assert duplicate_effects(history(processes, "outbox")) == {}
    assert processes.exit_code == 0, evidence(processes)
