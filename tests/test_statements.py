"""targets.statements against the real Postgres: the order service's statements through libpq directly.

What the service relies on: row counts, typed rows, psycopg's own error classes, a transaction
whose write is invisible to others until its COMMIT (the late_commit window), a rollback on an
exception, and a pooled connection that stays usable after a statement failed inside a pipeline.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from harness.infra import postgres
from targets.domain import SCHEMA_SQL
from targets.order_service import place_sql, transition_sql
from targets.statements import RawPool

pytestmark = pytest.mark.chaos


@pytest.fixture
def dsn(chaos_infra: object) -> Iterator[str]:
    port: int = chaos_infra.topology.postgres_port  # type: ignore[attr-defined]
    name = f"statements_{uuid.uuid4().hex[:8]}"
    with postgres.connect_direct(port) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with postgres.connect_direct(port, name) as conn:
            conn.execute(SCHEMA_SQL)  # type: ignore[arg-type]
        yield f"host=127.0.0.1 port={port} user=postgres dbname={name}"
    finally:
        with postgres.connect_direct(port) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _place(order_id: str, event_id: str) -> tuple[object, ...]:
    return (order_id, "customer-7", 1234, str(uuid.uuid4()), event_id, 1, "order.created", '{"e":1}')


async def _count(dsn: str, order_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as other:
        cur = await other.execute("SELECT count(*) FROM outbox WHERE order_id = %s", (order_id,))
        row = await cur.fetchone()
        return int(row[0]) if row else -1


async def _scenario(dsn: str) -> None:
    # One connection, so every step below runs on the one the earlier steps may have spoiled.
    async with AsyncConnectionPool(dsn, min_size=1, max_size=1, kwargs={"autocommit": True}, open=False) as psy:
        pool = RawPool(psy)
        order, event = str(uuid.uuid4()), str(uuid.uuid4())
        async with pool.connection(timeout=5) as conn:
            async with conn.transaction():
                cur = await conn.execute(place_sql(True), _place(order, event))
                assert cur.rowcount == 1
                # Written and not committed: no other session sees the outbox row yet.
                assert await _count(dsn, order) == 0
            assert await _count(dsn, order) == 1

            # The same order again: ON CONFLICT writes nothing, so the CTE inserts no outbox row.
            async with conn.transaction():
                assert (await conn.execute(place_sql(True), _place(order, str(uuid.uuid4())))).rowcount == 0

            # A new order whose event id is taken: psycopg's own error class, the transaction rolled back.
            other = str(uuid.uuid4())
            with pytest.raises(psycopg.errors.UniqueViolation):
                async with conn.transaction():
                    await conn.execute(place_sql(True), _place(other, event))
            # An exception after the write (a crash point that raised, say): rolled back too.
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    assert (await conn.execute(place_sql(True), _place(other, str(uuid.uuid4())))).rowcount == 1
                    raise RuntimeError("planted")
            assert await _count(dsn, other) == 0

            # The connection is usable after all that, outside a transaction, and rows come back typed.
            cur = await conn.execute("SELECT customer, amount_cents, version, status FROM orders WHERE order_id = %s",
                                     (order,))
            assert await cur.fetchone() == ("customer-7", 1234, 1, "created")
            assert await cur.fetchone() is None
            moved = await conn.execute(transition_sql(False), ("paid", str(uuid.uuid4()), order, "created", 1))
            assert moved.rowcount == 1
        async with pool.connection(timeout=5) as conn:  # back from the pool: idle, not in a transaction
            cur = await conn.execute("SELECT status, version FROM orders WHERE order_id = %s", (order,))
            assert await cur.fetchone() == ("paid", 2)


def test_raw_statements_keep_what_the_order_service_relies_on(dsn: str) -> None:
    asyncio.run(_scenario(dsn))


class _SwallowingLink:
    """A TCP relay to Postgres that, once ``swallow`` is set, reads what either side sends and forwards nothing.

    The link a timeout toxic makes: the connection stays up and every byte is accepted, so neither
    TCP keepalives nor the server's statement_timeout ever end the client's wait.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.swallow = False
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if not self.swallow:
                    dst.write(data)
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer), return_exceptions=True)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def _swallowed(dsn: str, pg_port: int) -> None:
    link = _SwallowingLink(pg_port)
    relay_port = await link.start()
    relayed = dsn.replace(f"port={pg_port}", f"port={relay_port}")
    try:
        async with AsyncConnectionPool(relayed, min_size=1, max_size=1, kwargs={"autocommit": True}, open=False) as psy:
            pool = RawPool(psy, round_trip_s=0.5)
            order = str(uuid.uuid4())
            async with pool.connection(timeout=5) as conn:
                async with conn.transaction():
                    assert (await conn.execute(place_sql(True), _place(order, str(uuid.uuid4())))).rowcount == 1
            link.swallow = True
            # Without a deadline this waits until the link heals: wait_for makes a hang a failure, not a stuck test.
            with pytest.raises(psycopg.OperationalError, match="did not answer within 0.5 s"):
                async with pool.connection(timeout=5) as conn:
                    await asyncio.wait_for(conn.execute("SELECT status FROM orders WHERE order_id = %s", (order,)), 30)
            link.swallow = False
            # The silent connection was closed and replaced: the next request gets an answer, not a stale one.
            async with pool.connection(timeout=10) as conn:
                cur = await conn.execute("SELECT status, version FROM orders WHERE order_id = %s", (order,))
                assert await cur.fetchone() == ("created", 1)
    finally:
        await link.close()


def test_a_round_trip_on_a_silent_link_fails_within_its_deadline_and_the_pool_replaces_the_connection(
        dsn: str, chaos_infra: object) -> None:
    asyncio.run(_swallowed(dsn, chaos_infra.topology.postgres_port))  # type: ignore[attr-defined]
