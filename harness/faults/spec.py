"""The fault catalogue as data: every fault kind, what it targets, and its typed parameters.

A ``FaultSpec`` says *what* fault, *where* (a link ``client->service``, a process name,
or the pipeline's event topic ``events``), *when* (a fraction of the run) and *for how
long*, plus kind-specific parameters as a frozen dataclass (``Latency(latency_ms=500)``).
Everything is validated when the spec is constructed, so a bad fault fails when the
scenario is built, before any infrastructure starts, with a message naming the field
and the valid choices. ``catalogue()`` is what `chaos faults` prints.

Vocabulary:
  link     a proxied network path (``relay->kafka``); ``publisher->X`` resolves per target
  process  a named OS process: the infra's ``kafka``, ``postgres``, ``connect``, or one the
           target declares (``app``, ``relay``, ``consumer.payment`` ...); ``publisher`` resolves
           per target
  topic    ``events``: the pipeline's event topic, written through the DIRECT listener

A spec checks only the *form* of its target here (no target is known yet); whether the
target of a run has that link, process or crash point is checked when the run starts,
before any infrastructure (``harness.capabilities``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from harness.errors import UsageError

__all__ = [
    "CONSUMER_KINDS", "INFRA_PROCESSES", "SERVICES", "TOPICS", "Bandwidth", "BlackHole", "Crash", "Duplicate", "FaultKind", "FaultSpec",
    "KindInfo", "Latency", "LimitData", "NoParams", "OneWayCut", "Params", "Poison", "Reordering", "ResetPeer", "Rewind", "SCALE_STOPS",
    "Scale", "SchemaDrift", "Slicer", "SlowConsumer", "TargetType", "catalogue", "kind_info", "param_defaults",
]

SERVICES = ("kafka", "postgres")
ROLE_CLIENTS = ("publisher",)  # resolved per target: the process its spec names as publisher
INFRA_PROCESSES: tuple[str, ...] = (*SERVICES, "connect")
_PROCESS_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(#[0-9]+)?$")
_POINT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_EVENT_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
TOPICS = ("events",)
STREAMS = ("upstream", "downstream")  # upstream: client -> service; downstream: service -> client


class TargetType(Enum):
    LINK = "link"
    PROCESS = "process"
    TOPIC = "topic"


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise UsageError(message)


def _toxicity(owner: str, value: float) -> None:
    _check(isinstance(value, (int, float)) and 0.0 <= value <= 1.0,
           f"{owner}.toxicity={value!r} must be a probability in [0, 1] (1 = every connection)")


def _non_negative(owner: str, **values: float) -> None:
    for name, value in values.items():
        _check(isinstance(value, (int, float)) and value >= 0, f"{owner}.{name}={value!r} must be >= 0")


def _stream(owner: str, value: str) -> None:
    _check(value in STREAMS, f"{owner}.stream={value!r} is not a stream; valid: {', '.join(STREAMS)} "
                             "(upstream = client to service, downstream = service to client)")


@dataclass(frozen=True, slots=True)
class NoParams:
    """This kind takes no parameters."""


@dataclass(frozen=True, slots=True)
class OneWayCut:
    """Drop every byte in one direction only (a ``timeout`` toxic with timeout 0 on one stream).

    downstream: requests reach the service and are applied, answers never come back
    (the lost-ack window); upstream: requests never arrive, nothing is applied.
    """

    stream: str = "downstream"
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        _stream("OneWayCut", self.stream)
        _toxicity("OneWayCut", self.toxicity)


@dataclass(frozen=True, slots=True)
class BlackHole:
    """Drop every byte both ways and never close: clients hang until their own timeouts."""

    toxicity: float = 1.0

    def __post_init__(self) -> None:
        _toxicity("BlackHole", self.toxicity)


@dataclass(frozen=True, slots=True)
class Latency:
    latency_ms: int = 500
    jitter_ms: int = 100
    stream: str = "downstream"
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        _non_negative("Latency", latency_ms=self.latency_ms, jitter_ms=self.jitter_ms)
        _stream("Latency", self.stream)
        _toxicity("Latency", self.toxicity)


@dataclass(frozen=True, slots=True)
class Bandwidth:
    rate_kbps: int = 4  # KB per second
    stream: str = "downstream"
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        _non_negative("Bandwidth", rate_kbps=self.rate_kbps)
        _stream("Bandwidth", self.stream)
        _toxicity("Bandwidth", self.toxicity)


@dataclass(frozen=True, slots=True)
class ResetPeer:
    """Connections are reset (TCP RST) ``timeout_ms`` after they open; 0 resets at once."""

    timeout_ms: int = 0
    stream: str = "upstream"
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        _non_negative("ResetPeer", timeout_ms=self.timeout_ms)
        _stream("ResetPeer", self.stream)
        _toxicity("ResetPeer", self.toxicity)


@dataclass(frozen=True, slots=True)
class Slicer:
    """Slice data into small packets with a delay between them (exercises partial reads)."""

    average_size: int = 64
    size_variation: int = 32
    delay_us: int = 1000
    stream: str = "downstream"
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        _non_negative("Slicer", average_size=self.average_size, size_variation=self.size_variation,
                      delay_us=self.delay_us)
        _check(self.size_variation <= self.average_size,
               f"Slicer.size_variation={self.size_variation} must not exceed average_size={self.average_size}")
        _stream("Slicer", self.stream)
        _toxicity("Slicer", self.toxicity)


@dataclass(frozen=True, slots=True)
class LimitData:
    """Close each connection once ``bytes`` have passed in ``stream``."""

    bytes: int = 4096
    stream: str = "downstream"
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        _non_negative("LimitData", bytes=self.bytes)
        _stream("LimitData", self.stream)
        _toxicity("LimitData", self.toxicity)


@dataclass(frozen=True, slots=True)
class Crash:
    """Die (SIGKILL self) at the ``passage``-th pass through the named crash point (of records of
    ``event_type``, when given), then restart.

    The points are the target's own (its spec's ``crash_points``), e.g. the reference pipelines'
    ``app.after_commit``, ``relay.after_publish``, ``consumer.after_effect``.
    """

    point: str = "consumer.after_effect"
    passage: int = 5
    # Count only passages about records of this event type (the N-th ``paid``), so the crash lands on
    # a record that matters; None counts every passage.
    event_type: str | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.point, str) and bool(_POINT_NAME.match(self.point)),
               f"Crash.point={self.point!r} must be a dotted lowercase name such as relay.after_publish")
        _check(isinstance(self.passage, int) and self.passage >= 1,
               f"Crash.passage={self.passage!r} must be a positive integer (1 = the first passage)")
        _check(self.event_type is None or (isinstance(self.event_type, str) and bool(_EVENT_TYPE.match(self.event_type))),
               f"Crash.event_type={self.event_type!r} must be an event type name such as order.paid, or None")


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Re-publish ``count`` already-delivered events into the topic (same key, value, headers)."""

    count: int = 20

    def __post_init__(self) -> None:
        _check(isinstance(self.count, int) and self.count >= 1, f"Duplicate.count={self.count!r} must be >= 1")


