"""Shipped before paid (the article's ordering story): racing events of one order.

"A race condition between order.paid and order.shipped events caused the fulfillment
system to occasionally attempt shipping before payment was confirmed. The bug only
appeared under load -- about once per 2,000 orders -- and took three weeks to diagnose."

The outbox relay publishes without a key (``variant="keyless"``): each event of an order
lands on a random partition, and the consumers read partitions in parallel, so under
steady load some orders' ``order.shipped`` reaches fulfillment before their
``order.paid``. The reference fulfillment consumer refuses to ship an unpaid order: it
retries, then dead-letters the shipment with the reason, so each race shows as a
shipment attempted before payment (counted and listed by order id) and a shipment that
never happens (I1). No fault is injected: load alone does it. The fix from the article
is the partition key (``chaos run paid_before_shipped --variant correct``: none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.checkers.anomaly import AnomalyKind
from harness.history.ops import History
from harness.scenario import Cause, Expect, Leg, Scenario
from harness.scoring import PipelineVerdict
from harness.story import Claim, Story
from harness.workload.rate import Constant
from scenarios._stories import per_order

PIPELINE = "outbox"
_LISTED = 5


def shipped_before_paid(h: History) -> list[str]:
    """Orders whose ``order.shipped`` reached fulfillment before it had applied their ``order.paid``, sorted.

    Read from what fulfillment did: a shipment it dead-lettered as not applicable yet, or a
    shipment it applied at an earlier position than the order's payment.
    """
    early = {str(r["order_id"]) for r in h.observed("dlq")
             if r.get("consumer") == "fulfillment" and r.get("type") == "order.shipped"
             and "before" in str(r.get("reason") or "") and r.get("order_id")}
    paid: dict[str, int] = {}
    shipped: dict[str, int] = {}
    for r in h.observed("applied"):
        if r.get("consumer") != "fulfillment" or r.get("position") is None:
            continue
        target = paid if r.get("type") == "order.paid" else shipped if r.get("type") == "order.shipped" else None
        if target is not None:
            target.setdefault(str(r["order_id"]), int(r["position"]))  # type: ignore[arg-type]
    early |= {o for o, pos in shipped.items() if o not in paid or pos < paid[o]}
    return sorted(early)


def story(histories: Mapping[str, History], verdicts: Sequence[PipelineVerdict]) -> Story:
    h = histories[PIPELINE]
    early = shipped_before_paid(h)
    shipped_orders = {str(r["order_id"]) for r in h.observed("topic") if r.get("type") == "order.shipped"}
    orders = len(h.observed("orders"))
    actually = sum(t.total for v in verdicts for t in v.tallies if t.kind is AnomalyKind.SHIPPED_BEFORE_PAID)
    listed = ", ".join(o[:8] for o in early[:_LISTED]) + (f", ... ({len(early) - _LISTED} more)" if len(early) > _LISTED else "")
    return Story(
        title="The order shipped before it was paid",
        claims=(
            Claim("shipping attempted before payment", "about once per 2,000 orders, under load",
                  per_order(len(early), orders) + f"; {len(shipped_orders):,} orders shipped in all"),
            Claim("which orders (id prefix)", "-", listed or "none"),
            Claim("actually shipped unpaid", "-", f"{actually} (fulfillment refuses and dead-letters the shipment)"),
            Claim("time to diagnose", "three weeks", "one run: the per-entity-order checker names each order"),
            Claim("the fix", "partition key = order id", "run `chaos run paid_before_shipped --variant correct`"),
        ),
        note="no fault injected: the relay publishes without a key (variant keyless) under steady load",
    )


SCENARIO = Scenario(
    name="paid_before_shipped",
    description="Keyless publishing scatters an order's events over partitions: shipments race ahead of payments.",
    pipelines=(PIPELINE,),
    shape=Constant(40),
    duration_s=12,
    faults=(),
    variant="keyless",
    expect=(
        Expect(PIPELINE, (AnomalyKind.SPLIT_ENTITY,), "without a key an order's events are not ordered across "
               "partitions", by=Cause.VARIANT),
        Expect(PIPELINE, (AnomalyKind.LOST_EFFECT,), "fulfillment dead-letters a shipment that arrives before its "
               "payment", may=(AnomalyKind.NONMONOTONIC_APPLY, AnomalyKind.APPLIED_PAST_DEAD_LETTER), by=Cause.VARIANT),
    ),
    legs=(Leg("correct"),),  # the fix: keyed by order id, no order is split
    drain_timeout_s=90,  # each early shipment costs fulfillment retries; under load 45 s cut them off
    story=story,
)
