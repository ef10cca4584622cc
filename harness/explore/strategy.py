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

from hypothesis import assume
from hypothesis import strategies as st

from harness.capabilities import missing_capabilities
from harness.checkers.anomaly import AnomalyKind
from harness.errors import UsageError
from harness.faults.schedule import overlapping
from harness.faults.spec import (
    CONSUMER_KINDS, SCALE_STOPS, STREAMS, Bandwidth, BlackHole, Crash, Duplicate, FaultKind, FaultSpec, Latency, LimitData, NoParams,
    OneWayCut, Params, Poison, Reordering, ResetPeer, Rewind, Scale, SchemaDrift, Slicer, SlowConsumer, TargetType,
    kind_info,
)
from harness.target.spec import TargetSpec

__all__ = ["INHERENT", "FaultSpace", "Skipped", "TrialSchedule", "fault_shape", "parse_kinds", "process_of",
           "trial_schedules"]

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

    def shape(self, delivery_s: float) -> frozenset[tuple[object, ...]]:
        """What the schedule does, without the details a near-copy changes: see ``fault_shape``.

        A set, so a fault repeated (the same latency twice, as Hypothesis's mutations make) adds nothing.
        """
        return frozenset(fault_shape(f, delivery_s) for f in self.faults)

    def size(self) -> tuple[int, float, int, int]:
        """A total order for "smaller": fewer faults, less fault time, shorter, less load."""
        return (len(self.faults), sum(f.for_s for f in self.faults), self.duration_s, self.rate)


def fault_shape(fault: FaultSpec, delivery_s: float) -> tuple[object, ...]:
    """A fault as the class of window it opens: kind, place, whether it outlasts the client's
    delivery timeout, and its parameters with each number kept to its power of two.

    Two faults of one shape differ only in when they start and by less than a factor of two in
    their sizes: what a trial learns from one it learns from the other. The start is left out:
    every drawn fault starts while traffic flows (10-80 % of it).
    """
    from dataclasses import fields

    params: tuple[object, ...] = ()
    if fault.params is not None:
        params = tuple((f.name, _magnitude(getattr(fault.params, f.name))) for f in fields(fault.params))  # type: ignore[arg-type]
    return (fault.kind, fault.target, fault.for_s > delivery_s, params)


