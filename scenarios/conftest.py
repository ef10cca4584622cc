"""Scenario runs shared by more than one test module (each costs real infrastructure time)."""

from __future__ import annotations

import pytest

from harness.runner import RunResult
from scenarios.paid_before_shipped import SCENARIO as PAID_BEFORE_SHIPPED

# 6 s of load instead of the scenario's 12: at 40 orders/s about one order in four races (tens
# of early shipments, where one proves the point), and each early shipment costs fulfillment
# its retries before the drain ends, so half the load halves the drain too. With 6 s this is
# also keyless_publisher's experiment (test_keyless_publisher checks the two agree), so the
# session runs it once for both modules.
KEYLESS_RACE = PAID_BEFORE_SHIPPED.with_overrides(duration_s=6)


@pytest.fixture(scope="session")
def keyless_race(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    """The keyless outbox relay under 6 s of steady load: paid_before_shipped, with its story."""
    return chaos_run(KEYLESS_RACE)
