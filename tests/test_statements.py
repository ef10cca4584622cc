"""targets.statements against the real Postgres: the order service's statements through libpq directly.

What the service relies on: row counts, typed rows, psycopg's own error classes, a transaction
whose write is invisible to others until its COMMIT (the late_commit window), a rollback on an
exception, and a pooled connection that stays usable after a statement failed inside a pipeline.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import msgspec
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from harness.infra import postgres
from targets.domain import SCHEMA_SQL, TargetEnv, decode_event
from targets.order_service import OrderService, place_sql, transition_sql
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


def _service_env(mode: str, dsn: str) -> TargetEnv:
    return TargetEnv(pipeline=mode, pg_dsn=dsn, kafka="", topic="orders", group="", http_port=0, dlq_topic="",
                     variant="correct", mode=mode)


async def _grouped(dsn: str, mode: str) -> tuple[OrderService, list[tuple[int, dict[str, object]]], list[str]]:
    """40 places at once (a duplicate, a customer name an array literal must quote, an amount Postgres refuses)
    through the service's group commit, flushed in two transactions at a time on the real Postgres."""
    async with AsyncConnectionPool(dsn, min_size=2, max_size=4, kwargs={"autocommit": True}, open=False) as psy:
        service = OrderService(_service_env(mode, dsn), RawPool(psy), None, max_batch=16)
        orders = [str(uuid.uuid4()) for _ in range(38)]
        bodies = [{"order_id": o, "customer": "c-" + o[:4], "amount_cents": 100 + i} for i, o in enumerate(orders)]
        bodies[5]["customer"] = 'a "quoted", {braced} back\\slash, NULL'
        bodies.append({"order_id": orders[7], "customer": "again", "amount_cents": 1})  # a second place of one order
        bodies.append({"order_id": str(uuid.uuid4()), "customer": "too rich", "amount_cents": 10**19})  # not a bigint
        answers = await asyncio.gather(*(service.handle("POST", "/orders", msgspec.json.encode(b)) for b in bodies))
        return service, list(answers), orders


@pytest.mark.parametrize("mode", ["outbox", "commit_only"])
def test_group_commit_writes_each_order_once_and_fails_only_the_bad_one(dsn: str, mode: str) -> None:
    service, answers, orders = asyncio.run(_grouped(dsn, mode))
    assert [status for status, _ in answers] == [201] * 38 + [409, 503]
    assert service.places is not None and service.places.stats.largest > 1  # they did travel together
    assert service.places.stats.retried_alone > 1  # the refused amount's batch went again, one by one
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = dict(conn.execute("SELECT order_id::text, customer FROM orders").fetchall())
        events = conn.execute("SELECT order_id::text, payload FROM outbox").fetchall()
    assert sorted(rows) == sorted(orders)
    assert rows[orders[5]] == 'a "quoted", {braced} back\\slash, NULL'  # the array literal kept it exactly
    if mode == "outbox":
        assert sorted(o for o, _ in events) == sorted(orders)  # one event per order, none for the duplicate
        by_order = {o: decode_event(p.encode()) for o, p in events}
        assert all(by_order[o].correlation_id == body["correlation_id"] for o, (_, body) in zip(orders, answers))
    else:
        assert events == []