@dataclass(frozen=True, slots=True)
class Poison:
    """Publish ``count`` malformed payloads (not JSON / missing fields) keyed like real orders."""

    count: int = 3

    def __post_init__(self) -> None:
        _check(isinstance(self.count, int) and self.count >= 1, f"Poison.count={self.count!r} must be >= 1")


@dataclass(frozen=True, slots=True)
class SlowConsumer:
    """Throttle what a consumer can fetch (a bandwidth toxic on its kafka link, downstream)."""

    rate_kbps: int = 2

    def __post_init__(self) -> None:
        _check(isinstance(self.rate_kbps, int) and self.rate_kbps >= 1,
               f"SlowConsumer.rate_kbps={self.rate_kbps!r} must be >= 1")


@dataclass(frozen=True, slots=True)
class SchemaDrift:
    """The order service writes schema v2: ``rename`` amount_cents to amount, or ``remove`` customer."""

    change: str = "rename"

    def __post_init__(self) -> None:
        # Which changes exist is the target's (its spec's drift_changes), checked when the run starts.
        _check(isinstance(self.change, str) and self.change.isidentifier(),
               f"SchemaDrift.change={self.change!r} must be a change name such as rename")


MAX_REORDER_POSITION = 16  # an entity with more events than this is not a lifecycle the workload makes


