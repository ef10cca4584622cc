"""The target spec: everything the harness needs to know about a pipeline, nothing about how it is written.

A spec is plain data, validated when it is built, so a bad spec fails before any
infrastructure starts (exit 4) with the field and the fix. Two forms build the same
``TargetSpec``: a Python object (``module:attr``, or an entry point in the
``chaos.targets`` group) and a declarative TOML file (``harness.target.toml``) for
pipelines written in other languages. The reference page is docs/target-spec.md.

Vocabulary:
  process   one OS process of the pipeline (any language): command, folder, environment,
            clean stop, readiness check, replicas, the services it talks to, its crash points
  link      ``<process>-><service>``: one proxied path per process and service (``relay->kafka``);
            the harness gives each link a Toxiproxy proxy and the process its address
  consumer  a process that consumes the event topic in its own group, with its own
            dead-letter topic, for one consumer of the domain (``payment``)
  publisher the process that writes the event topic (``publisher->kafka`` names its link)
  backlog   where events may still wait at the source (an outbox table's unsent rows): pending,
            never lost
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from harness.errors import SpecError
from harness.lag_alerts import LagThreshold

if TYPE_CHECKING:
    from harness.infra.stack import Infra
    from harness.target.protocol import RunContext, Target

__all__ = [
    "SERVICES", "Budgets", "Build", "ProcessDecl", "Readiness", "ReadyKind", "StopSpec", "TargetSpec", "Timeouts", "link_env_name",
]

SERVICES = ("kafka", "postgres")
"""The services a process can reach through a link (each through its own proxy)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_POINT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL")
MAX_REPLICAS = 8
INFRA_PROCESSES = ("kafka", "postgres", "connect", "toxiproxy")  # names a target process may not take


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise SpecError(message)


def link_env_name(link: str) -> str:
    """``relay->kafka`` -> ``CHAOS_LINK_RELAY_KAFKA``: where a process finds a link's proxied address."""
    return "CHAOS_LINK_" + re.sub(r"[^A-Z0-9]+", "_", link.upper()).strip("_")


class ReadyKind(Enum):
    HTTP = "http"  # GET this URL (``{port}`` = the process's first port) until it answers 2xx
    TCP = "tcp"  # connect to this port (``{port}``, or a number) until it accepts
    COMMAND = "command"  # run this command until it exits 0
    LOG = "log"  # wait for this text in the process's log
    NONE = "none"  # alive is ready (the harness still checks consumer groups)


@dataclass(frozen=True, slots=True)
class Readiness:
    """How the harness knows a process is ready: one active check with a deadline."""

    kind: ReadyKind = ReadyKind.NONE
    value: str | tuple[str, ...] = ""
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        _check(0 < self.timeout_s <= 600, f"ready.timeout_s={self.timeout_s!r} must be in (0, 600] seconds")
        if self.kind is ReadyKind.COMMAND:
            _check(isinstance(self.value, tuple) and len(self.value) > 0,
                   "ready.command must be a non-empty list of strings, e.g. [\"./healthcheck\"]")
        elif self.kind is not ReadyKind.NONE:
            _check(isinstance(self.value, str) and self.value.strip() == self.value and self.value != "",
                   f"ready.{self.kind.value} must be a non-empty string without surrounding whitespace")


@dataclass(frozen=True, slots=True)
class StopSpec:
    """A clean stop: ``signal`` to the process group, then SIGKILL after ``grace_s``."""

    signal: str = "TERM"
    grace_s: float = 5.0

    def __post_init__(self) -> None:
        _check(self.signal in _SIGNALS, f"stop.signal={self.signal!r} is not one of {', '.join(_SIGNALS)}")
        _check(0 <= self.grace_s <= 300, f"stop.grace_s={self.grace_s!r} must be in [0, 300] seconds")


