"""Attribution: which injected fault explains each anomaly, judged from the history alone.

A scenario that expects anomalies expects them *because of* its faults. An anomaly no
fault explains is a defect that happened to share a run with the fault, and it fails the
scenario like an anomaly of an unexpected kind. The rules, per fault window (from the
nemesis's inject to its heal, opened ``LEAD_S`` earlier for work already on its way, and
stretched ``MARGIN_S`` later for what a fault sets in motion: delivery timeouts, session
timeouts, a restarted process reading from its last commit):

  message faults (duplicate, reorder, poison, schema_drift) name what they touched (the
    ``touched`` entities in their effect op): they explain anomalies of those entities
    only. A history written before faults recorded it falls back to the window rule.
  every other fault explains an anomaly of an entity that was *in flight* during its
    window: one of the entity's requests was open (invoke to completion; an unknown
    outcome stays open), or one of its events was between publish (its record's
    timestamp on the topic) and its last application (effects and processed-event
    records; never applied: still in flight at the end).
  an anomaly of no entity (slow recovery, an undecodable record) is explained by any
    injected fault: it is a property of the run, not of an entity.

A planted defect (the scenario's variant) explains the kinds its expectation says it
produces on its own (``Expect(..., by=Cause.VARIANT)``): a keyless publisher scatters
every order, fault or no fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.checkers._index import clock_anchor_ms, ops_by_role
from harness.checkers.anomaly import Anomaly
from harness.checkers.stats import LEAD_S, MARGIN_S, FaultWindow, fault_windows
from harness.history.ops import History, Op, OpType
from harness.history.table import ABSENT

__all__ = ["MARGIN_S", "MESSAGE_FAULTS", "Attribution", "attribute"]

MESSAGE_FAULTS = frozenset({"duplicate", "reorder", "poison", "schema_drift"})

_INF = float("inf")


@dataclass(frozen=True, slots=True)
class Attribution:
    """An anomaly and what explains it: ``cause`` names a fault (``kill@consumer.payment``) or the
    planted variant (``variant:no_idempotency``); None when nothing injected explains it."""

    anomaly: Anomaly
    cause: str | None
    how: str  # one line: why this cause explains it, or what was looked at when nothing did

    @property
    def explained(self) -> bool:
        return self.cause is not None


def attribute(history: History, anomalies: Sequence[Anomaly], *, variant: str | None = None,
              variant_kinds: Iterable[object] = ()) -> tuple[Attribution, ...]:
    """Each anomaly with its cause, in the order given. ``variant_kinds``: the kinds the
    scenario declares its planted ``variant`` produces without a fault."""
    if not anomalies:
        return ()
    windows = [w for w in fault_windows(history) if w.injected]
    by_variant = frozenset(variant_kinds)
    spans = _spans(history, {a.entity for a in anomalies if a.entity is not None})
    out: list[Attribution] = []
    for a in anomalies:
        if variant and a.kind in by_variant:
            out.append(Attribution(a, f"variant:{variant}", f"the planted defect {variant!r} produces {a.kind.value}"))
            continue
        out.append(_explain(a, windows, spans.get(a.entity, ()) if a.entity is not None else ()))
    return tuple(out)


def _label(w: FaultWindow) -> str:
    return f"{w.fault}@{w.target}"


def _explain(a: Anomaly, windows: Sequence[FaultWindow], spans: Sequence[tuple[float, float]]) -> Attribution:
    if not windows:
        return Attribution(a, None, "no fault was injected")
    if a.entity is None:
        w = windows[0]
        return Attribution(a, _label(w), "a run-wide anomaly, and this fault was injected")
    for w in windows:
        if w.fault in MESSAGE_FAULTS and w.touched is not None:
            if a.entity in w.touched or (a.event_id is not None and a.event_id in w.touched):
                return Attribution(a, _label(w), f"the fault touched {a.entity}")
            continue
        lo, hi = w.start_s - LEAD_S, (w.end_s if w.end_s is not None else _INF) + MARGIN_S
        for start, end in spans:
            if start <= hi and end >= lo:
                return Attribution(a, _label(w), f"{a.entity} was in flight during the fault "
                                                 f"({_t(start)}-{_t(end)} s against {lo:.1f}-{_t(hi)} s)")
    life = f"{_t(min(s for s, _ in spans))}-{_t(max(e for _, e in spans))} s" if spans else "nothing recorded"
    faults = ", ".join(f"{_label(w)} {w.start_s:.1f}-{_t(w.end_s)} s" for w in windows)
    return Attribution(a, None, f"{a.entity} was not in flight during any fault (its life: {life}; faults: {faults})")


def _t(x: float | None) -> str:
    return "end" if x is None or x == _INF else f"{x:.1f}"


def _spans(history: History, entities: set[str]) -> Mapping[str, list[tuple[float, float]]]:
    """entity -> the intervals (run seconds) it was in flight: its requests and its events."""
    out: dict[str, list[tuple[float, float]]] = {e: [] for e in entities}
    if not entities:
        return out
    picked = _picked_fast(history, entities)
    if picked is None:
        ops = history.derived(ops_by_role)
        invokes: Iterable[Op] = ops.client[OpType.INVOKE]
        completions: Iterable[Op] = ops.completions
        rows: Mapping[str, Iterable[Mapping[str, object]]] = {s: history.observed(s) for s in ("applied", "effects",
                                                                                                 "topic")}
    else:
        invokes, completions, rows = picked
    opened: dict[tuple[str, str, str], float] = {}
    for op in invokes:
        if op.key in entities:
            opened[(op.process, op.f, op.key)] = op.time_s
    for op in completions:
        if op.key in entities:
            start = opened.pop((op.process, op.f, op.key), None)
            if start is not None:
                out[op.key].append((start, _INF if op.type is OpType.INFO else op.time_s))
    for (_, _, key), start in opened.items():  # never completed: open to the end
        out[key].append((start, _INF))
    anchor = clock_anchor_ms(history)
    if anchor is None:
        return out
    applied_at: dict[object, float] = {}  # event id -> its last application, epoch ms
    for source in ("applied", "effects"):
        for row in rows[source]:
            if row.get("order_id") in entities:
                at = row.get("applied_at_ms")
                if isinstance(at, (int, float)):
                    eid = row.get("event_id")
                    applied_at[eid] = max(applied_at.get(eid, at), at)
    for row in rows["topic"]:
        order = row.get("order_id")
        if order in entities:
            ts = row.get("timestamp_ms")
            if isinstance(ts, (int, float)):
                done = applied_at.get(row.get("event_id"))
                out[str(order)].append(((ts - anchor) / 1000, _INF if done is None else (done - anchor) / 1000))
    return out


def _picked_fast(history: History, entities: set[str]) -> tuple[
        tuple[Op, ...], tuple[Op, ...], Mapping[str, Iterable[Mapping[str, object]]]] | None:
    """The entities' client ops (invokes, completions) and rows, read from a columnar history's arrays
    (the few that concern them, not every op and row); None when it has none or a column is not strings."""
    from harness.checkers._arrays import isin, make_ops, op_arrays

    ops = op_arrays(history)
    if ops is None:
        return None
    frame = ops.frame
    codes = np.array(frame.pool.find_many(sorted(entities)), dtype=np.int64)
    mine = ops.client & isin(ops.key, codes)
    invokes = make_ops(frame, np.flatnonzero(mine & ops.invoke))
    completions = make_ops(frame, np.flatnonzero(mine & (ops.ok | ops.fail | ops.info)))
    rows: dict[str, list[Mapping[str, object]]] = {}
    for source in ("applied", "effects", "topic"):
        table = frame.tables.get(source)
        rows[source] = []
        if table is None:
            continue
        order = table.columns.get("order_id")
        if order is None:
            continue
        if order.kind != "str":
            return None
        names = [n for n in ("order_id", "applied_at_ms", "event_id", "timestamp_ms") if n in table.columns]
        for i in np.flatnonzero(isin(order.values, codes)).tolist():
            got = {n: table.columns[n].at(i, frame.pool) for n in names}
            rows[source].append({n: v for n, v in got.items() if v is not ABSENT})
    return invokes, completions, rows
