"""Poison pills: malformed records appear on the event topic among real events.

Every consumer must send each one to its own dead-letter topic with a reason and carry
on; nothing may vanish. With ``variant="swallow_errors"`` the consumers log the
decoding error at debug level and move on: the records are on the topic and nowhere
else, which is what ``test_poison_pill.py`` demonstrates.
"""

from harness.faults.spec import FaultKind, FaultSpec, Poison
from harness.scenario import Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="poison_pill",
    description="Three malformed records are published to the event topic mid-run.",
    pipelines=("outbox",),
    shape=Constant(10),
    duration_s=8,
    faults=(FaultSpec(FaultKind.POISON, "events", at=0.4, for_s=1, params=Poison(3)),),
    drain_timeout_s=30,
)
