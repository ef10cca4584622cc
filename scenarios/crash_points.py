"""Boundary crashes on the outbox pipeline: each process dies exactly where reality hurts.

  relay.after_publish     the broker acknowledged a batch, the rows are not marked sent:
                          after the restart the batch is published again (duplicates)
  consumer.after_effect   the charge committed, the offset did not: the event comes again
  app.after_commit        the order committed, the request never answered (outcome unknown)

The harness arms each point for its n-th passage, the process SIGKILLs itself there,
and the nemesis restarts it. The outbox pipeline with idempotent consumers must turn
every one of these into a redelivery, never a loss or a second charge.
"""

from harness.faults.schedule import sequence
from harness.faults.spec import Crash, FaultKind, FaultSpec
from harness.scenario import Scenario
from harness.workload.rate import Constant

DURATION_S = 18

SCENARIO = Scenario(
    name="crash_points",
    description="The relay, the payment consumer and the order service crash at their boundaries.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=DURATION_S,
    faults=sequence(
        FaultSpec(FaultKind.CRASH, "relay", at=0.1, for_s=4, params=Crash("relay.after_publish", 3)),
        FaultSpec(FaultKind.CRASH, "consumer.payment", at=0, for_s=4, params=Crash("consumer.after_effect", 15)),
        FaultSpec(FaultKind.CRASH, "app", at=0, for_s=4, params=Crash("app.after_commit", 20)),
        duration_s=DURATION_S, gap_s=0.5,
    ),
    drain_timeout_s=60,
)
