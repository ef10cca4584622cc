"""What a checker is and what it returns.

A checker is a pure function from a History to a CheckResult: valid, invalid or
unknown, with counts and at most a handful of examples. Results merge worst-first
(invalid beats unknown beats valid), and a checker that crashes yields unknown with
the exception as its message: it never raises into the runner.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Protocol

from harness.checkers.anomaly import Anomaly
from harness.history.ops import History, Scalar

__all__ = ["MAX_EXAMPLES", "MAX_STORED_ANOMALIES", "CheckResult", "Checker", "Validity", "merge", "run_checker"]

MAX_EXAMPLES = 5
MAX_STORED_ANOMALIES = 500
"""results.json keeps this many anomalies per result (every one is counted by kind); re-analysis has them all."""


class Validity(Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return {Validity.VALID: 0, Validity.UNKNOWN: 1, Validity.INVALID: 2}[self]


Example = Mapping[str, object]
"""One violation with its evidence chain, JSON-serialisable."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    checker: str  # "no-lost-effect"
    invariant: str | None  # "I1", or None for a supporting checker such as stats
    validity: Validity
    message: str
    counts: Mapping[str, Scalar] = field(default_factory=lambda: MappingProxyType({}))
    examples: tuple[Example, ...] = ()
    # Every anomaly found (examples show a few with their evidence chain): what attribution and
    # per-kind expectations judge. An invalid result carries at least one (a test holds every
    # checker to it).
    anomalies: tuple[Anomaly, ...] = ()

    def to_json(self) -> dict[str, object]:
        by_kind: dict[str, int] = {}
        for a in self.anomalies:
            by_kind[a.kind.value] = by_kind.get(a.kind.value, 0) + 1
        return {
            "checker": self.checker,
            "invariant": self.invariant,
            "validity": self.validity.value,
            "message": self.message,
            "counts": dict(self.counts),
            "examples": [dict(e) for e in self.examples],
            "anomaly_counts": by_kind,
            "anomalies": [a.to_json() for a in self.anomalies[:MAX_STORED_ANOMALIES]],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CheckResult:  # raw: parsed JSON
        return cls(
            checker=str(raw["checker"]),
            invariant=raw.get("invariant"),
            validity=Validity(raw["validity"]),
            message=str(raw["message"]),
            counts=MappingProxyType(dict(raw.get("counts") or {})),
            examples=tuple(raw.get("examples") or ()),
            anomalies=tuple(Anomaly.from_json(a) for a in raw.get("anomalies") or ()),
        )


class Checker(Protocol):
    # Read-only: checkers are frozen dataclasses, which a Protocol with plain attributes would refuse.
    @property
    def name(self) -> str: ...
    @property
    def invariant(self) -> str | None: ...

    def check(self, history: History) -> CheckResult: ...


def run_checker(checker: Checker, history: History) -> CheckResult:
    """Run one checker; a crash becomes an unknown result carrying the traceback's tail."""
    try:
        return checker.check(history)
    except Exception as exc:  # noqa: BLE001 - a broken checker must not hide the other verdicts
        tail = "".join(traceback.format_exception(exc)[-3:])
        return CheckResult(checker.name, checker.invariant, Validity.UNKNOWN, f"checker crashed: {exc!r}\n{tail}")


def merge(validities: Iterable[Validity]) -> Validity:
    """Worst first: invalid > unknown > valid; nothing checked is unknown."""
    worst: Validity | None = None
    for v in validities:
        if worst is None or v.rank > worst.rank:
            worst = v
    return worst if worst is not None else Validity.UNKNOWN
