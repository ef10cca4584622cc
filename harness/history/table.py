"""Tables: the rows of one observation, held by column.

A million-row observation held as a dict per row is a million containers for the garbage
collector to walk, and every checker that groups rows by a field first pulls that field
out of every row again. Held by column, a field is one tuple read once from the file and
handed to every index as it is (``Table.column``), and an order id that a row names is one
slot in a tuple, not a key-value pair in a dict.

Checkers still see rows: a ``Table`` is a read-only ``Sequence`` of ``Mapping`` rows. A
``Row`` is a view (the table's columns and a row number), made when it is asked for, so
a checker that reads a handful of rows pays for a handful.

A row may lack a field (an undecodable topic record has no event id): its slot in that
column holds ``ABSENT``, which no row ever shows; ``row[name]`` raises KeyError there, as
a dict would, and ``Table.column(name, default)`` gives ``default`` in its place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Union, overload

if TYPE_CHECKING:
    from harness.history.frame import Pool, TableFrame

__all__ = ["ABSENT", "Row", "Table"]

Scalar = Union[str, int, float, bool, None]


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"

    def __reduce__(self) -> str:
        return "ABSENT"  # pickles as the one module-level sentinel


ABSENT: Any = _Absent()
"""The value in a column where a row lacks the field; never shown by a Row."""


class _Columns(dict[str, Any]):
    """A table's columns read from a frame: each made into a tuple the first time it is read.

    A dict, so a Row reads a column that was read before at dict speed; ``get`` and iteration
    make the missing ones, and ``fill`` puts them in the stored order (a row's fields keep the
    order they were recorded in, as the examples in results.json show them)."""

    __slots__ = ("_frame", "_pool", "_full")

    def __init__(self, frame: TableFrame, pool: Pool) -> None:
        super().__init__()
        self._frame = frame
        self._pool = pool
        self._full = False

    def __missing__(self, name: str) -> tuple[Any, ...]:
        c = self._frame.columns[name]  # KeyError for a field no row has, as for a plain dict
        col = self[name] = c.materialize(self._pool)
        return col

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        if name in self._frame.columns:
            return self[name]
        return default

    def fill(self) -> _Columns:
        if not self._full:
            got = {name: self[name] for name in self._frame.columns}
            self.clear()
            self.update(got)
            self._full = True
        return self


def _all(columns: Mapping[str, tuple[Any, ...]]) -> Mapping[str, tuple[Any, ...]]:
    return columns.fill() if type(columns) is _Columns else columns


class Row(Mapping[str, Scalar]):
    """One row of a Table: a read-only mapping of its fields, read through the table's columns."""

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: Mapping[str, tuple[Any, ...]], i: int) -> None:
        self._columns = columns
        self._i = i

    def __getitem__(self, name: str) -> Scalar:
        try:
            v = self._columns[name][self._i]
        except KeyError:
            v = ABSENT  # no row has the field (a table read from a columnar file finds that out one call deeper)
        if v is ABSENT:
            raise KeyError(name)  # one place, so a checker that crashes on it shows the same traceback either way
        return v  # type: ignore[no-any-return]

    def get(self, name: str, default: Any = None) -> Any:  # one call, not Mapping.get's try around __getitem__
        col = self._columns.get(name)
        if col is None:
            return default
        v = col[self._i]
        return default if v is ABSENT else v

    def __contains__(self, name: object) -> bool:
        col = self._columns.get(name)  # type: ignore[call-overload]
        return col is not None and col[self._i] is not ABSENT

    def __iter__(self) -> Iterator[str]:
        i = self._i
        return (name for name, col in _all(self._columns).items() if col[i] is not ABSENT)

    def __len__(self) -> int:
        i = self._i
        return sum(1 for col in _all(self._columns).values() if col[i] is not ABSENT)

    def __repr__(self) -> str:
        return repr(dict(self))


class Table(Sequence[Row]):
    """The rows of one observation by column: ``columns[name][i]`` is row i's ``name`` (ABSENT if it has none)."""

    __slots__ = ("_columns", "_n", "_sparse")

    def __init__(self, columns: Mapping[str, tuple[Any, ...]], n: int, sparse: Iterable[str] = ()) -> None:
        """``sparse`` names the columns that hold ABSENT somewhere; every column has ``n`` values."""
        for name, col in columns.items():
            if len(col) != n:
                raise ValueError(f"column {name!r} has {len(col)} values for {n} rows")
        self._columns: dict[str, tuple[Any, ...]] = dict(columns)
        self._n = n
        self._sparse = frozenset(sparse)

    @classmethod
    def from_frame(cls, frame: TableFrame, pool: Pool) -> Table:
        """The table of a frame's columns, each made into Python values when first read (frame.py)."""
        table = cls.__new__(cls)
        table._columns = _Columns(frame, pool)
        table._n = frame.n
        table._sparse = frozenset(name for name, c in frame.columns.items() if c.sparse)
        return table

    def frame(self) -> TableFrame | None:
        """The columns this table is read from, when it came from a columnar file; None when built in Python."""
        columns = self._columns
        return columns._frame if isinstance(columns, _Columns) else None

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Scalar]]) -> Table:
        """The table of these rows; fields in order of first appearance."""
        if isinstance(rows, Table):
            return rows
        rows = rows if isinstance(rows, Sequence) else tuple(rows)
        names = dict.fromkeys(chain.from_iterable(rows))
        columns: dict[str, tuple[Any, ...]] = {}
        sparse = []
        for name in names:
            got: list[Any] = []
            rest = iter(rows)
            # Every row usually has every field: an itemgetter mapped in C reads them all; at a row
            # without the field the rest are read with get (see harness.checkers._index.column).
            try:
                got.extend(map(itemgetter(name), rest))
            except KeyError:
                got.append(ABSENT)
                got.extend([row.get(name, ABSENT) for row in rest])
                sparse.append(name)
            columns[name] = tuple(got)
        return cls(columns, len(rows), sparse)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(_all(self._columns))

    def column(self, name: str, default: Any = None) -> tuple[Any, ...]:
        """Every row's ``name``, ``default`` where a row lacks it. The stored tuple itself when no row does."""
        col = self._columns.get(name)
        if col is None:
            return tuple(repeat(default, self._n))
        if name not in self._sparse:
            return col
        return tuple(default if v is ABSENT else v for v in col)

    def strict(self, name: str) -> tuple[Any, ...]:
        """Every row's ``name``; KeyError if some row lacks it (as reading that row would raise)."""
        col = self._columns.get(name)
        if col is None:
            if self._n:
                raise KeyError(name)
            return ()
        if name in self._sparse:
            raise KeyError(name)
        return col

    def raw_columns(self) -> Mapping[str, tuple[Any, ...]]:
        """The stored columns, ABSENT included (for the store's encoder)."""
        return _all(self._columns)

    @property
    def sparse(self) -> frozenset[str]:
        """The columns where some row lacks the field (holds ABSENT)."""
        return self._sparse

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Row: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Row, ...]: ...

    def __getitem__(self, i: int | slice) -> Row | tuple[Row, ...]:
        if isinstance(i, slice):
            return tuple(map(Row, repeat(self._columns), range(*i.indices(self._n))))
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("table row out of range")
        return Row(self._columns, i)

    def __iter__(self) -> Iterator[Row]:
        return map(Row, repeat(self._columns), range(self._n))

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of equal mappings (a tuple of dicts, another table)."""
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(other) == self._n and all(map(_same_row, self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Table({self._n} rows: {', '.join(self.names)})"


def _same_row(a: Row, b: object) -> bool:
    return isinstance(b, Mapping) and dict(a) == dict(b)
