"""The order service over its connection pool: one statement per write, the same answers as before.

A fake pool stands in for psycopg_pool (what the service asks of it is the ``Pool`` protocol);
the last test starts the real process (uvicorn) and stops it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from harness.wait import wait_for
from targets import order_service
from targets.domain import TargetEnv, decode_event
from targets.order_service import OrderService, make_app, place_sql, transition_sql

ORDER = str(uuid.UUID(int=7, version=4))


class FakeCursor:
    def __init__(self, rowcount: int, row: tuple[object, ...] | None = None) -> None:
        self.rowcount = rowcount
        self._row = row

    async def fetchone(self) -> tuple[object, ...] | None:
        return self._row


class FakeConnection:
    """Answers each statement from a script, and keeps what it was sent."""

    def __init__(self, answers: list[FakeCursor | Exception]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, tuple[object, ...]]] = []
        self.ended: list[str] = []  # how each explicit transaction ended

    async def execute(self, query: str, params: tuple[object, ...]) -> FakeCursor:
        self.sent.append((query, params))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """An explicit transaction around what the block sends: counted as committed or rolled back."""
        try:
            yield
        except BaseException:
            self.ended.append("rollback")
            raise
        self.ended.append("commit")


class FakePool:
    def __init__(self, conn: FakeConnection | None) -> None:
        self.conn = conn
        self.timeouts: list[float | None] = []

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[FakeConnection]:
        self.timeouts.append(timeout)
        if self.conn is None:
            raise PoolTimeout(f"couldn't get a connection after {timeout} sec")
        yield self.conn


def _env(mode: str) -> TargetEnv:
    return TargetEnv(pipeline=mode, pg_dsn="", kafka="", topic="orders", group="", http_port=0, dlq_topic="",
                     variant="correct", mode=mode)


def _handle(service: OrderService, method: str, path: str, body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:
    return asyncio.run(service.handle(method, path, json.dumps(body).encode() if body is not None else b""))


def _place_body() -> dict[str, object]:
    return {"order_id": ORDER, "customer": "customer-001", "amount_cents": 1234}


def test_outbox_place_writes_order_and_event_in_one_statement() -> None:
    conn = FakeConnection([FakeCursor(1)])
    service = OrderService(_env("outbox"), FakePool(conn), None)
    status, body = _handle(service, "POST", "/orders", _place_body())
    assert status == 201 and body["order_id"] == ORDER
    [(query, params)] = conn.sent
    assert query == place_sql(True) and "INSERT INTO outbox" in query
    event = decode_event(str(params[-1]).encode())  # the outbox payload is the event the answer names
    assert (event.order_id, event.seq, event.type, event.correlation_id) == (ORDER, 1, "order.created", body["correlation_id"])
    assert params[4] == event.event_id
    # Inside an explicit transaction whose COMMIT is its own round trip: the outbox row's id is taken
    # before the commit (the late_commit scenario's window), and it committed.
    assert conn.ended == ["commit"]


def test_commit_only_place_writes_only_the_order() -> None:
    conn = FakeConnection([FakeCursor(1)])
    status, _ = _handle(OrderService(_env("commit_only"), FakePool(conn), None), "POST", "/orders", _place_body())
    assert status == 201
    assert conn.sent[0][0] == place_sql(False) and "outbox" not in conn.sent[0][0] and len(conn.sent[0][1]) == 4


def test_a_duplicate_order_is_409() -> None:
    for answer in (FakeCursor(0), psycopg.errors.UniqueViolation("duplicate key")):
        service = OrderService(_env("outbox"), FakePool(FakeConnection([answer])), None)
        assert _handle(service, "POST", "/orders", _place_body())[0] == 409


def test_transitions_answer_404_409_and_200() -> None:
    def pay(answers: list[FakeCursor | Exception]) -> tuple[int, FakeConnection]:
        conn = FakeConnection(answers)
        status, _ = _handle(OrderService(_env("outbox"), FakePool(conn), None), "POST", f"/orders/{ORDER}/pay")
        return status, conn

    assert pay([FakeCursor(0, None)])[0] == 404
    assert pay([FakeCursor(1, ("c", 100, 2, "paid"))])[0] == 409  # already paid
    assert pay([FakeCursor(1, ("c", 100, 1, "created")), FakeCursor(0)])[0] == 409  # changed concurrently
    status, conn = pay([FakeCursor(1, ("c", 100, 1, "created")), FakeCursor(1)])
    assert status == 200
    query, params = conn.sent[1]
    assert query == transition_sql(True)
    assert params[:5] == ("paid", params[1], ORDER, "created", 1)  # optimistic on the version read
    assert decode_event(str(params[-1]).encode()).seq == 2


def test_no_connection_in_time_or_a_database_error_is_503() -> None:
    exhausted = OrderService(_env("outbox"), FakePool(None), None)
    status, body = _handle(exhausted, "POST", "/orders", _place_body())
    assert status == 503 and "PoolTimeout" in str(body["error"])
    broken = OrderService(_env("outbox"), FakePool(FakeConnection([psycopg.OperationalError("link cut")])), None)
    assert _handle(broken, "POST", "/orders", _place_body())[0] == 503


def test_bad_requests_and_unknown_routes() -> None:
    service = OrderService(_env("outbox"), FakePool(FakeConnection([])), None)
    assert _handle(service, "POST", "/orders", {"order_id": "not-a-uuid", "customer": "c", "amount_cents": 1})[0] == 400
    assert _handle(service, "POST", "/orders", {"customer": "c"})[0] == 400
    assert asyncio.run(service.handle("POST", "/orders", b'{"order_id": '))[0] == 400  # not JSON
    assert asyncio.run(service.handle("POST", "/orders", b"[1, 2]"))[0] == 400  # JSON, not an object
    assert _handle(service, "POST", "/refunds", {})[0] == 404
    assert _handle(service, "GET", "/orders")[0] == 404
    assert _handle(service, "GET", "/health") == (200, {
        "pipeline": "outbox", "publish_queue": 0, "schema_refused": None,
        "group_commit": {"batches": 0, "writes": 0, "largest": 0, "retried_alone": 0, "expired": 0}})


def test_the_asgi_app_answers_json_with_a_length() -> None:
    service = OrderService(_env("outbox"), FakePool(FakeConnection([FakeCursor(1)])), None)
    app = make_app(service)
    sent: list[dict[str, object]] = []
    incoming = [{"type": "http.request", "body": json.dumps(_place_body()).encode()[:10], "more_body": True},
                {"type": "http.request", "body": json.dumps(_place_body()).encode()[10:], "more_body": False}]

    async def receive() -> dict[str, object]:
        return incoming.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "POST", "path": "/orders"}, receive, send))  # type: ignore[arg-type]
    start, body = sent
    assert start["status"] == 201
    assert (b"content-length", str(len(body["body"])).encode()) in start["headers"]  # type: ignore[arg-type, operator]
    assert json.loads(body["body"])["order_id"] == ORDER  # type: ignore[arg-type]


def test_the_listener_disables_nagle_for_every_connection() -> None:
    """Headers and body leave in two writes; with Nagle on, the body waited 40 ms for a delayed ACK."""
    listener = order_service._listener(0)
    try:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        accepted, _ = listener.accept()
        try:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            accepted.close()
            client.close()
    finally:
        listener.close()


def test_the_process_serves_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CHAOS_PIPELINE": "outbox", "CHAOS_TOPIC": "orders", "CHAOS_HTTP_PORT": str(port),
           "ORDER_SERVICE_MODE": "outbox", "ORDER_SERVICE_MAX_BATCH": "1",  # group commit off: /health says so
           # Nothing listens there: the pool retries in the background, /health answers meanwhile.
           "CHAOS_PG_DSN": f"host=127.0.0.1 port={port} user=postgres dbname=none connect_timeout=1"}
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "targets.order_service"], env=env, stdout=out,  # noqa: S603
                                stderr=subprocess.STDOUT)
    try:
        def health() -> tuple[bool, dict[str, object]]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/health")
                resp = conn.getresponse()
                return resp.status == 200, json.loads(resp.read())
            finally:
                conn.close()

        assert wait_for(health, timeout_s=30, what="the order service's /health", evidence=log.read_text) == \
            {"pipeline": "outbox", "publish_queue": 0, "schema_refused": None, "group_commit": None}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, log.read_text()
        assert "order service stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_a_response_leaves_in_one_write() -> None:
    """uvicorn writes head and body apart: two syscalls and two packets a response, until the head waits for its body."""
    real = _Transport()
    transport = order_service._HeadWithBody(real)  # type: ignore[arg-type]
    head = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n"
    transport.write(head)
    assert real.writes == []
    transport.write(b"{}")
    assert real.writes == [head + b"{}"]
    # A 100 Continue is not held (the client waits for it before sending the body), nor is anything else.
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\nbad")
    assert real.writes[1:] == [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\nbad"]
    # A head still held when the connection closes goes out first; the rest is the real transport's.
    transport.write(head)
    assert not transport.is_closing()
    transport.close()
    assert real.writes[-1] == head and real.closed and transport.is_closing()


@pytest.mark.parametrize("value", ["0", "1001", "-1", " 8", "8.0", "many", "\u0668"])
def test_a_max_batch_out_of_bounds_stops_the_service_naming_the_variable(value: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_SERVICE_MAX_BATCH", value)
    with pytest.raises(SystemExit, match=r"ORDER_SERVICE_MAX_BATCH=.*a whole number from 1 to 1000"):
        order_service.max_batch_from_environ()
    monkeypatch.setenv("ORDER_SERVICE_MAX_BATCH", "32")
    assert order_service.max_batch_from_environ() == 32
