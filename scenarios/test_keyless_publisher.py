"""The keyless-publisher variant must show per-order ordering violations under load (the correct one none)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import fields

import pytest

from harness.runner import RunResult
from harness.scenario import Scenario
from harness.testing import evidence
from scenarios._evidence import history, out_of_order
from scenarios.conftest import KEYLESS_RACE
from scenarios.keyless_publisher import SCENARIO

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


def _scattered_orders(result: RunResult) -> int:
    partitions: dict[str, set[int]] = defaultdict(set)
    for r in history(result, "outbox").observed("topic"):
        if r.get("order_id"):
            partitions[str(r["order_id"])].add(int(r["partition"]))  # type: ignore[arg-type]
    return sum(1 for p in partitions.values() if len(p) > 1)


def test_the_shared_run_is_this_scenarios_experiment() -> None:
    """The session runs paid_before_shipped at 6 s once for both modules (scenarios/conftest.py):
    that is this scenario's experiment only while everything that shapes the run agrees (all but
    the names, the story and its legs; a drain at least as long waits for everything this one would)."""
    told = {"name", "description", "story", "legs", "drain_timeout_s"}
    differ = [f.name for f in fields(Scenario) if f.name not in told
              and getattr(KEYLESS_RACE, f.name) != getattr(SCENARIO, f.name)]
    assert not differ and KEYLESS_RACE.drain_timeout_s >= SCENARIO.drain_timeout_s, (
        f"keyless_publisher no longer matches the shared keyless run ({differ or 'drain_timeout_s'}): "
        "give it its own chaos_run(SCENARIO) again")


def test_keyless_publisher_breaks_per_order_ordering(keyless_race: RunResult) -> None:
    result = keyless_race
    scattered = _scattered_orders(result)
    assert scattered > 0, f"no order's events spread over partitions: the variant was not keyless\n{evidence(result)}"
    violations = out_of_order(history(result, "outbox"))
    assert violations.get("fulfillment", 0) > 0, (
        f"{scattered} orders scattered over partitions but no consumer saw one out of order: {violations}\n{evidence(result)}"
    )
