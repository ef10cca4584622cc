"""The payment service that charged customers twice (the article's second case study).

"When the message broker retried a batch of messages after a network partition, 23
customers were charged twice -- totaling about $3,200 in overcharges."

Here the payment consumer's link to Kafka is black-holed for four seconds (a partition:
lag builds behind it), and as the partition heals a batch of already-delivered events is
delivered again (the harness's duplicate fault re-publishes the last 60 events the
consumers committed, as a producer retrying a batch whose acknowledgement the partition
ate would). The scenario runs the payment consumer without idempotency
(``variant="no_idempotency"``): every redelivered ``order.paid`` charges again. The fix
from the article, an idempotency table keyed on event id, is the reference consumer:
``chaos run double_charge --variant correct`` charges each order once (test_double_charge
runs both).

Why an injected redelivery and not the partition's own: our consumers commit each offset
right after its effect, so a partition redelivers only the few events whose commit was in
flight -- too few, and too dependent on timing, to count reliably in a 15 s run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from harness.checkers.anomaly import AnomalyKind
from harness.faults.spec import Duplicate, FaultKind, FaultSpec
from harness.history.ops import History
from harness.scenario import Expect, Leg, Scenario
from harness.scoring import PipelineVerdict
from harness.story import Claim, Story
from harness.workload.rate import Constant
from scenarios._stories import money, orders_by_id

PIPELINE = "outbox"
DURATION_S = 12.0
PARTITION_AT = 0.3


def charged_twice(h: History) -> dict[str, int]:
    """order id -> charges, for every order the payment consumer charged more than once."""
    charges = Counter(str(r["order_id"]) for r in h.observed("effects") if r.get("consumer") == "payment")
    return {o: n for o, n in charges.items() if n > 1}


def redelivered_paid(h: History) -> int:
    """``order.paid`` events that sit on the topic more than once: charges that were asked for again."""
    copies = Counter(r["event_id"] for r in h.observed("topic") if r.get("type") == "order.paid" and r.get("event_id"))
    return sum(1 for n in copies.values() if n > 1)


def story(histories: Mapping[str, History], verdicts: Sequence[PipelineVerdict]) -> Story:
    h = histories[PIPELINE]
    twice = charged_twice(h)
    orders = orders_by_id(h)
    customers = {str(orders[o].get("customer")) for o in twice if o in orders}
    over = sum(int(orders[o].get("amount_cents") or 0) * (n - 1) for o, n in twice.items() if o in orders)
    again = redelivered_paid(h)
    idempotent = not twice
    return Story(
        title="The payment service that charged customers twice",
        claims=(
            Claim("paid events delivered again", "a batch, retried after a network partition",
                  f"{again} order.paid events, after a 4 s partition"),
            Claim("customers charged twice", "23", f"{len(customers)}" + (" (idempotent consumer)" if idempotent else "")),
            Claim("overcharged", "about $3,200", money(over)),
            Claim("with an idempotency table keyed on event id", "charged once",
                  f"charged once: {again} redeliveries absorbed" if idempotent
                  else "run `chaos run double_charge --variant correct`"),
        ),
        note=("this run: the reference consumer (idempotent)" if idempotent
              else "this run: the payment consumer without idempotency (variant no_idempotency)"),
    )


SCENARIO = Scenario(
    name="double_charge",
    description="A partition cuts the payment consumer off, a batch is redelivered; without idempotency it charges twice.",
    pipelines=(PIPELINE,),
    shape=Constant(25),
    duration_s=DURATION_S,
    faults=(FaultSpec(FaultKind.BLACK_HOLE, "consumer.payment->kafka", at=PARTITION_AT, for_s=4),
            FaultSpec(FaultKind.DUPLICATE, "events", at=PARTITION_AT + 4.5 / DURATION_S, for_s=3, params=Duplicate(60))),
    variant="no_idempotency",
    expect=(Expect(PIPELINE, (AnomalyKind.DUPLICATE_EFFECT,),
                   "the consumers check no processed-events table: a redelivered event takes effect again"),),
    legs=(Leg("correct"),),  # the fix: an idempotent consumer absorbs every redelivery
    drain_timeout_s=45,
    story=story,
)
