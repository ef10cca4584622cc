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

How it is served (issue 14: the threaded server reached 0.06x of what Postgres commits):
uvicorn (httptools, uvloop) runs a plain ASGI callable, requests share an async psycopg
pool whose connections run the service's few statements prepared, through libpq directly
(targets.statements), and each write is one statement: in outbox mode a data-modifying CTE
inserts (or updates) the order and inserts its outbox row, inside a transaction whose BEGIN
leaves with the statement and whose COMMIT is a second round trip (the late_commit window).
An event is encoded once, after the commit decided it exists, and only where it goes
somewhere (the outbox row or the broker). Places that arrive while earlier ones are being
written commit together (group commit, targets.group_commit): one statement and one COMMIT
for the lot, which is what lets the service keep up with Postgres; at a scenario's rate a
place finds nothing in flight and is its own transaction, exactly as above.

Run by the harness: python -m targets.order_service (configuration in the environment).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

import msgspec
import psycopg
from confluent_kafka import KafkaError, Message, Producer

from targets.crashpoints import crash_point
from targets.drift import drifted
from targets.group_commit import GroupCommit
from targets.registry import SchemaGate
from targets.statements import RawPool
from targets.domain import Event, EventType, SCHEMA_VERSION, TargetEnv, event_id_for, pg_connect_kwargs
from targets.variants import Variant

__all__ = ["MODES", "OrderService", "Publisher", "make_app", "main", "place_sql", "transition_sql"]

log = logging.getLogger("order_service")

# How long a direct-publish request waits for the broker before giving up and answering
# 201 anyway: the order is committed, the event is "best effort".
PUBLISH_WAIT_S = 1.0

# Requests hold a connection only for their one statement (a round trip; direct publishing waits
# for the broker after giving it back), so 32 serve thousands of requests a second.
POOL_SIZE = 32
POOL_WAIT_S = 3.0  # below the clients' 5 s timeout, so an exhausted pool is a clean 503, not a hang

# Group commit of places (targets.group_commit): up to this many orders in one transaction, this
# many transactions in flight. A batch forms only from places that wait while others are in
# flight, so at a scenario's rate each order is still its own transaction. ORDER_SERVICE_MAX_BATCH=1
# turns it off (one transaction per order, whatever the load).
MAX_BATCH = 64
MAX_BATCH_BOUNDS = (1, 1000)
FLUSHERS = 2

MODES = ("direct", "outbox", "commit_only")  # publish in the request; write an outbox row; only commit (CDC)


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid(text: str) -> str:
    """``text`` as a canonical UUID string (ValueError if it is none): what str(uuid.UUID(text)) gives.

    The canonical form, which every client of this service sends, is checked by a regex and
    kept as it is: parsing and re-printing it cost a tenth of a request's CPU.
    """
    return text if _CANONICAL_UUID.fullmatch(text) else str(uuid.UUID(text))


def _uuid4() -> str:
    """A random (version 4) UUID string, as str(uuid.uuid4()) makes it, at a tenth of its cost.

    Correlation ids must be unique, not secret: random's generator (seeded from os.urandom at
    import) spares the getrandom syscall per request that uuid4 pays.
    """
    n = _random_bits(128)
    n = (n & ~(0xF << 76)) | (0x4 << 76)  # the version nibble: 4
    n = (n & ~(0x3 << 62)) | (0x2 << 62)  # the variant bits: RFC 4122
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_random_bits = random.Random(int.from_bytes(os.urandom(16))).getrandbits


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
        # Delivery reports arrive on this thread (producer.poll), never on the event loop.
        self._poller = threading.Thread(target=self._poll, name="delivery-reports", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.1)

    async def publish(self, event: Event, payload: bytes) -> None:
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def settle(f: asyncio.Future[None]) -> None:
            if not f.done():
                f.set_result(None)

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                # The swallowed error: logged, not retried, not surfaced to the client.
                log.warning("publish failed, event dropped: %s event_id=%s order_id=%s", err, event.event_id, event.order_id)
            loop.call_soon_threadsafe(settle, acked)

        try:
            self.producer.produce(self.topic, key=event.order_id.encode() if self.keyed else None, value=payload,
                                  on_delivery=on_delivery)
        except BufferError as exc:
            log.warning("publish failed, local queue full: %s event_id=%s", exc, event.event_id)
            return
        try:
            await asyncio.wait_for(acked, PUBLISH_WAIT_S)
        except TimeoutError:
            log.warning("publish not acknowledged within %.1fs, answering anyway: event_id=%s", PUBLISH_WAIT_S, event.event_id)

    def queued(self) -> int:
        return len(self.producer)

    def close(self) -> None:
        self.producer.flush(2.0)
        self._stop.set()


