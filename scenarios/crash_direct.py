"""The order service crashes after its commit and before its publish, on the direct pipeline.

Direct publishing has no record of what it still owed the broker: the committed order's
event is never published (the loss window, made on purpose instead of by luck). The
outbox pipeline's version of the same crash is in ``crash_points``: the relay publishes
the committed row after the restart.

The request that crashed was never answered, so I1 (which holds the pipeline to what it
acknowledged) has nothing to demand of it; I4 sees the order committed with no event and
no effect behind it (committed-without-event, and -effect where the step requires one). That is the expected verdict here, said explicitly.
"""

from harness.checkers.anomaly import AnomalyKind
from harness.faults.spec import Crash, FaultKind, FaultSpec
from harness.scenario import Expect, Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="crash_direct",
    description="The direct pipeline's order service dies between commit and publish.",
    pipelines=("direct",),
    shape=Constant(20),
    duration_s=12,
    faults=(FaultSpec(FaultKind.CRASH, "app", at=0.3, for_s=4, params=Crash("app.after_commit", 10)),),
    expect=(Expect("direct", (AnomalyKind.COMMITTED_WITHOUT_EVENT,),
                   "the order committed before the crash is never published: committed without its event, and "
                   "so without the effects it requires", may=(AnomalyKind.COMMITTED_WITHOUT_EFFECT,)),),
    drain_timeout_s=45,
)
