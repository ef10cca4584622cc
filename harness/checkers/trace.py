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
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from harness.checkers._arrays import first_index, isin, op_arrays, source, str_codes
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
        clean = _clean(history)
        if clean is not None:
            n_effects, unverifiable, unmapped = clean
            checked = n_effects - unmapped - unverifiable
            counts = {"effects": n_effects, "checked": checked, "missing_correlation_id": 0,
                      "foreign_correlation_id": 0, "unverifiable": unverifiable, "unmapped": unmapped}
            return self._nothing_broken(n_effects, checked, unverifiable, counts)
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
        return self._nothing_broken(len(effects), checked, unverifiable, counts)

    def _nothing_broken(self, n_effects: int, checked: int, unverifiable: int, counts: dict[str, int]) -> CheckResult:
        """The verdict when no traceable effect carries a wrong correlation id: unknown if none was traceable."""
        if n_effects and checked == 0:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               f"none of {n_effects} effects could be traced: no request that caused one reported "
                               "its correlation id", counts)
        return CheckResult(self.name, self.invariant, Validity.VALID,
                           f"all {checked} traceable effects carry their request's correlation id "
                           f"({unverifiable} unverifiable)", counts)


def _clean(history: History) -> tuple[int, int, int] | None:
    """(effects, unverifiable, unmapped) when the columns prove every traceable effect carries its cause's
    correlation id; None when they do not, or cannot be read as arrays (then the Python path decides)."""
    ops, orders, effects = op_arrays(history), source(history, "orders"), source(history, "effects")
    if ops is None or effects is None or (orders is None) == ("orders" in history.observations):
        return None
    value = ops.value("correlation_id")
    acked_cid = str_codes(value, ops.frame.ops.n)
    e_consumer, e_kind, e_order = (effects.str_codes(n, required=True) for n in ("consumer", "kind", "order_id"))
    e_cid = str_codes(effects.columns.get("correlation_id"), effects.n)
    if acked_cid is None or e_consumer is None or e_kind is None or e_order is None or e_cid is None:
        return None
    code = ops.frame.code
    empty = code("")
    width = np.int64(len(ops.frame.pool) + 4)

    def pair(order: npt.NDArray[Any], f: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return order.astype(np.int64) * width + (f.astype(np.int64) + 3)  # (order, op) as one int

    # What each acknowledged (order, op) got: its first correlation id; another one later is the Python path's.
    acked = np.flatnonzero(ops.ok & (ops.key >= 0) & (acked_cid >= 0) & (acked_cid != empty))
    keys = pair(ops.key[acked], ops.f[acked])
    distinct, first = first_index(keys)
    want = acked_cid[acked][first]
    if len(keys) and not (acked_cid[acked] == want[np.searchsorted(distinct, keys)]).all():
        return None
    if orders is not None and orders.n:
        o_cid = str_codes(orders.columns.get("correlation_id"), orders.n)
        version = orders.columns.get("version")
        order_id = orders.str_codes("order_id")
        if o_cid is None or order_id is None or (version is not None and version.kind not in ("int", "bool")):
            return None
        first_version = np.ones(orders.n, dtype=np.bool_) if version is None else (
            (version.values == 1) & (version.mask == 0) | (version.mask == 2) if version.mask is not None
            else version.values == 1)  # an absent version reads as 1; a null one as no version
        stands_in = (o_cid >= 0) & (o_cid != empty) & first_version
        if (order_id[stands_in] < 0).any():
            return None  # a row without its order id: reading it raises, as the Python path shows
        o_keys = pair(order_id[stands_in], np.full(int(stands_in.sum()), code("place"), dtype=np.int32))
        o_distinct, o_first = first_index(o_keys)
        fresh = ~isin(o_distinct, distinct)
        distinct = np.concatenate([distinct, o_distinct[fresh]])
        want = np.concatenate([want, o_cid[stands_in][o_first][fresh]])
        by_key = np.argsort(distinct, kind="stable")
        distinct, want = distinct[by_key], want[by_key]
    # Each effect's cause (the op its (consumer, kind) answers), and the correlation id that op got.
    cause = np.full(effects.n, -3, dtype=np.int32)
    mapped = np.zeros(effects.n, dtype=np.bool_)
    for (consumer, kind), f in cause_of(history).items():
        hit = (e_consumer == code(consumer)) & (e_kind == code(kind))
        cause[hit] = code(f)
        mapped |= hit
    traced = (e_cid >= 0) & (e_cid != empty)
    if (mapped & ~traced).any():
        return None
    e_keys = pair(e_order, cause)
    at = np.minimum(np.searchsorted(distinct, e_keys), max(len(distinct) - 1, 0))
    known = mapped & (distinct[at] == e_keys) if len(distinct) else np.zeros(effects.n, dtype=np.bool_)
    if (known & (e_cid != (want[at] if len(distinct) else e_cid))).any():
        return None
    unmapped = int(np.count_nonzero(~mapped))
    return effects.n, int(np.count_nonzero(mapped & ~known)), unmapped


def _effect(e: object) -> dict[str, object]:
    return {k: e.get(k) for k in ("consumer", "kind", "order_id", "event_id", "correlation_id")}  # type: ignore[attr-defined]
