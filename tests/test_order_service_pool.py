"""The order service's connection pool: reuse, discard on error, a clean refusal when exhausted."""

from __future__ import annotations

import threading

import psycopg
import pytest

from targets import order_service
from targets.order_service import ConnectionPool, PoolExhausted


class FakeConnection:
    def __init__(self) -> None:
        self.closed = False
        self.broken = False

        class Info:
            transaction_status = psycopg.pq.TransactionStatus.IDLE

        self.info = Info()

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[FakeConnection]:
    made: list[FakeConnection] = []

    def connect(dsn: str, **kwargs: object) -> FakeConnection:
        made.append(FakeConnection())
        return made[-1]

    monkeypatch.setattr(order_service.psycopg, "connect", connect)
    return made


def test_a_connection_is_reused_across_requests(opened: list[FakeConnection]) -> None:
    pool = ConnectionPool("dsn", size=4)
    with pool.connection() as first:
        pass
    with pool.connection() as second:
        pass
    assert first is second and len(opened) == 1


def test_a_connection_that_saw_an_error_is_closed_not_reused(opened: list[FakeConnection]) -> None:
    pool = ConnectionPool("dsn", size=4)
    with pytest.raises(psycopg.OperationalError):
        with pool.connection():
            raise psycopg.OperationalError("link cut")
    assert opened[0].closed
    with pool.connection() as fresh:
        assert fresh is not opened[0]


def test_an_exhausted_pool_refuses_instead_of_hanging(opened: list[FakeConnection], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_service, "POOL_WAIT_S", 0.05)
    pool = ConnectionPool("dsn", size=1)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with pool.connection():
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(5)
        with pytest.raises(PoolExhausted):
            with pool.connection():
                pass
    finally:
        release.set()
        t.join()
