"""Schedules: when which fault starts and stops, as a pure function of the seed.

A scenario lists ``FaultSpec`` values (see ``harness.faults.spec``). The combinators
here build such lists from smaller ones, so a schedule is composed, not hand-timed:

  sequence(a, b, c, gap_s=2)        one after the other, each starting when the last ends
  stagger(spec, targets, every=.1)  the same fault on several targets, starts ``every`` apart
  during(0.2, 0.6, specs)           squeeze specs (their ``at``) into a window of the run
  repeat(spec, times=3, every=.2)   the same fault again and again

``plan(specs, duration_s, seed)`` resolves them into concrete ``PlannedFault`` windows
(seconds from the start of traffic), and every plan ends with a heal-all at
``heal_all_s``. ``schedule_bytes`` serialises a plan canonically: the same seed gives
the same bytes (a test holds us to it).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from harness.errors import UsageError
from harness.faults.spec import FaultKind, FaultSpec, Params

__all__ = ["FaultKind", "FaultSpec", "PlannedFault", "Schedule", "during", "overlapping", "plan", "repeat",
           "schedule_bytes", "sequence", "stagger"]


@dataclass(frozen=True, slots=True)
class PlannedFault:
    id: int
    kind: FaultKind
    target: str
    start_s: float
    end_s: float
    params: Params

    @property
    def link(self) -> str:
        return self.target

    def to_json(self) -> dict[str, object]:
        from dataclasses import asdict

        return {"id": self.id, "kind": self.kind.value, "target": self.target, "start_s": self.start_s,
                "end_s": self.end_s, "params": asdict(self.params)}  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A concrete plan: the fault windows in start order, then a heal-all."""

    faults: tuple[PlannedFault, ...]
    heal_all_s: float

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.faults)

    def __len__(self) -> int:
        return len(self.faults)


# Kinds whose windows stack: each window publishes its own records (duplicate, poison), arms the
# interposer on its own (reorder), starts its own replicas (scale) or holds a counted refusal
# (dlq_refused). Every other kind holds one state per place, which its heal undoes: a link enabled
# again, a toxic of that name removed, a process restarted or resumed, a crash point disarmed, the
# drift switched back. Two such windows on one place that overlap would end each other early.
_STACKABLE = frozenset({FaultKind.DUPLICATE, FaultKind.POISON, FaultKind.REORDER, FaultKind.SCALE,
                        FaultKind.DLQ_REFUSED})


def overlapping(specs: Iterable[FaultSpec], duration_s: float) -> tuple[FaultSpec, FaultSpec] | None:
    """Two windows of one kind on one place (one stream, for a toxic) that may overlap, or None.

    Judged on the widest each window can be (its jitter both ways), so no seed makes them overlap.
    """
    spans = []
    for spec in specs:
        if spec.kind in _STACKABLE:
            continue
        stream = str(getattr(spec.params, "stream", ""))  # a toxic is named per direction: one each way
        start = max(0.0, (spec.at - spec.jitter) * duration_s)
        spans.append(((spec.kind.value, spec.target, stream), start, (spec.at + spec.jitter) * duration_s + spec.for_s,
                      spec))
    spans.sort(key=lambda s: (s[0], s[1]))
    # Sorted by place, then start: if any two windows of a place overlap, two neighbours do.
    for (place, _, end, first), (other, start, _, second) in zip(spans, spans[1:]):
        if place == other and start < end:
            return first, second
    return None


def plan(specs: Iterable[FaultSpec], duration_s: float, seed: int) -> Schedule:
    """The concrete windows for one run: a pure function of the specs, the duration and the seed."""
    rng = random.Random(seed)
    out = []
    for i, spec in enumerate(specs):
        # Draw for every spec, jitter or not, so adding jitter to one spec never shifts another's.
        u = rng.uniform(-1.0, 1.0)
        start = round(max(0.0, spec.at * duration_s + u * spec.jitter * duration_s), 3)
        out.append(PlannedFault(i, spec.kind, spec.target, start, round(start + spec.for_s, 3), spec.params))  # type: ignore[arg-type]
    faults = tuple(sorted(out, key=lambda p: (p.start_s, p.id)))
    heal_all = max([duration_s, *(p.end_s for p in faults)])
    return Schedule(faults, round(heal_all, 3))


def schedule_bytes(schedule: Schedule) -> bytes:
    """Canonical JSON of a plan: sorted keys, no whitespace, fixed float rendering."""
    doc = {"faults": [p.to_json() for p in schedule.faults], "heal_all_s": schedule.heal_all_s}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# ---- combinators: FaultSpec lists in, FaultSpec lists out (pure data) -------------------

def _fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise UsageError(f"{name}={value} must be a fraction of the run in [0, 1)")


def sequence(*specs: FaultSpec, duration_s: float, gap_s: float = 0.0) -> tuple[FaultSpec, ...]:
    """Each spec starts ``gap_s`` after the previous one ends (the first keeps its ``at``)."""
    if gap_s < 0:
        raise UsageError(f"sequence(gap_s={gap_s}) must be >= 0")
    out: list[FaultSpec] = []
    at = specs[0].at if specs else 0.0
    for spec in specs:
        _fraction("sequence: start", at)
        out.append(replace(spec, at=round(at, 6)))
        at += (spec.for_s + gap_s) / duration_s
    return tuple(out)


def stagger(spec: FaultSpec, targets: Sequence[str], every: float) -> tuple[FaultSpec, ...]:
    """The same fault on each of ``targets``, starting ``every`` (a fraction of the run) apart."""
    if every < 0:
        raise UsageError(f"stagger(every={every}) must be >= 0")
    return tuple(replace(spec, target=t, at=round(spec.at + i * every, 6)) for i, t in enumerate(targets))


def during(start: float, end: float, specs: Sequence[FaultSpec]) -> tuple[FaultSpec, ...]:
    """Map each spec's ``at`` from [0, 1) of the run into [start, end) of the run."""
    _fraction("during(start)", start)
    if not start < end <= 1.0:
        raise UsageError(f"during(start={start}, end={end}) needs start < end <= 1")
    return tuple(replace(s, at=round(start + s.at * (end - start), 6)) for s in specs)


def repeat(spec: FaultSpec, times: int, every: float) -> tuple[FaultSpec, ...]:
    """``times`` copies of ``spec``, starting ``every`` (a fraction of the run) apart."""
    if times < 1:
        raise UsageError(f"repeat(times={times}) must be >= 1")
    return tuple(replace(spec, at=round(spec.at + i * every, 6)) for i in range(times))
