"""Fault schedules as Hypothesis strategies, drawn from what a target declares.

A ``FaultSpace`` is the whole fault catalogue (harness/faults/spec.py) laid over one
target: every link kind on every link the target has, every process kind on every
process it runs (and on the infra's ``kafka`` and ``postgres``, ``connect`` when it uses
Connect), every crash point of every process, the message faults on its event topic.
A kind the target cannot take (no such link, process, crash point or drift change) is
*skipped*, and the space says which and why, rather than failing the run.

``trial_schedules(space)`` draws a ``TrialSchedule``: load (duration, rate), one or more
overlapping faults at times relative to the workload, each lasting either less or more
than the target's own client timeouts (``Timeouts.delivery_s``), and the workload seed.
Hypothesis shrinks a schedule towards fewer faults, shorter runs, less load and smaller
parameters, which is what makes a found failure minimal.

Every candidate fault is checked with the same capability check a scenario run makes
(harness.capabilities), so a drawn schedule always runs on its target.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hypothesis import strategies as st

from harness.capabilities import missing_capabilities
from harness.checkers.anomaly import AnomalyKind
from harness.errors import UsageError
from harness.faults.spec import (
    STREAMS, Bandwidth, BlackHole, Crash, Duplicate, FaultKind, FaultSpec, Latency, LimitData, NoParams, OneWayCut,
    Params, Poison, Reordering, ResetPeer, Rewind, SchemaDrift, Slicer, SlowConsumer, TargetType, kind_info,
)
from harness.target.spec import TargetSpec

__all__ = ["INHERENT", "FaultSpace", "Skipped", "TrialSchedule", "parse_kinds", "trial_schedules"]

_INFRA = ("kafka", "postgres")
DEFAULT_DELIVERY_S = 10.0  # a target that declares no delivery timeout: librdkafka's common setting
MIN_DURATION_S = 6
MAX_DURATION_S = 20
MIN_RATE = 5
MAX_RATE = 20
MAX_FAULTS = 3

# What a fault *is*, not what it breaks: a schema drift is the producer writing an unregistered
# version (whose events the consumers cannot read), a reorder swaps events on the topic. A trial
# that injected the fault may show these kinds on a correct pipeline; the shipped scenarios
# expect exactly them (scenarios/schema_drift.py, scenarios/reorder.py).
INHERENT: Mapping[FaultKind, frozenset[AnomalyKind]] = MappingProxyType({
    # A consumer that dead-letters a drifted (undecodable) event and goes on applies the order's next
    # event: applied-past-dead-letter is the drift's doing too (seen on correct code in bench/defects.py).
    FaultKind.SCHEMA_DRIFT: frozenset({AnomalyKind.LOST_EFFECT, AnomalyKind.UNREGISTERED_VERSION,
                                       AnomalyKind.INVALID_EVENT, AnomalyKind.INCOMPATIBLE_VERSIONS,
                                       AnomalyKind.MISSING_SCHEMA_VERSION, AnomalyKind.VANISHED,
                                       AnomalyKind.APPLIED_PAST_DEAD_LETTER}),
    FaultKind.REORDER: frozenset({AnomalyKind.NONMONOTONIC_PUBLISH, AnomalyKind.LOST_EFFECT,
                                  AnomalyKind.NONMONOTONIC_APPLY, AnomalyKind.APPLIED_PAST_DEAD_LETTER}),
})


def parse_kinds(text: str | None) -> tuple[FaultKind, ...]:
    """``"kill,outage"`` -> the kinds, in catalogue order; None or "all" -> every kind."""
    if text is None or text.strip() == "all":
        return tuple(FaultKind)
    names = [n.strip() for n in text.split(",")]
    valid = {k.value: k for k in FaultKind}
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise UsageError(f"--faults {text!r}: unknown fault kind {', '.join(repr(u) for u in unknown) or '(empty)'}; "
                         f"valid kinds: {', '.join(valid)} (or all)")
    return tuple(k for k in FaultKind if k.value in names)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A requested fault kind this target cannot take, and why."""

    kind: FaultKind
    why: str