@dataclass(frozen=True, slots=True)
class ProcessDecl:
    """One process of the pipeline, started by the harness as a real OS process (any language).

    ``env`` values may use ``{cwd}``; everything run-specific (links, topic, group,
    database, crash-point folder) arrives in ``CHAOS_*`` variables (docs/target-spec.md).
    """

    name: str
    command: tuple[str, ...]
    links: tuple[str, ...] = ()  # services this process talks to: "kafka", "postgres"
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    ready: Readiness = Readiness()
    stop: StopSpec = StopSpec()
    replicas: int = 1
    ports: tuple[str, ...] = ()  # named ports the harness assigns: CHAOS_PORT_<NAME> (and CHAOS_HTTP_PORT for "http")
    consumer: str | None = None  # the domain consumer this process is (its group and dead-letter topic)
    crash_points: tuple[str, ...] = ()
    publishes: bool = False  # writes the event topic (gets the interposer topic under a reorder fault)
    recovery_grace_s: float = 2.0  # after a restart, ready must hold this long to count as recovered

    def __post_init__(self) -> None:
        _check(bool(_NAME.match(self.name)),
               f"process name {self.name!r} must be lowercase letters, digits, '_' and '.', e.g. consumer.payment")
        _check(self.name not in INFRA_PROCESSES, f"process name {self.name!r} is taken by the infrastructure; rename it")
        _check(len(self.command) > 0 and all(isinstance(c, str) and c for c in self.command),
               f"processes.{self.name}.command must be a non-empty list of non-empty strings")
        for link in self.links:
            _check(link in SERVICES, f"processes.{self.name}.links: {link!r} is not a service; use {', '.join(SERVICES)}")
        _check(len(set(self.links)) == len(self.links), f"processes.{self.name}.links names a service twice")
        _check(isinstance(self.replicas, int) and 1 <= self.replicas <= MAX_REPLICAS,
               f"processes.{self.name}.replicas={self.replicas!r} must be an integer in 1..{MAX_REPLICAS}")
        _check(len(set(self.ports)) == len(self.ports) and all(bool(_NAME.match(p)) for p in self.ports),
               f"processes.{self.name}.ports must be distinct lowercase names, e.g. [\"http\"]")
        _check(not (self.ports and self.replicas > 1),
               f"processes.{self.name}: a process with ports cannot have replicas (they would share a port)")
        for point in self.crash_points:
            _check(bool(_POINT.match(point)),
                   f"processes.{self.name}.crash_points: {point!r} must be dotted lowercase, e.g. relay.after_publish")
        for key, value in self.env.items():
            _check(bool(re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key)) and not key.startswith("CHAOS_"),
                   f"processes.{self.name}.env: {key!r} is not a valid variable name (CHAOS_* is the harness's)")
            _check(isinstance(value, str), f"processes.{self.name}.env.{key} must be a string")
        _check(self.consumer is None or bool(_NAME.match(self.consumer)),
               f"processes.{self.name}.consumer={self.consumer!r} must name a domain consumer, e.g. payment")
        _check(0 <= self.recovery_grace_s <= 60,
               f"processes.{self.name}.recovery_grace_s={self.recovery_grace_s!r} must be in [0, 60]")

    def link_names(self) -> tuple[str, ...]:
        return tuple(f"{self.name}->{s}" for s in self.links)

    def replica_names(self) -> tuple[str, ...]:
        """``relay`` for one replica; ``relay``, ``relay#1``, ... for several (each a fault target)."""
        return (self.name,) + tuple(f"{self.name}#{i}" for i in range(1, self.replicas))


