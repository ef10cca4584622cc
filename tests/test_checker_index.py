"""The indexes the checkers share: built once per history, and the same as reading the rows."""

from __future__ import annotations

import gc
import weakref
from types import MappingProxyType

import pytest

from harness.analysis import CHECKERS
from harness.checkers import _index
from harness.checkers.base import Validity, run_checker
from harness.history.ops import History, OpType
from harness.history.store import bulk
from harness.history.table import Table
from harness.testing import HistoryBuilder


def shop() -> History:
    """Three orders through all four consumers, with a redelivery, a dead letter and a poison record."""
    h = HistoryBuilder().consumers("payment", "inventory", "fulfillment", "notification")
    h.flow("o1", ("place", "pay", "ship"), amount_cents=1200).flow("o2", ("place", "pay"), amount_cents=800)
    h.flow("o3", ("place", "pay"), outcomes={"pay": OpType.INFO})
    h.redeliver("o1/2").dead_letter("fulfillment", "o1/3")
    h.topic("x", "order.created", 1, payload="not json", undecodable=True)
    return h.build()


def test_an_index_is_built_once_per_history_and_is_no_part_of_its_value() -> None:
    h = shop()
    built: list[History] = []

    def size(history: History) -> int:
        built.append(history)
        return len(history.ops)

    assert h.derived(size) == h.derived(size) == len(h.ops)
    assert built == [h]
    twin = History(h.pipeline, h.ops, h.observations)
    assert twin == h and repr(twin) == repr(h)
    assert twin.derived(size) == len(h.ops) and len(built) == 2


@pytest.mark.parametrize("lacking", [(), (0,), (2,), (4,), (1, 3), (0, 1, 2, 3, 4)])
def test_column_reads_what_get_reads_whichever_rows_lack_the_field(lacking: tuple[int, ...]) -> None:
    rows = tuple(MappingProxyType({"b": i} if i in lacking else {"a": i, "b": i}) for i in range(5))
    assert _index.column(rows, "a") == tuple(r.get("a") for r in rows)
    absent = object()
    assert _index.column(rows, "a", absent) == tuple(r.get("a", absent) for r in rows)
    assert _index.column((), "a") == ()
    table = Table.from_rows(rows)  # an observation's rows: the stored column, the same values
    assert _index.column(table, "a") == _index.column(rows, "a")
    assert _index.column(table, "a", absent) == _index.column(rows, "a", absent)
    assert _index.required_column(table, "b") == _index.required_column(rows, "b") == tuple(range(5))
    if lacking:
        for either in (rows, table):
            with pytest.raises(KeyError):
                _index.required_column(either, "a")


def test_the_indexes_hold_what_the_rows_say() -> None:
    h = shop()
    ops = _index.ops_by_role(h)
    assert {t: [op.index for op in ops.client[t]] for t in OpType} == {
        t: [op.index for op in h.ops if op.process.startswith("client") and op.type is t] for t in OpType}
    assert [op.index for op in ops.completions] == [
        op.index for op in h.ops if op.process.startswith("client") and op.type is not OpType.INVOKE]
    acks = _index.acknowledged_index(h)
    oks = ops.client[OpType.OK]
    assert acks.key == tuple(op.key for op in oks) and acks.f == tuple(op.f for op in oks)
    assert acks.correlation_id == tuple(op.value.get("correlation_id") for op in oks)

    effects = h.observed("effects")
    index = _index.effects_index(h)
    assert (index.consumer, index.kind, index.order) == tuple(
        tuple(e[f] for e in effects) for f in ("consumer", "kind", "order_id"))
    orders_of: dict[tuple[object, object], set[object]] = {}
    for e in effects:
        orders_of.setdefault((e["consumer"], e["kind"]), set()).add(e["order_id"])
    assert {step: set(orders) for step, orders in index.orders_of.items()} == orders_of
    assert index.steps == len({(e["consumer"], e["kind"], e["order_id"]) for e in effects})

    applied = h.observed("applied")
    by_consumer = _index.applied_index(h)
    assert list(by_consumer) == list(dict.fromkeys(r["consumer"] for r in applied))
    for consumer, mine in by_consumer.items():
        rows = [r for r in applied if r["consumer"] == consumer]
        assert [applied[i] for i in mine.rows] == rows
        assert mine.order_id == tuple(r["order_id"] for r in rows)
        assert mine.events == {r["event_id"] for r in rows}

    topic = _index.topic_index(h)
    for field in ("event_id", "order_id", "type", "seq", "partition", "offset", "undecodable"):
        assert getattr(topic, field) == tuple(r.get(field) for r in h.observed("topic")), field
    assert topic.redelivered == {"o1/2": 1}


def test_checking_twice_or_with_indexes_already_built_gives_the_same_results() -> None:
    h = shop()
    first = [run_checker(c, h).to_json() for c in CHECKERS]
    assert [run_checker(c, h).to_json() for c in CHECKERS] == first
    fresh = History(h.pipeline, h.ops, h.observations)
    assert [run_checker(c, fresh).to_json() for c in reversed(CHECKERS)][::-1] == first


def test_an_effect_row_without_its_kind_leaves_the_checkers_of_effects_unknown() -> None:
    h = HistoryBuilder().consumers("payment").flow("o1").row("effects", consumer="payment", order_id="o1").build()
    results = {c.name: run_checker(c, h) for c in CHECKERS}
    for name in ("no-lost-effect", "exactly-once-effect", "per-entity-order", "trace-complete"):
        assert results[name].validity is Validity.UNKNOWN, name
        assert "KeyError" in results[name].message


def test_bulk_moves_what_it_made_to_the_oldest_generation_and_still_frees_cycles() -> None:
    class Node:
        pass

    assert gc.isenabled()
    with bulk():
        assert not gc.isenabled()
        made = [[] for _ in range(10)]
        cycle = Node()
        cycle.me = cycle  # type: ignore[attr-defined]
        gone = weakref.ref(cycle)
        del cycle
    assert gc.isenabled()
    assert any(o is made for o in gc.get_objects(generation=2))
    gc.collect()
    assert gone() is None


def test_bulk_leaves_what_someone_else_froze_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with bulk():
            [[] for _ in range(10)]
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
