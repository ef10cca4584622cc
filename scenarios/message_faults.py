"""Message-level faults on the outbox pipeline: duplicates, poison, and a slow consumer.

  duplicate      already-delivered events are published again (through the DIRECT listener):
                 the idempotent payment consumer must not charge twice
  poison         malformed payloads land on the topic: each must reach the dead-letter
                 topic with a reason, and the good events around them must still apply
  slow_consumer  the consumer's fetches are throttled to 1 KB/s, so its lag grows, then drains
"""

from harness.faults.spec import Duplicate, FaultKind, FaultSpec, Poison, SlowConsumer
from harness.scenario import Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="message_faults",
    description="Redelivered events, poison messages and a throttled consumer.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=16,
    faults=(
        FaultSpec(FaultKind.DUPLICATE, "events", at=0.3, for_s=2, params=Duplicate(20)),
        FaultSpec(FaultKind.POISON, "events", at=0.45, for_s=2, params=Poison(3)),
        FaultSpec(FaultKind.SLOW_CONSUMER, "consumer.payment", at=0.62, for_s=4, params=SlowConsumer(1)),
    ),
    drain_timeout_s=60,
)
