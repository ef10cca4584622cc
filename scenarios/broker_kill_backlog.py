"""The broker dies for longer than the consumers' session while one of them drains a backlog.

The payment consumer is frozen for 6 s and comes back to a backlog, which it fetches in
one go; then the broker is killed -9 for 14 s, past the consumers' 10 s session timeout,
while that consumer is still applying what it fetched. Every effect it applies wants its
offset committed, and the group coordinator is gone. Every consumer loses its assignment,
must rejoin the restarted broker, and drain: nothing lost, nothing applied twice, within
the drain window.

This is what left three reference consumer groups stuck after a slow broker restart: each
message's offset was committed on its own, asynchronously, so hundreds of OffsetCommit
requests queued for the dead coordinator (librdkafka: "561 offset commits in progress"),
and librdkafka rejoins a group only after every outstanding commit has completed. Each
waited out its 60 s request timeout and was retried; on the restarted broker the stale
commits kept the old member alive, and the new member's JoinGroup waited behind it.
"""

from harness.faults.schedule import sequence
from harness.faults.spec import FaultKind, FaultSpec
from harness.scenario import Scenario
from harness.workload.rate import Constant

DURATION_S = 24

SCENARIO = Scenario(
    name="broker_kill_backlog",
    description="SIGSTOP the payment consumer 6 s, then kill -9 the broker 14 s (past the session) while it drains.",
    pipelines=("outbox",),
    shape=Constant(30),
    duration_s=DURATION_S,
    faults=sequence(
        FaultSpec(FaultKind.PAUSE, "consumer.payment", at=0.1, for_s=6),
        FaultSpec(FaultKind.KILL, "kafka", at=0, for_s=14),
        duration_s=DURATION_S, gap_s=0.2,
    ),
    # Drain starts once the broker answers again. A group that rejoins then drains in seconds
    # (the broker first waits out the old member's 10 s session); one that waits for its
    # queued commits to time out (60 s after the kill) first does not make it.
    drain_timeout_s=40,
)
