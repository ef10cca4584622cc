"""Keyless publisher: the outbox relay publishes without a key, so an order's events scatter.

Without the order id as key, each event gets a random partition, and Kafka orders only
within a partition: under load a consumer sees an order's ``shipped`` before its
``paid``. Fulfillment refuses to ship an unpaid order and dead-letters the event, so
the mistake shows as per-entity ordering violations and as shipments that never
happen. No fault is injected: the load alone does it.
"""

from harness.checkers.anomaly import AnomalyKind
from harness.scenario import Cause, Expect, Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="keyless_publisher",
    description="The outbox relay publishes without a key under steady load; an order's events scatter over partitions.",
    pipelines=("outbox",),
    shape=Constant(40),
    # 240 orders: plenty scatter over partitions; each shipment fulfillment sees before its payment
    # costs about 0.6 s of retries before the dead letter, so a longer run mostly lengthens the drain.
    duration_s=6,
    faults=(),
    variant="keyless",
    expect=(
        Expect("outbox", (AnomalyKind.SPLIT_ENTITY,), "without a key an order's events are not ordered across "
               "partitions", by=Cause.VARIANT),
        Expect("outbox", (AnomalyKind.LOST_EFFECT,), "fulfillment dead-letters a shipment that arrives before its "
               "payment", may=(AnomalyKind.NONMONOTONIC_APPLY, AnomalyKind.APPLIED_PAST_DEAD_LETTER), by=Cause.VARIANT),
    ),
    drain_timeout_s=45,
)
