"""What every consumer does, whatever its effect: the idempotent apply loop with a dead-letter topic.

For each event of a type it subscribes to, a consumer writes its effect and its
processed-event record in one transaction; the record's primary key (consumer, event_id)
is the unique constraint that turns a redelivered event into a no-op. Offsets are
committed only after the effect committed (auto-commit off), so a crash redelivers
rather than loses. An event it cannot apply after ``MAX_TRIES`` goes to its own
dead-letter topic with a ``reason`` header; an undecodable one goes there at once
(retrying cannot help). Every effect row stores the event's correlation id.

Broken variants (``targets.variants``) change exactly one of these promises.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psycopg
from confluent_kafka import Consumer, KafkaError, Message, Producer

from targets.crashpoints import crash_point
from targets.domain import EFFECT_TABLES, Event, TargetEnv, decode_event, pg_connect_kwargs
from targets.variants import Variant

__all__ = ["Handler", "NotReady", "run_consumer"]

MAX_TRIES = 3
BATCH = 100


class NotReady(Exception):
    """The event cannot be applied yet (e.g. shipped before paid); retried, then dead-lettered."""


Handler = Callable[[psycopg.Connection, Event], bool]
"""Apply one event inside the open transaction; True when an effect row should be written."""


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    name: str
    handlers: Mapping[str, Handler]  # event type -> handler


def effect_only(conn: psycopg.Connection, event: Event) -> bool:
    return True


class ConsumerLoop:
    def __init__(self, spec: ConsumerSpec, env: TargetEnv) -> None:
        self.spec = spec
        self.env = env
        self.variant = Variant.parse(env.variant)
        self.kind, self.table = EFFECT_TABLES[spec.name]
        self.log = logging.getLogger(f"consumer.{spec.name}")
        self.conn: psycopg.Connection | None = None
        self.last_type: str | None = None  # the event type of the record in hand, once decoded (for crash points)
        self.dlq = Producer({"bootstrap.servers": env.kafka, "enable.idempotence": True, "acks": "all",
                             # Shorter than the flush wait in dead_letter, so every attempt ends in a report.
                             "message.timeout.ms": 25000, "logger": logging.getLogger("librdkafka")})

    def _db(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = psycopg.connect(self.env.pg_dsn, **pg_connect_kwargs())  # type: ignore[arg-type]
        return self.conn

    def apply(self, event: Event) -> None:
        handler = self.spec.handlers.get(event.type)
        if handler is None:
            return  # not this consumer's business
        conn = self._db()
        with conn.transaction():
            inserted = conn.execute(
                "INSERT INTO processed_events (consumer, event_id, order_id, type, seq) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (self.spec.name, event.event_id, event.order_id, event.type, event.seq),
            ).rowcount
            if not inserted and self.variant is not Variant.NO_IDEMPOTENCY:
                self.log.info("duplicate delivery absorbed: event_id=%s order_id=%s", event.event_id, event.order_id)
                return
            # The no-idempotency variant checked nothing: it applies the effect on every delivery.
            if handler(conn, event):
                conn.execute(
                    f"INSERT INTO {self.table} (order_id, amount_cents, correlation_id, event_id) "  # noqa: S608
                    "VALUES (%s, %s, %s, %s)",
                    (event.order_id, event.amount_cents, event.correlation_id, event.event_id),
                )

    def dead_letter(self, msg: Message, reason: str, stop: threading.Event) -> None:
        """Send ``msg`` to this consumer's DLQ and wait for the ack: its offset is committed right after.

        If the DLQ is unreachable the consumer waits (lag, not loss); a stop before the ack
        returns without the ack, and the caller commits nothing when stopping.
        """
        headers: dict[str, str | bytes | None] = {
            "reason": reason[:500], "source_topic": msg.topic(), "source_partition": str(msg.partition()),
            "source_offset": str(msg.offset()), "consumer": self.spec.name}
        while not stop.is_set():
            outcome: list[KafkaError | None] = []
            self.dlq.produce(self.env.dlq_topic, key=msg.key(), value=msg.value(), headers=headers,
                             on_delivery=lambda err, _msg: outcome.append(err))
            self.dlq.flush(30.0)
            if outcome and outcome[0] is None:
                self.log.error("dead-lettered offset %s/%s: %s", msg.partition(), msg.offset(), reason)
                return
            self.log.warning("dead-letter topic did not acknowledge (%s); trying again", outcome or "no delivery report")
            stop.wait(1.0)

    def handle(self, msg: Message, stop: threading.Event) -> None:
        self.last_type = None
        try:
            event = decode_event(msg.value())
        except ValueError as exc:  # malformed: retrying cannot help
            if self.variant is Variant.SWALLOW_ERRORS:
                self.log.debug("skipping undecodable message at %s/%s: %s", msg.partition(), msg.offset(), exc)
                return
            self.dead_letter(msg, f"undecodable: {exc}", stop)
            return
        self.last_type = event.type
        # Handed over by poll, nothing applied: auto-commit has stored this offset already.
        crash_point("consumer.before_effect", event.type)
        for attempt in range(1, MAX_TRIES + 1):
            try:
                self.apply(event)
                return
            except _EVENTS_OWN_FAULTS as exc:
                # The event's own fault (not applicable yet, or data the database rejects): retried N
                # times, then dead-lettered with the reason.
                last = _reason(exc)
                self.log.warning("attempt %d/%d: %s", attempt, MAX_TRIES, last)
            except psycopg.Error as exc:
                last = f"{type(exc).__name__}: {exc}"
                self.log.warning("attempt %d/%d failed: %s", attempt, MAX_TRIES, last)
                self.conn = None
                break
            if attempt == MAX_TRIES:
                # No try follows the last one: waiting here only delayed the dead letter (and, as the
                # consumer is one loop, every partition behind it) by 0.3 s per refused event.
                continue
            stop.wait(0.1 * attempt)  # back-off between tries of one event (a product setting)
            if stop.is_set():
                return
        else:
            self.dead_letter(msg, f"{last} (event_id={event.event_id} seq={event.seq})", stop)
            return
        # Database trouble (connection lost, timeout) is not the message's fault: keep retrying rather
        # than dead-letter a good event; the partition stalls, which shows up as lag, not loss.
        while not stop.is_set():
            stop.wait(1.0)
            try:
                self.apply(event)
                return
            except _EVENTS_OWN_FAULTS as exc:
                self.dead_letter(msg, f"{_reason(exc)} (event_id={event.event_id} seq={event.seq})", stop)
                return
            except psycopg.Error as exc:
                self.log.warning("database still failing: %s", exc)
                self.conn = None


# Errors that say the event's data is wrong, not that the database is unreachable.
_MESSAGE_FAULTS: tuple[type[Exception], ...] = (psycopg.DataError, psycopg.IntegrityError)
# The event's own fault, retried and then dead-lettered: not applicable yet, or data the database rejects.
_EVENTS_OWN_FAULTS: tuple[type[Exception], ...] = (NotReady, *_MESSAGE_FAULTS)


def _reason(exc: Exception) -> str:
    if isinstance(exc, NotReady):
        return f"not applicable: {exc}"
    if isinstance(exc, psycopg.Error):
        # The message fault was raised inside a transaction that rolled back: the connection is reusable.
        return f"rejected by the database: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return f"{type(exc).__name__}: {exc}"


OFFSET_RESETS = ("earliest", "latest")


def offset_reset() -> str:
    value = os.environ.get("CONSUMER_AUTO_OFFSET_RESET", "earliest")
    if value not in OFFSET_RESETS:
        raise SystemExit(f"CONSUMER_AUTO_OFFSET_RESET={value!r} is not a reset policy; use {' or '.join(OFFSET_RESETS)}")
    return value


def run_consumer(name: str, handlers: Mapping[str, Handler]) -> None:
    """The process entry point of one consumer: configuration from the environment, SIGTERM stops it."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    env = TargetEnv.from_environ()
    loop = ConsumerLoop(ConsumerSpec(name, handlers), env)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    auto_commit = loop.variant is Variant.AUTO_COMMIT
    conf = {
        "bootstrap.servers": env.kafka,
        "group.id": env.group,
        # Offsets are committed by librdkafka's timer, one request per interval for all partitions,
        # never one per message: per-message async commits queued by the hundred for a dead group
        # coordinator, and librdkafka rejoins a group only after every outstanding commit completed,
        # so after a broker restart groups waited a minute or more (or never resumed).
        # Correct: an offset is *stored* only after its effect committed (store_offsets below).
        # The auto-commit variant stores each offset as soon as poll() hands the message over,
        # effect or not.
        "enable.auto.commit": True,
        "enable.auto.offset.store": auto_commit,
        "auto.commit.interval.ms": 200,
        # Where a group with no committed offset starts (a new group, or one whose offsets were deleted):
        # ``earliest`` re-reads, ``latest`` skips what was published while it had none. A parameter of the
        # component (env CONSUMER_AUTO_OFFSET_RESET), so a group_reset fault can show what ``latest`` costs.
        "auto.offset.reset": offset_reset(),
        # The broker's minimum. A consumer that rejoins with a new member id (restarted, or back after a
        # broker restart) waits for its old member's session to expire before it is assigned anything:
        # 10 s here used to hold every consumer idle for 10 s after each broker restart.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        # A request the coordinator has not answered in 10 s is failed and retried, not held for
        # librdkafka's default 60 s: the session is lost by then anyway, and an unanswered commit
        # holds up the rejoin.
        "socket.timeout.ms": 10000,
        "socket.connection.setup.timeout.ms": 2000,
        "logger": logging.getLogger("librdkafka"),
    }
    consumer = Consumer(conf)
    consumer.subscribe([env.topic], on_assign=lambda c, parts: loop.log.info("assigned %s", [p.partition for p in parts]))
    loop.log.info("%s consumer (%s) reading %s as group %s", name, loop.variant.value, env.topic, env.group)
    try:
        while not stop.is_set():
            # Batches, as real consumers fetch: with auto-commit, the whole batch's offsets are stored
            # the moment it is handed over, so a crash mid-batch loses the batch's unapplied tail.
            # consume() waits for a full batch or the timeout: keep the timeout short or it becomes latency.
            for msg in consumer.consume(BATCH, timeout=0.05):
                if (error := msg.error()) is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        loop.log.warning("consumer error: %s", error)
                    continue
                loop.handle(msg, stop)
                if stop.is_set():
                    break
                crash_point("consumer.after_effect", loop.last_type)  # effect committed, offset not yet: redelivery window
                if not auto_commit:
                    consumer.store_offsets(message=msg)  # committed by the next timer tick
    finally:
        consumer.close()  # commits the offsets stored so far: only those whose effect committed
        loop.dlq.flush(2.0)
        loop.log.info("%s consumer stopped", name)
