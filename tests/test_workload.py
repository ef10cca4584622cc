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


class _Counting(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.connections = 0

    def process_request(self, request: object, client_address: object) -> None:
        self.connections += 1
        super().process_request(request, client_address)  # type: ignore[arg-type]


def _serve(handler: type[BaseHTTPRequestHandler]) -> _Counting:
    server = _Counting(handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _run(tmp_path: Path, url: str, plan: list[PlannedOrder]) -> list[object]:
    writer = HistoryWriter(tmp_path / "history.jsonl", "run", 1)
    try:
        recorder = writer.recorder("direct")
        OrderWorkload(url, recorder, plan).run(threading.Event(), time.monotonic())
        return [op for op in recorder.history().ops if op.type is not OpType.INVOKE]
    finally:
        writer.close()


class KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    chunked = False

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"correlation_id": self.path}).encode()
        self.send_response(201 if self.path == "/orders" else 200)
        if self.chunked:  # a service in another language may stream its answer
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("chunked", [False, True])
def test_a_client_keeps_its_connection_for_every_step(tmp_path: Path, chunked: bool) -> None:
    handler = type("Handler", (KeepAlive,), {"chunked": chunked})
    server = _serve(handler)
    try:
        plan = [PlannedOrder(0.0, f"order-{i}", "customer-001", 1000) for i in range(3)]
        done = _run(tmp_path, f"http://127.0.0.1:{server.server_address[1]}", plan)
        assert [op.type for op in done] == [OpType.OK] * 9  # type: ignore[attr-defined]
        assert {op.value["correlation_id"] for op in done if op.f == "ship"} == \
            {f"/orders/order-{i}/ship" for i in range(3)}  # type: ignore[attr-defined]
        assert server.connections == 3  # one per client: place, pay and ship share it
    finally:
        server.shutdown()
        server.server_close()


def test_refused_is_fail_and_no_answer_is_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from harness.workload import orders

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    done = _run(tmp_path, f"http://127.0.0.1:{closed}", [PlannedOrder(0.0, "order-0", "customer-001", 1000)])
    assert [(op.f, op.type) for op in done] == [("place", OpType.FAIL)]  # type: ignore[attr-defined]
    assert "refused" in str(done[0].error)  # type: ignore[attr-defined]

    monkeypatch.setattr(orders, "REQUEST_TIMEOUT_S", 0.3)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does) and never answers
    try:
        done = _run(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}",
                    [PlannedOrder(0.0, "order-1", "customer-001", 1000)])
        assert [(op.f, op.type) for op in done] == [("place", OpType.INFO)]  # type: ignore[attr-defined]
    finally:
        silent.close()


def test_a_connection_the_server_closed_is_not_reused(tmp_path: Path) -> None:
    """The server closes after each answer (HTTP/1.0): the next step opens a new connection, never info."""
    handler = type("Handler", (KeepAlive,), {"protocol_version": "HTTP/1.0"})
    server = _serve(handler)
    try:
        plan = [PlannedOrder(0.0, "order-0", "customer-001", 1000), PlannedOrder(0.0, "order-1", "customer-001", 1000, cancel=True)]
        done = _run(tmp_path, f"http://127.0.0.1:{server.server_address[1]}", plan)
        assert sorted(op.f for op in done) == ["cancel", "pay", "place", "place", "ship"]  # type: ignore[attr-defined]
        assert all(op.type is OpType.OK for op in done)  # type: ignore[attr-defined]
        assert server.connections == 5
    finally:
        server.shutdown()
        server.server_close()


