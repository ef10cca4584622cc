"""The harness's own reads of a target's topics and groups, through the broker's DIRECT listener.

Never through a proxy (a fault must not blind the judge), and decoded with the target's
domain pack, so a record reads the same to the checkers whichever language wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from confluent_kafka import ConsumerGroupTopicPartitions, Consumer, TopicPartition
from confluent_kafka.admin import OffsetSpec

from harness.history.ops import Scalar
from harness.infra import kafka
from harness.target.domain import Domain
from harness.wait import wait_for

__all__ = ["Oracle"]

_HEADERS = ("reason", "source_topic", "source_partition", "source_offset")
_FIELDS = ("event_id", "order_id", "type", "seq", "correlation_id", "schema_version")


class Oracle:
    """Short-lived clients on the DIRECT listener, for one run of one target."""

    def __init__(self, bootstrap: str, run_id: str, domain: Domain) -> None:
        self.bootstrap = bootstrap
        self.group = f"oracle.{run_id}"
        self.domain = domain
        self._known_partitions: dict[str, list[int]] = {}
        self._fast = True  # the admin-client lag path, until it fails once (see ``lag``)

    def _consumer(self, group: str | None = None) -> Consumer:
        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": group or self.group,
                         "enable.auto.commit": False, "socket.timeout.ms": 5000, "logger": kafka.quiet_logger()})

    @staticmethod
    def _ends(consumer: Consumer, topic: str) -> dict[int, int]:
        meta = consumer.list_topics(topic, timeout=5).topics[topic]
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in meta.partitions}

    def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = self._consumer()
        try:
            return self._ends(consumer, topic)
        finally:
            consumer.close()

    def _partitions(self, topic: str) -> list[int]:
        known = self._known_partitions.get(topic)
        if known is None:
            meta = kafka.admin(self.bootstrap).list_topics(topic, timeout=5).topics[topic]
            if meta.error is not None or not meta.partitions:
                raise RuntimeError(f"topic {topic} has no partitions yet: {meta.error}")
            known = self._known_partitions[topic] = sorted(meta.partitions)
        return known

    def lag(self, topic: str, groups: Sequence[str]) -> dict[str, int]:
        """Records on ``topic`` not yet committed, per group.

        One long-lived admin client with every request in flight at once (about 1.5 ms a
        sample here, bench/lag_probe.py): the probe runs every half second for a whole run,
        and a client per sample cost about 175 ms. After a broker was killed and restarted,
        the cached client's offset requests were seen to time out for minutes while fresh
        clients answered at once; so the first failure switches this oracle to a client per
        sample for the rest of the run, rather than blinding the drain.
        """
        if self._fast:
            try:
                return self._lag_admin(topic, groups)
            except Exception:  # noqa: BLE001 - the slow path below is the judge from here on
                self._fast = False
        return self._lag_clients(topic, groups)

    def _lag_admin(self, topic: str, groups: Sequence[str]) -> dict[str, int]:
        admin = kafka.admin(self.bootstrap)
        tps = [TopicPartition(topic, p) for p in self._partitions(topic)]
        ends_f = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=3)
        committed_f = {g: admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g, tps)],
                                                            request_timeout=3)[g] for g in groups}
        ends = {tp.partition: f.result(timeout=4).offset for tp, f in ends_f.items()}
        out = {}
        for group, future in committed_f.items():
            offsets = {tp.partition: max(tp.offset, 0) for tp in future.result(timeout=4).topic_partitions}
            out[group] = sum(max(0, ends[p] - offsets.get(p, 0)) for p in ends)
        return out

    def _lag_clients(self, topic: str, groups: Sequence[str]) -> dict[str, int]:
        consumer = self._consumer()
        try:
            ends = self._ends(consumer, topic)
        finally:
            consumer.close()
        out = {}
        for group in groups:
            member = self._consumer(group)
            try:
                committed = member.committed([TopicPartition(topic, p) for p in ends], timeout=5)
            finally:
                member.close()
            offsets = {tp.partition: max(tp.offset, 0) for tp in committed}
            out[group] = sum(max(0, ends[p] - offsets.get(p, 0)) for p in ends)
        return out

    def read_topic(self, topic: str) -> list[Mapping[str, Scalar]]:
        """Every record of ``topic``, decoded with the domain pack."""
        consumer = self._consumer()
        rows: list[Mapping[str, Scalar]] = []
        try:
            ends = {p: e for p, e in self._ends(consumer, topic).items() if e > 0}
            if not ends:
                return rows
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            remaining = dict(ends)

            def read() -> tuple[bool, str]:
                for msg in consumer.consume(500, timeout=0.5):
                    if msg.error():
                        continue
                    rows.append(self.record(msg))
                    if msg.offset() + 1 >= remaining.get(msg.partition(), 0):
                        remaining.pop(msg.partition(), None)
                return not remaining, f"partitions still being read: {sorted(remaining)}"

            wait_for(read, timeout_s=60, what=f"reading topic {topic} to its end", interval_s=0)
        finally:
            consumer.close()
        return rows

    def record(self, msg: object) -> Mapping[str, Scalar]:
        raw = msg.value()  # type: ignore[attr-defined]
        key = msg.key()  # type: ignore[attr-defined]
        row: dict[str, Scalar] = {
            "partition": msg.partition(), "offset": msg.offset(),  # type: ignore[attr-defined]
            "key": key.decode("utf-8", "replace") if key else None,
            "timestamp_ms": msg.timestamp()[1],  # type: ignore[attr-defined]
            "payload": raw.decode("utf-8", "replace")[:2000] if raw else None,
        }
        try:
            event = self.domain.decode(raw)
            row.update(event_id=event.event_id, order_id=event.entity_id, type=event.type, seq=event.seq,
                       correlation_id=event.correlation_id, schema_version=event.schema_version)
        except ValueError:
            # Contract: undecodable only when the value is not a JSON object; an object missing
            # fields keeps what it has (a schema checker judges it from ``payload``).
            try:
                data = json.loads(raw) if raw is not None else None
            except (ValueError, UnicodeDecodeError):
                data = None
            if isinstance(data, dict):
                for name in _FIELDS:
                    value = data.get(name)
                    row[name] = value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
            else:
                row["undecodable"] = True
        for name, value in msg.headers() or ():  # type: ignore[attr-defined]
            if name in _HEADERS:
                text = value.decode("utf-8", "replace")
                row[name] = int(text) if name in ("source_partition", "source_offset") and text.isdigit() else text
        return row
