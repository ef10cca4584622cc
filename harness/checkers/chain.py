"""The evidence chain of one order: every op and observation that mentions it, in time order.

Examples of violations carry this chain so a reader sees exactly where it broke:
request, commit, event on the topic, effect (or its absence).
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.history.ops import History

__all__ = ["order_chain"]

# Observation sources whose rows name an order by ``order_id``, and what each row means.
_STAGES = {"orders": "committed", "topic": "event on topic", "applied": "applied by consumer",
           "effects": "effect", "dlq": "dead-lettered"}


def order_chain(history: History, order_id: str, limit: int = 40) -> list[Mapping[str, object]]:
    steps: list[Mapping[str, object]] = []
    for op in history.ops:
        if op.key == order_id:
            steps.append({"time": round(op.time_s, 3), "stage": f"{op.f} {op.type.value}", "process": op.process,
                          **({"error": op.error} if op.error else {}), **dict(op.value)})
    for source, stage in _STAGES.items():
        for row in history.observed(source):
            if row.get("order_id") == order_id:
                steps.append({"stage": stage, **dict(row)})
    return steps[:limit]
