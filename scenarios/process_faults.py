"""Process faults on the outbox pipeline: the relay is killed -9, the consumer freezes, the order
service is restarted cleanly, and the broker itself is killed -9 and restarted.

Each fault heals by restarting (or resuming) the process through its owner, which waits
until it is ready. The outbox relay re-reads unsent rows, the consumer resumes from its
committed offsets, so nothing may be lost and nothing charged twice.
"""

from harness.faults.schedule import sequence
from harness.faults.spec import FaultKind, FaultSpec
from harness.scenario import Scenario
from harness.workload.rate import Constant

DURATION_S = 22

SCENARIO = Scenario(
    name="process_faults",
    description="kill -9 the relay, SIGSTOP the consumer, restart the order service, kill -9 the broker.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=DURATION_S,
    faults=sequence(
        FaultSpec(FaultKind.KILL, "publisher", at=0.05, for_s=3),
        FaultSpec(FaultKind.PAUSE, "consumer.payment", at=0, for_s=3),
        FaultSpec(FaultKind.RESTART, "app", at=0, for_s=2),
        FaultSpec(FaultKind.KILL, "kafka", at=0, for_s=3),
        duration_s=DURATION_S, gap_s=1.5,
    ),
    drain_timeout_s=90,
)
