"""The checkers' fast path: a stored history's columns as arrays, for the common case where nothing is wrong.

A history read from history.arrow carries its ``Frame`` (harness/history/frame.py): every column
an array, every string a code into one pool shared by ops and observations, so "is every
acknowledged order's charge in the sink" is a set operation on integers. Each checker first asks
its fast path (``_clean`` in its module) whether the history is *clean* for it, computed on
these arrays; the fast path returns the checker's clean result (the same counts, the same message)
only when it proved there is nothing to report, and None otherwise: then the checker runs its
ordinary Python path, which builds the evidence of every anomaly exactly as it always has, reading
its inputs from the arrays where it can (only the rows of the orders concerned: ``_gather_fast``,
``_debts_fast``, ``_inputs_fast``, the evidence chains, attribution). A column of a shape the fast
path does not read (mixed types, a field some rows lack where it needs every row's) also sends it
to the Python path. So the fast path can save time but never change a result;
tests/test_checkers_fast.py holds the two paths to identical results.

``FAST`` is the switch (the equivalence test turns it off to get the reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.history.frame import ABSENT_CODE, NONE, Column, Frame
from harness.history.ops import History, Op, OpType

__all__ = ["FAST", "OpArrays", "Source", "dense", "first_index", "group_key", "isin", "last_index", "op_arrays", "source",
           "str_codes", "unique"]

FAST = True
"""Use the fast path where a history has a frame; False: always the Python path (the reference)."""

Codes = npt.NDArray[np.int32]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class OpArrays:
    """A history's ops by column, with the role and type of each as masks."""

    frame: Frame
    client: Bools  # recorded by a client process ("client-3")
    invoke: Bools
    ok: Bools
    fail: Bools
    info: Bools
    key: Codes
    f: Codes
    time: npt.NDArray[np.float64]

    def code(self, s: str) -> int:
        return self.frame.code(s)

    def value(self, name: str) -> Column | None:
        return self.frame.ops.values.get(name)

    def ops_at(self, where: npt.NDArray[np.intp]) -> tuple[Op, ...]:
        """The ops at these positions (for the few a checker reads as ops)."""
        return make_ops(self.frame, where)


_OP_TYPES = {t.value: t for t in OpType}


def make_ops(frame: Frame, where: npt.NDArray[np.intp]) -> tuple[Op, ...]:
    """The ops at these positions, their strings taken from the pool in one call."""
    o = frame.ops
    if not len(where):
        return ()
    fields = [o.process[where], o.type[where], o.f[where], o.key[where], o.error[where]]
    codes = unique(np.concatenate(fields))
    text = dict(zip(codes.tolist(), frame.pool.take(codes)))
    get = text.__getitem__
    process, type_, f, key, error = (list(map(get, c.tolist())) for c in fields)
    return tuple(map(Op, o.index[where].tolist(), o.time[where].tolist(), process,
                     map(_OP_TYPES.__getitem__, type_), f, key, map(o.value_at, where.tolist()), error))


def op_arrays(history: History) -> OpArrays | None:
    """The ops' arrays of a history read from a columnar file; None for one built in Python (or FAST off)."""
    frame = history.frame
    if not FAST or frame is None:
        return None
    return history.derived(_op_arrays)


def _op_arrays(history: History) -> OpArrays:
    frame = history.frame
    assert frame is not None
    o = frame.ops
    at = frame.pool.at
    distinct = unique(o.process)
    clients = distinct[[str(at(int(c))).startswith("client") for c in distinct.tolist()]]
    client = np.isin(o.process, clients)
    return OpArrays(frame, client, client & (o.type == frame.code("invoke")), client & (o.type == frame.code("ok")),
                    client & (o.type == frame.code("fail")), client & (o.type == frame.code("info")), o.key, o.f,
                    o.time)


@dataclass(frozen=True, slots=True)
class Source:
    """One observation's columns, as the fast path reads them."""

    n: int
    frame: Frame
    columns: dict[str, Column]

    def str_codes(self, name: str, *, required: bool = False) -> Codes | None:
        """The column's codes if it holds strings (or nulls) only; None if not (then: the Python path).

        ``required``: also None when some row lacks the field (the Python path raises KeyError there)."""
        c = self.columns.get(name)
        if c is None:
            if required and self.n:
                return None
            return np.full(self.n, ABSENT_CODE if required else NONE, dtype=np.int32)
        if c.kind != "str" or (required and bool((c.values == ABSENT_CODE).any())):
            return None
        return c.values

    def ints(self, name: str, rows: npt.NDArray[np.intp] | None = None) -> npt.NDArray[np.int64] | None:
        """The column's values if every row (of ``rows``, if given) holds an int (not a bool); None otherwise."""
        c = self.columns.get(name)
        if c is None:
            return np.zeros(self.n, dtype=np.int64) if not self.n or (rows is not None and not len(rows)) else None
        if c.kind != "int" or (c.mask is not None and (rows is None or c.mask[rows].any())):
            return None
        return c.values


def source(history: History, name: str) -> Source | None:
    """The observation's columns; None when it was not observed, or the history has no frame."""
    frame = history.frame
    if not FAST or frame is None or name not in frame.tables:
        return None
    t = frame.tables[name]
    return Source(t.n, frame, dict(t.columns))


def str_codes(col: Column | None, n: int) -> Codes | None:
    """Codes of a string column (NONE where a row has none or lacks it); None if it holds other types."""
    if col is None:
        return np.full(n, NONE, dtype=np.int32)
    if col.kind != "str":
        return None
    return np.where(col.values == ABSENT_CODE, NONE, col.values).astype(np.int32)


# np.unique hashes (numpy 2.x) where a sort is ten times faster on these int columns: sort-based helpers.

def unique(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The distinct values of ``a``, sorted."""
    s = np.sort(a)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), dtype=np.bool_)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def first_index(a: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[np.intp]]:
    """(distinct values sorted, the position of each one's first occurrence)."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    if len(s) < 2:
        return s, order
    keep = np.empty(len(s), dtype=np.bool_)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep], order[keep]


def last_index(a: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[np.intp]]:
    """(distinct values sorted, the position of each one's last occurrence)."""
    values, first = first_index(a[::-1])
    return values, len(a) - 1 - first


def dense(a: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], int]:
    """Each value's rank among the distinct values (0 .. k-1), and k."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    step = np.empty(len(s), dtype=np.int64)
    if len(s):
        step[0] = 0
        np.not_equal(s[1:], s[:-1], out=step[1:])
    ranks = np.cumsum(step)
    out = np.empty(len(a), dtype=np.int64)
    out[order] = ranks
    return out, (int(ranks[-1]) + 1 if len(s) else 0)


def group_key(*codes: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """One int64 per row identifying the tuple of its values (codes or ints): equal tuples, equal keys."""
    out = np.zeros(len(codes[0]), dtype=np.int64)
    span = 1
    for c in codes:
        low = int(c.min()) if len(c) else 0
        width = (int(c.max()) - low + 1) if len(c) else 1
        if span * width >= 2**62:  # would overflow: number the tuples so far 0 .. k-1 first
            out, span = dense(out)
            span = max(span, 1)
        out = out * width + (c.astype(np.int64) - low)
        span *= width
    return out


def isin(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Whether each value of ``a`` is among those of ``b``."""
    if not len(b):
        return np.zeros(len(a), dtype=np.bool_)
    b = unique(b)
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
    return b[at] == a  # type: ignore[no-any-return]
