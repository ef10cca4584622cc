"""How long one lag sample takes: clients that live for the run against a client per sample.

Needs a running infra (`chaos infra up`; CHAOS_BASE_PORT as usual). Makes a 3-partition
topic with traffic and four consumer groups that committed part of it (like a pipeline's
four consumers), then takes N samples each way and prints the median, p95 and the ratio.

    python bench/lag_probe.py [--samples 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from harness.config import Settings
from harness.infra import kafka
from harness.infra.stack import Infra
from harness.target.oracle import Oracle

GROUPS = 4


def _per_client_sample(bootstrap: str, topic: str, groups: list[str]) -> dict[str, int]:
    """What the probe did before: a fresh consumer for the end offsets and one per group."""
    def consumer(group: str) -> Consumer:
        return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "logger": kafka.quiet_logger()})

    c = consumer("bench.ends")
    try:
        meta = c.list_topics(topic, timeout=5).topics[topic]
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in meta.partitions}
    finally:
        c.close()
    out = {}
    for g in groups:
        m = consumer(g)
        try:
            committed = {tp.partition: max(tp.offset, 0) for tp in m.committed([TopicPartition(topic, p) for p in ends], timeout=5)}
        finally:
            m.close()
        out[g] = sum(max(0, ends[p] - committed.get(p, 0)) for p in ends)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    infra = Infra.attach(Settings.from_env())
    if infra is None:
        raise SystemExit("no infra running: start it with `chaos infra up`")
    bootstrap = infra.topology.kafka_direct
    topic = f"bench.lag.{uuid.uuid4().hex[:8]}"
    kafka.admin(bootstrap).create_topics([NewTopic(topic, 3, 1)])[topic].result(timeout=20)
    producer = Producer({"bootstrap.servers": bootstrap, "logger": kafka.quiet_logger()})
    for i in range(3000):
        producer.produce(topic, key=str(i).encode(), value=b"x")
    producer.flush(30)
    groups = [f"bench.{topic}.{i}" for i in range(GROUPS)]
    for i, g in enumerate(groups):  # each group committed a different share of the topic
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": g, "enable.auto.commit": False,
                      "logger": kafka.quiet_logger()})
        c.commit(offsets=[TopicPartition(topic, p, 200 * (i + 1)) for p in range(3)], asynchronous=False)
        c.close()
    oracle = Oracle(bootstrap, "bench", domain=None)  # type: ignore[arg-type]
    assert oracle.lag(topic, groups) == _per_client_sample(bootstrap, topic, groups), "the two probes disagree"

    def timed(fn: object) -> list[float]:
        out = []
        for _ in range(args.samples):
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            out.append((time.perf_counter() - t0) * 1000)
        return out

    new = timed(lambda: oracle.lag(topic, groups))
    old = timed(lambda: _per_client_sample(bootstrap, topic, groups))
    p95 = lambda xs: sorted(xs)[int(len(xs) * 0.95) - 1]  # noqa: E731
    print(f"lag sample, {GROUPS} groups x 3 partitions, {args.samples} samples each")
    print(f"  long-lived clients:     median {statistics.median(new):.1f} ms, p95 {p95(new):.1f} ms")
    print(f"  a client per sample:    median {statistics.median(old):.1f} ms, p95 {p95(old):.1f} ms")
    print(f"  ratio (new/old median): {statistics.median(new) / statistics.median(old):.3f}")
    oracle.close()
    kafka.admin(bootstrap).delete_topics([topic])


if __name__ == "__main__":
    main()
