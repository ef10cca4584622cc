"""The broker killed past the consumers' session while one drains a backlog: every group resumes and drains."""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, duplicate_effects, history
from scenarios.broker_kill_backlog import SCENARIO

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


@pytest.fixture(scope="module")
def backlog(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


def test_the_pause_and_the_broker_kill_bit(backlog: RunResult) -> None:
    assert_faults_bit(backlog, "outbox", faults=len(SCENARIO.faults))


def test_every_group_rejoins_and_drains_within_the_window(backlog: RunResult) -> None:
    """With one async commit per message, hundreds of commits queued for the dead coordinator and the
    groups rejoined only after each had waited out its 60 s request timeout: past the drain window."""
    verdict = backlog.verdict("outbox")
    for checker in ("no-lost-effect", "dlq-accounted"):
        result = verdict.result(checker)
        assert result is not None and result.validity is Validity.VALID, f"{checker}:\n{evidence(backlog)}"
    assert duplicate_effects(history(backlog, "outbox")) == {}
    assert backlog.exit_code == 0, evidence(backlog)
