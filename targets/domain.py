"""The order domain shared by every pipeline and consumer: events, tables, configuration.

An order lives ``created -> paid`` (shipping and cancelling arrive with the full
domain). Every event carries its id, the entity key (order id), a per-entity sequence
number, a schema version, the correlation id made at the HTTP entry point, and a time.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from enum import Enum

__all__ = ["SCHEMA_SQL", "SCHEMA_VERSION", "Event", "EventType", "TargetEnv", "decode_event"]

SCHEMA_VERSION = 1


class EventType(Enum):
    CREATED = "order.created"
    PAID = "order.paid"


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
        return json.dumps(asdict(self), separators=(",", ":")).encode()


def decode_event(raw: bytes | None) -> Event:
    """Parse an event; raises ValueError naming what was wrong (the consumer dead-letters it)."""
    if raw is None:
        raise ValueError("empty message value")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    missing = [f for f in Event.__dataclass_fields__ if f not in data]
    if missing:
        raise ValueError(f"missing fields: {', '.join(missing)}")
    return Event(**{f: data[f] for f in Event.__dataclass_fields__})


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
    payload bytea NOT NULL,
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
CREATE TABLE payment_charges (
    id bigserial PRIMARY KEY,
    order_id uuid NOT NULL,
    amount_cents bigint NOT NULL,
    correlation_id uuid NOT NULL,
    event_id uuid NOT NULL,
    charged_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


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

    @classmethod
    def from_environ(cls) -> TargetEnv:
        try:
            return cls(
                pipeline=os.environ["CHAOS_PIPELINE"],
                pg_dsn=os.environ["CHAOS_PG_DSN"],
                kafka=os.environ["CHAOS_KAFKA"],
                topic=os.environ["CHAOS_TOPIC"],
                group=os.environ.get("CHAOS_GROUP", ""),
                http_port=int(os.environ.get("CHAOS_HTTP_PORT", "0")),
                dlq_topic=os.environ.get("CHAOS_DLQ_TOPIC", ""),
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