@dataclass(frozen=True, slots=True)
class TrialSchedule:
    """One generated trial: its load, its faults (as a scenario would list them) and its workload seed.

    Not ``harness.faults.schedule.Schedule`` (the concrete windows of one run): this is the
    scenario-level description that ``plan()`` resolves, so it can be written out as a module.
    """

    duration_s: int
    rate: int
    faults: tuple[FaultSpec, ...]
    seed: int

    def describe(self) -> str:
        parts = [f"{f.kind.value}@{f.target} at {f.at:.2f} for {f.for_s:g}s"
                 + (f" {_params_text(f.params)}" if f.params is not None and not isinstance(f.params, NoParams) else "")
                 for f in self.faults]
        return f"{self.duration_s}s at {self.rate}/s, seed {self.seed}: " + "; ".join(parts)

    def size(self) -> tuple[int, float, int, int]:
        """A total order for "smaller": fewer faults, less fault time, shorter, less load."""
        return (len(self.faults), sum(f.for_s for f in self.faults), self.duration_s, self.rate)


def _params_text(params: Params) -> str:
    from dataclasses import fields

    return "(" + ", ".join(f"{f.name}={getattr(params, f.name)!r}" for f in fields(params)) + ")"  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class FaultSpace:
    """The targets each usable fault kind can hit on one target, and the kinds it cannot take."""

    target: str
    variant: str
    places: Mapping[FaultKind, tuple[str, ...]]  # kind -> fault targets (links, processes, "events")
    crash_points: Mapping[str, tuple[str, ...]]  # process -> its crash points
    drift_changes: tuple[str, ...]
    event_types: tuple[str, ...]  # what a crash may be armed for (the N-th record of one type)
    delivery_s: float
    skipped: tuple[Skipped, ...]

    @property
    def kinds(self) -> tuple[FaultKind, ...]:
        return tuple(self.places)

    @classmethod
    def of(cls, spec: TargetSpec, kinds: Iterable[FaultKind], variant: str = "correct") -> FaultSpace:
        places: dict[FaultKind, tuple[str, ...]] = {}
        skipped: list[Skipped] = []
        points = {name: spec.crash_points().get(name.split("#", 1)[0], ()) for name in spec.process_names()}
        for kind in kinds:
            candidates = _candidates(kind, spec, points)
            usable = tuple(t for t in candidates
                           if not missing_capabilities((_probe(kind, t, points, spec),), (), variant, spec))
            if usable:
                places[kind] = usable
            else:
                skipped.append(Skipped(kind, _why_not(kind, spec)))
        if not places:
            raise UsageError(f"target {spec.name} can take none of the fault kinds asked for "
                             f"({', '.join(s.kind.value for s in skipped)}): "
                             + "; ".join(f"{s.kind.value}: {s.why}" for s in skipped))
        from harness.target.registry import load_domain

        decl = load_domain(spec.domain).decl
        types = tuple(sorted({t for c in decl.consumers for t in c.subscribes}))
        return cls(spec.name, variant, MappingProxyType(places),
                   MappingProxyType({p: pts for p, pts in points.items() if pts}),
                   spec.drift_changes, types, spec.timeouts.delivery_s or DEFAULT_DELIVERY_S, tuple(skipped))


