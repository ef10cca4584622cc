"""The keyless-publisher variant must show per-order ordering violations under load (the correct one none)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import history, out_of_order
from scenarios.keyless_publisher import SCENARIO

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


def _scattered_orders(result: RunResult) -> int:
    partitions: dict[str, set[int]] = defaultdict(set)
    for r in history(result, "outbox").observed("topic"):
        if r.get("order_id"):
            partitions[str(r["order_id"])].add(int(r["partition"]))  # type: ignore[arg-type]
    return sum(1 for p in partitions.values() if len(p) > 1)


def test_keyless_publisher_breaks_per_order_ordering(chaos_run) -> None:  # type: ignore[no-untyped-def]
    result = chaos_run(SCENARIO)
    scattered = _scattered_orders(result)
    assert scattered > 0, f"no order's events spread over partitions: the variant was not keyless\n{evidence(result)}"
    violations = out_of_order(history(result, "outbox"))
    assert violations.get("fulfillment", 0) > 0, (
        f"{scattered} orders scattered over partitions but no consumer saw one out of order: {violations}\n{evidence(result)}"
    )
