"""I3 per-entity-order: each consumer applied each order's events in ``seq`` order; nothing shipped before paid.

Anomalies, named as in the report (after Jepsen's Kafka checker):
  nonmonotonic-apply   a consumer applied an event of an order after a later event (higher
                       ``seq``) of the same order; positions are the consumer's own apply order
  shipped-before-paid  the fulfillment consumer's shipment of an order took effect before that
                       consumer applied the order's ``order.paid`` event, or without it at all
  applied-past-dead-letter  a consumer dead-lettered an event of an order and then applied a
                       later event of that order (it carried on past the gap: out of order)
  split-entity         an order's events are on more than one partition of the topic, so no
                       consumer is guaranteed to see them in order (a keyless publisher)
  nonmonotonic-publish within one partition, an order's event sits at a higher offset than a
                       later event (higher ``seq``) of the same order: published out of order

The topic-level anomalies are causes a consumer may or may not have hit; they are judged
when the topic was observed. Gaps in ``seq`` are not anomalies: a consumer subscribes to
some event types only, so it sees some of an order's events. The same event twice (applied
or published again with the same id) is a duplicate, I2's business, not a reordering.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import eq, itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.checkers._arrays import dense, first_index, group_key, isin, source, unique
from harness.checkers._index import TopicIndex, applied_index, effects_index, repeated, topic_index
from harness.checkers._sources import missing, pick
from harness.checkers.anomaly import Anomaly, AnomalyKind
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chains
from harness.checkers.counts import OrderingCounts
from harness.history.ops import History

__all__ = ["PerEntityOrder"]

PAID = "order.paid"
_APPLY = itemgetter("consumer", "order_id", "seq", "event_id", "position")
_POSITION = itemgetter("position")


@dataclass(frozen=True, slots=True)
class PerEntityOrder:
    name: str = "per-entity-order"
    invariant: str | None = "I3"
    shipper: str = "fulfillment"  # the consumer whose shipments must follow payment
    shipment: str = "shipment"

    def check(self, history: History) -> CheckResult:
        unknown = missing(history, self.name, self.invariant, "applied")
        if unknown is not None:
            return unknown
        clean = _clean(history, self.shipper, self.shipment)
        if clean is not None:
            n_applied, entities, shipments, n_topic = clean
            counts = OrderingCounts(**{"applied": n_applied, "entities": entities, "nonmonotonic": 0,
                                      "shipments": shipments, "shipped_before_paid": 0,
                                      "applied_past_dead_letter": 0, "topic_records": n_topic,
                                      "split_entities": 0, "nonmonotonic_publish": 0}).as_counts()
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               f"{n_applied} applies over {entities} (consumer, order) pairs in seq order; "
                               f"{shipments} shipments all after payment; every order on one partition in order",
                               counts)
        applied = history.observed("applied")
        shipper = self.shipper
        effects = history.derived(effects_index)
        shipped = effects.orders_of.get((shipper, self.shipment), frozenset())
        topic = history.observed("topic")
        split, reordered, dead = _topic_order(history.derived(topic_index), history.observed("dlq"))
        dead_orders: dict[object, set[object]] = {}  # consumer -> orders it dead-lettered an event of
        for consumer, order in dead:
            dead_orders.setdefault(consumer, set()).add(order)
        # Only a (consumer, order) pair applied more than once can be out of order, only the
        # shipper's applies of shipped orders can say when they were paid, and only pairs with a
        # dead letter can have carried on past one: most rows are none of these.
        judged_rows: dict[object, list[Mapping[str, object]]] = {}  # consumer -> its judged rows by position
        entities = 0  # (consumer, order) pairs
        for consumer, mine in history.derived(applied_index).items():
            distinct = set(mine.order_id)
            entities += len(distinct)
            judged = dead_orders.get(consumer, set())
            if consumer == shipper:
                judged = judged | shipped
            if len(distinct) < len(mine.order_id):
                judged = judged | repeated(Counter(mine.order_id))
            if judged:
                picked = compress(mine.rows, map(judged.__contains__, mine.order_id))
                judged_rows[consumer] = sorted(map(applied.__getitem__, picked), key=_POSITION)
        rows = [r for consumer in sorted(judged_rows, key=str) for r in judged_rows[consumer]]  # by consumer, then position

        latest: dict[tuple[object, object], tuple[object, object, object]] = {}  # (consumer, order) -> seq, event, pos
        nonmonotonic: list[dict[str, object]] = []
        past_dead: list[dict[str, object]] = []
        n_nonmonotonic = n_past_dead = 0
        found: list[Anomaly] = []
        shipper_pos: dict[object, tuple[object, object]] = {}  # event_id -> (position, applied_at_ms)
        paid_pos: dict[object, tuple[object, object]] = {}  # order -> (position, applied_at_ms) of its paid event
        for r in rows:
            consumer, order, seq, event_id, position = _APPLY(r)
            key = (consumer, order)
            prev = latest.get(key)
            if prev is None or seq > prev[0]:  # type: ignore[operator]
                latest[key] = (seq, event_id, position)
            elif event_id != prev[1]:
                n_nonmonotonic += 1
                found.append(Anomaly(AnomalyKind.NONMONOTONIC_APPLY, str(order), str(consumer), str(event_id)))
                if len(nonmonotonic) < MAX_EXAMPLES:
                    nonmonotonic.append({
                        "anomaly": "nonmonotonic-apply", "consumer": key[0], "order_id": key[1],
                        "applied_first": {"event_id": prev[1], "seq": prev[0], "position": prev[2]},
                        "applied_later": {"event_id": event_id, "seq": seq, "position": position,
                                          "type": r.get("type")},
                    })
            gap = dead.get(key)
            if gap is not None and seq > gap[0]:  # type: ignore[operator]
                n_past_dead += 1
                found.append(Anomaly(AnomalyKind.APPLIED_PAST_DEAD_LETTER, str(order), str(consumer), str(event_id)))
                if len(past_dead) < MAX_EXAMPLES:
                    past_dead.append({
                        "anomaly": "applied-past-dead-letter", "consumer": key[0], "order_id": key[1],
                        "dead_lettered": {"event_id": gap[1], "seq": gap[0], "reason": gap[2]},
                        "applied_later": {"event_id": event_id, "seq": seq, "position": position},
                    })
            if consumer == shipper and order in shipped:
                where = (position, r.get("applied_at_ms"))
                shipper_pos.setdefault(event_id, where)
                if r.get("type") == PAID:
                    paid_pos.setdefault(order, where)

        shipped_early: list[dict[str, object]] = []
        n_shipped_early = shipments = 0
        # The shipper's shipments, picked in C: they are one effect in eight.
        is_shipment = map(eq, zip(effects.consumer, effects.kind), repeat((shipper, self.shipment)))
        effect_rows = history.observed("effects")  # row views of the shipments only, not of every effect
        for e in map(effect_rows.__getitem__, compress(range(len(effect_rows)), is_shipment)):
            shipments += 1
            order = e["order_id"]
            paid = paid_pos.get(order)
            own = shipper_pos.get(e.get("event_id"))
            if paid is not None and own is not None:
                early = paid[0] > own[0]  # type: ignore[operator]
            elif paid is not None:  # the shipment's own event left no record: compare times instead
                early = _before(e.get("applied_at_ms"), paid[1])
            else:
                early = True
            if early:
                n_shipped_early += 1
                found.append(Anomaly(AnomalyKind.SHIPPED_BEFORE_PAID, str(order), shipper,
                                     None if e.get("event_id") is None else str(e.get("event_id"))))
                if len(shipped_early) < MAX_EXAMPLES:
                    shipped_early.append({
                        "anomaly": "shipped-before-paid", "consumer": shipper, "order_id": order,
                        "shipment": {"event_id": e.get("event_id"), "position": own[0] if own else None,
                                     "applied_at_ms": e.get("applied_at_ms")},
                        "paid_applied": {"position": paid[0], "applied_at_ms": paid[1]} if paid else None,
                    })

        counts = OrderingCounts(**{"applied": len(applied), "entities": entities, "nonmonotonic": n_nonmonotonic,
                                  "shipments": shipments, "shipped_before_paid": n_shipped_early,
                                  "applied_past_dead_letter": n_past_dead, "topic_records": len(topic),
                                  "split_entities": len(split), "nonmonotonic_publish": len(reordered)}).as_counts()
        if not (n_nonmonotonic or n_shipped_early or n_past_dead or split or reordered):
            if "effects" not in history.observations:  # the applies are in order; shipments unseen
                return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                                   "applies are in seq order, but without an effects observation no shipment "
                                   "could be checked against its payment", counts)
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               f"{len(applied)} applies over {entities} (consumer, order) pairs in seq order; "
                               f"{shipments} shipments all after payment; every order on one partition in order",
                               counts)
        found += [Anomaly(AnomalyKind.SPLIT_ENTITY, str(x["order_id"])) for x in split]
        found += [Anomaly(AnomalyKind.NONMONOTONIC_PUBLISH, str(x["order_id"])) for x in reordered]
        examples = pick(nonmonotonic, shipped_early, past_dead, split[:MAX_EXAMPLES], reordered[:MAX_EXAMPLES],
                        limit=MAX_EXAMPLES)
        chains = order_chains(history, {str(x["order_id"]) for x in examples})
        for x in examples:
            x["chain"] = chains[str(x["order_id"])]
        summary = ", ".join(f"{n} {name}" for name, n in (
            ("nonmonotonic-apply", n_nonmonotonic), ("shipped-before-paid", n_shipped_early),
            ("applied-past-dead-letter", n_past_dead), ("split-entity", len(split)),
            ("nonmonotonic-publish", len(reordered))) if n)
        return CheckResult(self.name, self.invariant, Validity.INVALID, summary, counts, tuple(examples), tuple(found))


def _clean(history: History, shipper: str, shipment: str) -> tuple[int, int, int, int] | None:
    """(applies, (consumer, order) pairs, shipments, topic records) when the columns prove every order
    applied and published in seq order and every shipment after its payment; None when they do not, or
    cannot be read as arrays (then the Python path decides and shows why; see _arrays.py)."""
    applied, effects, topic = source(history, "applied"), source(history, "effects"), source(history, "topic")
    if applied is None or effects is None or topic is None:
        return None
    dlq = source(history, "dlq")
    if dlq is not None:
        dead = dlq.str_codes("event_id")
        if dead is None or (dead >= 0).any():
            return None  # a dead-lettered event: what was applied after it is the Python path's to judge
    consumer, order, event = (applied.str_codes(n, required=True) for n in ("consumer", "order_id", "event_id"))
    type_ = applied.str_codes("type")
    seq, position = applied.ints("seq"), applied.ints("position")
    e_consumer, e_kind, e_order = (effects.str_codes(n, required=True) for n in ("consumer", "kind", "order_id"))
    e_event = effects.str_codes("event_id")
    if (consumer is None or order is None or event is None or type_ is None or seq is None or position is None
            or e_consumer is None or e_kind is None or e_order is None or e_event is None):
        return None
    pair = group_key(consumer, order)
    entities = len(unique(pair))
    # Applies: within each (consumer, order), by position, no event after one of a higher seq.
    rows = np.lexsort((np.arange(applied.n), position, pair))
    if _steps_back(pair[rows], seq[rows], event[rows]):
        return None
    # Shipments: each after the shipper applied its order's payment.
    code = applied.frame.code
    is_shipment = (e_consumer == code(shipper)) & (e_kind == code(shipment))
    shipments = int(np.count_nonzero(is_shipment))
    if shipments:
        shipped = unique(e_order[is_shipment])
        mine = (consumer == code(shipper)) & isin(order, shipped)
        paid_at = _first_position(order[mine & (type_ == code(PAID))], position[mine & (type_ == code(PAID))])
        own_at = _first_position(event[mine], position[mine])
        paid = _lookup(paid_at, e_order[is_shipment])
        own = _lookup(own_at, e_event[is_shipment])
        if paid is None or own is None or (paid > own).any():
            return None
    # The topic: each order on one partition, its events at offsets in seq order.
    t_event, t_order = topic.str_codes("event_id"), topic.str_codes("order_id")
    if t_event is None or t_order is None:
        return None
    named = np.flatnonzero((t_event >= 0) & (t_order >= 0))  # records that are events (not poison)
    partition, offset, t_seq = (topic.ints(n, named) for n in ("partition", "offset", "seq"))
    if partition is None or offset is None or t_seq is None:
        return None
    _, first = first_index(t_event[named])
    kept = named[np.sort(first)]  # a redelivered event counts once, at its first copy
    by_order = kept[np.lexsort((kept, t_order[kept]))]
    groups = t_order[by_order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]]) if len(groups) else np.zeros(0, dtype=np.intp)
    if (partition[by_order] != np.repeat(partition[by_order][starts], np.diff(np.r_[starts, len(groups)]))).any():
        return None
    if _inversions(groups, offset[by_order], t_seq[by_order]):
        return None
    return applied.n, entities, shipments, topic.n


def _holders(groups: npt.NDArray[Any], values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Per row (rows sorted by group): whether it starts its group or raises the group's maximum of
    ``values`` strictly, and the row holding that maximum up to it (the first to reach it)."""
    n = len(groups)
    start = np.r_[True, groups[1:] != groups[:-1]] if n else np.zeros(0, dtype=np.bool_)
    ranks, width = dense(values)
    scaled = np.cumsum(start).astype(np.int64) * (width + 1) + ranks  # groups never mix in a running max
    before = np.maximum.accumulate(scaled)
    rises = start.copy()
    rises[1:] |= scaled[1:] > before[:-1]
    holder = np.maximum.accumulate(np.where(rises, np.arange(n), 0))
    return rises, holder


