"""Consumer crash during a stall: the payment consumer loses its database, then is killed mid-outage.

The payment consumer's link to Postgres goes down for 6 s, so it stalls on the first paid
event it fetched after the cut (it retries every second, and cannot succeed). Halfway
through the outage it is SIGKILLed and restarted. A consumer that commits offsets only
after the effect fetches that event again and charges it once the link heals; one with
auto-commit (``variant="auto_commit"``) committed the offsets of its whole batch within
200 ms of fetching it, so the restarted process starts after the event: a paid order is
never charged.

Why mid-outage and not at the heal: a kill timed for the heal races the stalled
consumer's next retry, and when the retry wins the event is applied and nothing is lost
(CI saw exactly that). While the link is down no retry can win, so the loss is certain.
"""

from harness.faults.spec import FaultKind, FaultSpec
from harness.scenario import Scenario
from harness.workload.rate import Constant

DURATION_S = 16
OUTAGE_AT, OUTAGE_S = 0.25, 6.0
KILL_AFTER_S = 3.0  # into the outage: the stall is well under way, the heal still 3 s off

SCENARIO = Scenario(
    name="consumer_crash",
    description="The payment consumer stalls on a database outage and is killed halfway through it.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=DURATION_S,
    faults=(
        FaultSpec(FaultKind.OUTAGE, "consumer.payment->postgres", at=OUTAGE_AT, for_s=OUTAGE_S),
        FaultSpec(FaultKind.KILL, "consumer.payment", at=OUTAGE_AT + KILL_AFTER_S / DURATION_S, for_s=1),
    ),
    drain_timeout_s=45,
)