def test_every_unanswered_request_times_out_as_info_and_every_answered_one_is_ok(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests share one deadline timer: the answered ones between the unanswered must neither time out
    nor keep the later ones from timing out, and every invoke gets exactly one completion."""
    from harness.workload import orders

    monkeypatch.setattr(orders, "REQUEST_TIMEOUT_S", 0.4)
    release = threading.Event()

    class HalfSilent(KeepAlive):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = body["order_id"] if self.path == "/orders" else self.path.split("/")[2]
            i = int(key.split("-")[1])
            if (i % 2 and self.path == "/orders") or (i == 4 and self.path.endswith("/ship")):
                release.wait(30)  # never answers within the timeout
                self.close_connection = True
                return
            answer = json.dumps({"correlation_id": self.path}).encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = _serve(HalfSilent)
    try:
        plan = [PlannedOrder(i * 0.05, f"order-{i}", "customer-001", 1000) for i in range(8)]
        writer = HistoryWriter(tmp_path / "history.jsonl", "run", 1)
        try:
            recorder = writer.recorder("direct")
            OrderWorkload(f"http://127.0.0.1:{server.server_address[1]}", recorder, plan).run(
                threading.Event(), time.monotonic())
            ops = recorder.history().ops
        finally:
            writer.close()
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    outcome: dict[tuple[str | None, str], list[OpType]] = {}
    for op in ops:
        outcome.setdefault((op.key, op.f), []).append(op.type)
    assert all(types[0] is OpType.INVOKE and len(types) == 2 for types in outcome.values()), outcome
    for i in range(8):
        key = f"order-{i}"
        if i % 2:
            assert outcome[(key, "place")][1] is OpType.INFO and (key, "pay") not in outcome
        elif i == 4:
            assert [outcome[(key, f)][1] for f in ("place", "pay", "ship")] == [OpType.OK, OpType.OK, OpType.INFO]
        else:
            assert [outcome[(key, f)][1] for f in ("place", "pay", "ship")] == [OpType.OK] * 3
    assert {op.error for op in ops if op.type is OpType.INFO} == {"TimeoutError: "}


def test_orders_beyond_the_clients_wait_for_one_and_a_stop_drops_those_not_started(tmp_path: Path) -> None:
    """Two clients, ten orders due at once: a client that finishes takes the next waiting order, so
    all ten run on those two clients and start late. A stop ends the schedule; what is in flight completes."""
    gate = threading.Semaphore(0)

    class Gated(KeepAlive):
        def do_POST(self) -> None:  # noqa: N802
            gate.acquire(timeout=30)  # each answer waits for the test to let one through
            super().do_POST()

    server = _serve(Gated)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        writer = HistoryWriter(tmp_path / "history.jsonl", "run", 1)
        try:
            recorder = writer.recorder("direct")
            plan = [PlannedOrder(0.0, f"order-{i}", "customer-001", 1000, cancel=True) for i in range(10)]
            workload = OrderWorkload(url, recorder, plan, concurrency=2)
            for _ in range(20):
                gate.release()  # a place and a cancel for each order
            workload.run(threading.Event(), time.monotonic())
            done = [op for op in recorder.history().ops if op.type is not OpType.INVOKE]
            assert len(done) == 20 and all(op.type is OpType.OK for op in done)
            assert {op.process for op in done} == {"client-0", "client-1"}
            assert workload.max_start_late_s > 0.0

            stop = threading.Event()
            recorder = writer.recorder("outbox")
            later = [PlannedOrder(0.0, "order-a", "customer-001", 1000, cancel=True),
                     PlannedOrder(3600.0, "order-b", "customer-001", 1000)]  # an hour out: only a stop ends the run
            workload = OrderWorkload(url, recorder, later)
            for _ in range(2):
                gate.release()
            threading.Timer(0.5, stop.set).start()
            workload.run(stop, time.monotonic())
            ops = recorder.history().ops
            assert [(op.key, op.f, op.type) for op in ops] == [
                ("order-a", "place", OpType.INVOKE), ("order-a", "place", OpType.OK),
                ("order-a", "cancel", OpType.INVOKE), ("order-a", "cancel", OpType.OK)]
        finally:
            writer.close()
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_ended_by_close_or_followed_by_garbage_is_still_the_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body without Content-Length ends when the server closes; bytes after a whole answer are not part
    of it (the answer stands, the connection is not used again)."""
    import socket

    from harness.workload import orders

    monkeypatch.setattr(orders, "REQUEST_TIMEOUT_S", 1.0)

    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for _ in range(2):  # place (close-delimited), then pay on a new connection (answer + garbage)
            conn, _ = listener.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                head, body = request.split(b"\r\n\r\n", 1)
                size = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(body) < size:
                    body += conn.recv(65536)
                if head.startswith(b"POST /orders "):
                    conn.sendall(b'HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n{"correlation_id": "by-close"}')
                else:
                    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n{"correlation_id": "first"}'
                                 b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\n{}\x00\x01garbage")
                    conn.recv(65536)  # until the client closes it (or sends ship on it: it must not)

    serving = threading.Thread(target=serve, daemon=True)
    serving.start()
    try:
        plan = [PlannedOrder(0.0, "order-0", "customer-001", 1000)]
        done = _run(tmp_path, f"http://127.0.0.1:{listener.getsockname()[1]}", plan)
    finally:
        listener.close()
    assert [(op.f, op.type, op.value.get("correlation_id")) for op in done][:2] == [  # type: ignore[attr-defined]
        ("place", OpType.OK, "by-close"), ("pay", OpType.OK, "first")]
    # ship goes on a third connection, which nobody answers: never an answer read from the garbage on the old one
    assert done[2].f == "ship" and done[2].type is OpType.INFO  # type: ignore[attr-defined]
