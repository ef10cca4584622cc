"""A history as typed arrays: every column a numpy array, every string a code into one shared pool.

The jsonl history is the crash-safe record; a million-event history read from it is a million
Python objects before a checker starts. A ``Frame`` holds the same ops and observations as
arrays instead: a string column is ``int32`` codes into the frame's one string ``pool`` (so an
order id has the same code in the ops, the topic, the applied records and the effects, and a
join across them is integer work), a number column is ``int64`` or ``float64``. The columnar
file (``columnar.py``) stores a frame as it is, so loading one is mapping its arrays.

Encoding of one column (``Column``):
  ``str``    codes into the pool; ``NONE`` (-1) where the value is null, ``ABSENT_CODE`` (-2)
             where the row lacks the field
  ``int``    int64 values (Python ints within 64 bits), ``float`` float64, ``bool`` int8 0/1;
             ``mask`` (int8, only when needed) is 1 where null, 2 where absent (values hold 0 there)
  ``json``   a column whose values mix types (an int here, a string there) or hold ints beyond
             64 bits: each value's JSON text is in the pool, its code in ``values``; the mask as above

Python objects are made from a frame only when asked for (``Column.materialize``): a checker that
reads three columns of a table pays for three. Ops keep their ``value`` mappings both as JSON texts
and by key (``OpsFrame``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from harness.history.table import ABSENT

__all__ = ["ABSENT_CODE", "NONE", "Column", "Frame", "Interner", "OpsFrame", "Pool", "TableFrame", "encode_column"]

NONE = -1
ABSENT_CODE = -2
_FEW = 1024  # a column with at most this many distinct strings has its strings in the vocabulary
_INT64 = (-(2**63), 2**63 - 1)

Codes = npt.NDArray[np.int32]


class Pool:
    """The frame's strings: ``strings[code]``, made into Python objects once, when first asked for.

    ``text`` is whatever holds them (a list, or an Arrow string array read from the file); ``at``
    gives one string without materialising the rest."""

    __slots__ = ("_source", "_list", "_n")

    def __init__(self, source: Any) -> None:
        self._source = source  # a list[str] or a pyarrow StringArray / LargeStringArray
        self._n = len(source)
        self._list: list[Any] | None = list(source) if isinstance(source, list) else None

    def __len__(self) -> int:
        return self._n

    def strings(self) -> list[Any]:
        """Every string, as one list; two extra slots at the end make code -1 read None and -2 ABSENT."""
        if self._list is None:
            self._list = self._source.to_pylist()
        if len(self._list) == self._n:
            self._list.extend((ABSENT, None))  # [-2] is ABSENT, [-1] is None: codes index it directly
        return self._list

    def held(self) -> bool:
        """Whether every string is a Python object already."""
        return self._list is not None

    def take(self, codes: npt.NDArray[Any]) -> list[Any]:
        """The values of these codes (None for -1, ABSENT for -2), made from the pool's text in one call."""
        if self._list is not None:
            return list(map(self.strings().__getitem__, codes.tolist()))
        out = self.arrow().take(np.maximum(codes, 0)).to_pylist()
        for i in np.flatnonzero(codes < 0).tolist():
            out[i] = None if codes[i] == NONE else ABSENT
        return out  # type: ignore[no-any-return]

    def arrow(self) -> Any:
        """The strings as an Arrow array (the file's own, or one made once from the list)."""
        if isinstance(self._source, list):
            import pyarrow as pa

            self._source = pa.array(self._source[:self._n], pa.large_string())
        return self._source

    def find(self, s: str) -> int:
        """The code of ``s``, or -3 when the pool does not hold it; a scan in C, no string made."""
        if isinstance(self._source, list):
            try:
                return self._source.index(s)
            except ValueError:
                return -3
        import pyarrow.compute as pc

        found = pc.index(self._source, value=s).as_py()
        return -3 if found < 0 else int(found)

    def find_many(self, strings: Sequence[str]) -> list[int]:
        """The code of each string (-3 where the pool does not hold it), by one hash of the pool."""
        if isinstance(self._source, list):
            index = {s: i for i, s in enumerate(self._source[:self._n])}
            return [index.get(s, -3) for s in strings]
        import pyarrow as pa
        import pyarrow.compute as pc

        # One pass over the pool against a hash of the few strings (index_in would hash the whole pool).
        hits = np.flatnonzero(pc.is_in(self._source, value_set=pa.array(list(strings), pa.large_string()))
                              .to_numpy(zero_copy_only=False))
        code = dict(zip(self._source.take(hits).to_pylist(), hits.tolist()))
        return [code.get(s, -3) for s in strings]

    def at(self, code: int) -> Any:
        if code == NONE:
            return None
        if code == ABSENT_CODE:
            return ABSENT
        if self._list is not None:
            return self._list[code]
        return self._source[code].as_py()


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table frame (see the module docstring for the encoding)."""

    kind: str  # "str", "int", "float", "bool", "json"
    values: npt.NDArray[Any]
    mask: npt.NDArray[np.int8] | None = None  # 1 null, 2 absent; None when every row has a value

    def materialize(self, pool: Pool) -> tuple[Any, ...]:
        """The column as Python values, ABSENT where a row lacks the field (as ``Table`` holds it)."""
        if self.kind == "str":
            if pool.held():
                return tuple(map(pool.strings().__getitem__, self.values.tolist()))
            # Only this column's strings, not the whole pool (which holds every payload too).
            distinct, ranks = _factor(self.values)
            strings = pool.take(distinct)
            return tuple(map(strings.__getitem__, ranks.tolist()))
        if self.kind == "json":
            strings = pool.strings()
            out: list[Any] = [json.loads(strings[c]) if c >= 0 else None for c in self.values.tolist()]
        elif self.kind == "bool":
            out = list(map(bool, self.values.tolist()))
        else:
            out = self.values.tolist()
        if self.mask is not None:
            for i in np.flatnonzero(self.mask).tolist():
                out[i] = None if self.mask[i] == 1 else ABSENT
        return tuple(out)

    def at(self, i: int, pool: Pool) -> Any:
        if self.mask is not None and self.mask[i]:
            return None if self.mask[i] == 1 else ABSENT
        v = self.values[i].item()
        if self.kind == "str":
            return pool.at(v)
        if self.kind == "json":
            return json.loads(pool.at(v))
        if self.kind == "bool":
            return bool(v)
        return v

    @property
    def sparse(self) -> bool:
        """Whether some row lacks the field."""
        if self.kind in ("str",):
            return bool((self.values == ABSENT_CODE).any())
        return self.mask is not None and bool((self.mask == 2).any())


@dataclass(frozen=True, slots=True)
class TableFrame:
    """One observation's rows as columns."""

    n: int
    columns: Mapping[str, Column]


