"""I6 trace-complete: every effect carries the correlation id of the request that caused it.

The cause of an effect is policy (the history's required effects read backwards): a reservation or an
email is caused by ``place``, a charge by ``pay``, a shipment by ``ship``. The correlation
id the cause had is what the client got in that op's ``ok``; for a ``place`` whose outcome
the client never learned, the order row's ``correlation_id`` stands in for it while the row
is still at version 1 (the row keeps the id of the request that last changed it).

Anomalies:
  missing-correlation-id  the effect stores no correlation id
  foreign-correlation-id  the effect stores a correlation id other than its cause's
An effect whose cause's correlation id nobody knows (an unknown-outcome ``pay``) is counted
``unverifiable``; if no effect at all can be verified the result is unknown, not valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from harness.checkers._index import acknowledged_index, column, effects_index
from harness.checkers._sources import missing, pick
from harness.history.observations import cause_of
from harness.checkers.anomaly import Anomaly, AnomalyKind
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chains
from harness.history.ops import History

__all__ = ["TraceComplete"]


@dataclass(frozen=True, slots=True)
class TraceComplete:
    name: str = "trace-complete"
    invariant: str | None = "I6"

    def check(self, history: History) -> CheckResult:
        unknown = missing(history, self.name, self.invariant, "effects")
        if unknown is not None:
            return unknown
        expected: dict[tuple[object, str], object] = {}  # (order, op) -> its correlation id
        extra: dict[tuple[object, str], set[object]] = {}  # retried ops: every correlation id they got
        acks = history.derived(acknowledged_index)
        for key, acked_f, cid in zip(acks.key, acks.f, acks.correlation_id):
            if key is not None and cid:
                k = (key, acked_f)
                first = expected.setdefault(k, cid)
                if first != cid:
                    extra.setdefault(k, {first}).add(cid)
        orders = history.observed("orders")
        # The row keeps the correlation id of the request that last changed it: the place's
        # only while nothing else has (version 1). Read by column: a row view only where needed.
        for i, (cid, version) in enumerate(zip(column(orders, "correlation_id"), column(orders, "version", 1))):
            if cid and version == 1:
                expected.setdefault((orders[i]["order_id"], "place"), cid)

        effects = history.observed("effects")
        absent: list[dict[str, object]] = []
        foreign: list[dict[str, object]] = []
        n_absent = n_foreign = unverifiable = unmapped = 0
        found: list[Anomaly] = []
        index = history.derived(effects_index)
        cause = cause_of(history)
        # dict.get takes any key; the columns hold Scalars where the maps' keys are typed narrower.
        causes = tuple(map(cast("Callable[[object], str | None]", cause.get),
                           zip(index.consumer, index.kind)))  # the op that causes each effect, if any
        wants = map(cast("Callable[[object], object]", expected.get),
                    zip(index.order, causes))  # the correlation id that op got, if known
        for i, order, f, cid, want in zip(range(len(effects)), index.order, causes, column(effects, "correlation_id"),
                                          wants):
            if f is None:
                unmapped += 1
                continue
            if not cid:
                e = effects[i]  # a row view only for an anomaly
                n_absent += 1
                found.append(Anomaly(AnomalyKind.MISSING_CORRELATION_ID, str(order), str(e.get("consumer")),
                                     None if e.get("event_id") is None else str(e.get("event_id"))))
                if len(absent) < MAX_EXAMPLES:
                    absent.append({"anomaly": "missing-correlation-id", "cause": f, **_effect(e)})
                continue
            if want is None:
                unverifiable += 1
            elif cid != want and cid not in extra.get((order, f), ()):
                want = extra.get((order, f), {want})
                e = effects[i]
                n_foreign += 1
                found.append(Anomaly(AnomalyKind.FOREIGN_CORRELATION_ID, str(order), str(e.get("consumer")),
                                     None if e.get("event_id") is None else str(e.get("event_id"))))
                if len(foreign) < MAX_EXAMPLES:
                    foreign.append({"anomaly": "foreign-correlation-id", "cause": f,
                                    "expected": sorted(map(str, want)),  # type: ignore[call-overload]
                                    **_effect(e)})

        checked = len(effects) - unmapped - unverifiable
        counts = {"effects": len(effects), "checked": checked, "missing_correlation_id": n_absent,
                  "foreign_correlation_id": n_foreign, "unverifiable": unverifiable, "unmapped": unmapped}
        if n_absent or n_foreign:
            examples = pick(absent, foreign, limit=MAX_EXAMPLES)
            chains = order_chains(history, {str(x["order_id"]) for x in examples})
            for x in examples:
                x["chain"] = chains[str(x["order_id"])]
            return CheckResult(self.name, self.invariant, Validity.INVALID,
                               f"{n_absent + n_foreign} of {checked} effects cannot be traced to their request "
                               f"({n_absent} without a correlation id, {n_foreign} with a foreign one)", counts,
                               tuple(examples), tuple(found))
        if effects and checked == 0:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               f"none of {len(effects)} effects could be traced: no request that caused one reported "
                               "its correlation id", counts)
        return CheckResult(self.name, self.invariant, Validity.VALID,
                           f"all {checked} traceable effects carry their request's correlation id "
                           f"({unverifiable} unverifiable)", counts)


def _effect(e: object) -> dict[str, object]:
    return {k: e.get(k) for k in ("consumer", "kind", "order_id", "event_id", "correlation_id")}  # type: ignore[attr-defined]
