"""The consumer that falls behind (the article's "ignoring consumer lag"): a ticking time bomb.

"A consumer that falls behind is not just slow -- it is a ticking time bomb. If your order
consumer is 30 minutes behind, you have 30 minutes of orders that have not been fulfilled.
... Alert if the lag exceeds a threshold (e.g., 5 minutes for real-time consumers)."

Steady load; for nine seconds the payment consumer can fetch only 2 KB/s (a bandwidth
toxic on its link to Kafka), far less than the topic grows, so its lag climbs while every
other group keeps up. The runner samples each group's lag per partition every 0.5 s; the
thresholds below (records not yet committed; tight for payment, loose for the rest) turn the samples into alerts: when payment
first breached, for how long, its peak and which partition held it, and when its trend
had projected the breach. Nothing is lost: once the link heals, payment catches up
(I7 measures how long that took).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.faults.spec import FaultKind, FaultSpec, SlowConsumer
from harness.history.ops import History
from harness.lag_alerts import LagThreshold, lag_alerts
from harness.scenario import Scenario
from harness.scoring import PipelineVerdict
from harness.story import Claim, Story
from harness.workload.rate import Constant
from scenarios._stories import traffic_s

PIPELINE = "outbox"
DURATION_S = 14.0
SLOW_AT = 0.15
SLOW_S = 9.0
# The article's two kinds of threshold: tight for a real-time consumer (payment), loose for the
# others, read here as batch consumers (on a shared machine they lag a few hundred records anyway).
THRESHOLDS = (LagThreshold("payment", 150), LagThreshold("*", 1000))


def story(histories: Mapping[str, History], verdicts: Sequence[PipelineVerdict]) -> Story:
    h = histories[PIPELINE]
    alerts = {a.group: a for a in lag_alerts(PIPELINE, h, THRESHOLDS)}
    pay = alerts["payment"]
    rate = len(h.observed("topic")) / max(traffic_s(h), 1.0)  # events per second on the topic
    slowed_at = SLOW_AT * DURATION_S
    others = sorted(g for g, a in alerts.items() if g != "payment" and not a.breached)
    behind = f"{pay.peak:,} events = {pay.peak / rate:.1f} s of traffic behind" if rate else f"{pay.peak:,} events"
    return Story(
        title="The consumer lag time bomb",
        claims=(
            Claim("alert threshold", "e.g. 5 minutes for real-time consumers",
                  (f"payment (real-time): {pay.threshold} records, about {pay.threshold / rate:.1f} s of events at "
                   f"{rate:.0f}/s; the others (batch): {THRESHOLDS[1].max_lag}") if rate else f"{pay.threshold} records"),
            Claim("how far behind", "30 minutes behind = 30 minutes of orders not fulfilled",
                  f"payment peaked at {behind}" + (f" (partition {pay.peak_partition})" if pay.peak_partition is not None else "")),
            Claim("alert fired", "without monitoring: when customers complain",
                  (f"payment at {pay.first_breach_s:.1f} s, {pay.first_breach_s - slowed_at:.1f} s after it slowed; "
                   f"above the threshold for {pay.breached_for_s:.1f} s") if pay.breached and pay.first_breach_s is not None
                  else "payment never breached"),
            Claim("early warning", "-",
                  f"trend +{pay.trend_per_s:.0f} records/s projected the breach at {pay.projected_breach_s:.1f} s"
                  if pay.projected_breach_s is not None and pay.trend_per_s is not None else "no trend before the breach"),
            Claim("backlog cleared", "hours",
                  f"{pay.cleared_at_s - (slowed_at + SLOW_S):.1f} s after the consumer recovered" if pay.cleared_at_s is not None
                  else "not within the run"),
            Claim("other groups", "-", ", ".join(others) + " stayed under the threshold" if others else "-"),
        ),
        note="times are seconds after traffic started; the payment consumer is slowed by a 2 KB/s bandwidth toxic",
    )


SCENARIO = Scenario(
    name="lag_time_bomb",
    description="The payment consumer can fetch only 2 KB/s for 9 s under steady load: its lag climbs and alerts fire.",
    pipelines=(PIPELINE,),
    shape=Constant(25),
    duration_s=DURATION_S,
    faults=(FaultSpec(FaultKind.SLOW_CONSUMER, "consumer.payment", at=SLOW_AT, for_s=SLOW_S, params=SlowConsumer(2)),),
    lag_thresholds=THRESHOLDS,
    drain_timeout_s=60,
    story=story,
)
