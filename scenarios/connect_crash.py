"""Kafka Connect crash: the worker running Debezium is SIGKILLed mid-run and restarted.

Debezium is at-least-once across a crash: the restarted task resumes from the last
offset Connect flushed (every 60 s, its default; none yet in a run this short), so changes
it had already sent are sent again.
Idempotent consumers absorb the redelivery (one effect per event id); the
no-idempotency variant (``variant="no_idempotency"``) charges twice, which is the
demonstration in ``test_connect_crash.py``.
"""

from harness.faults.spec import FaultKind, FaultSpec
from harness.scenario import Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="connect_crash",
    description="The Kafka Connect worker running Debezium is killed (SIGKILL) mid-run, then restarted.",
    pipelines=("cdc",),
    shape=Constant(20),
    duration_s=20,
    faults=(FaultSpec(FaultKind.KILL, "connect", at=0.35, for_s=3),),
    drain_timeout_s=60,
)
