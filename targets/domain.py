"""The order domain shared by every pipeline and consumer: events, tables, configuration.

An order lives ``created -> paid -> shipped``, or ``created -> cancelled``. Every change
bumps the row's ``version``, and every version is exactly one event: the version is the
event's per-entity ``seq``, and the event id is derived from (order id, version), so the
same change always has the same id whichever pipeline carries it and however often it is
redelivered (Debezium after a Connect crash, the relay after a crash between publish and
mark). Every event also carries the schema version, the correlation id made at the HTTP
entry point (the orders row stores the correlation id of the request that last changed
it), and a time.

Two shapes reach the consumers:
  domain event  ``direct``, ``outbox`` and ``cdc_outbox``: the JSON of ``Event``
  row state     ``cdc``: the ``orders`` row after the change, as Debezium's
                ExtractNewRecordState leaves it (JSON, schemas disabled); ``event_from_row``
                turns it into the same ``Event``. Decoding happens in the consumer, not in
                a Connect SMT, because the event id (uuid5) and the type (from the status)
                need code that no stock SMT provides, and a custom Java SMT would be one
                more artifact to build and install; the one Python function serves the
                consumers and the harness's oracle alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import cast

import msgspec

from harness.history.ops import Scalar
from harness.history.store import Recorder
from harness.target.domain import ConsumerDecl, DecodedEvent, DomainDecl, Requirement, SqlReader
from harness.workload.base import Workload
from harness.workload.orders import OrderWorkload, plan_orders
from harness.workload.rate import RateShape

__all__ = ["CONSUMERS", "EFFECT_TABLES", "EVENT_NAMESPACE", "ORDERS", "OrdersDomain", "SCHEMA_SQL", "SCHEMA_VERSION", "STATUS_EVENT", "Event",
           "EventType", "TargetEnv", "decode_event", "event_from_row", "event_id_for"]

SCHEMA_VERSION = 1
# Namespace of event ids: uuid5(EVENT_NAMESPACE, "<order_id>:<version>").
EVENT_NAMESPACE = uuid.UUID("6f1c3a52-8a4e-4c0e-9a51-3c1d2b7e9f10")


class EventType(Enum):
    CREATED = "order.created"
    PAID = "order.paid"
    SHIPPED = "order.shipped"
    CANCELLED = "order.cancelled"


# The status a change leaves the row in names the event that change was.
STATUS_EVENT: Mapping[str, EventType] = {
    "created": EventType.CREATED,
    "paid": EventType.PAID,
    "shipped": EventType.SHIPPED,
    "cancelled": EventType.CANCELLED,
}


def event_id_for(order_id: str, version: int) -> str:
    """The id of the event of one row version: deterministic, so redeliveries dedupe.

    str(uuid.uuid5(EVENT_NAMESPACE, f"{order_id}:{version}")), computed without the two UUID
    objects that cost the order service a twentieth of an order's CPU (a test checks they agree).
    """
    h = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{order_id}:{version}".encode()).digest()[:16])  # noqa: S324 (RFC 4122's)
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    type: str
    order_id: str
    seq: int
    schema_version: int
    correlation_id: str
    occurred_at: str
    customer: str
    amount_cents: int

    def encode(self) -> bytes:
        """The event's JSON: its fields in order, compact, non-ASCII escaped (json.dumps's bytes, always).

        msgspec writes the same bytes at a tenth of the cost (the order service encodes every event
        it makes: it was 12 % of an order's CPU) except where json.dumps escapes and msgspec does
        not: non-ASCII and DEL. Those events take json.dumps, so an event's bytes never depend on
        which encoder ran (a test compares the two over every ASCII character).
        """
        try:
            data = _ENCODE(self)
        except (UnicodeEncodeError, OverflowError, msgspec.EncodeError):  # a lone surrogate, an int past 64 bits
            pass
        else:
            if data.isascii() and b"\x7f" not in data:
                return data
        return json.dumps({f: getattr(self, f) for f in _EVENT_FIELDS}, separators=(",", ":")).encode()


_EVENT_FIELDS = tuple(Event.__dataclass_fields__)
_ENCODE = msgspec.json.Encoder().encode  # a dataclass: its fields in definition order, as _EVENT_FIELDS


_ROW_FIELDS = ("order_id", "customer", "amount_cents", "status", "version", "correlation_id", "updated_at")


def event_from_row(row: Mapping[str, object]) -> Event:
    """The domain event of one ``orders`` row version (the cdc pipeline's record value)."""
    missing = [f for f in _ROW_FIELDS if f not in row]
    if missing:
        raise ValueError(f"orders row without {', '.join(missing)}")
    status = str(row["status"])
    if status not in STATUS_EVENT:
        raise ValueError(f"orders row with unknown status {status!r}")
    order_id, version = str(row["order_id"]), int(row["version"])  # type: ignore[call-overload]
    return Event(
        event_id=event_id_for(order_id, version), type=STATUS_EVENT[status].value, order_id=order_id, seq=version,
        schema_version=SCHEMA_VERSION, correlation_id=str(row["correlation_id"]), occurred_at=str(row["updated_at"]),
        customer=str(row["customer"]), amount_cents=int(row["amount_cents"]),  # type: ignore[call-overload]
    )


def decode_event(raw: bytes | None) -> Event:
    """Parse an event (either shape); raises ValueError naming what was wrong (the consumer dead-letters it)."""
    if raw is None:
        raise ValueError("empty message value")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    if "event_id" not in data and "status" in data and "version" in data:
        return event_from_row(data)
    missing = [f for f in Event.__dataclass_fields__ if f not in data]
    if missing:
        raise ValueError(f"missing fields: {', '.join(missing)}")
    try:
        return Event(**{f: data[f] for f in Event.__dataclass_fields__})
    except TypeError as exc:
        raise ValueError(f"bad event: {exc}") from None


# One database per pipeline run. The order service owns orders and outbox; each consumer
# owns its own tables. processed_events is the idempotency record: its primary key is
# the unique constraint under which an effect and its record commit together.
SCHEMA_SQL = """
CREATE TABLE orders (
    order_id uuid PRIMARY KEY,
    customer text NOT NULL,
    amount_cents bigint NOT NULL,
    status text NOT NULL,
    version int NOT NULL,
    correlation_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    order_id uuid NOT NULL,
    seq int NOT NULL,
    type text NOT NULL,
    payload text NOT NULL,  -- the event's JSON; text (not bytea) so Debezium's EventRouter can expand it
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE TABLE processed_events (
    position bigserial,
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    order_id uuid,
    type text,
    seq int,
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE fulfillment_paid (
    order_id uuid PRIMARY KEY,
    event_id uuid NOT NULL
);
""" + "".join(
    # One effect table per consumer, all of one shape, so the oracle reads them alike.
    # No unique constraint on the effect itself: exactly-once comes from processed_events,
    # and a consumer without it (a broken variant) must be able to show a second row.
    f"""
CREATE TABLE {table} (
    id bigserial PRIMARY KEY,
    order_id uuid NOT NULL,
    amount_cents bigint NOT NULL,
    correlation_id uuid NOT NULL,
    event_id uuid NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
""" for table in ("payment_charges", "inventory_reservations", "fulfillment_shipments", "notification_emails"))

# consumer -> (effect kind, table): what each consumer's effect is called and where it lives.
EFFECT_TABLES: Mapping[str, tuple[str, str]] = {
    "payment": ("charge", "payment_charges"),
    "inventory": ("reservation", "inventory_reservations"),
    "fulfillment": ("shipment", "fulfillment_shipments"),
    "notification": ("email", "notification_emails"),
}
CONSUMERS = tuple(EFFECT_TABLES)


@dataclass(frozen=True, slots=True)
class TargetEnv:
    """Configuration a target process reads from its environment (set by the harness)."""

    pipeline: str
    pg_dsn: str
    kafka: str
    topic: str
    group: str
    http_port: int
    dlq_topic: str
    variant: str  # targets.variants.Variant value; "correct" unless a broken variant was asked for
    mode: str = ""  # the order service's ORDER_SERVICE_MODE: direct | outbox | commit_only

    @classmethod
    def from_environ(cls) -> TargetEnv:
        try:
            return cls(
                pipeline=os.environ["CHAOS_PIPELINE"],
                pg_dsn=os.environ["CHAOS_PG_DSN"],
                kafka=os.environ.get("CHAOS_KAFKA", ""),  # a process without a kafka link (an outbox-mode service)
                topic=os.environ["CHAOS_TOPIC"],
                group=os.environ.get("CHAOS_GROUP", ""),
                http_port=int(os.environ.get("CHAOS_HTTP_PORT", "0")),
                dlq_topic=os.environ.get("CHAOS_DLQ_TOPIC", ""),
                variant=os.environ.get("CHAOS_VARIANT", "correct"),
                mode=os.environ.get("ORDER_SERVICE_MODE", ""),
            )
        except KeyError as exc:
            raise SystemExit(f"missing environment variable {exc.args[0]}: targets are started by the harness") from None


def pg_connect_kwargs() -> dict[str, object]:
    """Client settings that keep a black-holed link from hanging a target forever."""
    return {
        "connect_timeout": 3,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
        "options": "-c statement_timeout=5000",
    }


class OrdersDomain:
    """The reference order domain as a domain pack (``harness.target.domain.Domain``).

    Registered as the ``orders`` entry point of ``chaos.domains``; any pipeline whose
    services write these tables (the reference ones, or a team's own in any language)
    is checked with it.
    """

    decl = DomainDecl(
        name="orders",
        consumers=(
            ConsumerDecl("payment", frozenset({EventType.PAID.value}), "charge"),
            ConsumerDecl("inventory", frozenset({EventType.CREATED.value}), "reservation"),
            ConsumerDecl("fulfillment", frozenset({EventType.PAID.value, EventType.SHIPPED.value}), "shipment"),
            ConsumerDecl("notification", frozenset({EventType.CREATED.value}), "email"),
        ),
        requirements=(
            # an acknowledged client step -> the effects it must cause exactly once
            Requirement("place", "inventory", "reservation"),
            Requirement("place", "notification", "email"),
            Requirement("pay", "payment", "charge"),
            Requirement("ship", "fulfillment", "shipment"),
        ),
    )
    schema_sql = SCHEMA_SQL

    def decode(self, raw: bytes | None) -> DecodedEvent:
        # The consumers' own decoder: a cdc row and a domain event come out as the same fields.
        event = decode_event(raw)
        return DecodedEvent(event_id=event.event_id, entity_id=event.order_id, type=event.type, seq=event.seq,
                            correlation_id=event.correlation_id, schema_version=event.schema_version)

    def workload(self, base_url: str, recorder: Recorder, shape: RateShape, duration_s: float,
                 seed: int) -> Workload:
        # The order workload lives in the harness because its tests and benchmarks drive it
        # without a target; this pack is where it is chosen for the order domain.
        return OrderWorkload(base_url, recorder, plan_orders(shape, duration_s, seed))

    def observe(self, sql: SqlReader) -> Mapping[str, list[Mapping[str, Scalar]]]:
        def rows(query: str, names: tuple[str, ...]) -> list[Mapping[str, Scalar]]:
            # The queries below select only text and integers (times as epoch milliseconds): Scalars.
            return [cast(dict[str, Scalar], dict(zip(names, r))) for r in sql(query)]

        epoch_ms = "(extract(epoch FROM {}) * 1000)::bigint"
        effects = " UNION ALL ".join(
            f"SELECT '{consumer}' AS consumer, '{kind}' AS kind, order_id::text, event_id::text, correlation_id::text, "
            f"amount_cents, {epoch_ms.format('applied_at')} AS applied_at_ms, id FROM {table}"
            for consumer, (kind, table) in EFFECT_TABLES.items()
        )
        return {
            "orders": rows("SELECT order_id::text, customer, amount_cents, status, version, correlation_id::text FROM orders",
                           ("order_id", "customer", "amount_cents", "status", "version", "correlation_id")),
            "applied": rows(
                "SELECT consumer, position, event_id::text, order_id::text, type, seq, "
                f"{epoch_ms.format('processed_at')} FROM processed_events ORDER BY position",
                ("consumer", "position", "event_id", "order_id", "type", "seq", "applied_at_ms")),
            "effects": rows(
                "SELECT consumer, kind, order_id, event_id, correlation_id, amount_cents, applied_at_ms "
                f"FROM ({effects}) AS e ORDER BY applied_at_ms, consumer, id",
                ("consumer", "kind", "order_id", "event_id", "correlation_id", "amount_cents", "applied_at_ms")),
        }


ORDERS = OrdersDomain()
