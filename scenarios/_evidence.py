"""Small counts over a run's stored history, for scenario tests that need more than a verdict.

They read only history.jsonl, like the checkers, so each number can be re-derived from the
run folder. They are deliberately narrow: the I2/I3/I5 checkers give the general verdicts;
these make a scenario test fail when its fault had no effect (no redelivery, no
reordering, no poison on the topic).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from harness.checkers.base import Validity
from harness.history.ops import History
from harness.history.store import load_histories
from harness.runner import RunResult
from harness.testing import evidence

__all__ = ["assert_faults_bit", "assert_faults_effective", "assert_traffic_during", "dlq_by_consumer", "duplicate_effects", "history", "out_of_order", "redelivered_events",
           "swapped_entities", "undecodable_on_topic", "unpublished_commits"]


def history(result: RunResult, pipeline: str) -> History:
    return load_histories(result.run_dir / "history.jsonl")[1][pipeline]


def assert_faults_effective(result: RunResult, pipeline: str) -> None:
    """Every fault on ``pipeline`` was injected, hit traffic and had an effect; otherwise the run proves nothing."""
    stats = result.verdict(pipeline).result("stats")
    assert stats is not None and stats.validity is Validity.VALID, (
        f"the faults on {pipeline} were not all effective, so this run proves nothing: "
        f"{stats.message if stats else 'no stats'}\n{evidence(result)}")


def assert_faults_bit(result: RunResult, pipeline: str, faults: int) -> None:
    """As ``assert_faults_effective``, and there were exactly ``faults`` fault windows."""
    assert_faults_effective(result, pipeline)
    stats = result.verdict(pipeline).result("stats")
    assert stats is not None and stats.counts["faults"] == faults, (
        f"expected {faults} fault windows, got {stats.counts['faults'] if stats else None}")


def assert_traffic_during(result: RunResult, pipeline: str, *faults: str) -> None:
    """Each fault (``kind@link``) was injected while client traffic flowed; otherwise the run proves nothing.

    For scenarios whose faults leave no pending work behind (the effect probe may read
    zero and the verdict inconclusive), so the test asserts on the loss itself instead.
    """
    stats = result.verdict(pipeline).result("stats")
    assert stats is not None, evidence(result)
    for fault in faults:
        assert int(stats.counts.get(f"ops_during:{fault}") or 0) > 0, (
            f"{fault} was not injected while traffic flowed: {stats.message}\n{evidence(result)}")
    assert "injection failed" not in stats.message, stats.message


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


def out_of_order(h: History) -> dict[str, int]:
    """Per consumer, orders whose events it received out of ``seq`` order.

    Counted from what it applied (a later position with a lower seq) and from what it
    dead-lettered as not applicable yet (fulfillment refusing a shipment before payment).
    """
    seen: dict[tuple[str, str], int] = {}
    bad: dict[str, set[str]] = defaultdict(set)
    for r in sorted(h.observed("applied"), key=lambda r: int(r["position"] or 0)):
        key = (str(r["consumer"]), str(r["order_id"]))
        seq = int(r["seq"] or 0)
        if seq < seen.get(key, 0):
            bad[key[0]].add(key[1])
        seen[key] = max(seq, seen.get(key, 0))
    for r in h.observed("dlq"):
        if "before" in str(r.get("reason") or "") and r.get("order_id"):
            bad[str(r["consumer"])].add(str(r["order_id"]))
    return {c: len(orders) for c, orders in bad.items()}


def dlq_by_consumer(h: History) -> dict[str, list[str]]:
    """consumer -> the reasons on its dead-letter topic."""
    out: dict[str, list[str]] = defaultdict(list)
    for r in h.observed("dlq"):
        out[str(r["consumer"])].append(str(r.get("reason") or ""))
    return dict(out)


def undecodable_on_topic(h: History) -> int:
    """Records on the event topic that are not an event (poison): each must end applied or dead-lettered."""
    return sum(1 for r in h.observed("topic") if r.get("undecodable") or not r.get("event_id"))
