"""The outbox relay: poll unsent outbox rows, publish them, mark them sent once acknowledged.

Correct by default: rows are selected by ``sent_at IS NULL`` (not "after the last id
seen", which skips rows whose transaction commits late), published with an idempotent
producer, and marked sent only after the broker acknowledged them; each record carries its row's id
(the ``chaos-outbox-id`` provenance header, shown by ``chaos trace``). A row whose publish
failed stays unsent and is tried again, so delivery is at-least-once: a crash between
publish and mark re-sends it, and consumers dedupe.

Broken variants (``targets.variants``): ``keyless`` publishes without a key;
``mark_before_ack`` marks the batch sent before producing it (a broker outage loses it);
``last_id`` reads ``id > last id seen`` instead of ``sent_at IS NULL`` (a row whose
transaction commits after a higher id was already read is skipped for good).

Run by the harness: python -m targets.relay (configuration in the environment).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable

import psycopg
from confluent_kafka import KafkaError, Message, Producer

from harness.sdk.provenance import provenance_headers
from targets.crashpoints import crash_point
from targets.domain import TargetEnv, pg_connect_kwargs
from targets.variants import Variant

log = logging.getLogger("relay")

BATCH = 500
IDLE_POLL_S = 0.05  # how often an idle relay looks for new rows: a product setting, not a wait
MESSAGE_TIMEOUT_MS = 10_000


def run(env: TargetEnv, stop: threading.Event) -> None:
    variant = Variant.parse(env.variant)
    last_id = 0  # only the last_id variant uses it
    producer = Producer({
        "bootstrap.servers": env.kafka,
        "enable.idempotence": True,  # retries cannot duplicate or reorder within a partition
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        "socket.connection.setup.timeout.ms": 2000,
        # Same partition for the same key as Java clients (Debezium) would choose.
        "partitioner": "murmur2_random",
        # Keyless messages would otherwise stick to one partition per batch; the keyless variant
        # is about the random partition a missing key gets, so make it random per message.
        "sticky.partitioning.linger.ms": 0,
        "logger": logging.getLogger("librdkafka"),
    })
    conn: psycopg.Connection | None = None
    while not stop.is_set():
        try:
            if conn is None or conn.closed or conn.broken:
                conn = psycopg.connect(env.pg_dsn, autocommit=True, **pg_connect_kwargs())  # type: ignore[arg-type]
            if variant is Variant.LAST_ID:
                rows = conn.execute(
                    "SELECT id, order_id, event_id, payload, type FROM outbox WHERE id > %s ORDER BY id LIMIT %s", (last_id, BATCH)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT id, order_id, event_id, payload, type FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT %s", (BATCH,)
                ).fetchall()
        except psycopg.Error as exc:
            log.warning("outbox read failed, retrying: %s", exc)
            conn = None
            stop.wait(0.5)
            continue
        if not rows:
            stop.wait(IDLE_POLL_S)
            continue
        if variant is Variant.LAST_ID:
            last_id = max(r[0] for r in rows)
        if variant is Variant.MARK_BEFORE_ACK:
            try:
                conn.execute("UPDATE outbox SET sent_at = clock_timestamp() WHERE id = ANY(%s)", ([r[0] for r in rows],))
            except psycopg.Error as exc:
                log.warning("mark-sent failed: %s", exc)
                conn = None
                continue
        results: dict[int, KafkaError | None] = {}

        def on_delivery(row_id: int) -> Callable[[KafkaError | None, Message], None]:
            def cb(err: KafkaError | None, msg: Message) -> None:
                results[row_id] = err
            return cb

        for row_id, order_id, event_id, payload, type_ in rows:
            # Read (mark_before_ack: already marked), this row and the rest of the batch not produced yet.
            crash_point("relay.before_publish", str(type_))
            key = None if variant is Variant.KEYLESS else str(order_id).encode()
            producer.produce(env.topic, key=key, value=str(payload).encode(),
                             headers={"event_id": str(event_id), **provenance_headers(outbox_id=row_id)},
                             on_delivery=on_delivery(row_id))
        # Every produced message gets exactly one delivery report within message.timeout.ms.
        deadline = time.monotonic() + MESSAGE_TIMEOUT_MS / 1000 + 5
        while len(results) < len(rows) and time.monotonic() < deadline:
            producer.poll(0.1)
        acked = [row_id for row_id, err in results.items() if err is None]
        failed = len(rows) - len(acked)
        if variant is Variant.MARK_BEFORE_ACK:
            if failed:
                # The mistake: these rows are already marked and will never be sent again.
                log.warning("%d of %d rows not acknowledged and will not be retried", failed, len(rows))
            continue
        if acked:
            crash_point("relay.after_publish")
            try:
                conn.execute("UPDATE outbox SET sent_at = clock_timestamp() WHERE id = ANY(%s)", (acked,))
            except psycopg.Error as exc:
                # Published but not marked: they will be published again (at-least-once).
                log.warning("mark-sent failed for %d rows, they will be re-sent: %s", len(acked), exc)
                conn = None
        if failed:
            errors = {str(err) for err in results.values() if err is not None}
            log.warning("%d of %d rows not acknowledged, retrying: %s", failed, len(rows), "; ".join(sorted(errors))[:300])
            stop.wait(0.5)
    producer.flush(2.0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    env = TargetEnv.from_environ()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("relay publishing outbox rows to %s via %s", env.topic, env.kafka)
    run(env, stop)
    log.info("relay stopped")


if __name__ == "__main__":
    main()
