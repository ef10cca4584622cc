"""Small counts over a run's final observations, for scenario tests that need more than a verdict.

They read only the stored history (``history.jsonl``), like the checkers, so each number
can be re-derived from the run folder. They are deliberately narrow: the I2/I3/I5
checkers give the general verdicts; these make a scenario test fail when its fault had
no effect (no redelivery, no reordering, no poison on the topic).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from harness.history.ops import History
from harness.history.store import load_histories
from harness.runner import RunResult

__all__ = ["dlq_by_consumer", "duplicate_effects", "history", "out_of_order", "redelivered", "undecodable_on_topic"]


def history(result: RunResult, pipeline: str) -> History:
    _, histories = load_histories(result.run_dir / "history.jsonl")
    return histories[pipeline]


def redelivered(h: History) -> int:
    """Records on the event topic whose event id was already there: the pipeline sent them again."""
    ids = Counter(r["event_id"] for r in h.observed("topic") if r.get("event_id"))
    return sum(n - 1 for n in ids.values())


def duplicate_effects(h: History) -> dict[tuple[str, str, str], int]:
    """(consumer, kind, order_id) -> number of effect rows, for those with more than one."""
    rows = Counter((str(r["consumer"]), str(r["kind"]), str(r["order_id"])) for r in h.observed("effects"))
    return {k: n for k, n in rows.items() if n > 1}


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
