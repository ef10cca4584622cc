"""Group commit: writes that wait together commit together, in one transaction of a few.

Why (issue 14): at full load the order service spent most of an order's CPU on its own
transaction, not on the order: two round trips with their event-loop bookkeeping in the
service, and in Postgres a backend woken for every BEGIN+statement and every COMMIT (172-231
µs an order, more than pgbench spends on a whole transaction). Measured against the CPU the
driver and Postgres took per order, no service with one transaction per order could reach
half of pgbench's rate on two cores. A production service with this write pattern coalesces:
what arrives while earlier writes are in flight goes out together, one statement and one
COMMIT for all of them. Postgres does the same for WAL flushes (its own group commit).

How: a request's write is queued; at most ``flushers`` batches are in flight, and whenever one
ends, the next takes everything queued (up to ``max_batch``). Nothing waits on a timer: a lone
request (every request at a scenario's rate) goes out at once, in a batch of one, through the
same single-order statement as before. Each request keeps the guarantees it had alone:

- it answers only after the transaction holding its write committed (its future resolves then);
- it waits at most ``wait_s`` for a connection, in this queue and the pool together: still
  queued then, or with no connection by then, it fails as a pool timeout did (503), never
  later, so the client's own deadline is not spent waiting here;
- a batch whose statement fails for a reason of its data (not the link) is retried one write
  at a time, so one bad order cannot fail the orders it happened to travel with;
- two writes for the same key never share a batch (the second waits for the next), so each
  write's outcome is its own (a duplicate order is still told apart from its original).

The module knows no SQL: the service passes ``write(conn, items)``, which runs one batch on a
connection and says which items it wrote.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

__all__ = ["GroupCommit", "GroupStats"]

T = TypeVar("T")
C = TypeVar("C")


C_co = TypeVar("C_co", covariant=True)

# The least a batch waits for a connection: its oldest write may be at its deadline already, and a
# free connection is lent at once whatever the timeout.
_MIN_POOL_WAIT_S = 0.01


class Lender(Protocol[C_co]):
    """What group commit needs of a pool (psycopg_pool's, the service's RawPool, a test's fake)."""

    def connection(self, timeout: float | None = None) -> AbstractAsyncContextManager[C_co]: ...


@dataclass(eq=False)
class _Pending(Generic[T]):
    item: T
    key: str
    done: asyncio.Future[bool]
    deadline: float  # loop time by which a batch must have taken it, or it fails


@dataclass
class GroupStats:
    """What a GroupCommit did so far (the order service's /health shows it; the benchmark reads the mean batch)."""

    batches: int = 0
    writes: int = 0  # writes sent in batches (a batch retried one by one counts once)
    largest: int = 0
    retried_alone: int = 0  # writes of batches refused for their data, sent again alone
    expired: int = 0  # writes no batch took within wait_s


class GroupCommit(Generic[T, C]):
    """Coalesces concurrent writes into batches of at most ``max_batch``, ``flushers`` in flight."""

    def __init__(self, pool: Lender[C], write: Callable[[C, Sequence[T]], Awaitable[Sequence[bool]]],
                 key: Callable[[T], str], *, max_batch: int, flushers: int, wait_s: float) -> None:
        if max_batch < 1 or flushers < 1 or not wait_s > 0:
            raise ValueError(f"group commit needs max_batch >= 1, flushers >= 1 and wait_s > 0; "
                             f"got {max_batch}, {flushers}, {wait_s}")
        self._pool = pool
        self._write = write
        self._key = key
        self.max_batch = max_batch
        self.flushers = flushers
        self.wait_s = wait_s
        self._queue: deque[_Pending[T]] = deque()
        self._inflight = 0
        self._expiry: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = GroupStats()
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references

    async def submit(self, item: T) -> bool:
        """Write ``item`` in some batch; True when it was written, False when ``write`` said not.

        Raises what the batch raised (a psycopg.Error: the request failed, nothing of it committed
        unless the error came after COMMIT left, as for a write of its own), or PoolTimeout
        when the item was still queued after ``wait_s``.
        """
        loop = self._loop
        if loop is None:
            # Taken once: Python 3.11's get_running_loop makes a getpid syscall each call (6 % of an
            # order's CPU here); a GroupCommit serves the one loop that first used it.
            loop = self._loop = asyncio.get_running_loop()
        pending = _Pending(item, self._key(item), loop.create_future(), loop.time() + self.wait_s)
        self._queue.append(pending)
        self._start_batches()
        if self._queue and self._expiry is None:
            self._arm(loop)
        return await pending.done

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """One timer, for the oldest queued write: deadlines are in queue order (one wait_s for all),
        so a timer per write (a heap entry per request) would only repeat this one."""
        self._expiry = loop.call_at(self._queue[0].deadline, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        while self._queue and self._queue[0].deadline <= now:
            pending = self._queue.popleft()
            if pending.done.done():
                continue
            self.stats.expired += 1
            pending.done.set_exception(PoolTimeout(
                f"no batch took this write within {self.wait_s:g} s "
                f"({self._inflight} in flight, {len(self._queue)} queued)"))
        if self._queue:
            self._arm(loop)

    def _start_batches(self) -> None:
        while self._inflight < self.flushers and self._queue:
            batch = self._take()
            if not batch:
                return
            self._inflight += 1
            assert self._loop is not None  # a batch starts only from submit() or a batch's end
            task = self._loop.create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Pending[T]]:
        batch: list[_Pending[T]] = []
        keys: set[str] = set()
        later: list[_Pending[T]] = []
        while self._queue and len(batch) < self.max_batch:
            pending = self._queue.popleft()
            if pending.done.done():
                continue  # expired, or its request cancelled
            if pending.key in keys:
                later.append(pending)  # a second write of one key: the next batch, so each has its own outcome
                continue
            keys.add(pending.key)
            batch.append(pending)
        self._queue.extendleft(reversed(later))
        return batch

    async def _flush(self, batch: list[_Pending[T]]) -> None:
        try:
            self.stats.batches += 1
            self.stats.writes += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
            try:
                written = await self._run(batch)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                _fail(batch, exc)  # the link or the pool: alone, each would have failed the same way
            except psycopg.Error as exc:
                if len(batch) == 1:
                    _fail(batch, exc)
                else:
                    await self._alone(batch)  # something in the data: find whose, fail only that one
            except BaseException as exc:  # cancelled at shutdown, or a bug: no request left waiting forever
                _fail(batch, exc)
                raise
            else:
                for pending, ok in zip(batch, written, strict=True):
                    if not pending.done.done():
                        pending.done.set_result(ok)
        finally:
            self._inflight -= 1
            self._start_batches()

    async def _run(self, batch: Sequence[_Pending[T]]) -> Sequence[bool]:
        # A write waits wait_s in all for a connection, queue and pool together, as a request waited
        # for the pool alone: a batch taken late must not wait another wait_s and answer past the
        # client's own deadline (an unknown outcome where a 503 was due).
        assert self._loop is not None
        timeout = max(min(p.deadline for p in batch) - self._loop.time(), _MIN_POOL_WAIT_S)
        async with self._pool.connection(timeout=timeout) as conn:
            written = await self._write(conn, [p.item for p in batch])
        if len(written) != len(batch):
            raise RuntimeError(f"group commit: write() answered {len(written)} outcomes for {len(batch)} items")
        return written

    async def _alone(self, batch: Sequence[_Pending[T]]) -> None:
        self.stats.retried_alone += len(batch)
        for pending in batch:
            try:
                (ok,) = await self._run([pending])
            except psycopg.Error as exc:
                _fail([pending], exc)
            else:
                if not pending.done.done():  # its request was cancelled meanwhile
                    pending.done.set_result(ok)


def _fail(batch: Sequence[_Pending[T]], exc: BaseException) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)
