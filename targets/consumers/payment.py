"""The payment consumer: one charge per paid order, exactly once.

For each ``order.paid`` event it writes the charge and its processed-event record in
one transaction; the record's primary key (consumer, event_id) is the unique
constraint that makes a redelivered event a no-op. Offsets are committed only after
the effect committed (auto-commit off), so a crash redelivers rather than loses.
An event it cannot process after N tries goes to its dead-letter topic with the reason.

Run by the harness: python -m targets.consumers.payment (configuration in the environment).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import psycopg
from confluent_kafka import Consumer, KafkaError, Message, Producer

from targets.crashpoints import crash_point
from targets.domain import EventType, TargetEnv, decode_event, pg_connect_kwargs

log = logging.getLogger("consumer.payment")

NAME = "payment"
MAX_TRIES = 3


class Payment:
    def __init__(self, env: TargetEnv) -> None:
        self.env = env
        self.conn: psycopg.Connection | None = None
        self.dlq = Producer({"bootstrap.servers": env.kafka, "enable.idempotence": True,
                             "logger": logging.getLogger("librdkafka")})

    def _db(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = psycopg.connect(self.env.pg_dsn, **pg_connect_kwargs())  # type: ignore[arg-type]
        return self.conn

    def apply(self, msg: Message) -> None:
        event = decode_event(msg.value())
        if event.type != EventType.PAID.value:
            return  # not this consumer's business
        conn = self._db()
        with conn.transaction():
            inserted = conn.execute(
                "INSERT INTO processed_events (consumer, event_id, order_id, type, seq) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (NAME, event.event_id, event.order_id, event.type, event.seq),
            ).rowcount
            if inserted:
                conn.execute(
                    "INSERT INTO payment_charges (order_id, amount_cents, correlation_id, event_id) VALUES (%s, %s, %s, %s)",
                    (event.order_id, event.amount_cents, event.correlation_id, event.event_id),
                )
            else:
                log.info("duplicate delivery absorbed: event_id=%s order_id=%s", event.event_id, event.order_id)

    def dead_letter(self, msg: Message, reason: str) -> None:
        headers = {"reason": reason[:500], "source_topic": msg.topic(), "source_partition": str(msg.partition()),
                   "source_offset": str(msg.offset()), "consumer": NAME}
        self.dlq.produce(self.env.dlq_topic, key=msg.key(), value=msg.value(), headers=headers)
        self.dlq.flush(10.0)
        log.error("dead-lettered offset %s/%s: %s", msg.partition(), msg.offset(), reason)

    def handle(self, msg: Message, stop: threading.Event) -> None:
        last = ""
        for attempt in range(1, MAX_TRIES + 1):
            try:
                self.apply(msg)
                return
            except ValueError as exc:  # malformed: retrying cannot help
                self.dead_letter(msg, f"undecodable: {exc}")
                return
            except psycopg.Error as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.warning("attempt %d/%d failed: %s", attempt, MAX_TRIES, last)
                self.conn = None
                stop.wait(0.2 * attempt)
        # Database trouble is not the message's fault: keep retrying rather than dead-letter
        # a good event; the partition stalls, which shows up as lag, not loss.
        while not stop.is_set():
            try:
                self.apply(msg)
                return
            except psycopg.Error as exc:
                log.warning("database still failing: %s", exc)
                self.conn = None
                stop.wait(1.0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    env = TargetEnv.from_environ()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = Consumer({
        "bootstrap.servers": env.kafka,
        "group.id": env.group,
        "enable.auto.commit": False,  # commit only after the effect committed
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "socket.connection.setup.timeout.ms": 2000,
        "logger": logging.getLogger("librdkafka"),
    })
    consumer.subscribe([env.topic], on_assign=lambda c, parts: log.info("assigned %s", [p.partition for p in parts]))
    payment = Payment(env)
    log.info("payment consumer reading %s as group %s", env.topic, env.group)
    try:
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", msg.error())
                continue
            payment.handle(msg, stop)
            if stop.is_set():
                break
            crash_point("consumer.after_effect")
            consumer.commit(message=msg, asynchronous=True)
    finally:
        consumer.close()  # commits nothing new: offsets were committed per message
        payment.dlq.flush(2.0)
        log.info("payment consumer stopped: %s", json.dumps({"group": env.group}))


if __name__ == "__main__":
    main()
