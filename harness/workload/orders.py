"""The order workload: clients place, pay, ship or cancel orders over HTTP and record every step.

Each order is ``place`` then ``pay`` then ``ship``, or, for a seeded fraction of orders,
``place`` then ``cancel``; each request is recorded as invoke then exactly one of
ok / fail / info, and a step runs only if the one before it was ok. The client never asserts; it reports:
  ok    the service answered 2xx (committed)
  fail  the service answered an error, or the connection was refused (certainly not done)
  info  a timeout or a connection cut mid-request (may or may not have happened)
Amounts and customers are drawn from the seed, so a seed fixes the whole workload.

The workload is open-loop: customers arrive on the plan's schedule whether or not the
service is slow, as they do on Black Friday. A fixed pool of 16 clients was closed-loop in
disguise: when each request waited a second for an unreachable broker, orders queued in
the client and the service saw fewer of them than planned. The pool is therefore sized
for the worst case, every order in flight for its whole timeout budget, and the run
records how late the latest order started (``max_start_late_s``) so a saturated client
shows up as evidence rather than as a quieter service.

The clients are tasks on one event loop (uvloop when installed), not threads: each client
keeps one HTTP/1.1 keep-alive connection and sends a request in a single write, so the
driver offers several times what the reference service can take (bench/order_service.py
measures it against a no-op server) and is never the limit of a run. A kept connection is
used again only if the server has not closed it and it has been idle less than
``KEEPALIVE_IDLE_S`` (below the servers' usual 5 s idle timeout): a request written into a
connection the server is closing would come back as an unknown outcome, not a refusal.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools
import msgspec

from harness.history.ops import OpType, Scalar
from harness.history.store import Recorder
from harness.workload.rate import RateShape, arrival_times

__all__ = ["OrderWorkload", "PlannedOrder", "clients_for", "plan_orders"]

REQUEST_TIMEOUT_S = 5.0
STEPS_PER_ORDER = 3  # place, pay, ship: the longest an order can be in flight is this many timeouts
CANCEL_FRACTION = 0.1  # share of orders the customer cancels instead of paying
MIN_CLIENTS, MAX_CLIENTS = 16, 256  # clients are concurrent orders; the cap bounds a runaway plan
KEEPALIVE_IDLE_S = 2.0  # a connection idle longer than this is closed rather than reused
STOP_CHECK_S = 0.1  # the dispatcher looks at ``stop`` at least this often while it waits for an arrival


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    at_s: float
    order_id: str
    customer: str
    amount_cents: int
    cancel: bool = False  # cancelled after placing, instead of paid and shipped


def plan_orders(shape: RateShape, duration_s: float, seed: int, cancel_fraction: float = CANCEL_FRACTION) -> list[PlannedOrder]:
    rng = random.Random(seed)
    return [
        PlannedOrder(at, str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"customer-{rng.randrange(1000):03d}",
                     rng.randrange(500, 50_000), rng.random() < cancel_fraction)
        for at in arrival_times(shape, duration_s)
    ]


def clients_for(plan: list[PlannedOrder], budget_s: float = STEPS_PER_ORDER * REQUEST_TIMEOUT_S) -> int:
    """Clients enough for every order arriving within ``budget_s`` to be in flight at once."""
    peak, first = 0, 0
    for last, order in enumerate(plan):  # the plan is sorted by arrival: a sliding window over it
        while order.at_s - plan[first].at_s >= budget_s:
            first += 1
        peak = max(peak, last - first + 1)
    return max(MIN_CLIENTS, min(MAX_CLIENTS, peak))


# msgspec's C codec rather than the json module: a tenth of the cost, on the driver's per-request path.
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One client's HTTP/1.1 connection: one request at a time, the response parsed by httptools."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[_Response] | None = None
        self._body: list[bytes] = []
        self._headers_done = False
        self._delimited = False  # Content-Length or chunked; otherwise the body ends when the server closes

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: this connection's framing can no longer be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ValueError(f"unparseable response: {exc}"))

    def eof_received(self) -> bool:
        self.closed = True  # the server is closing it: not for another request
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if self._headers_done and not self._delimited:
                self._complete()
            else:
                self._waiter.set_exception(ConnectionResetError(f"connection closed before a full response ({exc})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._delimited = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.close()
        self._complete()

    def _complete(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(_Response(self._parser.get_status_code(), b"".join(self._body)))

    def _fail(self, exc: Exception) -> None:
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def usable(self) -> bool:
        return not self.closed and time.monotonic() - self.idle_since < KEEPALIVE_IDLE_S

    def send(self, request: bytes) -> asyncio.Future[_Response]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._body = []
        self._headers_done = self._delimited = False
        self.transport.write(request)  # request line, headers and body in one write
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # the standard loop works, at about half the rate
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


class OrderWorkload:
    def __init__(self, base_url: str, recorder: Recorder, plan: list[PlannedOrder], concurrency: int | None = None,
                 *, lifecycle: bool = True) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.recorder = recorder
        self.plan = plan
        self.concurrency = clients_for(plan) if concurrency is None else concurrency
        # False: each order is only placed (a benchmark of the place transaction alone).
        self.lifecycle = lifecycle
        self.max_start_late_s = 0.0  # how far behind its plan the latest-starting order began
        self._host_header = f"{self.host}:{self.port}".encode()
        self._conns: dict[int, _Connection] = {}

    def run(self, stop: threading.Event, t0: float) -> None:
        """Dispatch the planned orders on time (relative to ``t0``) until done or ``stop`` is set."""
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(self._run(stop, t0))

    async def _run(self, stop: threading.Event, t0: float) -> None:
        free: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(self.concurrency):
            free.put_nowait(slot)
        tasks: set[asyncio.Task[None]] = set()
        try:
            for order in self.plan:
                # Pacing the arrivals of an open-loop workload: a schedule, not a wait for a condition.
                delay = order.at_s - (time.monotonic() - t0)
                while delay > 0 and not stop.is_set():
                    await asyncio.sleep(min(delay, STOP_CHECK_S))
                    delay = order.at_s - (time.monotonic() - t0)
                # An order that arrives while every client is busy waits here for one, and starts late
                # (max_start_late_s says by how much); on a stop, orders not yet started are dropped.
                taken = await self._free_client(free, stop)
                if taken is None:
                    break
                task = asyncio.create_task(self._order(order, t0, taken, free))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:  # orders in flight finish, bounded by their timeouts
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()

    @staticmethod
    async def _free_client(free: asyncio.Queue[int], stop: threading.Event) -> int | None:
        while not stop.is_set():
            if not free.empty():
                return free.get_nowait()
            try:
                return await asyncio.wait_for(free.get(), STOP_CHECK_S)
            except TimeoutError:
                continue
        return None

    async def _order(self, order: PlannedOrder, t0: float, client: int, free: asyncio.Queue[int]) -> None:
        try:
            self.max_start_late_s = max(self.max_start_late_s, time.monotonic() - t0 - order.at_s)
            placed = await self._request(client, "place", order, b"POST", b"/orders",
                                         {"order_id": order.order_id, "customer": order.customer,
                                          "amount_cents": order.amount_cents})
            if not placed or not self.lifecycle:
                return
            base = f"/orders/{order.order_id}".encode()
            if order.cancel:
                await self._request(client, "cancel", order, b"POST", base + b"/cancel", {})
            elif await self._request(client, "pay", order, b"POST", base + b"/pay", {}):
                await self._request(client, "ship", order, b"POST", base + b"/ship", {})
        finally:
            free.put_nowait(client)

    async def _connection(self, client: int, fresh: bool = False) -> _Connection:
        conn = self._conns.get(client)
        if conn is not None and conn.usable() and not fresh:
            return conn
        if conn is not None:
            conn.close()
        _, conn = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
        self._conns[client] = conn
        return conn

    async def _send(self, client: int, request: bytes) -> asyncio.Future[_Response]:
        conn = await self._connection(client)
        try:
            return conn.send(request)
        except (RuntimeError, OSError):
            # The transport was closing under us (the server's FIN not yet seen): nothing was
            # written, so the request goes once more, on a new connection.
            return (await self._connection(client, fresh=True)).send(request)

    async def _request(self, client: int, f: str, order: PlannedOrder, method: bytes, path: bytes,
                       body: dict[str, object]) -> bool:
        process = f"client-{client}"
        value: dict[str, Scalar] = {"amount_cents": order.amount_cents, "customer": order.customer}
        self.recorder.record(process, OpType.INVOKE, f, order.order_id, value)
        payload = _encode(body)
        request = b"%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            method, path, self._host_header, len(payload), payload)
        sent = False
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                waiter = await self._send(client, request)
                sent = True
                resp = await waiter
            answer = _decode(resp.body or b"{}")
        except ConnectionRefusedError as exc:
            self.recorder.record(process, OpType.FAIL, f, order.order_id, value, error=f"refused: {exc}")
            return False
        except Exception as exc:  # noqa: BLE001 - every invoke gets its completion, whatever went wrong
            # Sent and never answered: the service may have committed. Unknown, not failed.
            conn = self._conns.pop(client, None)
            if conn is not None:
                conn.close()  # a late answer must not be read as the next request's
            kind = OpType.INFO if sent else OpType.FAIL
            self.recorder.record(process, kind, f, order.order_id, value, error=f"{type(exc).__name__}: {exc}")
            return False
        self._conns[client].idle_since = time.monotonic()
        answer = answer if isinstance(answer, dict) else {}
        if 200 <= resp.status < 300:
            self.recorder.record(process, OpType.OK, f, order.order_id,
                                 {**value, "correlation_id": answer.get("correlation_id")})
            return True
        self.recorder.record(process, OpType.FAIL, f, order.order_id, value,
                             error=f"HTTP {resp.status}: {answer.get('error')}")
        return False