def _candidates(kind: FaultKind, spec: TargetSpec, points: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    target_type = kind_info(kind).target
    if target_type is TargetType.LINK:
        return spec.links()
    if target_type is TargetType.TOPIC:
        return ("events",)
    if kind is FaultKind.CRASH:
        return tuple(p for p, pts in points.items() if pts)
    if kind in (FaultKind.SLOW_CONSUMER, FaultKind.REWIND):
        return tuple(p.name for p in spec.processes if p.consumer and "kafka" in p.links)
    if kind is FaultKind.SCHEMA_DRIFT:
        return (spec.entrypoint,) if spec.drift_changes else ()
    # kill -9, pause and clean restart: every process of the target, and the database and broker too.
    return (*spec.process_names(), *_INFRA)


def _probe(kind: FaultKind, target: str, points: Mapping[str, tuple[str, ...]], spec: TargetSpec) -> FaultSpec:
    params: Params | None = None
    if kind is FaultKind.CRASH:
        params = Crash(points[target][0], 1)
    elif kind is FaultKind.SCHEMA_DRIFT:
        params = SchemaDrift(spec.drift_changes[0])
    return FaultSpec(kind, target, at=0.0, for_s=1.0, params=params)


def _why_not(kind: FaultKind, spec: TargetSpec) -> str:
    if kind is FaultKind.CRASH:
        return "no process declares a crash point"
    if kind is FaultKind.SCHEMA_DRIFT:
        return "it declares no schema drift change"
    if kind in (FaultKind.SLOW_CONSUMER, FaultKind.REWIND):
        return "no consumer process with a kafka link"
    return f"nothing of its kind ({kind_info(kind).target.value}) in target {spec.name}"


# ---- strategies -----------------------------------------------------------------------------

def _params(kind: FaultKind, target: str, space: FaultSpace) -> st.SearchStrategy[Params]:
    streams = st.sampled_from(STREAMS)
    if kind is FaultKind.ONE_WAY_CUT:
        return st.builds(OneWayCut, stream=st.sampled_from(("downstream", "upstream")))
    if kind is FaultKind.BLACK_HOLE:
        return st.just(BlackHole())
    if kind is FaultKind.LATENCY:
        return st.builds(Latency, latency_ms=st.integers(50, 3000), jitter_ms=st.integers(0, 500), stream=streams)
    if kind is FaultKind.BANDWIDTH:
        return st.builds(Bandwidth, rate_kbps=st.integers(1, 64), stream=streams)
    if kind is FaultKind.RESET_PEER:
        return st.builds(ResetPeer, timeout_ms=st.integers(0, 2000), stream=streams)
    if kind is FaultKind.SLICER:
        return st.builds(Slicer, average_size=st.just(64), size_variation=st.just(32),
                         delay_us=st.integers(100, 20_000), stream=streams)
    if kind is FaultKind.LIMIT_DATA:
        return st.builds(LimitData, bytes=st.integers(256, 65_536), stream=streams)
    if kind is FaultKind.CRASH:
        # Any passage, or the N-th record of one event type: where a crash hits a record that matters.
        return st.builds(Crash, point=st.sampled_from(space.crash_points[target]), passage=st.integers(1, 30),
                         event_type=st.sampled_from((None, *space.event_types)))
    if kind is FaultKind.DUPLICATE:
        return st.builds(Duplicate, count=st.integers(5, 60))
    if kind is FaultKind.POISON:
        return st.builds(Poison, count=st.integers(1, 5))
    if kind is FaultKind.SLOW_CONSUMER:
        return st.builds(SlowConsumer, rate_kbps=st.integers(1, 8))
    if kind is FaultKind.SCHEMA_DRIFT:
        return st.builds(SchemaDrift, change=st.sampled_from(space.drift_changes))
    if kind is FaultKind.REORDER:
        return st.builds(Reordering, entities=st.integers(1, 20))
    if kind is FaultKind.REWIND:
        # From the start of the topic (old records), or a few records back (recent ones).
        return st.builds(Rewind, records=st.sampled_from((0, 1, 5, 20, 100)))
    return st.just(NoParams())


@st.composite
def _fault(draw: st.DrawFn, space: FaultSpace, duration_s: int) -> FaultSpec:
    kind = draw(st.sampled_from(space.kinds))
    target = draw(st.sampled_from(space.places[kind]))
    # Start while traffic flows (a fault at 0 s meets an empty pipeline and bites nothing).
    at = draw(st.integers(10, 80)) / 100
    room = math.floor(duration_s * 1.5 - at * duration_s)  # Scenario refuses faults far past the workload
    # From a blip to 2.5x the clients' own delivery timeout: below it a retrying client rides the fault out,
    # above it the client gives up, which is where "no delivery report yet" mistakes show. One integer, so
    # shrinking walks it down smoothly.
    for_s = draw(st.integers(1, math.ceil(space.delivery_s * 2.5)))
    for_s = max(1, min(for_s, room))
    return FaultSpec(kind, target, at=at, for_s=float(for_s), params=draw(_params(kind, target, space)))


@st.composite
def trial_schedules(draw: st.DrawFn, space: FaultSpace, max_faults: int = MAX_FAULTS,
                    durations: tuple[int, int] = (MIN_DURATION_S, MAX_DURATION_S)) -> TrialSchedule:
    """One trial: load, 1..max_faults overlapping faults, and the workload seed."""
    duration_s = draw(st.integers(*durations))
    rate = draw(st.integers(MIN_RATE, MAX_RATE))
    faults = draw(st.lists(_fault(space, duration_s), min_size=1, max_size=max_faults))
    seed = draw(st.integers(0, 2**31 - 1))
    return TrialSchedule(duration_s, rate, tuple(faults), seed)