class Cursor(Protocol):
    rowcount: int

    async def fetchone(self) -> tuple[Any, ...] | None: ...


class Connection(Protocol):
    async def execute(self, query: str, params: tuple[object, ...]) -> Cursor: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...


class Pool(Protocol):
    """What the service needs of psycopg_pool.AsyncConnectionPool (the tests pass a fake)."""

    def connection(self, timeout: float | None = None) -> AbstractAsyncContextManager[Connection]: ...


_ORDER_INSERT = ("INSERT INTO orders (order_id, customer, amount_cents, status, version, correlation_id) "
                 "VALUES (%s, %s, %s, 'created', 1, %s) ON CONFLICT (order_id) DO NOTHING")
_ORDER_UPDATE = ("UPDATE orders SET status = %s, version = version + 1, correlation_id = %s, updated_at = clock_timestamp() "
                 "WHERE order_id = %s AND status = %s AND version = %s")
# The outbox row is inserted only from the order row the same statement wrote: no row written
# (a duplicate order, a concurrent change), no event; one statement is one transaction.
_WITH_OUTBOX = ("WITH written AS ({write} RETURNING order_id) "
                "INSERT INTO outbox (event_id, order_id, seq, type, payload) "
                "SELECT %s::uuid, order_id, %s::int, %s::text, %s::text FROM written")


def place_sql(outbox: bool) -> str:
    """The statement a place-order runs (params: order_id, customer, amount, correlation_id[, outbox row])."""
    return _WITH_OUTBOX.format(write=_ORDER_INSERT) if outbox else _ORDER_INSERT


# Many places in one statement: the rows arrive as arrays (one prepared statement whatever the
# batch's size), the outbox rows only for the orders the statement wrote, and the statement
# answers which those were. The outbox variant is the same CTE as place_sql's, for a set.
_ORDER_INSERT_MANY = ("INSERT INTO orders (order_id, customer, amount_cents, status, version, correlation_id) "
                      "SELECT order_id, customer, amount_cents, 'created', 1, correlation_id FROM input "
                      "ON CONFLICT (order_id) DO NOTHING RETURNING order_id")
_INPUT = ("input AS (SELECT * FROM unnest(%s::uuid[], %s::text[], %s::bigint[], %s::uuid[]{outbox}) "
          "AS t(order_id, customer, amount_cents, correlation_id{outbox_names}))")


def place_many_sql(outbox: bool) -> str:
    """The statement a batch of places runs (params: one array per place_sql parameter); its rows: the written order ids."""
    if not outbox:
        return f"WITH {_INPUT.format(outbox='', outbox_names='')} {_ORDER_INSERT_MANY}"
    columns = _INPUT.format(outbox=", %s::uuid[], %s::int[], %s::text[], %s::text[]",
                            outbox_names=", event_id, seq, type, payload")
    return (f"WITH {columns}, written AS ({_ORDER_INSERT_MANY}), "
            "events AS (INSERT INTO outbox (event_id, order_id, seq, type, payload) "
            "SELECT i.event_id, i.order_id, i.seq, i.type, i.payload FROM input i JOIN written w USING (order_id)) "
            "SELECT order_id FROM written")


def _array(values: Sequence[object]) -> str:
    """A Postgres array literal of ``values`` as text: every element quoted, so any string survives."""
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def transition_sql(outbox: bool) -> str:
    """The statement a status change runs (params: to, correlation_id, order_id, from, version[, outbox row])."""
    return _WITH_OUTBOX.format(write=_ORDER_UPDATE) if outbox else _ORDER_UPDATE


# A v1 event whose shape (field names and types) is the v1 schema the service registers.
_SAMPLE = Event(event_id="e", type="order.created", order_id="o", seq=1, schema_version=SCHEMA_VERSION,
                correlation_id="c", occurred_at="t", customer="c", amount_cents=1)


@dataclass(frozen=True, slots=True)
class _Place:
    """One place-order write, as group commit batches it: its statement's parameters and its event."""

    params: tuple[object, ...]  # the order's: place_sql's first four (the outbox row's come from the event)
    event: Event
    payload: bytes | None


