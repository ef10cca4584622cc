"""The harness's own reads of a target's topics and groups, through the broker's DIRECT listener.

Never through a proxy (a fault must not blind the judge), and decoded with the target's
domain pack, so a record reads the same to the checkers whichever language wrote it.
A dead-letter record is read by its content: the event from its value, its reason and origin
from whichever framework's headers it carries (``harness.deadletter``). An event record keeps
the provenance headers its publisher put on it (outbox row id, WAL position:
``harness.provenance``), which ``chaos trace`` shows beside its partition and offset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from confluent_kafka import Consumer, TopicPartition

from harness.deadletter import read_dead_letter
from harness.history.ops import Scalar
from harness.infra import kafka
from harness.provenance import read_provenance
from harness.target.domain import Domain

__all__ = ["Oracle", "headers_text"]

_FIELDS = ("event_id", "order_id", "type", "seq", "correlation_id", "schema_version")


class Oracle:
    """Short-lived clients on the DIRECT listener, for one run of one target."""

    def __init__(self, bootstrap: str, run_id: str, domain: Domain) -> None:
        self.bootstrap = bootstrap
        self.group = f"oracle.{run_id}"
        self.domain = domain
        self._probes: dict[str, Consumer] = {}  # group ("" for end offsets) -> its lag client, for the run

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

    def lag(self, topic: str, groups: Sequence[str]) -> dict[str, int]:
        """Records on ``topic`` not yet committed, per group (the sum of ``lag_by_partition``)."""
        return {group: sum(parts.values()) for group, parts in self.lag_by_partition(topic, groups).items()}

    def lag_by_partition(self, topic: str, groups: Sequence[str]) -> dict[str, dict[int, int]]:
        """Records on ``topic`` not yet committed, per group and partition (see ``ends_and_lag``)."""
        return self.ends_and_lag(topic, groups)[1]

    def ends_and_lag(self, topic: str, groups: Sequence[str]) -> tuple[dict[int, int], dict[str, dict[int, int]]]:
        """The end offset of each partition of ``topic``, and the records not yet committed, per group and partition.

        Clients that live for the run (one for the end offsets, one per group for its committed
        offsets), asked synchronously with timeouts: a sample is a few round trips
        (bench/lag_probe.py), where a client per sample cost about 175 ms. No request outlives
        its call: an admin-client probe whose futures completed after their caller gave up
        (a broker killed mid-request) once aborted the whole process from librdkafka's thread.
        A client that fails is closed here and made again at the next sample.
        """
        try:
            ends = self._ends(self._probe(""), topic)
            out: dict[str, dict[int, int]] = {}
            for group in groups:
                parts = [TopicPartition(topic, p) for p in ends]
                committed = {tp.partition: max(tp.offset, 0) for tp in self._probe(group).committed(parts, timeout=5)}
                out[group] = {p: max(0, ends[p] - committed.get(p, 0)) for p in sorted(ends)}
            return ends, out
        except BaseException:
            self.close()
            raise

    def _probe(self, group: str) -> Consumer:
        client = self._probes.get(group)
        if client is None:
            client = self._probes[group] = self._consumer(group or None)
        return client

    def close(self) -> None:
        """Close the run's long-lived clients (before the broker may go away)."""
        probes, self._probes = self._probes, {}
        for client in probes.values():
            client.close()

    def read_topic(self, topic: str, *, dead_letters: bool = False) -> list[Mapping[str, Scalar]]:
        """Every record of ``topic``, decoded with the domain pack (as dead letters when ``dead_letters``)."""
        consumer = self._consumer()
        try:
            messages = kafka.read_to_end(consumer, topic, self._ends(consumer, topic))
        finally:
            consumer.close()
        return [self.record(msg, dead_letter=dead_letters) for msg in messages]

    def record(self, msg: object, *, dead_letter: bool = False) -> Mapping[str, Scalar]:
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
        headers = msg.headers()  # type: ignore[attr-defined]
        if not dead_letter:
            # Only the fields the record carries: a direct-published topic's rows (and their
            # stored columns) stay as they were.
            row.update(read_provenance(headers).fields())
        else:
            found = read_dead_letter(headers)
            row.update(convention=found.convention.value, reason=found.reason, source_topic=found.source_topic,
                       source_partition=found.source_partition, source_offset=found.source_offset,
                       headers=headers_text(headers))
            if found.consumer is not None:
                row["dead_lettered_by"] = found.consumer
        return row


def headers_text(headers: object) -> str:
    """A record's headers as one JSON object of text (binary values as hex), for a history row."""
    out: dict[str, str] = {}
    for name, value in headers or ():  # type: ignore[attr-defined]
        if value is None:
            out[name] = ""
            continue
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        # Spring writes partition and offset as binary ints, which decode as control characters.
        out[name] = text if text.isprintable() and (text or not value) else "0x" + value.hex()
    return json.dumps(out, sort_keys=True, separators=(",", ":"))
