"""Broker outage on the publishing link: the article's core comparison, short enough for CI.

The link from the publisher to Kafka (``app->kafka`` for direct, ``relay->kafka`` for
outbox, ``connect->kafka`` for cdc and cdc_outbox) goes down for 8 seconds in the middle of steady
traffic. Direct publish answers 201 and drops what it could not publish within its
delivery budget: it is *expected* to lose acknowledged orders. The outbox keeps them in
its table and publishes them after the heal; Debezium keeps them in the WAL behind its
replication slot and Connect's producer retries without a delivery deadline (whether it
streams ``orders`` or, through the outbox event router, ``outbox``): all three must lose none.
"""

from harness.checkers.anomaly import AnomalyKind
from harness.faults.schedule import FaultKind, FaultSpec
from harness.scenario import Expect, Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="broker_outage",
    description="The publisher's link to Kafka is down for 8 s under steady traffic.",
    pipelines=("direct", "outbox", "cdc", "cdc_outbox"),
    shape=Constant(20),
    duration_s=20,
    faults=(FaultSpec(FaultKind.OUTAGE, "publisher->kafka", at=0.3, for_s=8),),
    expect=(Expect("direct", (AnomalyKind.LOST_EFFECT,),
                   "direct publish drops events it cannot deliver within its budget"),),
    drain_timeout_s=45,
)