class OrderService:
    def __init__(self, env: TargetEnv, pool: Pool, publisher: Publisher | None, max_batch: int = MAX_BATCH) -> None:
        if env.mode not in MODES:
            raise SystemExit(f"ORDER_SERVICE_MODE={env.mode!r}: set it to one of {', '.join(MODES)} in the target spec")
        self.env = env
        self.outbox = env.mode == "outbox"
        self.pool = pool
        self.publisher = publisher
        # The schema_registry variant: each schema version registered before it is written (targets.registry).
        # Its registry calls block, but only the first event of each schema version makes one.
        registry = os.environ.get("CHAOS_SCHEMA_REGISTRY_URL")
        self.gate = SchemaGate(registry, env.topic) if registry else None
        if self.gate is not None:
            self.gate.start(_SAMPLE.encode())
        self._place_sql = place_sql(self.outbox)
        self._place_many_sql = place_many_sql(self.outbox)
        self._transition_sql = transition_sql(self.outbox)
        # Places only: every order places once, and a place touches no row another request holds.
        # A status change reads, then writes under an optimistic version: it stays a transaction of its own.
        self.places: GroupCommit[_Place, Connection] | None = None if max_batch == 1 else GroupCommit(
            pool, self._write_places, lambda p: p.event.order_id, max_batch=max_batch, flushers=FLUSHERS,
            wait_s=POOL_WAIT_S)

    def _event(self, type_: EventType, order_id: str, seq: int, correlation_id: str, customer: str, amount: int) -> Event:
        return Event(
            event_id=event_id_for(order_id, seq), type=type_.value, order_id=order_id, seq=seq, schema_version=SCHEMA_VERSION,
            correlation_id=correlation_id, occurred_at=datetime.now(timezone.utc).isoformat(),
            customer=customer, amount_cents=amount,
        )

    def _params(self, params: tuple[object, ...], event: Event, payload: bytes | None) -> tuple[object, ...]:
        """A write's parameters, the outbox row's after the order's in outbox mode."""
        if not self.outbox:
            return params
        assert payload is not None
        return (*params, event.event_id, event.seq, event.type, payload.decode())

    async def _commit(self, conn: Connection, event: Event, payload: bytes | None, sql: str,
                      params: tuple[object, ...]) -> bool:
        params = self._params(params, event, payload)
        if self.outbox:
            # The order and its outbox row in one statement, inside an explicit transaction whose
            # COMMIT is a round trip of its own: the outbox row's id is taken before the commit, as
            # in any service that writes more than one statement per request. That window is what
            # a relay reading "after the last id" loses rows in (the late_commit scenario); a
            # single autocommitted statement would close it inside the server.
            async with conn.transaction():
                cur = await conn.execute(sql, params)
                if cur.rowcount != 1:
                    return False
                crash_point("app.before_commit", event.type)  # written, not committed: the request fails whole
        else:
            crash_point("app.before_commit", event.type)  # nothing written yet: the request fails whole
            cur = await conn.execute(sql, params)
            if cur.rowcount != 1:
                return False
        crash_point("app.after_commit", event.type)  # committed, not yet published: the direct pipeline's loss window
        return True

    async def _write_places(self, conn: Connection, places: Sequence[_Place]) -> list[bool]:
        """A batch of places in one transaction (group commit's ``write``); which of them were written.

        A batch of one is the single-order write, statement for statement. A larger one writes
        every order (and outbox row) in one statement inside one transaction, passing each
        written order's crash points as its own write would: every order of the batch fails
        whole if the process dies before the COMMIT.
        """
        if len(places) == 1:
            p = places[0]
            return [await self._commit(conn, p.event, p.payload, self._place_sql, p.params)]
        rows = (self._params(p.params, p.event, p.payload) for p in places)
        columns = [_array(column) for column in zip(*rows, strict=True)]
        if self.outbox:
            async with conn.transaction():
                written = await self._written(conn, columns)
                for p in places:
                    if p.event.order_id in written:
                        crash_point("app.before_commit", p.event.type)
        else:
            for p in places:
                crash_point("app.before_commit", p.event.type)
            written = await self._written(conn, columns)
        for p in places:
            if p.event.order_id in written:
                crash_point("app.after_commit", p.event.type)
        return [p.event.order_id in written for p in places]

    async def _written(self, conn: Connection, columns: list[str]) -> set[str]:
        cur = await conn.execute(self._place_many_sql, tuple(columns))
        written = set()
        while (row := await cur.fetchone()) is not None:
            written.add(str(row[0]))
        return written

    def _payload(self, event: Event) -> bytes | None:
        """The event as it leaves (once), or None where nothing carries it (the cdc pipeline reads the row)."""
        if not (self.outbox or self.publisher is not None):
            return None
        # v1, or the drifted version if the schema gate (when there is one) lets it through.
        return self.gate.payload(event.encode()) if self.gate is not None else drifted(event.encode())

    async def _published(self, committed: bool, event: Event, payload: bytes | None) -> None:
        # Published after the connection went back to the pool: holding it through a
        # broker outage's one-second waits exhausted the pool, and customers it could
        # have served got 503 (a defect of this harness's target, not of the pattern).
        if committed and self.publisher is not None and payload is not None:
            await self.publisher.publish(event, payload)

    async def place(self, order_id: str, customer: str, amount: int) -> tuple[int, dict[str, object]]:
        correlation_id = _uuid4()
        event = self._event(EventType.CREATED, order_id, 1, correlation_id, customer, amount)
        payload = self._payload(event)
        params = (order_id, customer, amount, correlation_id)
        try:
            if self.places is not None:
                ok = await self.places.submit(_Place(params, event, payload))
            else:
                async with self.pool.connection(timeout=POOL_WAIT_S) as conn:
                    ok = await self._commit(conn, event, payload, self._place_sql, params)
        except psycopg.errors.UniqueViolation:
            ok = False
        await self._published(ok, event, payload)
        if not ok:
            return 409, {"error": f"order {order_id} already exists"}
        return 201, {"order_id": order_id, "correlation_id": correlation_id}

    # status it moves to -> (the status it must be in, the event the change is)
    TRANSITIONS = {
        "paid": ("created", EventType.PAID),
        "shipped": ("paid", EventType.SHIPPED),
        "cancelled": ("created", EventType.CANCELLED),
    }

    async def transition(self, order_id: str, to: str) -> tuple[int, dict[str, object]]:
        """Move an order to ``to``: optimistic on ``version``, so a concurrent change makes this a 409."""
        correlation_id = _uuid4()
        frm, type_ = self.TRANSITIONS[to]
        async with self.pool.connection(timeout=POOL_WAIT_S) as conn:
            cur = await conn.execute("SELECT customer, amount_cents, version, status FROM orders WHERE order_id = %s",
                                     (order_id,))
            row = await cur.fetchone()
            if row is None:
                return 404, {"error": f"no order {order_id}"}
            customer, amount, version, status = row
            if status != frm:
                return 409, {"error": f"order {order_id} is {status}, not {frm}: cannot become {to}"}
            event = self._event(type_, order_id, version + 1, correlation_id, customer, amount)
            payload = self._payload(event)
            ok = await self._commit(conn, event, payload, self._transition_sql, (to, correlation_id, order_id, frm, version))
        await self._published(ok, event, payload)
        if not ok:
            return 409, {"error": f"order {order_id} changed concurrently; it is no longer {frm} at version {version}"}
        return 200, {"order_id": order_id, "correlation_id": correlation_id}

    def health(self) -> dict[str, object]:
        return {"pipeline": self.env.pipeline, "publish_queue": self.publisher.queued() if self.publisher else 0,
                "schema_refused": self.gate.refused if self.gate is not None else None,
                # How places were grouped so far (None: group commit off): batches, writes, the largest, ...
                "group_commit": asdict(self.places.stats) if self.places is not None else None}

    async def handle(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, object]]:
        """One request, whatever its route: the status and JSON body to answer with."""
        if method == "GET":
            if path == "/health":
                return 200, self.health()
            return 404, {"error": f"no route GET {path}"}
        if method != "POST":
            return 405, {"error": f"method {method} not allowed"}
        try:
            body = _decode(raw or b"{}")
            parts = path.strip("/").split("/")
            if parts == ["orders"]:
                return await self.place(_uuid(body["order_id"]), str(body["customer"]), int(body["amount_cents"]))
            if len(parts) == 3 and parts[0] == "orders" and parts[2] in _ACTIONS:
                return await self.transition(_uuid(parts[1]), _ACTIONS[parts[2]])
            return 404, {"error": f"no route POST {path}"}
        except (KeyError, ValueError, TypeError, msgspec.DecodeError) as exc:
            return 400, {"error": f"bad request: {exc!r}"}
        except psycopg.Error as exc:
            # Not committed (an error inside the statement, or no connection within POOL_WAIT_S:
            # psycopg_pool's PoolTimeout is a psycopg.Error): failed. The pool discards a broken
            # connection and rolls back one left in a transaction, so the next request starts clean.
            log.warning("database error, request failed: %s", exc)
            return 503, {"error": f"database unavailable: {type(exc).__name__}"}


