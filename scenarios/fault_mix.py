"""Several faults at once: the publisher's link is down, the consumer's link is slow, and the
payment consumer and Postgres freeze (SIGSTOP) in the middle of it.

Composed with the schedule combinators rather than timed by hand. The outbox pipeline
must lose nothing once everything heals. (Direct publishing is left out: with Postgres
frozen inside the outage the service accepts too little for its loss to be certain,
and broker_outage already shows it.) Also the scenario the interrupt test cuts short,
to prove heal-all restores proxies, toxics and paused processes.
"""

from harness.faults.schedule import during, stagger
from harness.faults.spec import FaultKind, FaultSpec, Latency
from harness.scenario import Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="fault_mix",
    description="Publisher link down, consumer link slow, consumer and Postgres paused, all overlapping.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=20,
    faults=(
        FaultSpec(FaultKind.OUTAGE, "publisher->kafka", at=0.25, for_s=9),
        FaultSpec(FaultKind.LATENCY, "consumer.payment->kafka", at=0.25, for_s=9, params=Latency(400, 100)),
        *during(0.3, 0.6, stagger(FaultSpec(FaultKind.PAUSE, "consumer.payment", at=0.0, for_s=6),
                                  ["consumer.payment", "postgres"], every=0.0)),
    ),
    drain_timeout_s=60,
)
