"""Consumer crash after a stall: the payment consumer loses its database, then is killed.

The payment consumer's link to Postgres goes down for 5 s, so it stalls on a paid event
it has fetched but cannot apply; the moment the link heals (before its next retry) it
is SIGKILLed and restarted. A consumer that commits offsets only after the effect gets
the event again; one with auto-commit (``variant="auto_commit"``) already committed the
offset of everything it had fetched, so the restarted process skips it: a paid order
is never charged. Both faults are sequential windows: the crash starts as the outage heals.
"""

from harness.faults.spec import FaultKind, FaultSpec
from harness.scenario import Scenario
from harness.workload.rate import Constant

DURATION_S = 16
OUTAGE_AT, OUTAGE_S = 0.25, 5.0

SCENARIO = Scenario(
    name="consumer_crash",
    description="The payment consumer stalls on a database outage and is killed as the outage heals.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=DURATION_S,
    faults=(
        FaultSpec(FaultKind.OUTAGE, "consumer.payment->postgres", at=OUTAGE_AT, for_s=OUTAGE_S),
        FaultSpec(FaultKind.KILL, "consumer.payment", at=OUTAGE_AT + OUTAGE_S / DURATION_S, for_s=1),
    ),
    drain_timeout_s=45,
)
