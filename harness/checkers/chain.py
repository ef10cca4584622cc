"""The evidence chain of one order: every op and observation that names it, by order id or correlation id.

Examples of violations carry this chain so a reader sees exactly where it broke:

  "place ok" ...        the client's invoke and its ok / fail / info (with the correlation id it got)
  committed             the order service's row (ground truth of what committed)
  event on topic        each record on the topic, with partition, offset and time
  applied by consumer   each consumer's processed-event record, in its apply position
  effect                each consumer's side effect, with the correlation id it stored
  dead-lettered         each dead-lettered copy, with its reason

Ops carry seconds since the start of the run; observation rows carry epoch milliseconds
(``timestamp_ms``, ``applied_at_ms``). The two clocks are not comparable, so the chain
is ordered by stage and, within a stage, by its own clock. A row filed under another order
that carries one of this order's correlation ids is in its chain too (``matched_by``).
Chains are built for a handful of orders in one pass over the history, never for every order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from harness.checkers._arrays import unique
from harness.history.ops import History, Op
from harness.history.table import ABSENT

__all__ = ["STAGES", "Trace", "correlation_trace", "correlation_traces", "order_chain", "order_chains"]

STAGES: Mapping[str, str] = {"orders": "committed", "topic": "event on topic", "applied": "applied by consumer",
                             "effects": "effect", "dlq": "dead-lettered"}
"""Observation source -> the chain stage its rows are."""

_SORT = {"topic": ("timestamp_ms", "partition", "offset"), "applied": ("consumer", "position"),
         "effects": ("consumer", "applied_at_ms"), "dlq": ("consumer", "partition", "offset")}
_DROP = frozenset({"payload", "headers"})  # long (a value; a stack trace header); examples carry what they need
_LIMIT = 40


def _key(row: Mapping[str, object], fields: tuple[str, ...]) -> tuple[object, ...]:
    return tuple((v is None, str(type(v)), v) for v in (row.get(f) for f in fields))


def order_chains(history: History, order_ids: Collection[str], limit: int = _LIMIT) -> dict[str, list[dict[str, object]]]:
    """The chain of each order in ``order_ids``, built in one pass over the history."""
    wanted = set(order_ids)
    chains: dict[str, list[dict[str, object]]] = {o: [] for o in wanted}
    if not wanted:
        return chains
    fast = _chains_fast(history, wanted, limit)
    if fast is not None:
        return fast
    by_correlation: dict[object, str] = {}  # correlation ids the wanted orders' requests got -> order
    for op in history.ops:
        if op.key in wanted:
            _add_step(chains, by_correlation, op)
    for source, stage in STAGES.items():
        rows: dict[str, list[Mapping[str, object]]] = {}
        for row in history.observed(source):
            _file_row(rows, by_correlation, wanted, source, row)
        _add_rows(chains, rows, source, stage)
    return _truncated(chains, limit)


def _chains_fast(history: History, wanted: set[str], limit: int) -> dict[str, list[dict[str, object]]] | None:
    """As order_chains, reading only the ops and rows of the wanted orders (and of their correlation ids)
    from a columnar history's arrays; None when it has none, or a column cannot be read so."""
    from harness.checkers._arrays import FAST, isin, make_ops

    frame = history.frame
    if not FAST or frame is None:
        return None
    pool = frame.pool
    chains: dict[str, list[dict[str, object]]] = {o: [] for o in wanted}
    codes = np.array(pool.find_many(sorted(wanted)), dtype=np.int64)
    by_correlation: dict[object, str] = {}
    for op in make_ops(frame, np.flatnonzero(isin(frame.ops.key, codes))):
        _add_step(chains, by_correlation, op)
    for source, stage in STAGES.items():
        table = frame.tables.get(source)
        if table is None:
            continue
        order_col, cid_col = table.columns.get("order_id"), table.columns.get("correlation_id")
        if (order_col is not None and order_col.kind != "str") or (cid_col is not None and cid_col.kind != "str") \
                or not all(isinstance(c, str) for c in by_correlation):
            return None
        near = np.zeros(table.n, dtype=np.bool_)
        if order_col is not None:
            near |= isin(order_col.values, codes)
        if cid_col is not None and (by_correlation or source == "orders"):
            # Rows that may carry a wanted correlation id: the requests' ones, and (for orders rows) the ones
            # the wanted orders' rows carry, which the loop below learns row by row as the Python path does.
            cids: list[str] = [str(c) for c in by_correlation]  # all strings (checked above)
            if source == "orders" and order_col is not None:
                cids += pool.take(unique(cid_col.values[near & (cid_col.values >= 0)]))
            near |= isin(cid_col.values, np.array(pool.find_many(cids), dtype=np.int64))
        rows: dict[str, list[Mapping[str, object]]] = {}
        names = [n for n in table.columns if n not in _DROP]
        for i in np.flatnonzero(near).tolist():
            _file_row(rows, by_correlation, wanted, source,
                      {n: v for n in names if (v := table.columns[n].at(i, pool)) is not ABSENT})
        _add_rows(chains, rows, source, stage)
    return _truncated(chains, limit)


