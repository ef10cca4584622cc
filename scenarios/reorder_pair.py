"""Reorder at position 2: the interposer holds five orders' *second* event (order.paid) and
releases each right after its third (order.shipped).

Fulfillment never ships an unpaid order: it meets the shipment first, retries, dead-letters it
(a lost shipment, explained by the swap), then applies the payment. Per-entity-order (I3) must
name every held order as ``nonmonotonic-publish``. The same fault explore draws as
``Reordering(entities, position, distance)``: any pair of one entity's events.
"""

from harness.checkers.anomaly import AnomalyKind
from harness.faults.spec import FaultKind, FaultSpec, Reordering
from harness.scenario import Expect, Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="reorder_pair",
    description="The interposer holds five orders' order.paid and releases each after its order.shipped.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=12,
    faults=(FaultSpec(FaultKind.REORDER, "events", at=0.3, for_s=4, params=Reordering(5, position=2)),),
    expect=(Expect("outbox", (AnomalyKind.NONMONOTONIC_PUBLISH,),
                   "shipped sits before paid on the topic for the held orders",
                   # Fulfillment refuses to ship an unpaid order: it dead-letters the early shipment
                   # (a lost shipment), then applies the payment behind it.
                   may=(AnomalyKind.LOST_EFFECT, AnomalyKind.NONMONOTONIC_APPLY, AnomalyKind.APPLIED_PAST_DEAD_LETTER,
                        AnomalyKind.SHIPPED_BEFORE_PAID)),),
    drain_timeout_s=45,
)
