"""Ops: the recorded steps of a run, Jepsen-style.

Every client request is an ``invoke`` followed by exactly one completion: ``ok`` (it
happened), ``fail`` (it certainly did not happen) or ``info`` (outcome unknown, e.g. a
timeout: it may or may not have happened). Faults are ops too, by the ``nemesis``
process, and so are probes the harness takes during a run. Final state read back from
the system under test after drain is an ``Observation``, not an op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, Union

import msgspec

from harness.history.table import Row, Table

if TYPE_CHECKING:
    from harness.history.frame import Frame

__all__ = ["EMPTY", "FORMAT", "FORMAT_VERSION", "History", "Observation", "Op", "OpType", "Row", "Scalar", "Table"]

FORMAT = "chaos-history"
FORMAT_VERSION = 2
"""2: observations stored by column (see store.py); 1: a dict per row. Both load."""

Scalar = Union[str, int, float, bool, None]
"""What an op's value may hold: JSON scalars only, so a history is plain, diffable JSON."""

EMPTY: Mapping[str, Scalar] = MappingProxyType({})
"""The value of an op that has none: the default, shared, read-only."""

_T = TypeVar("_T")


class OpType(Enum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class Op(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One recorded step. A frozen, slotted record, like a frozen dataclass (fields, positional or
    keyword construction, equality), and a msgspec Struct so that a stored history decodes straight
    into Ops in C: loading a million-event history was mostly building these one by one in Python.
    Not tracked by the garbage collector (``gc=False``): an op never refers back to anything that
    could refer to it, so it can be in no cycle. Encoded by msgspec as ``to_json`` writes it
    (``omit_defaults``: no key, value or error when it has none), many ops in one call (store.py)."""

    index: int
    time_s: float = msgspec.field(name="time")  # seconds since the start of this pipeline's run (monotonic clock)
    process: str  # "client-3", "nemesis", "probe"
    type: OpType
    f: str  # "place", "pay", "fault", "probe"
    key: str | None = None  # the entity (order id) the op is about
    # A Mapping: not to be changed. A plain dict, recorded or decoded (a MappingProxyType around each
    # cost the recorder half a microsecond and the garbage collector an object to track); an op
    # without one holds EMPTY itself, the default, which is how the encoder knows to leave it out.
    value: Mapping[str, Any] = EMPTY
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"index": self.index, "time": round(self.time_s, 6), "process": self.process,
                                  "type": self.type.value, "f": self.f}
        if self.key is not None:
            out["key"] = self.key
        if self.value:
            out["value"] = dict(self.value)
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Op:  # raw: parsed JSON
        value = raw.get("value")
        return cls(
            int(raw["index"]),
            float(raw["time"]),
            str(raw["process"]),
            _OP_TYPES[raw["type"]],
            str(raw["f"]),
            raw.get("key"),
            dict(value) if value else EMPTY,
            raw.get("error"),
        )


_OP_TYPES = {t.value: t for t in OpType}


@dataclass(frozen=True, slots=True)
class Observation:
    """Final state read from one source (a table, a topic) after drain, through the oracle.

    Its rows are held by column (a ``Table``, see table.py); any sequence of mappings given
    is stored as one, so checkers read the same structure whoever built the observation.
    """

    source: str  # one of harness.history.observations.SOURCES
    rows: Table

    def __post_init__(self) -> None:
        if not isinstance(self.rows, Table):
            object.__setattr__(self, "rows", Table.from_rows(self.rows))


@dataclass(frozen=True, slots=True)
class History:
    """Everything one pipeline did in one run: the single source of truth for checkers."""

    pipeline: str
    ops: Sequence[Op]  # a tuple, or the ops of a columnar file, made into Ops when first read
    observations: Mapping[str, Observation]
    # The same history as arrays when it was read from a columnar file (harness/history/columnar.py);
    # None when it was built in Python. Not part of the value.
    frame: Frame | None = field(default=None, repr=False, compare=False, kw_only=True)
    # Indexes derived from the fields above, built on first use (see ``derived``). Not part of
    # the value: two histories with equal ops and observations are equal whatever was derived.
    _derived: dict[Callable[[History], object], object] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The checkers' fast paths read ``frame`` instead of ``ops`` and ``observations``, so the frame
        # must hold exactly those. A History made from a loaded one with other ops or rows
        # (``dataclasses.replace``: a test planting a loss, a tool filtering ops) keeps the old frame
        # unless this drops it, and the fast path would then judge the history it replaced: a
        # planted lost charge went unseen that way. Read from a frame means: these very ops and
        # tables were made from it; anything else is judged on the Python path.
        frame = self.frame
        if frame is None:
            return
        tables = frame.tables
        if not (getattr(self.ops, "frame", None) is frame and self.observations.keys() == tables.keys()
                and all(obs.rows.frame() is tables[source] for source, obs in self.observations.items())):
            object.__setattr__(self, "frame", None)

    def derived(self, build: Callable[[History], _T]) -> _T:
        """``build(self)``, computed once per History and shared by every caller.

        Several checkers group the same million rows by the same keys, and reading the rows
        is most of what checking costs: the index is built once per history, not once per
        checker (see harness/checkers/_index.py). A History never changes, so neither does
        anything derived from it: ``build`` must be a pure function of the history, and
        callers must not mutate what it returns.
        """
        try:
            return self._derived[build]  # type: ignore[return-value]
        except KeyError:
            value = self._derived[build] = build(self)
            return value

    def observed(self, source: str) -> Sequence[Row]:
        """The rows observed from ``source`` (read-only mappings), or () when it was not observed."""
        obs = self.observations.get(source)
        return obs.rows if obs is not None else ()

    def column(self, source: str, name: str, default: object = None) -> tuple[Any, ...]:
        """Every observed row's ``name`` in row order, ``default`` where a row lacks it; () when not observed.

        The stored column itself when every row has the field: indexes read columns through
        this instead of pulling a field out of every row.
        """
        obs = self.observations.get(source)
        return obs.rows.column(name, default) if obs is not None else ()

    def client_ops(self) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if op.process.startswith("client"))
