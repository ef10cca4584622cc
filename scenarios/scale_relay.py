"""Scale the relay: a second relay polls the same outbox beside the first, killed -9 at heal.

The reference relay selects ``sent_at IS NULL`` without locking rows, so both publish some
rows: duplicates on the topic that idempotent consumers absorb; the first copy of each
event stays in order, so nothing is reordered or lost.
"""

from harness.faults.spec import FaultKind, FaultSpec, Scale
from harness.scenario import Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="scale_relay",
    description="A second relay polls the same outbox beside the first; killed -9 at heal.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=14,
    faults=(FaultSpec(FaultKind.SCALE, "relay", at=0.2, for_s=6, params=Scale(1, "kill")),),
    drain_timeout_s=45,
)
