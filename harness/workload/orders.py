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
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.history.ops import OpType
from harness.history.store import Recorder
from harness.workload.rate import RateShape, arrival_times

__all__ = ["OrderWorkload", "PlannedOrder", "clients_for", "plan_orders"]

REQUEST_TIMEOUT_S = 5.0
STEPS_PER_ORDER = 3  # place, pay, ship: the longest an order can be in flight is this many timeouts
CANCEL_FRACTION = 0.1  # share of orders the customer cancels instead of paying
MIN_CLIENTS, MAX_CLIENTS = 16, 256  # threads are created only when all are busy; the cap bounds a runaway plan


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


class OrderWorkload:
    def __init__(self, base_url: str, recorder: Recorder, plan: list[PlannedOrder], concurrency: int | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.recorder = recorder
        self.plan = plan
        self.concurrency = clients_for(plan) if concurrency is None else concurrency
        self.max_start_late_s = 0.0  # how far behind its plan the latest-starting order began
        self._local = threading.local()
        self._lock = threading.Lock()

    def run(self, stop: threading.Event, t0: float) -> None:
        """Dispatch the planned orders on time (relative to ``t0``) until done or ``stop`` is set."""
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="client")
        try:
            for order in self.plan:
                # Pacing the arrivals of an open-loop workload: a schedule, not a wait for a condition.
                delay = order.at_s - (time.monotonic() - t0)
                if delay > 0 and stop.wait(delay):
                    break
                if stop.is_set():
                    break
                pool.submit(self._order, order, t0)
        finally:
            # On a stop, orders not yet started are dropped; requests in flight finish (bounded by their timeout).
            pool.shutdown(wait=True, cancel_futures=stop.is_set())

    def _client(self) -> str:
        name = getattr(self._local, "name", None)
        if name is None:
            name = f"client-{threading.current_thread().name.rsplit('_', 1)[-1]}"
            self._local.name = name
        return name

    def _order(self, order: PlannedOrder, t0: float) -> None:
        late = time.monotonic() - t0 - order.at_s
        with self._lock:
            self.max_start_late_s = max(self.max_start_late_s, late)
        process = self._client()
        placed = self._request(process, "place", order, "POST", "/orders",
                               {"order_id": order.order_id, "customer": order.customer, "amount_cents": order.amount_cents})
        if not placed:
            return
        if order.cancel:
            self._request(process, "cancel", order, "POST", f"/orders/{order.order_id}/cancel", {})
        elif self._request(process, "pay", order, "POST", f"/orders/{order.order_id}/pay", {}):
            self._request(process, "ship", order, "POST", f"/orders/{order.order_id}/ship", {})

    def _request(self, process: str, f: str, order: PlannedOrder, method: str, path: str, body: dict[str, object]) -> bool:
        value = {"amount_cents": order.amount_cents, "customer": order.customer}
        self.recorder.record(process, OpType.INVOKE, f, order.order_id, value)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        sent = False
        try:
            payload = json.dumps(body).encode()
            conn.request(method, path, payload, {"Content-Type": "application/json"})
            sent = True
            resp = conn.getresponse()
            answer = json.loads(resp.read() or b"{}")
        except ConnectionRefusedError as exc:
            self.recorder.record(process, OpType.FAIL, f, order.order_id, value, error=f"refused: {exc}")
            return False
        except (TimeoutError, socket.timeout, OSError, http.client.HTTPException, ValueError) as exc:
            # Sent and never answered: the service may have committed. Unknown, not failed.
            kind = OpType.INFO if sent else OpType.FAIL
            self.recorder.record(process, kind, f, order.order_id, value, error=f"{type(exc).__name__}: {exc}")
            return False
        finally:
            conn.close()
        if 200 <= resp.status < 300:
            self.recorder.record(process, OpType.OK, f, order.order_id,
                                 {**value, "correlation_id": answer.get("correlation_id")})
            return True
        self.recorder.record(process, OpType.FAIL, f, order.order_id, value,
                             error=f"HTTP {resp.status}: {answer.get('error')}")
        return False
