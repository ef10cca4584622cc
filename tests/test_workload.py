"""The order workload is open-loop: slow answers do not hold back the customers arriving behind them."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.history.ops import OpType
from harness.history.store import HistoryWriter
from harness.workload.orders import MAX_CLIENTS, MIN_CLIENTS, OrderWorkload, PlannedOrder, clients_for, plan_orders
from harness.workload.rate import Constant


def _plan(n: int, every_s: float) -> list[PlannedOrder]:
    return [PlannedOrder(i * every_s, f"order-{i}", "customer-001", 1000) for i in range(n)]


def test_clients_cover_every_order_that_can_be_in_flight_at_once() -> None:
    assert clients_for(_plan(40, 0.1), budget_s=2.0) == 20  # 20 arrivals in any 2 s window
    assert clients_for(_plan(5, 0.1), budget_s=2.0) == MIN_CLIENTS
    assert clients_for(_plan(10_000, 0.001), budget_s=15.0) == MAX_CLIENTS
    assert clients_for([], budget_s=2.0) == MIN_CLIENTS
    # black_friday's peak (40 orders/s) with every request of an order waiting its whole timeout.
    assert clients_for(plan_orders(Constant(8), 30, seed=1)) == pytest.approx(8 * 15, abs=8)


def test_forty_simultaneous_customers_are_all_in_flight_together(tmp_path: Path) -> None:
    """A closed pool of 16 would leave 24 of them waiting; the barrier would then break."""
    arrived = threading.Barrier(40, timeout=20)

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            try:
                arrived.wait()  # answer only when all 40 places are in flight at once
                status = 201
            except threading.BrokenBarrierError:
                status = 503
            body = json.dumps({"correlation_id": "c"}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 64  # the default backlog of 5 resets a burst of 40 connects

    server = Server(("127.0.0.1", 0), Slow)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    writer = HistoryWriter(tmp_path / "history.jsonl", "run", 1)
    try:
        recorder = writer.recorder("direct")
        plan = [PlannedOrder(0.0, f"order-{i}", "customer-001", 1000, cancel=True) for i in range(40)]
        workload = OrderWorkload(f"http://127.0.0.1:{server.server_address[1]}", recorder, plan)
        assert workload.concurrency >= 40
        workload.run(threading.Event(), time.monotonic())
        placed = [op for op in recorder.history().ops if op.f == "place" and op.type is not OpType.INVOKE]
        assert len(placed) == 40 and all(op.type is OpType.OK for op in placed), [op.error for op in placed if op.error]
        assert workload.max_start_late_s >= 0.0
    finally:
        server.shutdown()
        server.server_close()
        writer.close()
