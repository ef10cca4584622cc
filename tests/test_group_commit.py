"""Group commit (targets.group_commit) over a fake pool: what each write is promised, whatever it travels with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from targets.group_commit import GroupCommit


class Pool:
    """Lends one fake connection; each batch waits for ``gate`` (when set) before it is written."""

    def __init__(self) -> None:
        self.gate: asyncio.Event | None = None
        self.batches: list[list[str]] = []
        self.bad: set[str] = set()  # items whose data fails the statement
        self.link_down = False
        self.timeouts: list[float | None] = []  # what each batch allowed itself to wait for a connection

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Pool]:
        self.timeouts.append(timeout)
        yield self

    async def write(self, conn: Pool, items: Sequence[str]) -> list[bool]:
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        if self.link_down:
            raise psycopg.OperationalError("link cut")
        if self.bad & set(items):
            raise psycopg.errors.NumericValueOutOfRange("value out of range for type bigint")
        return [not item.startswith("dup") for item in items]


def _group(pool: Pool, max_batch: int = 64, wait_s: float = 3.0) -> GroupCommit[str, Pool]:
    return GroupCommit(pool, pool.write, lambda item: item.split(":")[0], max_batch=max_batch, flushers=1, wait_s=wait_s)


async def _behind_a_held_batch(pool: Pool, group: GroupCommit[str, Pool], items: list[str]) -> list[object]:
    """``items`` submitted while a first write is in flight and held: they queue, then go as the queue allows."""
    pool.gate = asyncio.Event()
    first = asyncio.ensure_future(group.submit("first"))
    await asyncio.sleep(0)  # the first batch starts and waits on the gate
    rest = [asyncio.ensure_future(group.submit(item)) for item in items]
    await asyncio.sleep(0)
    pool.gate.set()
    return list(await asyncio.gather(first, *rest, return_exceptions=True))


def test_a_lone_write_goes_at_once_in_a_batch_of_one() -> None:
    pool = Pool()
    assert asyncio.run(_group(pool).submit("a")) is True
    assert pool.batches == [["a"]]


def test_writes_that_wait_together_commit_together_up_to_max_batch() -> None:
    pool = Pool()
    outcomes = asyncio.run(_behind_a_held_batch(pool, _group(pool, max_batch=4), [f"o{i}" for i in range(10)] + ["dup9"]))
    assert outcomes == [True] * 11 + [False]
    assert pool.batches == [["first"], ["o0", "o1", "o2", "o3"], ["o4", "o5", "o6", "o7"], ["o8", "o9", "dup9"]]


def test_two_writes_of_one_key_never_share_a_batch() -> None:
    pool = Pool()
    outcomes = asyncio.run(_behind_a_held_batch(pool, _group(pool), ["x:1", "x:2", "y:1"]))
    assert outcomes == [True] * 4
    assert pool.batches == [["first"], ["x:1", "y:1"], ["x:2"]]


def test_a_bad_write_fails_alone_and_its_batch_is_retried_one_by_one() -> None:
    pool = Pool()
    pool.bad = {"bad"}
    group = _group(pool)
    outcomes = asyncio.run(_behind_a_held_batch(pool, group, ["a", "bad", "b"]))
    assert outcomes[:2] == [True, True] and outcomes[3] is True
    assert isinstance(outcomes[2], psycopg.errors.NumericValueOutOfRange)
    assert pool.batches == [["first"], ["a", "bad", "b"], ["a"], ["bad"], ["b"]]
    assert group.stats.retried_alone == 3


def test_a_link_failure_fails_the_whole_batch_without_retrying() -> None:
    pool = Pool()
    pool.link_down = True
    outcomes = asyncio.run(_behind_a_held_batch(pool, _group(pool), ["a", "b"]))
    assert all(isinstance(o, psycopg.OperationalError) for o in outcomes)
    assert pool.batches == [["first"], ["a", "b"]]


def test_a_write_still_queued_after_wait_s_fails_as_a_pool_timeout_would() -> None:
    async def scenario() -> tuple[object, Pool, GroupCommit[str, Pool]]:
        pool = Pool()
        pool.gate = asyncio.Event()  # the first batch hangs (a silent link) until released
        group = _group(pool, wait_s=0.05)
        first = asyncio.ensure_future(group.submit("first"))
        await asyncio.sleep(0)
        with pytest.raises(PoolTimeout, match="no batch took this write within 0.05 s"):
            await group.submit("queued")
        pool.gate.set()
        return await first, pool, group

    first, pool, group = asyncio.run(scenario())
    assert first is True  # the write in flight is not touched by the queue's deadline
    assert pool.batches == [["first"]] and group.stats.expired == 1  # the expired write was never sent


def test_a_batch_taken_late_waits_for_a_connection_only_what_is_left_of_its_oldest_write_s_wait() -> None:
    async def scenario() -> Pool:
        pool = Pool()
        pool.gate = asyncio.Event()
        group = _group(pool, wait_s=1.0)
        first = asyncio.ensure_future(group.submit("first"))
        await asyncio.sleep(0)
        queued = asyncio.ensure_future(group.submit("queued"))
        await asyncio.sleep(0.3)  # the queued write has spent 0.3 s of its 1 s in the queue
        pool.gate.set()
        assert await asyncio.gather(first, queued) == [True, True]
        return pool

    pool = asyncio.run(scenario())
    first, late = pool.timeouts
    assert first is not None and first > 0.9  # taken at once: its whole wait
    assert late is not None and late <= 0.7  # not another second: 503 before the client's deadline, as before


def test_its_bounds_are_checked() -> None:
    pool = Pool()
    for bad in ({"max_batch": 0, "flushers": 1, "wait_s": 1.0}, {"max_batch": 1, "flushers": 0, "wait_s": 1.0},
                {"max_batch": 1, "flushers": 1, "wait_s": float("nan")}):
        with pytest.raises(ValueError, match="group commit needs"):
            GroupCommit(pool, pool.write, str, **bad)  # type: ignore[arg-type]
