"""Scale a consumer: a second payment consumer joins its group under load (a rebalance) and
leaves cleanly 9 s later (a second one).

The correct consumer commits each offset after its effect, so neither rebalance loses or
repeats a charge. The window opens once the new member holds partitions (2.7-4.8 s here).
"""

from harness.faults.spec import FaultKind, FaultSpec, Scale
from harness.scenario import Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="scale_consumer",
    description="A second payment consumer joins its group under load and leaves cleanly.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=16,
    # Long enough that the window outlives the start: a Python consumer and its rebalance take 2-5 s here.
    faults=(FaultSpec(FaultKind.SCALE, "consumer.payment", at=0.2, for_s=9, params=Scale(1, "term")),),
    drain_timeout_s=45,
)
