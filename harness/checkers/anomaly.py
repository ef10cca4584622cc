"""The anomaly vocabulary: what a checker found, named once, shared by checkers, verdicts, score, report and explore.

Like Jepsen's anomaly names (G0, G1c, lost-update ...), each kind is one precise thing
that went wrong, with a one-line meaning (the README's "Anomalies" table is generated
from ``KIND_INFO`` and a test keeps them equal). A checker returns every anomaly it found
as an ``Anomaly`` (kind, the entity it concerns, and what pins it down in time and
place), so that attribution (harness/attribution.py) can ask of each one whether an
injected fault explains it, and a scenario can expect anomalies by kind
(``Expect(..., anomalies=(AnomalyKind.LOST_EFFECT,))``) rather than by invariant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from harness.errors import UsageError

__all__ = ["KIND_INFO", "Anomaly", "AnomalyKind", "KindInfo", "kinds_of", "parse_kind"]


class AnomalyKind(Enum):
    # I1 no-lost-effect
    LOST_EFFECT = "lost-effect"
    ACKNOWLEDGED_THEN_MISSING = "acknowledged-then-missing"
    # I2 exactly-once-effect
    DUPLICATE_EFFECT = "duplicate-effect"
    AMPLIFIED = "amplified"
    # I3 per-entity-order
    NONMONOTONIC_APPLY = "nonmonotonic-apply"
    SHIPPED_BEFORE_PAID = "shipped-before-paid"
    APPLIED_PAST_DEAD_LETTER = "applied-past-dead-letter"
    SPLIT_ENTITY = "split-entity"
    NONMONOTONIC_PUBLISH = "nonmonotonic-publish"
    # I4 no-phantom
    PHANTOM_ORDER = "phantom-order"
    PHANTOM_EVENT = "phantom-event"
    PHANTOM_EFFECT = "phantom-effect"
    COMMITTED_WITHOUT_EFFECT = "committed-without-effect"
    COMMITTED_WITHOUT_EVENT = "committed-without-event"
    EFFECT_WITHOUT_COMMIT = "effect-without-commit"
    # I5 dlq-accounted
    VANISHED = "vanished"
    DLQ_WITHOUT_REASON = "dlq-without-reason"
    BOOKKEEPING_DISAGREES = "bookkeeping-disagrees"
    # I6 trace-complete
    MISSING_CORRELATION_ID = "missing-correlation-id"
    FOREIGN_CORRELATION_ID = "foreign-correlation-id"
    # I7 bounded-recovery
    SLOW_RECOVERY = "slow-recovery"
    NEVER_RECOVERED = "never-recovered"
    DID_NOT_RECOVER = "did-not-recover"
    # I8 schema-contract
    UNDECODABLE = "undecodable"
    MISSING_SCHEMA_VERSION = "missing-schema-version"
    UNREGISTERED_VERSION = "unregistered-version"
    INVALID_EVENT = "invalid-event"
    INCOMPATIBLE_VERSIONS = "incompatible-versions"

    @property
    def info(self) -> KindInfo:
        return KIND_INFO[self]

    @property
    def invariant(self) -> str:
        return KIND_INFO[self].invariant


@dataclass(frozen=True, slots=True)
class KindInfo:
    invariant: str  # "I1"
    meaning: str  # one line, as in the README


K = AnomalyKind
KIND_INFO: Mapping[AnomalyKind, KindInfo] = MappingProxyType({
    K.LOST_EFFECT: KindInfo("I1", "an acknowledged request never got an effect it requires, and its events wait nowhere"),
    K.ACKNOWLEDGED_THEN_MISSING: KindInfo(
        "I1", "a request answered 2xx whose entity then reads as missing or in an earlier state, or whose next "
              "step is refused with 404/409"),
    K.DUPLICATE_EFFECT: KindInfo("I2", "one step of one entity took effect twice or more (charged twice)"),
    K.AMPLIFIED: KindInfo("I2", "redelivered copies outside crash recovery exceed the target's declared budget"),
    K.NONMONOTONIC_APPLY: KindInfo("I3", "a consumer applied an entity's event after a later event of that entity"),
    K.SHIPPED_BEFORE_PAID: KindInfo("I3", "the shipment took effect before the consumer applied the payment"),
    K.APPLIED_PAST_DEAD_LETTER: KindInfo(
        "I3", "a consumer dead-lettered an entity's event and then applied a later event of that entity"),
    K.SPLIT_ENTITY: KindInfo("I3", "one entity's events sit on more than one partition (no order between them)"),
    K.NONMONOTONIC_PUBLISH: KindInfo("I3", "within a partition, an entity's event sits after a later event of it"),
    K.PHANTOM_ORDER: KindInfo("I4", "a request that failed left its entity behind"),
    K.PHANTOM_EVENT: KindInfo("I4", "a request that failed (or did not commit) put its event on the topic"),
    K.PHANTOM_EFFECT: KindInfo("I4", "a request that failed caused an effect anyway"),
    K.COMMITTED_WITHOUT_EFFECT: KindInfo(
        "I4", "a request with an unknown outcome committed, but not every effect it requires happened"),
    K.COMMITTED_WITHOUT_EVENT: KindInfo(
        "I4", "a request with an unknown outcome committed, but its event never reached the topic"),
    K.EFFECT_WITHOUT_COMMIT: KindInfo("I4", "a request with an unknown outcome did not commit, yet caused effects"),
    K.VANISHED: KindInfo("I5", "a record a consumer owed was neither applied (no effect, no record of it) nor "
                               "dead-lettered"),
    K.DLQ_WITHOUT_REASON: KindInfo("I5", "a record was dead-lettered without a reason"),
    K.BOOKKEEPING_DISAGREES: KindInfo(
        "I5", "the target's own records (its processed-events table) contradict what the harness observed"),
    K.MISSING_CORRELATION_ID: KindInfo("I6", "an effect carries no correlation id: it cannot be traced"),
    K.FOREIGN_CORRELATION_ID: KindInfo("I6", "an effect carries a correlation id its request never had"),
    K.SLOW_RECOVERY: KindInfo("I7", "the pipeline caught up after the last heal, but later than the budget"),
    K.NEVER_RECOVERED: KindInfo("I7", "lag or backlog never returned to zero after the last heal"),
    K.DID_NOT_RECOVER: KindInfo("I7", "a process of the target was dead at the end"),
    K.UNDECODABLE: KindInfo("I8", "a record on the topic is not an event (not a JSON object)"),
    K.MISSING_SCHEMA_VERSION: KindInfo("I8", "an event names no schema version"),
    K.UNREGISTERED_VERSION: KindInfo("I8", "an event names a schema version the registry does not hold"),
    K.INVALID_EVENT: KindInfo("I8", "an event does not match the schema version it names"),
    K.INCOMPATIBLE_VERSIONS: KindInfo("I8", "two versions seen on the topic break the compatibility rule"),
})


def kinds_of(invariant: str) -> tuple[AnomalyKind, ...]:
    """Every kind a checker of ``invariant`` may report, in vocabulary order."""
    return tuple(k for k in AnomalyKind if KIND_INFO[k].invariant == invariant)


def parse_kind(value: AnomalyKind | str) -> AnomalyKind:
    """A kind from its name (``"lost-effect"``); anything else is a usage error listing the kinds."""
    if isinstance(value, AnomalyKind):
        return value
    try:
        return AnomalyKind(value)
    except ValueError:
        raise UsageError(f"unknown anomaly kind {value!r}; valid kinds: {', '.join(k.value for k in AnomalyKind)}"
                         ) from None


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One thing that went wrong, with what attribution needs to find its cause.

    ``entity`` is the order (entity) it concerns, or None for a run-wide anomaly (slow
    recovery, an undecodable record); ``consumer`` and ``event_id`` narrow it down where the
    checker knows them; ``at_ms`` is when it showed (epoch ms) where one moment does.
    """

    kind: AnomalyKind
    entity: str | None = None
    consumer: str | None = None
    event_id: str | None = None
    at_ms: int | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind.value}
        for name in ("entity", "consumer", "event_id", "at_ms"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> Anomaly:
        at = raw.get("at_ms")
        return cls(AnomalyKind(str(raw["kind"])), _opt(raw.get("entity")), _opt(raw.get("consumer")),
                   _opt(raw.get("event_id")), int(at) if isinstance(at, (int, float)) else None)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def anomalies(kind: AnomalyKind, entities: Iterable[object], consumer: object = None) -> list[Anomaly]:
    """One anomaly of ``kind`` per entity (an id that is None stays None)."""
    c = None if consumer is None else str(consumer)
    return [Anomaly(kind, None if e is None else str(e), c) for e in entities]
