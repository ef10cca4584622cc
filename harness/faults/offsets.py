"""Offset faults: a consumer group that comes back with its committed offsets moved back.

  rewind  inject: stop the consumer cleanly (its owner's signal and grace: it commits what
          it applied and leaves its group), then commit, for that now empty group, offsets
          ``records`` back on every partition (0: back to the start of the topic, a replay
          of every old record); heal: start the consumer again. It then reads records it
          applied long ago: an operator's offset reset, a restored backup of the offsets
          topic, a consumer group re-created with ``auto.offset.reset=earliest``. An
          idempotent consumer absorbs them; one that dedupes only recent events, or not at
          all, applies them twice. Effect: the records moved back over, in total.

The duplicate fault re-publishes only the newest delivered records; this one makes a
consumer meet its oldest ones again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, TopicPartition

from harness.errors import ChaosError, WaitTimeout
from harness.faults.process import ProcessHost, _running
from harness.infra import kafka
from harness.wait import wait_for

__all__ = ["OffsetRewind"]

COMMIT_TIMEOUT_S = 20.0  # the stopped member's leave reaches the coordinator within its session timeout at worst


@dataclass(slots=True)
class OffsetRewind:
    process: str
    host: ProcessHost
    group: str
    topic: str
    bootstrap: str  # the DIRECT listener: the harness's own path, never under chaos
    records: int  # per partition; 0 = from the start of the topic
    name: str = "rewind"
    rewound: int = field(default=0)

    @property
    def target(self) -> str:
        return self.process

    def inject(self) -> None:
        _running(self.host, self.process, "be stopped for an offset rewind")
        self.host.stop_process(self.process)
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                             "enable.auto.commit": False, "socket.timeout.ms": 5000, "logger": kafka.quiet_logger()})
        try:
            meta = consumer.list_topics(self.topic, timeout=5).topics[self.topic]
            parts = [TopicPartition(self.topic, p) for p in meta.partitions]
            committed = {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=5) if tp.offset >= 0}
            moved: list[TopicPartition] = []
            total = 0
            for p, offset in committed.items():
                low, _ = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=5)
                to = low if self.records == 0 else max(low, offset - self.records)
                if to < offset:
                    moved.append(TopicPartition(self.topic, p, to))
                    total += offset - to
            if not moved:
                raise ChaosError(f"group {self.group} has committed nothing to move back on {self.topic} yet; "
                                 "start the rewind later in the run")

            def commit() -> tuple[bool, str]:
                # A standalone commit is accepted once the group has no member left (the stopped
                # consumer's leave has reached the coordinator).
                try:
                    consumer.commit(offsets=moved, asynchronous=False)
                except KafkaException as exc:
                    return False, str(exc)
                return True, "committed"

            try:
                wait_for(commit, timeout_s=COMMIT_TIMEOUT_S, what=f"group {self.group} to accept rewound offsets",
                         interval_s=0.5)
            except WaitTimeout as exc:
                raise ChaosError(f"could not rewind group {self.group}: {exc}") from exc
            self.rewound = total
        finally:
            consumer.close()

    def effect(self) -> int:
        return self.rewound

    def heal(self) -> None:
        self.host.restart(self.process)
