"""wait_for: conditions with deadlines that fail with evidence, and give up at once on fatal errors."""

from __future__ import annotations

import pytest

from harness.errors import ProcessExited, WaitTimeout
from harness.wait import wait_for


def test_returns_the_observation_once_done() -> None:
    seen = iter([(False, 1), (False, 2), (True, 3)])
    assert wait_for(lambda: next(seen), timeout_s=5, what="three", interval_s=0) == 3


def test_timeout_names_what_and_carries_last_observation_and_evidence() -> None:
    with pytest.raises(WaitTimeout) as exc:
        wait_for(lambda: (False, "lag 42"), timeout_s=0.05, what="drain", interval_s=0.01, evidence=lambda: "log tail")
    assert "drain" in str(exc.value) and "lag 42" in str(exc.value) and "log tail" in str(exc.value)


def test_probe_errors_are_observations_not_failures() -> None:
    calls = iter([ConnectionRefusedError("not yet"), (True, "up")])

    def observe() -> tuple[bool, str]:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert wait_for(observe, timeout_s=5, what="service", interval_s=0) == "up"


def test_fatal_errors_end_the_wait_at_once() -> None:
    def observe() -> tuple[bool, str]:
        raise ProcessExited("postgres exited with code 1")

    with pytest.raises(ProcessExited):
        wait_for(observe, timeout_s=60, what="postgres", interval_s=0, fatal=(ProcessExited,))