def _steps_back(groups: npt.NDArray[Any], seq: npt.NDArray[Any], event: npt.NDArray[Any]) -> bool:
    """Whether some row has a seq no higher than an earlier row of its group with another event."""
    if len(groups) < 2:
        return False
    rises, holder = _holders(groups, seq)
    j = np.flatnonzero(~rises)
    return bool((event[j] != event[holder[j - 1]]).any())


def _inversions(groups: npt.NDArray[Any], offset: npt.NDArray[Any], seq: npt.NDArray[Any]) -> bool:
    """Whether some record sits, against the group's latest record so far, in the other order by seq
    than by offset (``_inverted``)."""
    if len(groups) < 2:
        return False
    start = np.r_[True, groups[1:] != groups[:-1]]
    _, holder = _holders(groups, offset)
    j = np.flatnonzero(~start)
    a = holder[j - 1]
    return bool((((offset[a] < offset[j]) != (seq[a] < seq[j])) & (seq[a] != seq[j])).any())


def _first_position(keys: npt.NDArray[Any], position: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(distinct keys sorted, the lowest position of each)."""
    rows = np.lexsort((position, keys))
    distinct, first = first_index(keys[rows])
    return distinct, position[rows][first]


def _lookup(table: tuple[npt.NDArray[Any], npt.NDArray[Any]], keys: npt.NDArray[Any]) -> npt.NDArray[Any] | None:
    """The value of each key; None if some key has none."""
    distinct, values = table
    if not len(distinct):
        return None if len(keys) else values
    at = np.minimum(np.searchsorted(distinct, keys), len(distinct) - 1)
    if not (distinct[at] == keys).all():
        return None
    return values[at]  # type: ignore[no-any-return]


def _topic_order(topic: TopicIndex, dlq: Sequence[Mapping[str, object]]) -> tuple[
        list[dict[str, object]], list[dict[str, object]], dict[tuple[object, object], tuple[object, object, object]]]:
    """Orders split over partitions, orders published out of seq order, and each consumer's
    dead-lettered events: (consumer, order) -> (lowest dead-lettered seq, its event id, reason)."""
    wanted: dict[object, list[Mapping[str, object]]] = {}
    for r in dlq:
        if r.get("event_id") is not None:
            wanted.setdefault(r["event_id"], []).append(r)
    seqs: dict[object, object] = {}
    seen: set[object] = set()
    first: dict[object, tuple[object, object, object, object]] = {}  # order -> partition, offset, seq, event id
    split: dict[object, dict[str, object]] = {}
    reordered: dict[object, dict[str, object]] = {}
    redelivered = topic.redelivered
    for eid, order, seq, partition, offset in zip(topic.event_id, topic.order_id, topic.seq, topic.partition,
                                                  topic.offset):
        if eid is None or order is None:
            continue
        if eid in redelivered:  # only its first copy counts: another is a redelivery (I2), not a reordering
            if eid in seen:
                continue
            seen.add(eid)
        if eid in wanted:
            seqs[eid] = seq
        here = (partition, offset, seq, eid)
        prev = first.get(order)
        if prev is None:
            first[order] = here
        elif prev[0] != here[0]:
            if order not in split:
                split[order] = {"anomaly": "split-entity", "order_id": order,
                                "partitions": sorted({str(prev[0]), str(here[0])})}
        elif _inverted(prev, here):  # prev is another event: this one was not seen before
            if order not in reordered:
                reordered[order] = {"anomaly": "nonmonotonic-publish", "order_id": order, "partition": here[0],
                                    "records": [{"offset": x[1], "seq": x[2], "event_id": x[3]}
                                                for x in sorted((prev, here), key=lambda x: str(x[1]).zfill(20))]}
        elif _later(here, prev):
            first[order] = here
    dead: dict[tuple[object, object], tuple[object, object, object]] = {}
    for dead_id, rows in wanted.items():
        dead_seq = seqs.get(dead_id)
        for row in rows:
            key = (row.get("consumer"), row.get("order_id"))
            if isinstance(dead_seq, int) and (key not in dead or dead_seq < dead[key][0]):  # type: ignore[operator]
                dead[key] = (dead_seq, dead_id, row.get("reason"))
    return list(split.values()), list(reordered.values()), dead


def _later(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return isinstance(a[1], int) and isinstance(b[1], int) and a[1] > b[1]


def _inverted(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Two distinct events of one order in one partition whose offsets and seqs disagree."""
    a_offset, a_seq, b_offset, b_seq = a[1], a[2], b[1], b[2]
    # Called for most records: plain ``and`` rather than all() over a generator, which costs more than the test.
    if not (isinstance(a_offset, int) and isinstance(b_offset, int) and isinstance(a_seq, int)
            and isinstance(b_seq, int)):
        return False
    return (a_offset < b_offset) != (a_seq < b_seq) and a_seq != b_seq


def _before(a: object, b: object) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and a < b
