"""Black Friday: load ramps up, the broker link goes down in the middle, every pipeline runs.

The article's first story: with direct publishing, 340 orders were lost while the
broker was unavailable; with an outbox, the next outage lost none. Here the
publisher's link to Kafka is cut for a quarter of the run at peak load.
"""

from harness.checkers.anomaly import AnomalyKind
from harness.faults.schedule import FaultKind, FaultSpec
from harness.scenario import Expect, Scenario
from harness.workload.rate import RampHold

SCENARIO = Scenario(
    name="black_friday",
    description="Traffic ramps to its peak; the publisher's link to Kafka goes down mid-sale.",
    pipelines=("direct", "outbox", "cdc"),
    shape=RampHold(start=5, peak=40, ramp_s=15),
    duration_s=45,
    faults=(FaultSpec(FaultKind.OUTAGE, "publisher->kafka", at=0.4, for_s=12, jitter=0.05),),
    expect=(Expect("direct", (AnomalyKind.LOST_EFFECT,),
                   "direct publish loses orders while the broker is unreachable; that is the demonstration"),),
    drain_timeout_s=60,
)
