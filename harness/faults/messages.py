"""Message-level faults: whole messages duplicated or malformed, above TCP where Toxiproxy cannot reach.

Both write into the pipeline's event topic through the broker's DIRECT listener (the
harness's own path, never under chaos), so the fault is the message, not the network.

  duplicate  re-publish ``count`` events the consumers already processed (below their
             committed offsets), with the same key, value and headers: a redelivery as
             a broker or relay retry would produce it. Idempotent consumers absorb it;
             a consumer without dedupe applies the effect twice.
  poison     publish ``count`` malformed payloads (not JSON, not an object, missing
             fields). A correct consumer sends each to its dead-letter topic with a
             reason and carries on; a broken one stalls, crashes or drops it silently.

  schema_drift  the order service writes schema v2 (a renamed or removed field) while the
             fault is active (a file the target polls, targets/drift.py); v1-only
             consumers dead-letter those events. Effect: v2 events on the topic.

Slow consumer is a network fault (a bandwidth toxic on the consumer's kafka link, see
network.py). Inject publishes (one state change); heal has nothing to undo.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from harness.errors import ChaosError, WaitTimeout
from harness.infra import kafka
from harness.wait import wait_for

__all__ = ["DuplicateDelivery", "POISON_PAYLOADS", "PoisonMessage", "SchemaDriftFault"]

POISON_PAYLOADS: tuple[bytes, ...] = (
    b"{not json at all",
    b"[1, 2, 3]",
    # An object that misses the event's identity: no event_id, order_id or seq to dedupe or order by.
    b'{"type": "order.paid", "note": "an object without event_id, order_id or seq"}',
)
_PREFERRED_TYPES = (b'"order.paid"', b'"order.shipped"', b'"order.created"')


Record = tuple[bytes | None, bytes | None, list[tuple[str, str | bytes | None]], int | None]
"""key, value, headers, and the partition to write to (None: the partitioner decides)."""


def _produce(bootstrap: str, records: Sequence[Record], topic: str) -> int:
    # murmur2_random: the partition Java clients (Debezium) and the relay choose for the same key.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 10_000,
                         "partitioner": "murmur2_random", "logger": kafka.quiet_logger()})
    acked: list[bool] = []
    for key, value, headers, partition in records:
        extra: dict[str, Any] = {"partition": partition} if partition is not None else {}
        producer.produce(topic, key=key, value=value, headers=headers,
                         on_delivery=lambda err, msg: acked.append(err is None), **extra)
    producer.flush(15.0)
    return sum(acked)


DELIVERED_WAIT_S = 15.0
"""How long the duplicate fault waits for a first committed offset before it gives up (a cold group's join)."""


@dataclass(slots=True)
class DuplicateDelivery:
    """Re-publish ``count`` already-delivered events of ``topic`` (group ``group``'s committed range)."""

    topic: str
    group: str
    bootstrap: str  # the DIRECT listener
    count: int
    name: str = "duplicate"
    target: str = "events"
    published: int = field(default=0)
    _touched: frozenset[str] = field(default=frozenset())

    def _delivered(self) -> list[Record]:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
                             "socket.timeout.ms": 5000, "logger": kafka.quiet_logger()})
        try:
            meta = consumer.list_topics(self.topic, timeout=5).topics[self.topic]
            committed = consumer.committed([TopicPartition(self.topic, p) for p in meta.partitions], timeout=5)
            window = {tp.partition: (max(0, tp.offset - 4 * self.count), tp.offset) for tp in committed if tp.offset > 0}
            if not window:
                return []
            consumer.assign([TopicPartition(self.topic, p, lo) for p, (lo, _) in window.items()])
            remaining = {p for p, (lo, hi) in window.items() if hi > lo}
            found: list[object] = []

            def read() -> tuple[bool, str]:
                for msg in consumer.consume(500, timeout=0.5):
                    if msg.error():
                        continue
                    partition, offset = kafka.coordinates(msg)
                    hi = window[partition][1]
                    if offset < hi:
                        found.append(msg)
                    if offset + 1 >= hi:
                        remaining.discard(partition)
                return not remaining, f"partitions still being read: {sorted(remaining)}"

            wait_for(read, timeout_s=20, what=f"reading delivered events of {self.topic}", interval_s=0)
        finally:
            consumer.close()

        def rank(msg: object) -> tuple[int, int]:
            value = msg.value() or b""  # type: ignore[attr-defined]
            kind = next((i for i, t in enumerate(_PREFERRED_TYPES) if t in value), len(_PREFERRED_TYPES))
            return kind, -msg.timestamp()[1]  # type: ignore[attr-defined]

        chosen = sorted(found, key=rank)[: self.count]
        # A redelivery lands where the original did: whatever partitioner the publisher used, the
        # duplicate must not look like the entity split across partitions.
        return [(m.key(), m.value(), list(m.headers() or ()), m.partition()) for m in chosen]  # type: ignore[attr-defined]

    def inject(self) -> None:
        # Early in a run on a freshly started broker, the group may not have committed anything yet
        # (its first join takes seconds): wait for something to duplicate, with a deadline.
        found: list[list[Record]] = [[]]

        def delivered() -> tuple[bool, str]:
            found[0] = self._delivered()
            return bool(found[0]), f"group {self.group} has committed nothing on {self.topic} yet"

        try:
            wait_for(delivered, timeout_s=DELIVERED_WAIT_S, what="delivered events to duplicate", interval_s=0.5)
        except WaitTimeout:
            pass
        records = found[0]
        self._touched = frozenset(_ids(records))
        if not records:
            raise ChaosError(f"no delivered events on {self.topic} after {DELIVERED_WAIT_S:g} s (group {self.group} "
                             "committed nothing); start the duplicate fault later in the run")
        self.published = _produce(self.bootstrap, records, self.topic)
        if self.published == 0:
            raise ChaosError(f"none of {len(records)} duplicates was acknowledged by the broker")

    def effect(self) -> int:
        return self.published

    def touched(self) -> frozenset[str]:
        return self._touched

    def heal(self) -> None:
        """Nothing to undo: a published message stays published."""


