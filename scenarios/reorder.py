"""Reordering: one entity's events arrive swapped (``order.paid`` before ``order.created``).

The scenario puts the harness's interposer topic between the publisher and the event
topic (a visible hop: ``<topic>.interposer``); while the fault is active it holds the
first event of five orders placed then and releases each right after that order's next
event (``order.paid`` before ``order.created``).
The payment consumer charges on ``order.paid`` alone, so no charge is lost; what
the swap does to consumers that care about order (fulfillment: never ship before
paid) is for the per-entity-order checker (I3) to judge.
"""

from harness.checkers.anomaly import AnomalyKind
from harness.faults.spec import FaultKind, FaultSpec, Reordering
from harness.scenario import Expect, Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="reorder",
    description="An interposer holds one event of five orders and releases it after the next one: swapped.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=12,
    faults=(FaultSpec(FaultKind.REORDER, "events", at=0.3, for_s=3, params=Reordering(5)),),
    expect=(Expect("outbox", (AnomalyKind.NONMONOTONIC_PUBLISH,),
                   "the interposer swaps events on the topic; per-entity-order must flag it, for the swapped orders only",
                   # A swap that holds an order's paid event behind its shipped one makes fulfillment
                   # dead-letter the shipment (it refuses to ship unpaid): missing, and explained by the swap.
                   may=(AnomalyKind.LOST_EFFECT, AnomalyKind.NONMONOTONIC_APPLY, AnomalyKind.APPLIED_PAST_DEAD_LETTER)),),
    drain_timeout_s=45,
)