@dataclass(frozen=True, slots=True)
class OpsFrame:
    """A pipeline's ops as columns: index, time, process, type, f, key, error (codes), and their values.

    Each op's ``value`` is kept twice: as its JSON text ending in a newline (``texts``: the whole
    column is then one JSON-lines text, decoded in one call when every op is made), and by key
    (``values``: one column per key any op's value has, ABSENT where an op's lacks it), which is
    what the checkers read."""

    n: int
    index: npt.NDArray[np.int64]
    time: npt.NDArray[np.float64]
    process: Codes
    type: Codes
    f: Codes
    key: Codes  # NONE where the op names no entity
    error: Codes  # NONE where it has none
    texts: Any  # list[str], or a pyarrow LargeStringArray read from the file
    values: Mapping[str, Column]

    def all_values(self) -> list[dict[str, Any]]:
        """Every op's value, in op order."""
        if not self.n:
            return []
        if isinstance(self.texts, list):
            data: bytes | memoryview = "".join(self.texts).encode()
        else:
            _, offsets, text = self.texts.buffers()
            first = self.texts.offset
            ends = np.frombuffer(offsets, dtype=np.int64)[first:first + len(self.texts) + 1]
            data = memoryview(text)[int(ends[0]):int(ends[-1])]
        try:
            return VALUES_DECODER.decode_lines(data)
        except ValueError:  # NaN or Infinity in some value: json writes them, msgspec does not read them
            return [json.loads(line) for line in bytes(data).splitlines()]

    def value_at(self, i: int) -> dict[str, Any]:
        text = self.texts[i]
        text = text if isinstance(text, str) else text.as_py()
        try:
            return VALUE_DECODER.decode(text)
        except ValueError:
            return json.loads(text)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Frame:
    """One pipeline's history as arrays over one string pool."""

    pool: Pool
    ops: OpsFrame
    tables: Mapping[str, TableFrame]
    # The pool's code of each string a caller asked about (``code``), kept once looked up; seeded with
    # the file's vocabulary (the strings of its low-cardinality columns), so most lookups scan nothing.
    _codes: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def vocabulary(self) -> dict[str, int]:
        """The strings of every column with few distinct values (processes, types, consumers, kinds,
        statuses ...) and their codes, and the empty string's: what the checkers look up by name."""
        codes = [self.ops.process, self.ops.type, self.ops.f, self.ops.error]
        codes += [c.values for t in self.tables.values() for c in t.columns.values() if c.kind == "str"]
        codes += [c.values for c in self.ops.values.values() if c.kind == "str"]
        few: set[int] = set()
        for c in codes:
            distinct = _factor(c)[0] if len(c) else c
            if len(distinct) <= _FEW:
                few.update(distinct[distinct >= 0].tolist())
        found = sorted(few)
        out = dict(zip(self.pool.take(np.array(found, dtype=np.int64)), found))
        if "" not in out:
            out[""] = self.pool.find("")
        return out

    def code(self, s: str) -> int:
        """The pool code of ``s``, or -3 if no column holds it (a code that matches nothing)."""
        got = self._codes.get(s)
        if got is None:
            got = self._codes[s] = self.pool.find(s)
        return got


