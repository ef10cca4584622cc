"""Several faults at once: the publisher's link is down, the consumer's link is slow, and the
payment consumer and Postgres freeze (SIGSTOP) in the middle of it.

Composed with the schedule combinators rather than timed by hand. Every pipeline must
still lose nothing once everything heals (the direct pipeline is expected to lose
what it publishes during the outage, as in broker_outage). Also the scenario the
interrupt test cuts short, to prove heal-all restores proxies, toxics and processes.
"""

from harness.checkers.base import Validity
from harness.faults.schedule import during, stagger
from harness.faults.spec import FaultKind, FaultSpec, Latency
from harness.scenario import Expect, Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="fault_mix",
    description="Publisher link down, consumer link slow, consumer and Postgres paused, all overlapping.",
    pipelines=("direct", "outbox"),
    shape=Constant(20),
    duration_s=20,
    faults=(
        FaultSpec(FaultKind.OUTAGE, "publisher->kafka", at=0.25, for_s=9),
        FaultSpec(FaultKind.LATENCY, "consumer.payment->kafka", at=0.25, for_s=9, params=Latency(400, 100)),
        *during(0.3, 0.6, stagger(FaultSpec(FaultKind.PAUSE, "consumer.payment", at=0.0, for_s=6),
                                  ["consumer.payment", "postgres"], every=0.0)),
    ),
    expect=(Expect("direct", "I1", Validity.INVALID,
                   "direct publish drops events it cannot deliver within its budget"),),
    drain_timeout_s=60,
)