_ACTIONS = {"pay": "paid", "ship": "shipped", "cancel": "cancelled"}

# Request bodies and answers through msgspec's C codec: the json module's was ~4% of a request's CPU.
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

Scope = MutableMapping[str, Any]
Message_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message_]]
Send = Callable[[Message_], Awaitable[None]]


def make_app(service: OrderService) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI callable: no framework, the route table is OrderService.handle."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to set up (the pool opens before the server starts)
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        status, out = await service.handle(scope["method"], scope["path"], b"".join(chunks))
        data = _encode(out)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    return app


class _HeadWithBody:
    """A transport that holds a response's head back until its body is written, then writes both at once.

    uvicorn's httptools protocol writes the status line and headers in one ``write`` and the body
    in another: two syscalls and two packets per response (with TCP_NODELAY), and the client wakes
    for each. Everything else is the real transport's. Only a final head is held (not a ``100
    Continue``), and a held head is never lost: it goes out before any other write and on close.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif data.endswith(b"\r\n\r\n") and data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 1"):
            self._head = data
            return
        self._transport.write(data)

    def close(self) -> None:
        if self._head is not None:
            data, self._head = self._head, None
            self._transport.write(data)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, writing each response in one write (``_HeadWithBody``)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class OneWriteHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(_HeadWithBody(transport))  # type: ignore[arg-type]

    return OneWriteHttpToolsProtocol


def _listener(port: int) -> socket.socket:
    """The listening socket, with TCP_NODELAY set: Linux hands it on to every accepted connection.

    uvicorn writes a response's headers and its body in two writes. With Nagle's algorithm on,
    the body waits for the ACK of the headers, and the client delays that ACK by 40 ms: every
    keep-alive request stalled 40 ms (issue 14). uvloop does not set the option on accepted sockets.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    # An open-loop workload has up to 256 customers connecting at once; the kernel's queue of
    # connects must hold them, or a burst is reset before the service sees it.
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def max_batch_from_environ() -> int:
    """ORDER_SERVICE_MAX_BATCH (default MAX_BATCH), checked: a whole number within MAX_BATCH_BOUNDS."""
    raw = os.environ.get("ORDER_SERVICE_MAX_BATCH")
    if raw is None:
        return MAX_BATCH
    lo, hi = MAX_BATCH_BOUNDS
    if not (raw.isascii() and raw.isdigit() and lo <= int(raw) <= hi):
        raise SystemExit(f"ORDER_SERVICE_MAX_BATCH={raw!r}: set it to a whole number from {lo} to {hi} "
                         "(the most orders one transaction commits; 1 turns group commit off)")
    return int(raw)


