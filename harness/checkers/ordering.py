"""I3 per-entity-order: each consumer applied each order's events in ``seq`` order; nothing shipped before paid.

Anomalies, named as in the report (after Jepsen's Kafka checker):
  nonmonotonic-apply   a consumer applied an event of an order after a later event (higher
                       ``seq``) of the same order; positions are the consumer's own apply order
  shipped-before-paid  the fulfillment consumer's shipment of an order took effect before that
                       consumer applied the order's ``order.paid`` event, or without it at all

Gaps in ``seq`` are not anomalies: a consumer subscribes to some event types only, so it
sees some of an order's events. The same event applied twice is a duplicate (I2's business),
not a reordering.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from operator import itemgetter

from harness.checkers._sources import missing, pick
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chains
from harness.history.ops import History

__all__ = ["PerEntityOrder"]

PAID = "order.paid"
_ENTITY = itemgetter("consumer", "order_id")
_POSITION = itemgetter("consumer", "position")


@dataclass(frozen=True, slots=True)
class PerEntityOrder:
    name: str = "per-entity-order"
    invariant: str | None = "I3"
    shipper: str = "fulfillment"  # the consumer whose shipments must follow payment
    shipment: str = "shipment"

    def check(self, history: History) -> CheckResult:
        unknown = missing(history, self.name, self.invariant, "applied", "effects")
        if unknown is not None:
            return unknown
        applied = history.observed("applied")
        shipper = self.shipper
        shipped = {e["order_id"] for e in history.observed("effects")
                   if e["consumer"] == shipper and e["kind"] == self.shipment}
        keys = list(map(_ENTITY, applied))
        applies = Counter(keys)
        # Only a (consumer, order) pair applied more than once can be out of order, and only the
        # shipper's applies of shipped orders can say when they were paid: most rows are neither.
        rows = sorted((r for r, k in zip(applied, keys)
                       if applies[k] > 1 or (k[0] == shipper and k[1] in shipped)), key=_POSITION)

        latest: dict[tuple[object, object], tuple[object, object, object]] = {}  # (consumer, order) -> seq, event, pos
        nonmonotonic: list[dict[str, object]] = []
        n_nonmonotonic = 0
        shipper_pos: dict[object, tuple[object, object]] = {}  # event_id -> (position, applied_at_ms)
        paid_pos: dict[object, tuple[object, object]] = {}  # order -> (position, applied_at_ms) of its paid event
        for r in rows:
            key = (r["consumer"], r["order_id"])
            seq = r["seq"]
            prev = latest.get(key)
            if prev is None or seq > prev[0]:  # type: ignore[operator]
                latest[key] = (seq, r["event_id"], r["position"])
            elif r["event_id"] != prev[1]:
                n_nonmonotonic += 1
                if len(nonmonotonic) < MAX_EXAMPLES:
                    nonmonotonic.append({
                        "anomaly": "nonmonotonic-apply", "consumer": key[0], "order_id": key[1],
                        "applied_first": {"event_id": prev[1], "seq": prev[0], "position": prev[2]},
                        "applied_later": {"event_id": r["event_id"], "seq": seq, "position": r["position"],
                                          "type": r.get("type")},
                    })
            if key[0] == shipper and key[1] in shipped:
                where = (r["position"], r.get("applied_at_ms"))
                shipper_pos.setdefault(r["event_id"], where)
                if r.get("type") == PAID:
                    paid_pos.setdefault(key[1], where)

        shipped_early: list[dict[str, object]] = []
        n_shipped_early = shipments = 0
        for e in history.observed("effects"):
            if e["consumer"] != shipper or e["kind"] != self.shipment:
                continue
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
                if len(shipped_early) < MAX_EXAMPLES:
                    shipped_early.append({
                        "anomaly": "shipped-before-paid", "consumer": shipper, "order_id": order,
                        "shipment": {"event_id": e.get("event_id"), "position": own[0] if own else None,
                                     "applied_at_ms": e.get("applied_at_ms")},
                        "paid_applied": {"position": paid[0], "applied_at_ms": paid[1]} if paid else None,
                    })

        counts: dict[str, int] = {"applied": len(applied), "entities": len(applies), "nonmonotonic": n_nonmonotonic,
                                  "shipments": shipments, "shipped_before_paid": n_shipped_early}
        if not n_nonmonotonic and not n_shipped_early:
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               f"{len(applied)} applies over {len(applies)} (consumer, order) pairs in seq order; "
                               f"{shipments} shipments all after payment", counts)
        examples = pick(nonmonotonic, shipped_early, limit=MAX_EXAMPLES)
        chains = order_chains(history, {str(x["order_id"]) for x in examples})
        for x in examples:
            x["chain"] = chains[str(x["order_id"])]
        return CheckResult(self.name, self.invariant, Validity.INVALID,
                           f"{n_nonmonotonic} nonmonotonic-apply, {n_shipped_early} shipped-before-paid", counts,
                           tuple(examples))


def _before(a: object, b: object) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and a < b