def _add_step(chains: dict[str, list[dict[str, object]]], by_correlation: dict[object, str], op: Op) -> None:
    """A wanted order's request as a step of its chain; its correlation id then leads to the order."""
    step: dict[str, object] = {"stage": f"{op.f} {op.type.value}", "time": round(op.time_s, 3), "process": op.process}
    if op.error:
        step["error"] = op.error
    step.update(op.value)
    chains[op.key].append(step)  # type: ignore[index]
    if op.value.get("correlation_id"):
        by_correlation[op.value["correlation_id"]] = op.key  # type: ignore[assignment]


def _file_row(rows: dict[str, list[Mapping[str, object]]], by_correlation: dict[object, str], wanted: set[str],
              source: str, row: Mapping[str, object]) -> None:
    """File an observed row under its wanted order, or under the order whose request caused it."""
    order = row.get("order_id")
    if order in wanted:
        rows.setdefault(order, []).append(row)  # type: ignore[arg-type]
        if source == "orders" and row.get("correlation_id"):
            by_correlation.setdefault(row["correlation_id"], order)  # type: ignore[arg-type]
    elif by_correlation and row.get("correlation_id") in by_correlation:
        # Filed under another order (or none) but caused by one of this order's requests.
        rows.setdefault(by_correlation[row["correlation_id"]], []).append({**row, "matched_by": "correlation_id"})


def _add_rows(chains: dict[str, list[dict[str, object]]], rows: dict[str, list[Mapping[str, object]]], source: str,
              stage: str) -> None:
    for order, found in rows.items():
        fields = _SORT.get(source)
        if fields:
            found.sort(key=lambda r: _key(r, fields))
        chains[order].extend({"stage": stage, **{k: v for k, v in r.items() if k not in _DROP}} for r in found)


def _truncated(chains: dict[str, list[dict[str, object]]], limit: int) -> dict[str, list[dict[str, object]]]:
    for order, steps in chains.items():
        if len(steps) > limit:
            chains[order] = [*steps[:limit], {"stage": "truncated", "more": len(steps) - limit}]
    return chains


def order_chain(history: History, order_id: str, limit: int = _LIMIT) -> list[dict[str, object]]:
    return order_chains(history, (order_id,), limit)[order_id]



Trace = dict[str, list[Mapping[str, object]]]
"""Chain stage ("request", "committed", "event on topic", ...) -> the rows one correlation id reaches."""


def correlation_traces(history: History, correlation_ids: Collection[str] | None = None) -> dict[str, Trace]:
    """What each correlation id reaches (every id the history knows when ``None``), in one pass.

    ``request``: the client ops whose answer carried the id (the entry point); ``committed``,
    ``event on topic``, ``effect``, ``dead-lettered``: the rows that store it; ``applied by
    consumer``: the processed-event records of those events (they store the event id, not the
    correlation id).
    """
    wanted = None if correlation_ids is None else set(correlation_ids)
    traces: dict[str, Trace] = {}

    def trace(cid: object) -> Trace | None:
        if not isinstance(cid, str) or (wanted is not None and cid not in wanted):
            return None
        return traces.setdefault(cid, {"request": [], **{stage: [] for stage in STAGES.values()}})

    for op in history.ops:
        if op.process.startswith("client") and (t := trace(op.value.get("correlation_id"))) is not None:
            t["request"].append({"f": op.f, "key": op.key, "time": round(op.time_s, 3), **op.value})
    by_event: dict[object, Trace] = {}
    for source, stage in STAGES.items():
        if source == "applied":
            continue
        for row in history.observed(source):
            if (t := trace(row.get("correlation_id"))) is not None:
                t[stage].append(row)
                if source == "topic" and row.get("event_id"):
                    by_event[row["event_id"]] = t
    for row in history.observed("applied"):
        if (t := by_event.get(row.get("event_id"))) is not None:
            t[STAGES["applied"]].append(row)
    if wanted is not None:
        for cid in wanted:
            trace(cid)
    return traces


def correlation_trace(history: History, correlation_id: str) -> Trace:
    """The one query: every stage ``correlation_id`` reached, from its request to its effects."""
    return correlation_traces(history, (correlation_id,))[correlation_id]
