"""Indexes of a history that several checkers share, each built once per History (``History.derived``).

A million-event history is mostly touched, not computed on: every pass over its ops or
rows costs tens of milliseconds before a checker does any work. Checkers that group the
same rows by the same key read one shared index instead of each making its own pass.
Every index here is a pure function of the history, keeps the history's order wherever a
checker's examples depend on it, and is read-only by convention (tuples and mappings that
no caller mutates).

Indexes are columns (one tuple per field) and sets of ids, never a tuple per row: an index
lives as long as its history, and a tuple per row would be 700k more objects for every
full garbage collection to walk (they cost 0.4 s at the end of checking when they were tried).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import attrgetter, gt, itemgetter
from typing import Any, TypeVar

import numpy as np

from harness.history.ops import History, Op, OpType, Scalar
from harness.history.table import Table

__all__ = ["Acknowledged", "Applied", "EffectsIndex", "OpsByRole", "TopicIndex", "acknowledged_index", "applied_index",
           "clock_anchor_ms", "column", "effects_index", "ops_by_role", "repeated", "required_column", "topic_index"]

Row = Mapping[str, Scalar]
K = TypeVar("K")


class OpsByRole:
    """A history's ops split by who recorded them, each part in history order.

    ``nemesis`` and ``probe`` are few and read by most checkers. The client parts are most of
    the ops: for a history read from a columnar file they are made only when a checker's
    Python path asks for them (its fast path reads the ops' columns instead)."""

    __slots__ = ("nemesis", "probe", "_history", "_client", "_completions")

    def __init__(self, nemesis: tuple[Op, ...], probe: tuple[Op, ...], history: History | None = None,
                 client: Mapping[OpType, tuple[Op, ...]] | None = None,
                 completions: tuple[Op, ...] | None = None) -> None:
        self.nemesis = nemesis  # process "nemesis": faults
        self.probe = probe  # process "probe": lag samples and the drain
        self._history = history
        self._client = client
        self._completions = completions

    @property
    def client(self) -> Mapping[OpType, tuple[Op, ...]]:
        """Ops of client processes ("client-3"), by type."""
        if self._client is None:
            self._split()
        assert self._client is not None
        return self._client

    @property
    def completions(self) -> tuple[Op, ...]:
        """Client ops that are not invokes: ok, fail and info, interleaved."""
        if self._completions is None:
            self._split()
        assert self._completions is not None
        return self._completions

    def _split(self) -> None:
        assert self._history is not None
        whole = _split(self._history)
        self._client, self._completions = whole._client, whole._completions

    @property
    def client_count(self) -> int:
        return sum(map(len, self.client.values()))


def _role(process: str) -> str:
    if process in ("nemesis", "probe"):
        return process
    return "client" if process.startswith("client") else "other"


def ops_by_role(history: History) -> OpsByRole:
    """Split the ops in one pass; a process's role is decided once per distinct process name.

    A history read from a columnar file makes only its nemesis and probe ops here."""
    frame = history.frame
    if frame is not None:
        from harness.checkers._arrays import make_ops

        o = frame.ops
        nemesis, probe = frame.code("nemesis"), frame.code("probe")
        made = make_ops(frame, np.flatnonzero((o.process == nemesis) | (o.process == probe)))  # few
        return OpsByRole(tuple(op for op in made if op.process == "nemesis"),
                         tuple(op for op in made if op.process == "probe"), history)
    return _split(history)


def _split(history: History) -> OpsByRole:
    invoke, ok, fail = OpType.INVOKE, OpType.OK, OpType.FAIL
    # Lists named per type, not a dict keyed by OpType: an Enum hashes in Python, per lookup.
    invokes: list[Op] = []
    oks: list[Op] = []
    fails: list[Op] = []
    infos: list[Op] = []
    completions: list[Op] = []
    parts: dict[str, list[Op]] = {"nemesis": [], "probe": [], "other": []}
    role_of: dict[str, str] = {}
    for op in history.ops:
        role = role_of.get(op.process)
        if role is None:
            role = role_of[op.process] = _role(op.process)
        if role != "client":
            parts[role].append(op)
            continue
        t = op.type
        if t is invoke:
            invokes.append(op)
            continue
        completions.append(op)
        (oks if t is ok else fails if t is fail else infos).append(op)
    client = {invoke: tuple(invokes), ok: tuple(oks), fail: tuple(fails), OpType.INFO: tuple(infos)}
    return OpsByRole(tuple(parts["nemesis"]), tuple(parts["probe"]), None, {t: client[t] for t in OpType},
                     tuple(completions))


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """The client ops that ended ok (acknowledged requests) by column, in history order."""

    key: tuple[str | None, ...]  # the order
    f: tuple[str, ...]  # place, pay, ship ...
    amount_cents: tuple[Scalar, ...]  # from the op's value; None where it has none
    correlation_id: tuple[Scalar, ...]


def acknowledged_index(history: History) -> Acknowledged:
    """Reads each ok op's value once for I1 (amounts) and I6 (correlation ids)."""
    oks = history.derived(ops_by_role).client[OpType.OK]
    values = tuple(map(attrgetter("value"), oks))
    return Acknowledged(tuple(map(attrgetter("key"), oks)), tuple(map(attrgetter("f"), oks)),
                        column(values, "amount_cents"), column(values, "correlation_id"))


def column(rows: Sequence[Row], name: str, default: object = None) -> tuple[Any, ...]:
    """Each row's value of ``name``, ``default`` where a row lacks it.

    ``row.get`` is a method call per row; an ``itemgetter`` mapped over the rows runs in C,
    about twice as fast, as long as every row has the field. At the first row without it
    (an optional field, or an undecodable record without an event id), the rest are read
    with ``get``: an exception per row would cost far more. An observation's rows (a Table)
    hold their columns already: then the stored column is returned as it is.
    """
    if isinstance(rows, Table):
        return rows.column(name, default)
    out: list[Any] = []
    rest = iter(rows)
    try:
        out.extend(map(itemgetter(name), rest))
    except KeyError:
        # extend kept the rows before the one without the field, and ``rest`` has passed it.
        if len(out) >= len(rows) or name in rows[len(out)]:
            raise AssertionError(f"lost track reading {name!r} at row {len(out)} of {len(rows)}") from None
        out.append(default)
        out.extend([row.get(name, default) for row in rest])
    return tuple(out)


def repeated(counts: Mapping[K, int]) -> set[K]:
    """The keys counted more than once, selected in C: a comprehension over 250k counts costs 50 ms."""
    return set(compress(counts, map(gt, counts.values(), repeat(1))))


def required_column(rows: Sequence[Row], name: str) -> tuple[Any, ...]:
    """Each row's value of a field every row must have: a row without it raises KeyError, as reading it would."""
    if isinstance(rows, Table):
        return rows.strict(name)
    return tuple(map(itemgetter(name), rows))


@dataclass(frozen=True, slots=True)
class EffectsIndex:
    """The effects observation by column, and the orders each (consumer, kind) took effect for."""

    consumer: tuple[Scalar, ...]  # of each effect row, in history order
    kind: tuple[Scalar, ...]
    order: tuple[Scalar, ...]
    orders_of: Mapping[tuple[Scalar, Scalar], frozenset[Scalar]]  # (consumer, kind) -> orders it took effect for
    steps: int  # distinct (consumer, kind, order); fewer than rows when some step took effect twice


def effects_index(history: History) -> EffectsIndex:
    """Every effect row names its consumer, kind and order; a row without one is malformed, and
    the checkers that read this index crash into unknown on it, as reading the row would."""
    rows = history.observed("effects")
    consumer, kind, order = required_column(rows, "consumer"), required_column(rows, "kind"), required_column(rows, "order_id")
    orders_of: dict[tuple[Scalar, Scalar], set[Scalar]] = {}
    for c, k, o in zip(consumer, kind, order):
        got = orders_of.get((c, k))
        if got is None:
            got = orders_of[(c, k)] = set()
        got.add(o)
    return EffectsIndex(consumer, kind, order, {step: frozenset(got) for step, got in orders_of.items()},
                        sum(map(len, orders_of.values())))


@dataclass(frozen=True, slots=True)
class Applied:
    """One consumer's processed-event records (applied or deliberately skipped), in history order."""

    rows: tuple[int, ...]  # their indexes in the applied observation
    order_id: tuple[Scalar, ...]  # of each of those records
    events: frozenset[Scalar]  # the event ids it applied


def applied_index(history: History) -> Mapping[Scalar, Applied]:
    """Consumer -> its records, in order of first appearance. Every record names its consumer,
    event and order (a row without one crashes the checkers that read this into unknown)."""
    rows = history.observed("applied")
    consumer, event_id, order_id = required_column(rows, "consumer"), required_column(rows, "event_id"), required_column(rows, "order_id")
    mine: dict[Scalar, list[int]] = {}
    for i, c in enumerate(consumer):
        got = mine.get(c)
        if got is None:
            got = mine[c] = []
        got.append(i)
    return {c: Applied(tuple(rows_of_c), tuple(map(order_id.__getitem__, rows_of_c)),
                       frozenset(map(event_id.__getitem__, rows_of_c)))
            for c, rows_of_c in mine.items()}


@dataclass(frozen=True, slots=True)
class TopicIndex:
    """The topic's records by column, in topic order; None where a record lacks the field."""

    event_id: tuple[Scalar, ...]
    order_id: tuple[Scalar, ...]
    type: tuple[Scalar, ...]
    seq: tuple[Scalar, ...]
    partition: tuple[Scalar, ...]
    offset: tuple[Scalar, ...]
    undecodable: tuple[Scalar, ...]
    redelivered: Mapping[Scalar, int]  # event id -> extra copies of it on the topic (at-least-once delivery)


def topic_index(history: History) -> TopicIndex:
    """A record that is not an event (undecodable) has no event id, order, type or seq: None there."""
    rows = history.observed("topic")
    event_id = column(rows, "event_id")
    copies = Counter(event_id)
    copies.pop(None, None)
    return TopicIndex(event_id, column(rows, "order_id"), column(rows, "type"), column(rows, "seq"),
                      column(rows, "partition"), column(rows, "offset"), column(rows, "undecodable"),
                      {e: copies[e] - 1 for e in repeated(copies)})


def clock_anchor_ms(history: History) -> float | None:
    """Epoch milliseconds at the pipeline clock's zero, from the runner's ``clock`` probe: the
    bridge between op times (run seconds) and the epoch times records and effects carry."""
    for op in history.derived(ops_by_role).probe:
        if op.f == "clock":
            epoch = op.value.get("epoch_ms")
            if isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
                return float(epoch) - op.time_s * 1000
    return None
