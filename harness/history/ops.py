"""Ops: the recorded steps of a run, Jepsen-style.

Every client request is an ``invoke`` followed by exactly one completion: ``ok`` (it
happened), ``fail`` (it certainly did not happen) or ``info`` (outcome unknown, e.g. a
timeout: it may or may not have happened). Faults are ops too, by the ``nemesis``
process, and so are probes the harness takes during a run. Final state read back from
the system under test after drain is an ``Observation``, not an op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TypeVar, Union

__all__ = ["FORMAT", "FORMAT_VERSION", "History", "Observation", "Op", "OpType", "Scalar"]

FORMAT = "chaos-history"
FORMAT_VERSION = 1

Scalar = Union[str, int, float, bool, None]
"""What an op's value may hold: JSON scalars only, so a history is plain, diffable JSON."""

_EMPTY: Mapping[str, Scalar] = MappingProxyType({})
_T = TypeVar("_T")


class OpType(Enum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Op:
    index: int
    time_s: float  # seconds since the start of this pipeline's run (monotonic clock)
    process: str  # "client-3", "nemesis", "probe"
    type: OpType
    f: str  # "place", "pay", "fault", "probe"
    key: str | None = None  # the entity (order id) the op is about
    value: Mapping[str, Scalar] = field(default_factory=lambda: _EMPTY)
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
    def from_json(cls, raw: Mapping[str, object]) -> Op:
        value = raw.get("value")
        return cls(
            int(raw["index"]),  # type: ignore[arg-type]
            float(raw["time"]),  # type: ignore[arg-type]
            str(raw["process"]),
            _OP_TYPES[raw["type"]],  # type: ignore[index]
            str(raw["f"]),
            raw.get("key"),  # type: ignore[arg-type]
            MappingProxyType(value) if type(value) is dict else MappingProxyType(dict(value or {})),  # type: ignore[arg-type]
            raw.get("error"),  # type: ignore[arg-type]
        )


_OP_TYPES = {t.value: t for t in OpType}


@dataclass(frozen=True, slots=True)
class Observation:
    """Final state read from one source (a table, a topic) after drain, through the oracle."""

    source: str  # one of harness.history.observations.SOURCES
    rows: tuple[Mapping[str, Scalar], ...]


@dataclass(frozen=True, slots=True)
class History:
    """Everything one pipeline did in one run: the single source of truth for checkers."""

    pipeline: str
    ops: tuple[Op, ...]
    observations: Mapping[str, Observation]
    # Indexes derived from the fields above, built on first use (see ``derived``). Not part of
    # the value: two histories with equal ops and observations are equal whatever was derived.
    _derived: dict[Callable[[History], object], object] = field(
        default_factory=dict, init=False, repr=False, compare=False)

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

    def observed(self, source: str) -> tuple[Mapping[str, Scalar], ...]:
        obs = self.observations.get(source)
        return obs.rows if obs is not None else ()

    def client_ops(self) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if op.process.startswith("client"))
