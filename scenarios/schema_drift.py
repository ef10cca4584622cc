"""Schema drift: the order service starts writing schema v2 (``amount_cents`` renamed to
``amount``) in the middle of the run, and switches back four seconds later.

The payment consumer only knows v1: it dead-letters every v2 event with the reason,
so the orders paid during the drift are never charged. The harness must flag that as
lost effects (I1 invalid); it is the expected outcome here, the demonstration that a
breaking schema change is caught, with the DLQ accounting for every event.
"""

from harness.checkers.anomaly import AnomalyKind
from harness.faults.spec import FaultKind, FaultSpec, SchemaDrift
from harness.scenario import Expect, Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="schema_drift",
    description="The producer renames a field mid-run; a v1-only consumer dead-letters the v2 events.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=14,
    faults=(FaultSpec(FaultKind.SCHEMA_DRIFT, "app", at=0.35, for_s=4, params=SchemaDrift("rename")),),
    expect=(Expect("outbox", (AnomalyKind.LOST_EFFECT,),
                   "the payment consumer only reads schema v1: v2 events go to its DLQ and are never charged"),
            Expect("outbox", (AnomalyKind.UNREGISTERED_VERSION,),
                   "v2 is not a registered, compatible version: the schema-contract checker must say so"),
            Expect("outbox", (), "fulfillment dead-letters a v2 paid event and then ships the order: it carried on "
                   "past the gap", may=(AnomalyKind.APPLIED_PAST_DEAD_LETTER,))),
    drain_timeout_s=45,
)
