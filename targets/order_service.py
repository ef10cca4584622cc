"""The order service: an HTTP API that commits orders and, depending on the pipeline, publishes.

  direct  commit the order, then publish the event in the request with a bounded wait;
          a publish error is logged and swallowed (the article's Black Friday team).
  outbox  the order row and an outbox row commit in one transaction; the relay publishes.
  cdc     only the order row commits; Debezium reads the change from the WAL.
  cdc_outbox  as outbox, but Debezium's outbox event router publishes the outbox rows (no relay).

Routes: POST /orders, /orders/{id}/pay, /orders/{id}/ship, /orders/{id}/cancel. Each
answers 2xx only after its transaction committed, and each makes a correlation id: this
is the entry point of every chain. The row keeps the correlation id of the request that
last changed it (what the cdc pipeline's events carry), and every change bumps ``version``.

Run by the harness: python -m targets.order_service (configuration in the environment).
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from confluent_kafka import KafkaError, Message, Producer

from targets.crashpoints import crash_point
from targets.drift import drifted
from targets.domain import Event, EventType, SCHEMA_VERSION, TargetEnv, event_id_for, pg_connect_kwargs
from targets.variants import Variant

log = logging.getLogger("order_service")

# How long a direct-publish request waits for the broker before giving up and answering
# 201 anyway: the order is committed, the event is "best effort".
PUBLISH_WAIT_S = 1.0


class Publisher:
    """Direct publishing: fire, wait a bounded time for the ack, swallow errors."""

    def __init__(self, env: TargetEnv) -> None:
        self.topic = env.topic
        # The keyless variant: no key, so librdkafka spreads an order's events over partitions.
        self.keyed = Variant.parse(env.variant) is not Variant.KEYLESS
        self.producer = Producer({
            "bootstrap.servers": env.kafka,
            "acks": "all",
            "linger.ms": 5,
            # Fire-and-forget with a short delivery budget: a message still unsent after
            # this is dropped, and only its delivery callback knows.
            "message.timeout.ms": 5000,
            "socket.connection.setup.timeout.ms": 2000,
            "partitioner": "murmur2_random",  # the partition Java clients (Debezium) would choose for a key
            "sticky.partitioning.linger.ms": 0,  # a keyless message gets a random partition of its own
            "logger": logging.getLogger("librdkafka"),
        })
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="delivery-reports", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.1)

    def publish(self, event: Event) -> None:
        acked = threading.Event()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                # The swallowed error: logged, not retried, not surfaced to the client.
                log.warning("publish failed, event dropped: %s event_id=%s order_id=%s", err, event.event_id, event.order_id)
            acked.set()

        try:
            self.producer.produce(self.topic, key=event.order_id.encode() if self.keyed else None, value=drifted(event.encode()),
                                  on_delivery=on_delivery)
        except BufferError as exc:
            log.warning("publish failed, local queue full: %s event_id=%s", exc, event.event_id)
            return
        if not acked.wait(PUBLISH_WAIT_S):
            log.warning("publish not acknowledged within %.1fs, answering anyway: event_id=%s", PUBLISH_WAIT_S, event.event_id)

    def queued(self) -> int:
        return len(self.producer)

    def close(self) -> None:
        self.producer.flush(2.0)
        self._stop.set()


# Requests hold a connection only for their transaction (milliseconds; direct publishing waits for
# the broker after giving it back), so 32 serve hundreds of requests a second: not the bottleneck.
POOL_SIZE = 32
POOL_WAIT_S = 3.0  # below the clients' 5 s timeout, so an exhausted pool is a clean 503, not a hang


class PoolExhausted(Exception):
    """No database connection became free in time."""


class ConnectionPool:
    """A few long-lived connections shared by the request threads.

    ThreadingHTTPServer runs each request on a new thread, so a thread-local connection
    would be opened (through the proxy) and dropped on every request, which no real service
    does. A connection that saw an error, or is left inside a transaction, is closed rather
    than returned: the next request gets a fresh one.
    """

    def __init__(self, dsn: str, size: int = POOL_SIZE) -> None:
        self._dsn = dsn
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        if not self._slots.acquire(timeout=POOL_WAIT_S):
            raise PoolExhausted(f"no database connection free within {POOL_WAIT_S:.0f}s ({POOL_SIZE} in use)")
        conn: psycopg.Connection | None = None
        healthy = False
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = None
            if conn is None or conn.closed or conn.broken:
                conn = psycopg.connect(self._dsn, **pg_connect_kwargs())  # type: ignore[arg-type]
            yield conn
            healthy = not (conn.closed or conn.broken) and \
                conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE
        finally:
            if conn is not None:
                if healthy:
                    self._idle.put(conn)
                else:
                    conn.close()
            self._slots.release()


MODES = ("direct", "outbox", "commit_only")  # publish in the request; write an outbox row; only commit (CDC)


class OrderService:
    def __init__(self, env: TargetEnv) -> None:
        self.env = env
        if env.mode not in MODES:
            raise SystemExit(f"ORDER_SERVICE_MODE={env.mode!r}: set it to one of {', '.join(MODES)} in the target spec")
        self.outbox = env.mode == "outbox"
        self.publisher = Publisher(env) if env.mode == "direct" else None
        self.pool = ConnectionPool(env.pg_dsn)
        self._local = threading.local()

    @contextmanager
    def session(self) -> Iterator[None]:
        """One request's database connection, checked out for its transaction; then its publishing.

        A direct-publish request waits up to a second for the broker. Holding the database
        connection through that wait made a broker outage exhaust the pool, and the service
        answered 503 to customers it could have served: a defect of this harness's target,
        not of the pattern. So the event committed in the session is published after the
        connection is back in the pool.
        """
        self._local.pending = []
        try:
            with self.pool.connection() as conn:
                self._local.conn = conn
                try:
                    yield
                finally:
                    self._local.conn = None
        finally:
            pending, self._local.pending = self._local.pending, []
            if self.publisher is not None:
                for event in pending:  # committed: published whatever happened after the commit
                    self.publisher.publish(event)

    def _conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("no database connection checked out: call inside OrderService.session()")
        return conn

    def _event(self, type_: EventType, order_id: str, seq: int, correlation_id: str, customer: str, amount: int) -> Event:
        return Event(
            event_id=event_id_for(order_id, seq), type=type_.value, order_id=order_id, seq=seq, schema_version=SCHEMA_VERSION,
            correlation_id=correlation_id, occurred_at=datetime.now(timezone.utc).isoformat(),
            customer=customer, amount_cents=amount,
        )

    def _commit(self, event: Event, write_order: str, params: tuple[object, ...]) -> bool:
        conn = self._conn()
        with conn.transaction():
            cur = conn.execute(write_order, params)
            if cur.rowcount != 1:
                return False
            if self.outbox:
                conn.execute(
                    "INSERT INTO outbox (event_id, order_id, seq, type, payload) VALUES (%s, %s, %s, %s, %s)",
                    (event.event_id, event.order_id, event.seq, event.type, drifted(event.encode()).decode()),
                )
            crash_point("app.before_commit", event.type)  # written, not committed: the request must fail whole
        crash_point("app.after_commit", event.type)  # committed, not yet published: the direct pipeline's loss window
        if self.publisher is not None:
            self._local.pending.append(event)  # published when the session ends, connection returned
        return True

    def place(self, order_id: str, customer: str, amount: int) -> tuple[int, dict[str, object]]:
        correlation_id = str(uuid.uuid4())
        event = self._event(EventType.CREATED, order_id, 1, correlation_id, customer, amount)
        try:
            ok = self._commit(
                event,
                "INSERT INTO orders (order_id, customer, amount_cents, status, version, correlation_id) "
                "VALUES (%s, %s, %s, 'created', 1, %s) ON CONFLICT (order_id) DO NOTHING",
                (order_id, customer, amount, correlation_id),
            )
        except psycopg.errors.UniqueViolation:
            ok = False
        if not ok:
            return 409, {"error": f"order {order_id} already exists"}
        return 201, {"order_id": order_id, "correlation_id": correlation_id}

    # status it moves to -> (the status it must be in, the event the change is)
    TRANSITIONS = {
        "paid": ("created", EventType.PAID),
        "shipped": ("paid", EventType.SHIPPED),
        "cancelled": ("created", EventType.CANCELLED),
    }

    def transition(self, order_id: str, to: str) -> tuple[int, dict[str, object]]:
        """Move an order to ``to``: optimistic on ``version``, so a concurrent change makes this a 409."""
        correlation_id = str(uuid.uuid4())
        frm, type_ = self.TRANSITIONS[to]
        conn = self._conn()
        row = conn.execute("SELECT customer, amount_cents, version, status FROM orders WHERE order_id = %s",
                           (order_id,)).fetchone()
        conn.commit()
        if row is None:
            return 404, {"error": f"no order {order_id}"}
        customer, amount, version, status = row
        if status != frm:
            return 409, {"error": f"order {order_id} is {status}, not {frm}: cannot become {to}"}
        event = self._event(type_, order_id, version + 1, correlation_id, customer, amount)
        ok = self._commit(
            event,
            "UPDATE orders SET status = %s, version = version + 1, correlation_id = %s, updated_at = clock_timestamp() "
            "WHERE order_id = %s AND status = %s AND version = %s",
            (to, correlation_id, order_id, frm, version),
        )
        if not ok:
            return 409, {"error": f"order {order_id} changed concurrently; it is no longer {frm} at version {version}"}
        return 200, {"order_id": order_id, "correlation_id": correlation_id}


_ACTIONS = {"pay": "paid", "ship": "shipped", "cancel": "cancelled"}


def make_handler(service: OrderService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:  # access logs would drown the real ones
            pass

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health":
                queued = service.publisher.queued() if service.publisher else 0
                self._send(200, {"pipeline": service.env.pipeline, "publish_queue": queued})
            else:
                self._send(404, {"error": f"no route GET {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
                parts = self.path.strip("/").split("/")
                with service.session():
                    if parts == ["orders"]:
                        status, out = service.place(str(uuid.UUID(body["order_id"])), str(body["customer"]),
                                                    int(body["amount_cents"]))
                    elif len(parts) == 3 and parts[0] == "orders" and parts[2] in _ACTIONS:
                        status, out = service.transition(str(uuid.UUID(parts[1])), _ACTIONS[parts[2]])
                    else:
                        status, out = 404, {"error": f"no route POST {self.path}"}
            except (KeyError, ValueError, TypeError) as exc:
                status, out = 400, {"error": f"bad request: {exc!r}"}
            except (psycopg.Error, PoolExhausted) as exc:
                # The transaction did not commit (the pool closed the connection that saw it): failed.
                log.warning("database error, request failed: %s", exc)
                status, out = 503, {"error": f"database unavailable: {type(exc).__name__}"}
            self._send(status, out)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of customers (the open-loop workload
    # has up to 256 in flight) would be reset by the kernel before the service saw them.
    request_queue_size = 1024


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    env = TargetEnv.from_environ()
    service = OrderService(env)
    server = _Server(("127.0.0.1", env.http_port), make_handler(service))

    def on_term(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    log.info("order service (%s) listening on 127.0.0.1:%d", env.pipeline, env.http_port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        if service.publisher is not None:
            service.publisher.close()
        log.info("order service stopped")


if __name__ == "__main__":
    main()
