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

The clients live on one event loop (uvloop when installed), not in threads, and are driven
by its callbacks rather than by a task per order: an answer's callback records it and sends
the order's next step, a client that finishes takes the next due order itself, and one timer
serves every request's deadline. Each client keeps one HTTP/1.1 keep-alive connection and
sends a request in a single write, so the driver offers several times what the reference
service can take (bench/order_service.py measures it against a no-op server) and is never
the limit of a run. A kept connection is
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
from collections import deque
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
# libuv's timers count milliseconds: one that fires up to this early is on time, not a reason to set another.
_TIMER_RESOLUTION_S = 0.001


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


class _Connection(asyncio.Protocol):
    """One client's HTTP/1.1 connection: one request at a time, the response parsed by httptools.

    It hands the answer, or what broke it, straight to its client (``_Client.answered`` /
    ``_Client.broken``) from the loop's callback, with no future or task in between.
    """

    __slots__ = ("client", "transport", "closed", "idle_since", "waiting", "_parser", "_body", "_headers_done",
                 "_delimited", "_message_done", "_status")

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self.waiting = False  # a request is out and its answer not yet handed over
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._headers_done = False
        self._delimited = False  # Content-Length or chunked; otherwise the body ends when the server closes
        self._message_done = False  # the first response since the request is complete: it is the answer
        self._status = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.waiting:
            self.close()  # bytes nobody asked for: this connection's framing can no longer be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not self._message_done:
                self._fail(ValueError(f"unparseable response: {exc}"))
                return
            self.close()  # garbage after a whole answer: the answer stands, the connection is not used again
        # Handed over here, not from the parser's callback: whatever the client does next (record, send
        # the next step) must not run inside httptools, which would report its errors as a parse error.
        if self._message_done:
            self._answer()

    def eof_received(self) -> bool:
        self.closed = True  # the server is closing it: not for another request
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiting:
            if self._headers_done and not self._delimited:
                self._answer()
            else:
                self.waiting = False
                self.client.broken(self, ConnectionResetError(f"connection closed before a full response ({exc})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._delimited = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if not self._message_done:  # bytes after the answer (another response) are no part of it
            self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.close()
        if not self._message_done:
            self._message_done = True
            self._status = self._parser.get_status_code()

    def _answer(self) -> None:
        self.waiting = False
        status = self._status if self._message_done else self._parser.get_status_code()  # else: ended by the close
        self.client.answered(self, status, b"".join(self._body))

    def _fail(self, exc: Exception) -> None:
        waiting = self.waiting
        self.close()
        if waiting:
            self.client.broken(self, exc)

    def usable(self) -> bool:
        return not self.closed and time.monotonic() - self.idle_since < KEEPALIVE_IDLE_S

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.waiting = True
        self._body = []
        self._headers_done = self._delimited = self._message_done = False
        self.transport.write(request)  # request line, headers and body in one write

    def close(self) -> None:
        self.closed = True
        self.waiting = False  # a late answer must not be read as this request's, nor the next one's
        if self.transport is not None:
            self.transport.close()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # the standard loop works, at about half the rate
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


class _Client:
    """One client: takes an order, runs its steps one request at a time and records each.

    Driven by the loop's callbacks (the answer arriving, the timeout's timer, rarely a task that opens
    a connection), not by a task per order: a task, its timeout scope and a future per request were
    most of the driver's own CPU per request, and the driver must offer far more than a service takes.
    """

    __slots__ = ("workload", "process", "conn", "order", "f", "value", "sent", "request", "connecting")

    def __init__(self, workload: OrderWorkload, slot: int) -> None:
        self.workload = workload
        self.process = f"client-{slot}"
        self.conn: _Connection | None = None
        self.order: PlannedOrder | None = None
        self.f = ""  # the step in flight: place, pay, ship or cancel
        self.value: dict[str, Scalar] = {}
        self.sent = False  # the request was written: without an answer its outcome is unknown
        self.request = 0  # the number of the request in flight (OrderWorkload._watch); 0 between requests
        self.connecting: asyncio.Task[None] | None = None

    def start(self, order: PlannedOrder) -> None:
        w = self.workload
        w.max_start_late_s = max(w.max_start_late_s, time.monotonic() - w.t0 - order.at_s)
        self.order = order
        self._begin("place")

    def _begin(self, f: str) -> None:
        order = self.order
        assert order is not None
        w = self.workload
        self.f = f
        self.value = {"amount_cents": order.amount_cents, "customer": order.customer}
        self.sent = False
        try:
            w.recorder.record(self.process, OpType.INVOKE, f, order.order_id, self.value)
            if f == "place":
                path = b"/orders"
                payload = _encode({"order_id": order.order_id, "customer": order.customer,
                                   "amount_cents": order.amount_cents})
            else:
                path = b"/orders/%s/%s" % (order.order_id.encode(), f.encode())
                payload = b"{}"
            request = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                path, w.host_header, len(payload), payload)
            # The whole request (connect, write, answer) has REQUEST_TIMEOUT_S, as an asyncio.timeout around it had.
            w._watch(self)
            conn = self.conn
            if conn is not None and conn.usable():
                try:
                    conn.send(request)
                except (RuntimeError, OSError):
                    # The transport was closing under us (the server's FIN not yet seen): nothing was
                    # written, so the request goes once more, on a new connection.
                    self.connecting = w.loop.create_task(self._connect_and_send(request, retried=True))
                else:
                    self.sent = True
            else:
                self.connecting = w.loop.create_task(self._connect_and_send(request, retried=False))
        except BaseException:
            self.request = 0
            self._release(take_next=False)  # not the next order: it would fail the same way, one level deeper
            raise

    async def _connect_and_send(self, request: bytes, retried: bool) -> None:
        try:
            conn = await self._connect()
            try:
                conn.send(request)
            except (RuntimeError, OSError):
                if retried:
                    raise
                (await self._connect()).send(request)  # as above: nothing was written, once more
        except asyncio.CancelledError:
            return  # the request's timeout: _timed_out records it
        except ConnectionRefusedError as exc:
            self.connecting = None
            self._complete(OpType.FAIL, error=f"refused: {exc}")
        except Exception as exc:  # noqa: BLE001 - every invoke gets its completion, whatever went wrong
            self.connecting = None
            self._failed(exc)
        else:
            self.connecting = None
            self.sent = True

    async def _connect(self) -> _Connection:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        w = self.workload
        _, conn = await w.loop.create_connection(lambda: _Connection(self), w.host, w.port)
        self.conn = conn
        return conn

    # What ends a request: an answer, a broken connection, the timeout.
    def answered(self, conn: _Connection, status: int, body: bytes) -> None:
        if conn is not self.conn:
            return  # a connection this client already gave up on
        try:
            answer = _decode(body or b"{}")
        except Exception as exc:  # noqa: BLE001 - an answer that is not JSON: sent, outcome unknown
            self._failed(exc)
            return
        conn.idle_since = time.monotonic()
        answer = answer if isinstance(answer, dict) else {}
        if 200 <= status < 300:
            self._complete(OpType.OK, correlation_id=answer.get("correlation_id"))
        else:
            self._complete(OpType.FAIL, error=f"HTTP {status}: {answer.get('error')}")

    def broken(self, conn: _Connection, exc: Exception) -> None:
        if conn is self.conn:
            self._failed(exc)

    def _timed_out(self) -> None:
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        self._failed(TimeoutError())

    def _failed(self, exc: BaseException) -> None:
        # Sent and never answered: the service may have committed. Unknown, not failed.
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()  # a late answer must not be read as the next request's
        self._complete(OpType.INFO if self.sent else OpType.FAIL, error=f"{type(exc).__name__}: {exc}")

    def _complete(self, kind: OpType, error: str | None = None, correlation_id: object = None) -> None:
        self.request = 0  # its deadline no longer applies
        order = self.order
        assert order is not None
        w = self.workload
        try:
            if kind is OpType.OK:
                w.recorder.record(self.process, kind, self.f, order.order_id,
                                  {**self.value, "correlation_id": correlation_id})  # type: ignore[dict-item]
            else:
                w.recorder.record(self.process, kind, self.f, order.order_id, self.value, error=error)
        except BaseException:
            self._release(take_next=False)
            raise
        if kind is OpType.OK and w.lifecycle:
            # place -> pay -> ship, or place -> cancel; a step runs only if the one before it was ok.
            if self.f == "place":
                self._begin("cancel" if order.cancel else "pay")
                return
            if self.f == "pay":
                self._begin("ship")
                return
        self._release()

    def _release(self, take_next: bool = True) -> None:
        self.order = None
        self.workload._released(self, take_next)


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
        self.host_header = f"{self.host}:{self.port}".encode()
        self.t0 = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._next = 0  # the plan's first order not yet started
        self._idle: deque[_Client] = deque()  # first in, first out: the clients take turns, as a queue of slots did
        self._busy = 0
        self._wake: asyncio.Future[None] | None = None  # the dispatcher waits on it for a client or the last one's end
        # Requests in flight by deadline (the order they were sent in, each REQUEST_TIMEOUT_S long), with
        # one timer for the earliest that is still unanswered: an answer costs nothing here, where a
        # timer per request cost a handle to make and one to cancel.
        self._deadlines: deque[tuple[float, _Client, int]] = deque()
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._armed_for = 0.0
        self._expiring = False
        self._requests = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "only while run() runs"
        return self._loop

    def run(self, stop: threading.Event, t0: float) -> None:
        """Dispatch the planned orders on time (relative to ``t0``) until done or ``stop`` is set."""
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(self._run(stop, t0))

    async def _run(self, stop: threading.Event, t0: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self.t0, self._next, self._busy = stop, t0, 0, 0
        clients = [_Client(self, slot) for slot in range(self.concurrency)]
        self._idle = deque(clients)
        plan = self.plan
        try:
            while self._next < len(plan) and not stop.is_set():
                # Pacing the arrivals of an open-loop workload: a schedule, not a wait for a condition.
                delay = plan[self._next].at_s - (time.monotonic() - t0)
                if delay > 0:
                    await asyncio.sleep(min(delay, STOP_CHECK_S))
                elif self._idle:
                    order = plan[self._next]
                    self._next += 1
                    self._busy += 1
                    self._idle.popleft().start(order)
                else:
                    # Every client is busy: the order waits for one, and starts late (max_start_late_s
                    # says by how much). A client that finishes takes the next due order itself.
                    await self._woken()
            while self._busy:  # orders in flight finish, bounded by their timeouts
                await self._woken()
        finally:
            if self._deadline_timer is not None:
                self._deadline_timer.cancel()
                self._deadline_timer = None
            self._deadlines.clear()
            for client in clients:
                if client.connecting is not None:
                    client.connecting.cancel()
                if client.conn is not None:
                    client.conn.close()
                    client.conn = None
            self._loop = None

    def _watch(self, client: _Client) -> None:
        """Give ``client``'s new request its deadline: REQUEST_TIMEOUT_S from now."""
        self._requests += 1
        client.request = self._requests
        deadline = self.loop.time() + REQUEST_TIMEOUT_S
        self._deadlines.append((deadline, client, self._requests))
        if not self._expiring and (self._deadline_timer is None or deadline < self._armed_for):
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        self._deadline_timer = self.loop.call_at(deadline, self._expire)
        self._armed_for = deadline

    def _expire(self) -> None:
        """Time out every request whose deadline has come, and set the timer for the next one still unanswered."""
        self._deadline_timer = None
        self._expiring = True
        try:
            now = self.loop.time()
            pending = self._deadlines
            while pending:
                deadline, client, request = pending[0]
                if client.request != request:
                    pending.popleft()  # answered (or failed) already
                elif deadline > now + _TIMER_RESOLUTION_S:
                    self._arm(deadline)
                    return
                else:
                    pending.popleft()
                    client._timed_out()
        finally:
            self._expiring = False
            if self._deadline_timer is None and pending:  # cut short by an error: the rest still time out
                self._arm(pending[0][0])

    async def _woken(self) -> None:
        """Until a client is released, or STOP_CHECK_S passes (``stop`` is a thread's, it cannot wake us)."""
        wake = self._wake = self.loop.create_future()
        timer = self.loop.call_later(STOP_CHECK_S, _resolve, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    def _released(self, client: _Client, take_next: bool) -> None:
        plan, n = self.plan, self._next
        # The next order is due and no other client waits for one (they take turns, first in first out):
        # this client takes it, without a round through the dispatcher. On a stop, orders not yet
        # started are dropped.
        if take_next and not self._idle and n < len(plan) and plan[n].at_s <= time.monotonic() - self.t0 \
                and not self._stop.is_set():
            self._next = n + 1
            client.start(plan[n])
            return
        self._busy -= 1
        self._idle.append(client)
        if self._wake is not None:
            _resolve(self._wake)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