@dataclass(frozen=True, slots=True)
class Build:
    """A command run once before the target starts (e.g. ``go build``), in ``cwd``."""

    command: tuple[str, ...]
    cwd: Path | None = None
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        _check(len(self.command) > 0, "build.command must be a non-empty list of strings")
        _check(0 < self.timeout_s <= 3600, f"build.timeout_s={self.timeout_s!r} must be in (0, 3600]")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Client timeouts that decide outcomes: faults shorter and longer than these behave differently."""

    delivery_s: float | None = None  # how long a producer keeps trying one record
    session_s: float | None = None  # how long a silent consumer keeps its partitions

    def __post_init__(self) -> None:
        for name in ("delivery_s", "session_s"):
            value = getattr(self, name)
            _check(value is None or 0 < value <= 3600, f"timeouts.{name}={value!r} must be in (0, 3600] seconds")


@dataclass(frozen=True, slots=True)
class Budgets:
    """What a target declares it may spend under faults; the checkers hold it to them."""

    # Extra copies per distinct event on the topic, outside crash recovery (I2 ``amplified`` above it).
    redelivery_ratio: float | None = None

    def __post_init__(self) -> None:
        value = self.redelivery_ratio
        _check(value is None or (isinstance(value, (int, float)) and 0 <= value <= 100),
               f"budgets.redelivery_ratio={value!r} must be in [0, 100] extra copies per event")


Runtime = Callable[["TargetSpec", "Infra", "RunContext"], "Target"]
"""Builds the running Target of a spec on given infra; ``SpecTarget`` unless the spec brings its own."""


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A pipeline as the harness sees it. See docs/target-spec.md for every field."""

    name: str
    domain: str  # a domain pack: an entry point of ``chaos.domains`` ("orders") or "module:attr"
    processes: tuple[ProcessDecl, ...]
    entrypoint: str  # the process whose "http" port the workload sends requests to
    publisher: str  # the process (or "connect") that writes the event topic
    backlog_sql: str | None = None  # count of events committed at the source and not yet on the topic
    pending_sql: str | None = None  # the entity ids whose events still wait there (pending, never lost)
    partitions: int = 3
    variants: tuple[str, ...] = ("correct",)  # deliberate mistakes this target can run (CHAOS_VARIANT)
    timeouts: Timeouts = Timeouts()
    budgets: Budgets = Budgets()
    build: tuple[Build, ...] = ()
    schema_sql: str = ""  # extra tables beyond the domain's own
    uses_connect: bool = False  # needs Kafka Connect (the infra starts it on demand)
    # Its processes use a schema registry: the infra starts one on demand (or attaches the user's) and
    # every process gets its Confluent-API base URL as CHAOS_SCHEMA_REGISTRY_URL.
    uses_schema_registry: bool = False
    # Consumer-lag alert thresholds (records) per consumer group, "*" for the rest; a scenario's
    # own thresholds win for a group both name (harness.lag_alerts).
    lag_thresholds: tuple[LagThreshold, ...] = ()
    drift_changes: tuple[str, ...] = ()  # schema-drift changes its publisher can make (``SchemaDrift.change``)
    origin: str = "python"  # where the spec came from: built-in, entry point, a file (for `chaos targets`)
    runtime: Runtime | None = None  # None: the harness's generic SpecTarget

    def __post_init__(self) -> None:
        _check(bool(re.match(r"^[a-z][a-z0-9_]*$", self.name)),
               f"target name {self.name!r} must be lowercase letters, digits and '_' (it names databases and topics)")
        _check(len(self.processes) > 0, f"target {self.name}: declare at least one process")
        names = [p.name for p in self.processes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        _check(not dupes, f"target {self.name}: process names repeat: {', '.join(dupes)}")
        by_name = {p.name: p for p in self.processes}
        _check(self.entrypoint in by_name and "http" in by_name[self.entrypoint].ports,
               f"target {self.name}: entrypoint {self.entrypoint!r} must be a process with ports = [\"http\"]; "
               f"processes: {', '.join(names)}")
        _check(self.publisher in by_name or (self.publisher == "connect" and self.uses_connect),
               f"target {self.name}: publisher {self.publisher!r} must be one of its processes "
               f"({', '.join(names)}), or connect with uses_connect")
        consumers = [p.consumer for p in self.processes if p.consumer]
        _check(len(set(consumers)) == len(consumers), f"target {self.name}: two processes claim one consumer")
        _check(all(isinstance(t, LagThreshold) for t in self.lag_thresholds),
               f"target {self.name}: lag_thresholds must hold LagThreshold(group, max_lag) records")
        _check(1 <= self.partitions <= 64, f"target {self.name}: partitions={self.partitions!r} must be in 1..64")
        _check("correct" in self.variants, f"target {self.name}: variants must include \"correct\"")
        links = [link for p in self.processes for link in p.link_names()]
        if self.uses_connect:
            links += ["connect->kafka", "connect->postgres"]
        from harness.infra.topology import MAX_KAFKA_LINKS, MAX_POSTGRES_LINKS  # the port layout bounds them

        n_kafka = sum(1 for link in links if link.endswith("->kafka"))
        _check(n_kafka <= MAX_KAFKA_LINKS, f"target {self.name}: {n_kafka} kafka links, the topology has {MAX_KAFKA_LINKS}")
        _check(len(links) - n_kafka <= MAX_POSTGRES_LINKS,
               f"target {self.name}: {len(links) - n_kafka} postgres links, the topology has {MAX_POSTGRES_LINKS}")

    # ---- what the harness asks of a spec --------------------------------------------------
    def process(self, name: str) -> ProcessDecl:
        for p in self.processes:
            if p.name == name:
                return p
        raise SpecError(f"target {self.name} has no process {name!r}; its processes: "
                        f"{', '.join(p.name for p in self.processes)}")

    @property
    def clients(self) -> tuple[str, ...]:
        """Every process that talks to a service, in declaration order (their links take ports in this order)."""
        return tuple(p.name for p in self.processes if p.links)

    def links(self) -> tuple[str, ...]:
        links = [link for p in self.processes for link in p.link_names()]
        if self.uses_connect:
            links += ["connect->kafka", "connect->postgres"]
        return tuple(links)

    def process_names(self) -> tuple[str, ...]:
        """Every fault-targetable process name, replicas included (``connect`` when it uses Connect)."""
        names = [r for p in self.processes for r in p.replica_names()]
        return tuple(names + (["connect"] if self.uses_connect else []))

    def crash_points(self) -> Mapping[str, tuple[str, ...]]:
        return MappingProxyType({p.name: p.crash_points for p in self.processes if p.crash_points})

    def consumers(self) -> Mapping[str, ProcessDecl]:
        return MappingProxyType({p.consumer: p for p in self.processes if p.consumer})
