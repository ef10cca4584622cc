"""Prepared statements run straight on a pooled psycopg connection's libpq handle.

Why (issue 14, measured with py-spy and /proc CPU): psycopg's ``AsyncConnection.execute`` and
``transaction()`` spent 340-490 µs of client CPU per outbox write (BEGIN, the statement, COMMIT:
a cursor, query conversion, the prepare bookkeeping, the generic wait loop each time); this
module spends about 195 µs on the same write, 32 tasks on one pool either way. psycopg's
pipeline mode was slower still. The order service runs four fixed statements, so this module does what
psycopg's C layer (``psycopg.pq``, from psycopg-binary) allows directly: each statement is
prepared once per connection and then sent with ``send_query_prepared`` and text parameters,
and the one socket is waited on with the event loop's reader. The connection stays psycopg's:
the pool opens, checks and discards it as before, errors are psycopg's own exception classes
(``UniqueViolation`` stays a ``UniqueViolation``), and a broken connection raises
``OperationalError`` and reads as broken to the pool.

Every round trip has a deadline (``ROUND_TRIP_S``): the server's statement_timeout bounds a
statement it is running, TCP keepalives a link that drops packets, but neither ends a wait on a
link that swallows the bytes and stays up (a Toxiproxy timeout toxic, a hung proxy). Past the
deadline the connection is closed, so a late answer is never read as another statement's and the
pool replaces it, and the request fails with ``OperationalError``.

``RawConnection`` keeps the service's ``Connection`` shape (``execute`` and ``transaction``),
so the service's code and its fakes do not change. Its transaction sends ``BEGIN`` in the same
round trip as the first statement (libpq's pipeline mode), and ``COMMIT`` as a round trip of
its own: the boundary between the write and the commit that the late_commit scenario and the
``app.before_commit`` crash point need stays, and costs one round trip instead of two.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

__all__ = ["RawConnection", "RawPool", "Rows"]

_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_PLACEHOLDER = re.compile(r"%s")

# Above the service's statement_timeout (5 s, targets.domain.pg_connect_kwargs), so a slow statement
# is reported by the server; a link that never answers ends here.
ROUND_TRIP_S = 7.0

# Statement text -> its name and its $n form; shared by every connection (the SQL is fixed).
_NAMES: dict[str, tuple[bytes, bytes]] = {}
# Which statements each live connection has prepared; a connection the pool drops takes its set along.
_PREPARED: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], set[bytes]] = weakref.WeakKeyDictionary()


def _named(sql: str) -> tuple[bytes, bytes]:
    named = _NAMES.get(sql)
    if named is None:
        counter = iter(range(1, 1000))
        text = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)
        named = _NAMES[sql] = (f"chaos_stmt_{len(_NAMES)}".encode(), text.encode())
    return named


def _param(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode()


class Rows:
    """What a statement returned: its row count and its rows as text (what ``fetchone`` gives the service)."""

    __slots__ = ("rowcount", "_rows")

    def __init__(self, result: pq.abc.PGresult) -> None:
        self.rowcount = result.command_tuples if result.command_tuples is not None else -1
        ints = [result.ftype(c) in _INT_OIDS for c in range(result.nfields)]
        self._rows = [tuple(_value(result.get_value(r, c), ints[c]) for c in range(result.nfields))
                      for r in range(result.ntuples)]

    async def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None


_INT_OIDS = frozenset({20, 21, 23})  # int8, int2, int4: what the service reads as numbers; the rest is text


def _value(value: bytes | None, integer: bool) -> int | str | None:
    if value is None:
        return None
    return int(value) if integer else value.decode()


def _leave_pipeline(pg: pq.abc.PGconn) -> None:
    """Out of pipeline mode; if results are still owed (a broken link, a cancelled request), closed.

    A connection left in pipeline mode must not be lent again: closed, the pool replaces it.
    After a statement's error every result has been read, and the connection stays.
    """
    try:
        pg.exit_pipeline_mode()
    except psycopg.OperationalError:
        pg.finish()


class RawConnection:
    """A pooled psycopg connection driven through libpq: ``execute`` and ``transaction``, as the service uses them."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], round_trip_s: float = ROUND_TRIP_S) -> None:
        self._conn = conn
        self._pg = conn.pgconn
        self._begin_pending = False
        self._round_trip_s = round_trip_s

    async def execute(self, query: str, params: Sequence[object]) -> Rows:
        pg = self._pg
        name, text = _named(query)
        prepared = _PREPARED.get(self._conn)
        if prepared is None:
            prepared = _PREPARED[self._conn] = set()
        values = [_param(v) for v in params]
        begin, self._begin_pending = self._begin_pending, False
        if name not in prepared:
            # Once per connection and statement: its own round trip, outside any pipeline.
            pg.send_prepare(name, text)
            await self._results()
            prepared.add(name)
        if begin:
            # BEGIN and the statement leave together and come back together: one round trip.
            pg.enter_pipeline_mode()
            try:
                pg.send_query_params(b"BEGIN", None)
                pg.send_query_prepared(name, values)
                pg.pipeline_sync()
                _, result = await self._results(pipeline=True)
            finally:
                _leave_pipeline(pg)
        else:
            pg.send_query_prepared(name, values)
            (result,) = await self._results()
        return Rows(result)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """BEGIN goes out with the first statement; COMMIT (or ROLLBACK on an exception) is its own round trip."""
        self._begin_pending = True
        try:
            yield
        except BaseException:
            if self._begin_pending:  # nothing was sent: no transaction to end
                self._begin_pending = False
                raise
            if self._pg.status == pq.ConnStatus.OK:
                self._pg.send_query(b"ROLLBACK")
                await self._results()
            raise
        if self._begin_pending:
            self._begin_pending = False
            return
        self._pg.send_query(b"COMMIT")
        await self._results()

    async def _results(self, pipeline: bool = False) -> list[pq.abc.PGresult]:
        """Flush what was sent, then read its results: one statement's, or a pipeline's up to its sync.

        The first failed statement's error is raised once everything sent has been read, so the
        connection is left between statements whatever happened. No answer within the round trip's
        deadline: the connection is closed (the pool discards it) and ``OperationalError`` raised.
        """
        try:
            async with asyncio.timeout(self._round_trip_s):
                return await self._exchange(pipeline)
        except TimeoutError:
            self._pg.finish()  # whatever arrives later must not be read as another statement's answer
            raise psycopg.OperationalError(
                f"Postgres did not answer within {self._round_trip_s:g} s: connection closed, the pool replaces it"
            ) from None

    async def _exchange(self, pipeline: bool) -> list[pq.abc.PGresult]:
        pg = self._pg
        while pg.flush():  # 1: the socket took part of it; wait until it takes the rest
            await self._ready(write=True)
        # The answer cannot be in yet: wait for it before the first read, not after a read that
        # finds nothing (a recv syscall saved per round trip). Later reads happen only while libpq
        # says the next result is not complete in what it already holds.
        await self._ready()
        pg.consume_input()
        results: list[pq.abc.PGresult] = []
        error: pq.abc.PGresult | None = None
        while True:
            while pg.is_busy():
                await self._ready()
                pg.consume_input()
            result = pg.get_result()
            if result is None:  # the end of one statement's results
                if pipeline:
                    continue  # the next statement's, up to the sync
                break
            if result.status == _SYNC:
                break
            if result.status == pq.ExecStatus.PIPELINE_ABORTED:
                continue  # skipped because an earlier statement of the pipeline failed: that one is reported
            if result.status not in _OK and error is None:
                error = result
            results.append(result)
        if error is not None:
            raise error_from_result(error, encoding=self._conn.info.encoding)
        return results

    def _ready(self, write: bool = False) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        fd = self._pg.socket
        ready: asyncio.Future[None] = loop.create_future()

        def fire() -> None:
            (loop.remove_writer if write else loop.remove_reader)(fd)
            if not ready.done():
                ready.set_result(None)

        (loop.add_writer if write else loop.add_reader)(fd, fire)

        def cancelled(f: asyncio.Future[None]) -> None:
            # A cancelled wait (the request's task cancelled at shutdown) must not leave the fd watched.
            if f.cancelled():
                (loop.remove_writer if write else loop.remove_reader)(fd)

        ready.add_done_callback(cancelled)
        return ready


class RawPool:
    """psycopg_pool.AsyncConnectionPool lending ``RawConnection``s: the service's ``Pool`` protocol."""

    def __init__(self, pool: Any, round_trip_s: float = ROUND_TRIP_S) -> None:
        self._pool = pool
        self._round_trip_s = round_trip_s

    def connection(self, timeout: float | None = None) -> AbstractAsyncContextManager[RawConnection]:
        return self._lend(timeout)

    @asynccontextmanager
    async def _lend(self, timeout: float | None) -> AsyncIterator[RawConnection]:
        # getconn/putconn rather than pool.connection(): that one also enters the connection's own
        # context, a commit (or rollback) call and a lock per request that an autocommit connection
        # left idle does not need. putconn still rolls back a connection returned inside a
        # transaction and replaces a broken one.
        conn = await self._pool.getconn(timeout=timeout)
        try:
            yield RawConnection(conn, self._round_trip_s)
        finally:
            await self._pool.putconn(conn)
