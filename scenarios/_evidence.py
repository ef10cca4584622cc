"""Helpers for fault scenario tests: read a run's history back and count what the faults did."""

from __future__ import annotations

from collections import Counter

from harness.checkers.base import Validity
from harness.history.ops import History
from harness.history.store import load_histories
from harness.runner import RunResult
from harness.testing import evidence

__all__ = ["assert_faults_bit", "duplicate_effects", "history", "redelivered_events", "swapped_entities", "unpublished_commits"]


def history(result: RunResult, pipeline: str) -> History:
    return load_histories(result.run_dir / "history.jsonl")[1][pipeline]


def assert_faults_bit(result: RunResult, pipeline: str, faults: int) -> None:
    """Every fault was injected, hit traffic and had an effect; otherwise the run proves nothing."""
    stats = result.verdict(pipeline).result("stats")
    assert stats is not None and stats.validity is Validity.VALID, (
        f"the faults on {pipeline} were not all effective, so this run proves nothing: "
        f"{stats.message if stats else 'no stats'}\n{evidence(result)}")
    assert stats.counts["faults"] == faults, f"expected {faults} fault windows, got {stats.counts['faults']}"


def duplicate_effects(h: History) -> dict[tuple[str, str, str], int]:
    """(consumer, kind, order_id) -> count, for every effect that happened more than once (I2)."""
    counts = Counter((str(r["consumer"]), str(r["kind"]), str(r["order_id"])) for r in h.observed("effects"))
    return {k: n for k, n in counts.items() if n > 1}


def redelivered_events(h: History) -> int:
    """Events that sit on the topic more than once (the same event_id): redeliveries."""
    counts = Counter(r["event_id"] for r in h.observed("topic") if r.get("event_id"))
    return sum(n - 1 for n in counts.values() if n > 1)


def unpublished_commits(h: History) -> list[tuple[str, int]]:
    """(order_id, seq) of every state change the order service committed that never reached the topic.

    An order at version v committed events seq 1..v; each should be on the topic. A
    missing one is an event lost between commit and publish (the direct pipeline's window).
    """
    on_topic = {(str(r["order_id"]), int(r["seq"])) for r in h.observed("topic")  # type: ignore[arg-type]
                if r.get("order_id") is not None and r.get("seq") is not None}
    missing = []
    for order in h.observed("orders"):
        for seq in range(1, int(order["version"]) + 1):  # type: ignore[arg-type]
            if (str(order["order_id"]), seq) not in on_topic:
                missing.append((str(order["order_id"]), seq))
    return missing


def swapped_entities(h: History) -> set[str]:
    """Orders whose events sit on the topic out of seq order (by partition offset)."""
    last: dict[str, int] = {}
    swapped: set[str] = set()
    for r in sorted(h.observed("topic"), key=lambda r: (int(r["partition"]), int(r["offset"]))):  # type: ignore[arg-type]
        order, seq = r.get("order_id"), r.get("seq")
        if order is None or seq is None:
            continue
        if int(seq) < last.get(str(order), 0):  # type: ignore[arg-type]
            swapped.add(str(order))
        last[str(order)] = max(last.get(str(order), 0), int(seq))  # type: ignore[arg-type]
    return swapped
