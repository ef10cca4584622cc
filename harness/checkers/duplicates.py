"""I2 exactly-once-effect: no effect happens twice for one (consumer, effect kind, order).

Anomaly, named as in the report:
  duplicate-effect   two or more effect rows for one (consumer, kind, order); ``cause`` says
                     whether one event was applied twice (a redelivery the consumer did not
                     absorb) or distinct events drove the same step twice

What occurred is kept apart from what is allowed: delivering an event more than once is
at-least-once delivery, which every pipeline here is allowed. It is counted, not flagged:
  redelivered   extra copies of an event on the topic (same event_id at two offsets)
  absorbed      redelivered copies that caused no second effect (the consumer deduplicated)
  reapplied     processed-event records for an event a consumer had already applied
Money counts the amounts of the extra effects (``extra_cents``: charged twice).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.checkers._index import applied_index, effects_index, repeated, topic_index
from harness.checkers._sources import missing
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chains
from harness.history.ops import History

__all__ = ["ExactlyOnceEffect"]


@dataclass(frozen=True, slots=True)
class ExactlyOnceEffect:
    name: str = "exactly-once-effect"
    invariant: str | None = "I2"

    def check(self, history: History) -> CheckResult:
        unknown = missing(history, self.name, self.invariant, "effects")
        if unknown is not None:
            return unknown
        effects = history.observed("effects")
        index = history.derived(effects_index)
        n_steps = index.steps
        per_step: Counter[tuple[object, object, object]] = Counter()  # (consumer, kind, order) -> effects
        if n_steps < len(effects):  # only then did some step take effect twice: find which
            per_step = Counter(zip(index.consumer, index.kind, index.order))
        duplicated = repeated(per_step)

        redelivered = history.derived(topic_index).redelivered  # event id -> extra copies
        distinct_applies = sum(len(mine.events) for mine in history.derived(applied_index).values())
        reapplied = len(history.observed("applied")) - distinct_applies

        dup_rows: dict[tuple[object, object, object], list[dict[str, object]]] = {}
        if duplicated:
            for r, k in zip(effects, zip(index.consumer, index.kind, index.order)):
                if k in duplicated:
                    dup_rows.setdefault(k, []).append(dict(r))
        effect_events_duplicated = {row.get("event_id") for rows in dup_rows.values() for row in rows}
        absorbed = sum(n for e, n in redelivered.items() if e not in effect_events_duplicated)
        extra_cents = sum(int(row.get("amount_cents") or 0) for rows in dup_rows.values() for row in rows[1:])

        counts: dict[str, int] = {"effects": len(effects), "steps": n_steps, "duplicated": len(duplicated),
                                  "extra_effects": sum(per_step[k] - 1 for k in duplicated), "extra_cents": extra_cents,
                                  "redelivered": sum(redelivered.values()), "absorbed": absorbed, "reapplied": reapplied}
        for consumer in sorted({str(k[0]) for k in duplicated}):
            counts[f"duplicated:{consumer}"] = sum(1 for k in duplicated if k[0] == consumer)
        if not duplicated:
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               f"{n_steps} effects, none twice; {absorbed} redelivered copies absorbed", counts)
        shown = sorted(duplicated, key=lambda k: tuple(str(x) for x in k))[:MAX_EXAMPLES]
        chains = order_chains(history, {str(k[2]) for k in shown})
        examples = []
        for consumer, kind, order in shown:
            rows = dup_rows[(consumer, kind, order)]
            same_event = len({r.get("event_id") for r in rows}) == 1
            examples.append({
                "anomaly": "duplicate-effect", "consumer": consumer, "kind": kind, "order_id": order,
                "times": len(rows), "cause": "one event applied twice (redelivery not absorbed)" if same_event
                else "distinct events drove the same step", "effects": rows[:MAX_EXAMPLES], "chain": chains[str(order)],
            })
        return CheckResult(self.name, self.invariant, Validity.INVALID,
                           f"{len(duplicated)} of {n_steps} steps took effect more than once "
                           f"({counts['extra_effects']} extra, {extra_cents / 100:.2f} charged twice)", counts, tuple(examples))