@dataclass(frozen=True, slots=True)
class Reordering:
    """Hold the ``position``-th event of up to ``entities`` entities and release it right after the
    ``distance``-th event that follows it (held and released by the interposer).

    ``position=1, distance=1`` swaps an entity's first two events (``order.created`` and its
    next); ``position=2`` swaps the second and third (``order.paid`` and ``order.shipped``);
    ``distance=2`` lets two later events overtake the held one. So (position, distance) names
    any pair of one entity's events. Events are counted per entity from the start of the run, so
    only entities that reach ``position`` while the fault is active are held; a held event whose
    successors do not all come before the heal is released then, behind those that did.
    """

    entities: int = 5
    position: int = 1
    distance: int = 1

    def __post_init__(self) -> None:
        _check(isinstance(self.entities, int) and self.entities >= 1,
               f"Reordering.entities={self.entities!r} must be >= 1")
        _check(isinstance(self.position, int) and 1 <= self.position <= MAX_REORDER_POSITION,
               f"Reordering.position={self.position!r} must be an integer in 1..{MAX_REORDER_POSITION}: which event "
               "of an entity to hold, 1-based (1 = its first, 2 = its second, e.g. order.paid)")
        _check(isinstance(self.distance, int) and 1 <= self.distance <= MAX_REORDER_POSITION,
               f"Reordering.distance={self.distance!r} must be an integer in 1..{MAX_REORDER_POSITION}: how many of the "
               "entity's later events overtake the held one (1 = swap it with the next)")


@dataclass(frozen=True, slots=True)
class Rewind:
    """Move a consumer group's committed offsets ``records`` back per partition (0: to the start of the topic)."""

    records: int = 0

    def __post_init__(self) -> None:
        _check(isinstance(self.records, int) and self.records >= 0,
               f"Rewind.records={self.records!r} must be >= 0 (0 replays the topic from its start)")


SCALE_STOPS = ("term", "kill")


@dataclass(frozen=True, slots=True)
class Scale:
    """Start ``instances`` more instances of a process beside it (same command, environment and
    consumer group) and stop them at heal: ``stop="term"`` cleanly (its declared signal and grace:
    a consumer leaves its group), ``"kill"`` with SIGKILL (its partitions wait for the session
    timeout). Two rebalances of a consumer group under load, or two relays on one outbox.
    """

    instances: int = 1
    stop: str = "term"

    def __post_init__(self) -> None:
        _check(isinstance(self.instances, int) and 1 <= self.instances <= 4,
               f"Scale.instances={self.instances!r} must be an integer in 1..4 (extra instances beside the process)")
        _check(self.stop in SCALE_STOPS,
               f"Scale.stop={self.stop!r} is not a way to stop them; valid: {', '.join(SCALE_STOPS)} "
               "(term = clean stop with the process's declared signal, kill = SIGKILL)")


Params = (NoParams | OneWayCut | BlackHole | Latency | Bandwidth | ResetPeer | Slicer | LimitData | Crash
          | Duplicate | Poison | SlowConsumer | SchemaDrift | Reordering | Rewind | Scale)
"""The parameters of one fault kind."""


class FaultKind(Enum):
    OUTAGE = "outage"
    ONE_WAY_CUT = "one_way_cut"
    BLACK_HOLE = "black_hole"
    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    RESET_PEER = "reset_peer"
    SLICER = "slicer"
    LIMIT_DATA = "limit_data"
    KILL = "kill"
    PAUSE = "pause"
    RESTART = "restart"
    CRASH = "crash"
    DUPLICATE = "duplicate"
    POISON = "poison"
    SLOW_CONSUMER = "slow_consumer"
    SCHEMA_DRIFT = "schema_drift"
    REORDER = "reorder"
    REWIND = "rewind"
    GROUP_RESET = "group_reset"
    SCALE = "scale"
    DLQ_REFUSED = "dlq_refused"


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: FaultKind
    target: TargetType
    params: type
    summary: str