async def serve(env: TargetEnv, max_batch: int = MAX_BATCH) -> None:
    import uvicorn
    from psycopg_pool import AsyncConnectionPool

    publisher = Publisher(env) if env.mode == "direct" else None
    # Connections open in the background and on demand: the service is up (and /health answers)
    # while Postgres is still unreachable, as the threaded service was; a request then waits up
    # to POOL_WAIT_S for a connection and answers 503.
    pool = AsyncConnectionPool(env.pg_dsn, min_size=4, max_size=POOL_SIZE, open=False, timeout=POOL_WAIT_S,
                               kwargs={"autocommit": True, **pg_connect_kwargs()})
    await pool.open(wait=False)
    # The statements run through libpq directly (targets.statements): psycopg's execute cost ~150 µs of
    # Python a statement; the pool still opens, checks and replaces the connections.
    service = OrderService(env, RawPool(pool), publisher, max_batch)
    config = uvicorn.Config(
        make_app(service), host="127.0.0.1", port=env.http_port, loop="none", http=_http_protocol(), lifespan="off",
        access_log=False, log_config=None, server_header=False, date_header=False, proxy_headers=False,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)  # installs SIGTERM/SIGINT handlers: a graceful stop
    log.info("order service (%s) listening on 127.0.0.1:%d", env.pipeline, env.http_port)
    try:
        await server.serve(sockets=[_listener(env.http_port)])
    finally:
        await pool.close(timeout=2.0)
        if publisher is not None:
            publisher.close()
        if service.places is not None:  # evidence of how a run's load grouped: batches of one at a scenario's rate
            log.info("group commit: %s", service.places.stats)
        log.info("order service stopped")


def main() -> None:
    import uvloop

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    env = TargetEnv.from_environ()
    if env.mode not in MODES:
        raise SystemExit(f"ORDER_SERVICE_MODE={env.mode!r}: set it to one of {', '.join(MODES)} in the target spec")
    # uvicorn handles SIGTERM with a graceful shutdown, then raises the signal again for its
    # previous handler: this one, which ends the process through serve()'s finally (the pool
    # closes, direct publishing flushes) instead of dying on the default action. A SIGTERM
    # before uvicorn is up ends the process the same way.
    max_batch = max_batch_from_environ()
    signal.signal(signal.SIGTERM, _exit_on_term)
    uvloop.run(serve(env, max_batch))


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    main()