def _magnitude(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and 0 <= value <= 1:
        return round(value, 1)  # a fraction (toxicity): tenths
    return 0 if value == 0 else (1 if value > 0 else -1) * math.floor(math.log2(abs(value)))


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
    if kind in CONSUMER_KINDS:
        return tuple(p.name for p in spec.processes if p.consumer and "kafka" in p.links)
    if kind is FaultKind.SCALE:
        # A consumer (a rebalance under load) or a publisher beside itself (a second relay); a process
        # with ports cannot run twice, and the infra's processes are not the target's to scale.
        return tuple(p.name for p in spec.processes if not p.ports)
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
    if kind in CONSUMER_KINDS:
        return "no consumer process with a kafka link"
    if kind is FaultKind.SCALE:
        return "every process of it listens on ports (a second instance would share them)"
    return f"nothing of its kind ({kind_info(kind).target.value}) in target {spec.name}"


# ---- strategies -----------------------------------------------------------------------------

def _params(kind: FaultKind, target: str, space: FaultSpace) -> st.SearchStrategy[Params]:
    streams = st.sampled_from(STREAMS)
    if kind is FaultKind.ONE_WAY_CUT:
        return st.builds(OneWayCut, stream=st.sampled_from(("downstream", "upstream")))
    if kind is FaultKind.BLACK_HOLE:
        return st.just(BlackHole())
    if kind is FaultKind.LATENCY:
        # Jitter up to the latency itself: answers that overtake each other are what reorders commits
        # (a transaction that took id n commits after the one that took n+1); a fixed delay reorders nothing.
        return st.integers(20, 3000).flatmap(lambda ms: st.builds(
            Latency, latency_ms=st.just(ms), jitter_ms=st.integers(0, ms), stream=streams))
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
        # Any pair of one entity's events: hold its n-th and let the next one (or two) overtake it.
        last = max(1, len(space.event_types) - 1)
        return st.builds(Reordering, entities=st.integers(1, 20), position=st.integers(1, last),
                         distance=st.integers(1, 2))
    if kind is FaultKind.SCALE:
        return st.builds(Scale, instances=st.integers(1, 2), stop=st.sampled_from(SCALE_STOPS))
    if kind is FaultKind.REWIND:
        # From the start of the topic (old records), or a few records back (recent ones).
        return st.builds(Rewind, records=st.sampled_from((0, 1, 5, 20, 100)))
    return st.just(NoParams())


def process_of(fault: FaultSpec) -> str | None:
    """The process a fault acts on: the client of a link, the process itself; None for the topic."""
    return _process(fault.kind, fault.target)


def _process(kind: FaultKind, target: str) -> str | None:
    target_type = kind_info(kind).target
    if target_type is TargetType.LINK:
        return target.split("->", 1)[0]
    return target if target_type is TargetType.PROCESS else None


def _same_process(space: FaultSpace, process: str | None) -> tuple[tuple[FaultKind, str], ...]:
    """Every (kind, target) of the space that acts on ``process`` (its links, the process itself)."""
    return tuple((kind, t) for kind, targets in space.places.items() for t in targets
                 if process is not None and _process(kind, t) == process)


@st.composite
def _fault(draw: st.DrawFn, space: FaultSpace, duration_s: int, anchor: FaultSpec | None = None) -> FaultSpec:
    """One fault; with an ``anchor``, one on the anchor's own process that starts inside the anchor's window.

    Anchored pairs are the overlapping faults that single faults cannot stand for: a consumer whose
    effect is held up (its database link cut or slowed) *and* killed while it is held up dies with
    fetched, unapplied records in hand, which is the window auto-commit loses. Drawn at random, two
    faults on one of a dozen processes overlap in time far too rarely to find that in minutes.
    """
    if anchor is not None:
        kind, target = draw(st.sampled_from(tuple(
            (k, t) for k, t in _same_process(space, process_of(anchor)) if (k, t) != (anchor.kind, anchor.target))))
        # From the anchor's start to its end, in tenths of its length: the second fault lands while
        # the first one holds (the window that matters), never before it.
        into = draw(st.integers(0, 9)) / 10 * anchor.for_s
        at = min(0.95, round(anchor.at + into / duration_s, 2))
    else:
        kind = draw(st.sampled_from(space.kinds))
        target = draw(st.sampled_from(space.places[kind]))
        # Start while traffic flows (a fault at 0 s meets an empty pipeline and bites nothing). A scale's
        # window opens only once its instances run and the group rebalanced (3-7 s here): started late, it
        # met no traffic (1 trial in 12 inconclusive), so it starts in the first half.
        at = draw(st.integers(10, 50 if kind is FaultKind.SCALE else 80)) / 100
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
    faults = [draw(_fault(space, duration_s))]
    while len(faults) < max_faults and draw(st.booleans()):
        # Each further fault either stands alone or lands on an earlier fault's process, inside its
        # window (shrinking towards "alone": an anchored pair must earn its place in a minimal schedule).
        anchor = faults[draw(st.integers(0, len(faults) - 1))] if draw(st.booleans()) else None
        if anchor is not None and len(_same_process(space, process_of(anchor))) < 2:
            anchor = None  # a message fault on the topic: nothing else acts on "events"' process
        faults.append(draw(_fault(space, duration_s, anchor)))
    # Two windows of one kind on one place that overlap end each other early (Scenario refuses them).
    assume(overlapping(faults, duration_s) is None)
    seed = draw(st.integers(0, 2**31 - 1))
    return TrialSchedule(duration_s, rate, tuple(faults), seed)
