"""Late commits: the order service's database answers slowly and unevenly, so transactions commit out of id order.

A latency toxic with a jitter as large as the latency (150 +/- 150 ms per chunk) on
``app->postgres`` delays every answer the order service waits for, by a different amount
per connection: a transaction that took outbox id n can commit after one that took n+1.
The relay reads "every row not yet sent" (``sent_at IS NULL``), so a row that commits
late is simply published late. The ``last_id`` variant reads "every row after the highest
id I have seen", the shortcut the article warns about: once it has read n+1, the row n
that commits a moment later is behind it for good, committed and never published.
"""

from harness.faults.spec import FaultKind, FaultSpec, Latency
from harness.scenario import Scenario
from harness.workload.rate import Constant

SCENARIO = Scenario(
    name="late_commit",
    description="The order service's database link turns slow and jittery: transactions commit out of id order.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=16,
    faults=(FaultSpec(FaultKind.LATENCY, "app->postgres", at=0.2, for_s=8, params=Latency(150, 150)),),
    drain_timeout_s=40,
)