@dataclass(slots=True)
class PoisonMessage:
    """Publish ``count`` malformed payloads into ``topic``."""

    topic: str
    bootstrap: str
    count: int
    name: str = "poison"
    target: str = "events"
    published: int = field(default=0)

    def inject(self) -> None:
        records: list[Record] = [(str(uuid.uuid5(uuid.NAMESPACE_URL, f"chaos-poison-{self.topic}-{i}")).encode(),
                    POISON_PAYLOADS[i % len(POISON_PAYLOADS)], [("chaos_fault", b"poison")], None)
                   for i in range(self.count)]
        self.published = _produce(self.bootstrap, records, self.topic)
        if self.published == 0:
            raise ChaosError(f"none of {self.count} poison messages was acknowledged by the broker")

    def effect(self) -> int:
        return self.published

    def touched(self) -> frozenset[str]:
        return frozenset()  # malformed records of no entity: they explain no entity's anomaly

    def heal(self) -> None:
        """Nothing to undo: the consumers must deal with what is on the topic."""


def _ids(records: list[Record]) -> list[str]:
    """The entity (record key) and, where the value is a JSON event, the event and entity ids of each record."""
    out: list[str] = []
    for key, value, _, _ in records:
        if key:
            out.append(key.decode("utf-8", "replace"))
        try:
            data = json.loads(value) if value else None
        except ValueError:
            data = None
        if isinstance(data, dict):
            out.extend(str(data[f]) for f in ("event_id", "order_id") if data.get(f) is not None)
    return out


def _count_on_topic(bootstrap: str, topic: str, needle: bytes) -> int:
    """Records of ``topic`` whose value contains ``needle``, read to the end through the DIRECT listener."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chaos-oracle-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "socket.timeout.ms": 5000, "logger": kafka.quiet_logger()})
    found = [0]
    try:
        meta = consumer.list_topics(topic, timeout=5).topics[topic]
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in meta.partitions}
        remaining = {p for p, end in ends.items() if end > 0}
        if not remaining:
            return 0
        consumer.assign([TopicPartition(topic, p, 0) for p in remaining])

        def read() -> tuple[bool, str]:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error():
                    continue
                if needle in (msg.value() or b""):
                    found[0] += 1
                partition, offset = kafka.coordinates(msg)
                if offset + 1 >= ends[partition]:
                    remaining.discard(partition)
            return not remaining, f"partitions still being read: {sorted(remaining)}"

        wait_for(read, timeout_s=30, what=f"reading {topic} to its end", interval_s=0)
    finally:
        consumer.close()
    return found[0]


@dataclass(slots=True)
class SchemaDriftFault:
    """Switch ``process`` (the order service) to schema v2 while the fault is active."""

    process: str
    folder: Path
    change: str
    topic: str
    bootstrap: str
    name: str = "schema_drift"

    @property
    def target(self) -> str:
        return self.process

    @property
    def _switch(self) -> Path:
        return self.folder / f"{self.process}.drift"

    def inject(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._switch.with_suffix(".tmp")
        tmp.write_text(json.dumps({"change": self.change}))
        os.replace(tmp, self._switch)

    def effect(self) -> int:
        """v2 events that reached the topic (the drift was really produced), plus the v2 events the
        producer refused to write because its schema registry rejected the new version: it reports
        them in ``<process>.drift.refused`` (a count), so a drift stopped at registration still bit."""
        return _count_on_topic(self.bootstrap, self.topic, b'"schema_version":2') + self.refused()

    def refused(self) -> int:
        try:
            return int(self._switch.with_name(f"{self.process}.drift.refused").read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def heal(self) -> None:
        self._switch.unlink(missing_ok=True)