VALUES_DECODER = msgspec.json.Decoder(dict[str, Any])
VALUE_DECODER = VALUES_DECODER


def _factor(codes: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(distinct codes sorted, each value's index among them), by a sort (np.unique hashes, slower here)."""
    order = np.argsort(codes, kind="stable")
    s = codes[order]
    first = np.empty(len(s), dtype=np.bool_)
    if len(s):
        first[0] = True
        np.not_equal(s[1:], s[:-1], out=first[1:])
    ranks = np.empty(len(codes), dtype=np.int64)
    ranks[order] = np.cumsum(first) - 1
    return s[first], ranks


class Interner:
    """Builds a pool: each distinct string gets the next code."""

    __slots__ = ("codes", "strings")

    def __init__(self) -> None:
        # None and ABSENT are keys too, so a column of strings maps to codes in one C-level pass.
        self.codes: dict[Any, int] = {None: NONE, ABSENT: ABSENT_CODE}
        self.strings: list[str] = []

    def code(self, s: str) -> int:
        got = self.codes.get(s)
        if got is None:
            got = self.codes[s] = len(self.strings)
            self.strings.append(s)
        return got

    def str_codes(self, col: Sequence[Any]) -> Codes:
        """Codes of a column of strings, None and ABSENT (nothing else)."""
        codes = self.codes
        for v in dict.fromkeys(col):  # only the distinct values pass through Python
            if v not in codes:
                codes[v] = len(self.strings)
                self.strings.append(v)
        return np.fromiter(map(codes.__getitem__, col), dtype=np.int32, count=len(col))


def encode_column(col: Sequence[Any], interner: Interner) -> Column:
    """A Python column (ABSENT where a row lacks the field) as a ``Column``."""
    present = set(map(type, col))
    types = present - {type(None), type(ABSENT)}
    if types <= {str}:
        return Column("str", interner.str_codes(col))
    mask: npt.NDArray[np.int8] | None = None
    plain: Sequence[Any] = col
    if len(types) < len(present):  # some rows hold None or lack the field: mark them, hold 0 there
        mask = np.fromiter((1 if v is None else 2 if v is ABSENT else 0 for v in col), dtype=np.int8, count=len(col))
        plain = [0 if v is None or v is ABSENT else v for v in col]
    try:
        if types == {int}:
            return Column("int", np.array(plain, dtype=np.int64), mask)
        if types == {float}:
            return Column("float", np.array(plain, dtype=np.float64), mask)
        if types == {bool}:
            return Column("bool", np.array(plain, dtype=np.int8), mask)
    except OverflowError:
        pass  # an int beyond 64 bits: kept as its JSON text below
    # Mixed types, or ints beyond 64 bits: each value's JSON text, so its type comes back as it was.
    codes = np.fromiter((NONE if v is None or v is ABSENT else interner.code(_JSON(v)) for v in col),
                        dtype=np.int32, count=len(col))
    return Column("json", codes, mask)


_JSON = json.JSONEncoder(default=str).encode