_INFO: Mapping[FaultKind, KindInfo] = MappingProxyType({i.kind: i for i in (
    KindInfo(FaultKind.OUTAGE, TargetType.LINK, NoParams,
             "proxy disabled: open connections drop, new ones are refused"),
    KindInfo(FaultKind.ONE_WAY_CUT, TargetType.LINK, OneWayCut,
             "one direction drops every byte (timeout toxic, timeout 0, on one stream)"),
    KindInfo(FaultKind.BLACK_HOLE, TargetType.LINK, BlackHole,
             "both directions drop every byte, connections stay open (timeout 0)"),
    KindInfo(FaultKind.LATENCY, TargetType.LINK, Latency, "added delay with jitter"),
    KindInfo(FaultKind.BANDWIDTH, TargetType.LINK, Bandwidth, "throughput capped"),
    KindInfo(FaultKind.RESET_PEER, TargetType.LINK, ResetPeer, "connections reset with TCP RST"),
    KindInfo(FaultKind.SLICER, TargetType.LINK, Slicer, "data sliced into small, delayed packets"),
    KindInfo(FaultKind.LIMIT_DATA, TargetType.LINK, LimitData, "connections closed after N bytes"),
    KindInfo(FaultKind.KILL, TargetType.PROCESS, NoParams, "kill -9 the process (group), restart it at heal"),
    KindInfo(FaultKind.PAUSE, TargetType.PROCESS, NoParams, "SIGSTOP (a GC pause, a hung VM), SIGCONT at heal"),
    KindInfo(FaultKind.RESTART, TargetType.PROCESS, NoParams, "clean stop (SIGTERM) at inject, start at heal"),
    KindInfo(FaultKind.CRASH, TargetType.PROCESS, Crash,
             "arm a named crash point; the process dies at its n-th passage and is restarted"),
    KindInfo(FaultKind.DUPLICATE, TargetType.TOPIC, Duplicate,
             "re-publish already-delivered events through the DIRECT listener"),
    KindInfo(FaultKind.POISON, TargetType.TOPIC, Poison, "publish malformed payloads through the DIRECT listener"),
    KindInfo(FaultKind.SLOW_CONSUMER, TargetType.PROCESS, SlowConsumer,
             "a consumer fetches through a throttled link, so its lag grows"),
    KindInfo(FaultKind.SCHEMA_DRIFT, TargetType.PROCESS, SchemaDrift,
             "the producer (the order service, app) switches to schema v2 mid-run, back to v1 at heal"),
    KindInfo(FaultKind.REORDER, TargetType.TOPIC, Reordering,
             "an interposer topic between publisher and topic holds an entity's n-th event and releases it after a later one"),
    KindInfo(FaultKind.REWIND, TargetType.PROCESS, Rewind,
             "stop a consumer cleanly, move its group's offsets back (0: replay from the start), restart it at heal"),
    KindInfo(FaultKind.GROUP_RESET, TargetType.PROCESS, NoParams,
             "stop a consumer cleanly, delete its group's committed offsets, start it at heal: its "
             "auto.offset.reset decides where it resumes (at the start of traffic: a group that starts late)"),
    KindInfo(FaultKind.SCALE, TargetType.PROCESS, Scale,
             "start more instances of a process beside it (same group: a rebalance; a second relay), stop them at heal"),
    KindInfo(FaultKind.DLQ_REFUSED, TargetType.PROCESS, NoParams,
             "a consumer's dead-letter topic refuses every write (max.message.bytes below any record) while its fetch "
             "works; its limit restored at heal"),
)})


