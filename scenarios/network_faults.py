"""Every Toxiproxy fault once, one after the other, on the outbox pipeline's links.

Latency, bandwidth, slicing and limit_data on the consumer's link to Kafka; reset_peer, a
one-way cut (the lost-ack direction) on the relay's link to Kafka; a black hole on the
relay's link to Postgres; limit_data on the consumer's link to Kafka (each fetch answer
is cut off, so the consumer cannot get a whole batch). The outbox
pipeline with an idempotent consumer must lose nothing and each fault must bite
(pending work grows behind it), or the run is inconclusive.
"""

from harness.faults.schedule import sequence
from harness.faults.spec import (Bandwidth, FaultKind, FaultSpec, Latency, LimitData, OneWayCut, ResetPeer, Slicer)
from harness.scenario import Scenario
from harness.workload.rate import Constant

DURATION_S = 25

SCENARIO = Scenario(
    name="network_faults",
    description="Latency, bandwidth, slicer, reset_peer, black hole, limit_data and a one-way cut, in sequence.",
    pipelines=("outbox",),
    shape=Constant(20),
    duration_s=DURATION_S,
    faults=sequence(
        FaultSpec(FaultKind.LATENCY, "consumer.payment->kafka", at=0.04, for_s=3, params=Latency(600, 100)),
        FaultSpec(FaultKind.RESET_PEER, "publisher->kafka", at=0, for_s=3, params=ResetPeer(0)),
        FaultSpec(FaultKind.BLACK_HOLE, "publisher->postgres", at=0, for_s=3),
        FaultSpec(FaultKind.BANDWIDTH, "consumer.payment->kafka", at=0, for_s=3, params=Bandwidth(1)),
        FaultSpec(FaultKind.SLICER, "consumer.payment->kafka", at=0, for_s=3, params=Slicer(32, 16, 10_000)),
        FaultSpec(FaultKind.LIMIT_DATA, "consumer.payment->kafka", at=0, for_s=3, params=LimitData(1000)),
        FaultSpec(FaultKind.ONE_WAY_CUT, "publisher->kafka", at=0, for_s=3, params=OneWayCut("downstream")),
        duration_s=DURATION_S, gap_s=0.8,
    ),
    drain_timeout_s=60,
)
