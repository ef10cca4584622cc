"""The counts checkers emit and the score, the verdict and the report read, as typed records.

A count one stage writes and another reads by a string key breaks silently when either
side renames it: score v1 read ``duplicates`` and ``violations``, which no checker ever
emitted, and showed duplicates as "not measured". Here each checker whose counts another
stage consumes fills one frozen record; ``CheckResult.counts`` stays the JSON form of it
(``as_counts``) plus per-consumer or per-window breakdowns (keys with a ':'), and readers
get the record back with ``read(result, LossCounts)``. tests/test_counts.py holds both
sides to it: a checker emits exactly its record's fields, every field is read somewhere
downstream, and no reader outside harness/checkers indexes ``counts`` by a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, ClassVar, TypeVar

from harness.history.ops import Scalar

if TYPE_CHECKING:
    from harness.checkers.base import CheckResult

__all__ = ["COUNTS_OF", "DuplicateCounts", "LossCounts", "OrderingCounts", "RecoveryCounts", "StatsCounts",
           "TypedCounts", "read"]

C = TypeVar("C", bound="TypedCounts")


@dataclass(frozen=True, slots=True)
class TypedCounts:
    checker: ClassVar[str] = ""
    # Fields only the report's per-checker counts line shows (diagnostics); every other field must be
    # read by the score, the verdict or the report by name (tests/test_counts.py).
    detail: ClassVar[tuple[str, ...]] = ()

    def as_counts(self, **breakdown: Scalar) -> dict[str, Scalar]:
        """The JSON form: every field, then breakdowns whose keys carry a ':' (``missing:payment``)."""
        bad = [k for k in breakdown if ":" not in k]
        if bad:
            raise ValueError(f"{type(self).__name__}: a breakdown key needs a ':' ({', '.join(bad)}); "
                             "a count of its own belongs in the record")
        return {**asdict(self), **breakdown}  # type: ignore[call-overload]


def read(result: CheckResult | None, kind: type[C]) -> C | None:
    """The typed counts of ``result``, or None when it has none (a checker that crashed, an
    unknown result without counts, a stored run from before the record had a field)."""
    if result is None or result.checker != kind.checker:
        return None
    raw: Mapping[str, Scalar] = result.counts
    values = {}
    for f in fields(kind):
        value = raw.get(f.name, _ABSENT)
        # Every typed count is a number or None: anything else (absent, a string) is not trusted.
        if value is _ABSENT or isinstance(value, bool) or not (value is None or isinstance(value, (int, float))):
            return None
        values[f.name] = value
    return kind(**values)


_ABSENT = object()


@dataclass(frozen=True, slots=True)
class StatsCounts(TypedCounts):
    checker: ClassVar[str] = "stats"
    detail: ClassVar[tuple[str, ...]] = ("invoke", "ok", "fail", "faults", "clients", "max_start_late_s")
    invoke: int
    ok: int
    fail: int
    info: int
    faults: int
    clients: int | None  # the workload's client pool (its own report), None when it made none
    max_start_late_s: float | None  # how far behind its plan the latest order started (open-loop or not)


@dataclass(frozen=True, slots=True)
class LossCounts(TypedCounts):
    checker: ClassVar[str] = "no-lost-effect"
    detail: ClassVar[tuple[str, ...]] = ("required", "missing", "pending_at_source")
    required: int  # (order, required effect) pairs of acknowledged requests
    missing: int  # of those, never taken effect
    acknowledged_orders: int
    lost: int  # orders missing at least one effect, and not pending at the source
    lost_cents: int
    pending_at_source: int
    acknowledged_then_missing: int


@dataclass(frozen=True, slots=True)
class DuplicateCounts(TypedCounts):
    checker: ClassVar[str] = "exactly-once-effect"
    detail: ClassVar[tuple[str, ...]] = ("effects", "steps", "duplicated", "reapplied")
    effects: int
    steps: int
    duplicated: int  # (consumer, kind, order) steps that took effect twice or more
    extra_effects: int
    extra_cents: int  # money taken twice
    redelivered: int  # extra copies of events on the topic
    absorbed: int  # of those, caused no second effect
    reapplied: int
    amplification: float  # extra copies per distinct event
    injected_copies: int  # copies a duplicate fault published (the fault's, not the pipeline's)
    amplification_counted: int  # copies outside crash recovery and not injected: held to the budget
    amplification_counted_ratio: float
    redelivery_budget: float | None


@dataclass(frozen=True, slots=True)
class OrderingCounts(TypedCounts):
    checker: ClassVar[str] = "per-entity-order"
    detail: ClassVar[tuple[str, ...]] = ("applied", "entities", "shipments", "topic_records")
    applied: int
    entities: int
    nonmonotonic: int
    shipments: int
    shipped_before_paid: int
    applied_past_dead_letter: int
    topic_records: int
    split_entities: int
    nonmonotonic_publish: int


@dataclass(frozen=True, slots=True)
class RecoveryCounts(TypedCounts):
    checker: ClassVar[str] = "bounded-recovery"
    detail: ClassVar[tuple[str, ...]] = ("samples", "failed_samples", "budget_s", "samples_after_heal",
                                         "max_lag_after_heal", "max_backlog_after_heal", "watched_s")
    samples: int
    failed_samples: int
    budget_s: float | None
    recovery_s: float | None  # seconds from the last heal until lag and backlog were zero; None: not caught up
    dead_processes: int
    samples_after_heal: int | None
    max_lag_after_heal: int | None
    max_backlog_after_heal: int | None
    watched_s: float | None  # how long after the heal it was watched without catching up


COUNTS_OF: Mapping[str, type[TypedCounts]] = {
    k.checker: k for k in (StatsCounts, LossCounts, DuplicateCounts, OrderingCounts, RecoveryCounts)}