# The kinds that act on a consumer of the target (its fetch link, its group's offsets, its dead-letter
# topic): a process with a consumer group and a kafka link, never an infra process.
CONSUMER_KINDS = frozenset({FaultKind.SLOW_CONSUMER, FaultKind.REWIND, FaultKind.GROUP_RESET, FaultKind.DLQ_REFUSED})


def kind_info(kind: FaultKind) -> KindInfo:
    return _INFO[kind]


def catalogue() -> tuple[KindInfo, ...]:
    return tuple(_INFO[k] for k in FaultKind)


def param_defaults(params: type) -> tuple[tuple[str, object], ...]:
    return tuple((f.name, f.default) for f in dataclasses.fields(params))


def _check_target(kind: FaultKind, target: str) -> None:
    kind_target = _INFO[kind].target
    if kind_target is TargetType.LINK:
        client, sep, service = target.partition("->")
        _check(bool(sep) and service in SERVICES and bool(_PROCESS_NAME.match(client)),
               f"FaultSpec.target {target!r} is not a link for {kind.value}; write CLIENT->SERVICE with CLIENT a "
               f"process of the target (or {', '.join(ROLE_CLIENTS)}) and SERVICE one of {', '.join(SERVICES)}")
    elif kind_target is TargetType.PROCESS:
        _check(bool(_PROCESS_NAME.match(target)),
               f"FaultSpec.target {target!r} is not a process name for {kind.value}: use an infra process "
               f"({', '.join(INFRA_PROCESSES)}), a process of the target (e.g. relay, consumer.payment, relay#1 for a "
               f"second replica) or {', '.join(ROLE_CLIENTS)}")
        _check(kind not in CONSUMER_KINDS or target not in INFRA_PROCESSES,
               f"FaultSpec.target {target!r}: {kind.value} acts on a consumer of the target, not {target}")
        _check(kind is not FaultKind.SCALE or (target not in INFRA_PROCESSES and "#" not in target),
               f"FaultSpec.target {target!r}: scale starts more instances of a process of the target (e.g. relay, "
               f"consumer.payment), not of {target}" + (" (name the process, not one replica)" if "#" in target else ""))
    else:
        _check(target in TOPICS, f"FaultSpec.target {target!r} is not a topic for {kind.value}; valid: {', '.join(TOPICS)}")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A ``kind`` fault on ``target`` from ``at`` (fraction of the run) for ``for_s`` seconds.

    ``jitter`` (a fraction of the duration) shifts the start by a seeded amount.
    ``params`` are the kind's typed parameters; None means the kind's defaults.
    """

    kind: FaultKind
    target: str
    at: float
    for_s: float
    jitter: float = 0.0
    params: Params | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FaultKind):
            raise UsageError(f"FaultSpec.kind must be a FaultKind, got {self.kind!r}; valid: "
                             f"{', '.join(k.value for k in FaultKind)}")
        _check(isinstance(self.target, str), f"FaultSpec.target must be a string, got {self.target!r}")
        _check_target(self.kind, self.target)
        _check(isinstance(self.at, (int, float)) and 0.0 <= self.at < 1.0,
               f"FaultSpec.at={self.at!r} must be a fraction of the run in [0, 1)")
        _check(isinstance(self.for_s, (int, float)) and self.for_s > 0,
               f"FaultSpec.for_s={self.for_s!r} must be a positive number of seconds")
        _check(isinstance(self.jitter, (int, float)) and 0.0 <= self.jitter < 0.5,
               f"FaultSpec.jitter={self.jitter!r} must be in [0, 0.5)")
        expected = _INFO[self.kind].params
        if self.params is None:
            object.__setattr__(self, "params", expected())
        elif type(self.params) is not expected:
            raise UsageError(f"FaultSpec.params for {self.kind.value} must be {expected.__name__}(...), "
                             f"got {type(self.params).__name__}")

    @property
    def link(self) -> str:
        """The target, for the link kinds (kept for scenarios written before the full catalogue)."""
        return self.target

    def param_items(self) -> tuple[tuple[str, object], ...]:
        return tuple((f.name, getattr(self.params, f.name)) for f in dataclasses.fields(self.params))  # type: ignore[arg-type]
