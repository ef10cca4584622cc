"""`chaos dlq`: list, show and replay dead-lettered records, from a run folder or a live broker.

A record is read by its content (``harness.deadletter``): the event from its value, the reason and
the original coordinates from whichever framework's headers it carries. Each record has a ref to
name it on the command line: ``PIPELINE/CONSUMER/PARTITION/OFFSET`` in a run folder,
``PARTITION/OFFSET`` on a live dead-letter topic.

Replay publishes a record's original value and key to its original topic (and partition, when the
topic has it), without the dead-letter headers and with two of its own: ``chaos.replay.of`` (the
dead-letter record, TOPIC/P/O) and ``chaos.replay.source`` (the original record). The event id is in
the value, unchanged, so a consumer that dedupes by event id applies a replayed event at most once.

The replay ledger (JSON lines) makes a rerun skip what was replayed: a record is marked
``publishing`` before it is sent and ``published`` once the broker acknowledged it. A rerun after
an interruption between the two looks for a record carrying its ``chaos.replay.of`` on the
destination topic and publishes again only if none is there; the consumers' dedupe by event id
covers what even that cannot see (a ledger deleted by hand).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from harness.deadletter import REPLAY_OF, REPLAY_SOURCE, is_dead_letter_header
from harness.errors import InfraError, UsageError
from harness.history.ops import Scalar
from harness.infra import kafka
from harness.target.domain import Domain
from harness.target.oracle import Oracle
from harness.tools._runs import load_run

__all__ = ["DlqRecord", "ReplayAction", "ReplayLedger", "ReplayOutcome", "from_broker", "from_run", "replay", "select"]

_TIMEOUT_S = 10.0
_PAYLOAD_CAP = 2000  # the oracle keeps at most this many characters of a value in the history


@dataclass(frozen=True, slots=True)
class DlqRecord:
    ref: str
    dlq_topic: str | None  # None in run folders written before dlq rows named their topic
    partition: int
    offset: int
    consumer: str | None
    key: str | None
    timestamp_ms: int | None
    event_id: str | None
    order_id: str | None
    type: str | None
    correlation_id: str | None
    convention: str
    reason: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    headers: tuple[tuple[str, bytes | None], ...]
    value: bytes | None
    value_complete: bool  # False when the run folder kept only the first characters of the value

    @property
    def coordinates(self) -> str:
        return f"{self.dlq_topic}/{self.partition}/{self.offset}"

    @property
    def source(self) -> str:
        return f"{self.source_topic}/{self.source_partition}/{self.source_offset}" if self.source_topic else "unknown"

    def to_json(self, *, value: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "ref": self.ref, "dlq_topic": self.dlq_topic, "partition": self.partition, "offset": self.offset,
            "consumer": self.consumer, "key": self.key, "timestamp_ms": self.timestamp_ms,
            "event_id": self.event_id, "order_id": self.order_id, "type": self.type,
            "correlation_id": self.correlation_id, "convention": self.convention, "reason": self.reason,
            "source_topic": self.source_topic, "source_partition": self.source_partition,
            "source_offset": self.source_offset, "headers": dict(_headers_text(self.headers))}
        if value:
            out["value"] = self.value.decode("utf-8", "replace") if self.value is not None else None
        return out


def _headers_text(headers: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, str]]:
    out = []
    for name, raw in headers:
        try:
            text = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError:
            text = ""
        out.append((name, text if raw is None or (text.isprintable() and (text or not raw)) else "0x" + raw.hex()))
    return out


def _str(v: Scalar | None) -> str | None:
    return None if v is None else str(v)


def _int(v: Scalar | None) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _record(row: Mapping[str, Scalar], ref: str, headers: tuple[tuple[str, bytes | None], ...],
            value: bytes | None, complete: bool, dlq_topic: str | None) -> DlqRecord:
    return DlqRecord(ref, dlq_topic, int(row.get("partition") or 0), int(row.get("offset") or 0),  # type: ignore[arg-type]
                     _str(row.get("consumer")), _str(row.get("key")), _int(row.get("timestamp_ms")),
                     _str(row.get("event_id")), _str(row.get("order_id")), _str(row.get("type")),
                     _str(row.get("correlation_id")), str(row.get("convention") or "chaos"),
                     str(row.get("reason") or ""), _str(row.get("source_topic")), _int(row.get("source_partition")),
                     _int(row.get("source_offset")), headers, value, complete)


def _stored_headers(row: Mapping[str, Scalar]) -> tuple[tuple[str, bytes | None], ...]:
    raw = row.get("headers")
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
        return tuple((k, bytes.fromhex(v[2:]) if v.startswith("0x") else v.encode()) for k, v in data.items())
    # Rows written before the headers were kept: rebuild this project's own from the fields.
    return tuple((name, str(row[name]).encode()) for name in ("reason", "source_topic", "source_partition",
                                                              "source_offset") if row.get(name) is not None)


def from_run(run_dir: Path, pipeline: str | None = None) -> list[DlqRecord]:
    """Every dead-lettered record a run folder observed, in ref order."""
    histories = load_run(run_dir, pipeline)
    with_dlq = {p: h for p, h in histories.items() if "dlq" in h.observations}
    if not with_dlq:
        raise UsageError(f"{run_dir.name} has no dead-letter observation (the run stopped before its final "
                         "observations, or its target has no dead-letter topics); pick a run that finished, "
                         "or read a live topic with --bootstrap HOST:PORT --topic DLQ_TOPIC")
    out = []
    for p, h in sorted(with_dlq.items()):
        for row in h.observed("dlq"):
            payload = row.get("payload")
            value = payload.encode() if isinstance(payload, str) else None
            complete = not (isinstance(payload, str) and len(payload) >= _PAYLOAD_CAP)
            ref = f"{p}/{row.get('consumer')}/{row.get('partition')}/{row.get('offset')}"
            out.append(_record(row, ref, _stored_headers(row), value, complete, _str(row.get("dlq_topic"))))
    return out


def _consumer(bootstrap: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-dlq-tool", "enable.auto.commit": False,
                     "socket.timeout.ms": 5000, "socket.connection.setup.timeout.ms": 5000,
                     "logger": kafka.quiet_logger()})


def _partitions(consumer: Consumer, bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> end offset; UsageError when the topic does not exist, InfraError when Kafka does not answer."""
    try:
        meta = consumer.list_topics(topic, timeout=_TIMEOUT_S).topics.get(topic)
    except KafkaException as exc:
        raise InfraError(f"Kafka at {bootstrap} did not answer within {_TIMEOUT_S:.0f}s ({exc}); is it running? "
                         "`chaos infra status`") from exc
    if meta is None or meta.error is not None or not meta.partitions:
        raise UsageError(f"topic {topic} does not exist on {bootstrap}; check the name (`kafka-topics.sh "
                         f"--bootstrap-server {bootstrap} --list`) or pass another with --to")
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=_TIMEOUT_S)[1] for p in meta.partitions}


def _read_all(bootstrap: str, topic: str) -> list[Message]:
    consumer = _consumer(bootstrap)
    try:
        return kafka.read_to_end(consumer, topic, _partitions(consumer, bootstrap, topic))
    finally:
        consumer.close()


def _headers(msg: Message) -> tuple[tuple[str, bytes | None], ...]:
    """A consumed record's headers as (name, bytes) pairs: what the client returns, where its type
    hints also allow the dict and str values only ``produce`` takes."""
    raw = msg.headers() or ()
    pairs = raw.items() if isinstance(raw, dict) else raw
    return tuple((str(n), v.encode() if isinstance(v, str) else v) for n, v in pairs)


def from_broker(bootstrap: str, topic: str, domain: Domain) -> list[DlqRecord]:
    """Every record of the dead-letter topic ``topic`` on a live broker, read by its content."""
    oracle = Oracle(bootstrap, "dlq-tool", domain)
    out = []
    for msg in sorted(_read_all(bootstrap, topic), key=lambda m: (m.partition(), m.offset())):
        row = oracle.record(msg, dead_letter=True)
        out.append(_record({**row, "consumer": row.get("dead_lettered_by")}, f"{msg.partition()}/{msg.offset()}",
                           _headers(msg), msg.value(), True, topic))
    return out


def select(records: Sequence[DlqRecord], refs: Sequence[str] = (), *, everything: bool = False,
           event_ids: Sequence[str] = ()) -> list[DlqRecord]:
    """The records named by ref or event id, or all of them; UsageError naming a ref that matches none."""
    if everything:
        return list(records)
    if not refs and not event_ids:
        raise UsageError("name the records to replay: a REF from `chaos dlq list` (repeatable), --event ID, or --all")
    by_ref = {r.ref: r for r in records}
    unknown = [ref for ref in refs if ref not in by_ref]
    missing = [e for e in event_ids if not any(r.event_id == e for r in records)]
    if unknown or missing:
        example = f" (e.g. {records[0].ref})" if records else " (the dead-letter queue is empty)"
        what = ", ".join([*(f"ref {u}" for u in unknown), *(f"event {m}" for m in missing)])
        raise UsageError(f"no dead-lettered record matches {what}; use a ref `chaos dlq list` prints{example}")
    chosen = [by_ref[ref] for ref in refs]
    chosen += [r for r in records if r.event_id in set(event_ids) and r not in chosen]
    return chosen


class ReplayAction(Enum):
    REPLAYED = "replayed"
    SKIPPED = "skipped"  # the ledger (or the destination topic) shows it was replayed already
    WOULD_REPLAY = "would replay"  # --dry-run


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    ref: str
    action: ReplayAction
    destination: str  # TOPIC/P/O once published, else TOPIC
    event_id: str | None
    detail: str


class ReplayLedger:
    """Which dead-letter records were replayed: an append-only JSON-lines file, the last line per record wins."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> dict[str, Mapping[str, object]]:
        out: dict[str, Mapping[str, object]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by an interruption: the record's earlier state stands
            if isinstance(entry, dict) and isinstance(entry.get("dlq"), str):
                out[entry["dlq"]] = entry
        return out

    def mark(self, dlq: str, state: str, **fields: object) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"dlq": dlq, "state": state, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           **fields}, separators=(",", ":"))
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()


def _already_on(bootstrap: str, topic: str, dlq: str) -> str | None:
    """TOPIC/P/O of a record on ``topic`` that is a replay of ``dlq``, if any (an interrupted earlier replay)."""
    for msg in _read_all(bootstrap, topic):
        for name, value in _headers(msg):
            if name == REPLAY_OF and value is not None and value.decode("utf-8", "replace") == dlq:
                return f"{topic}/{msg.partition()}/{msg.offset()}"
    return None


def replay(records: Sequence[DlqRecord], bootstrap: str, ledger: ReplayLedger, *, dry_run: bool = False,
           to: str | None = None) -> list[ReplayOutcome]:
    """Publish each record to its original topic once; see the module docstring for the guarantees."""
    # Every record is checked before any is published: a bad one later in the list must not leave half a replay.
    plans: list[tuple[DlqRecord, str]] = []
    for r in records:
        dest = to or r.source_topic
        if dest is None:
            raise UsageError(f"record {r.ref} does not say its original topic (headers: {r.convention}); "
                             "pass the topic to replay it to with --to TOPIC")
        if r.dlq_topic is None:
            raise UsageError(f"record {r.ref} comes from a run folder that does not name its dead-letter topic; "
                             "replay it from the live topic with --bootstrap HOST:PORT --topic DLQ_TOPIC")
        if r.value is None or not r.value_complete:
            raise UsageError(f"record {r.ref}: the run folder kept {'no' if r.value is None else 'only part of its'} "
                             "value; replay it from the live topic with --bootstrap HOST:PORT --topic DLQ_TOPIC")
        plans.append((r, dest))
    consumer = _consumer(bootstrap)
    try:
        partitions = {dest: _partitions(consumer, bootstrap, dest) for dest in {d for _, d in plans}}
    finally:
        consumer.close()
    done = ledger.entries()
    outcomes: list[ReplayOutcome] = []
    producer: Producer | None = None
    try:
        for r, dest in plans:
            entry = done.get(r.coordinates)
            if entry is not None and entry.get("state") == "published":
                outcomes.append(ReplayOutcome(r.ref, ReplayAction.SKIPPED, str(entry.get("to", dest)), r.event_id,
                                              f"replayed already at {entry.get('at')} (ledger {ledger.path})"))
                continue
            if entry is not None and entry.get("state") == "publishing":
                found = _already_on(bootstrap, dest, r.coordinates)
                if found is not None:
                    if not dry_run:
                        ledger.mark(r.coordinates, "published", to=found, event_id=r.event_id, recovered=True)
                    outcomes.append(ReplayOutcome(r.ref, ReplayAction.SKIPPED, found, r.event_id,
                                                  "an interrupted replay had published it already"))
                    continue
            if dry_run:
                outcomes.append(ReplayOutcome(r.ref, ReplayAction.WOULD_REPLAY, dest, r.event_id,
                                              f"would publish event {r.event_id} to {dest}"))
                continue
            if producer is None:
                producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                                     # The same partitioner as Java clients: a keyed record lands where theirs would.
                                     "partitioner": "murmur2_random", "message.timeout.ms": int(_TIMEOUT_S * 1000),
                                     "socket.connection.setup.timeout.ms": 5000, "logger": kafka.quiet_logger()})
            ledger.mark(r.coordinates, "publishing", to=dest, event_id=r.event_id)
            where = _publish(producer, r, dest, partitions[dest])
            ledger.mark(r.coordinates, "published", to=where, event_id=r.event_id)
            outcomes.append(ReplayOutcome(r.ref, ReplayAction.REPLAYED, where, r.event_id,
                                          f"event {r.event_id} published again"))
    finally:
        if producer is not None:
            producer.flush(_TIMEOUT_S)
    return outcomes


def _publish(producer: Producer, r: DlqRecord, dest: str, partitions: Mapping[int, int]) -> str:
    headers: list[tuple[str, str | bytes | None]] = [(n, v) for n, v in r.headers if not is_dead_letter_header(n)]
    headers += [(REPLAY_OF, r.coordinates.encode()), (REPLAY_SOURCE, r.source.encode())]
    # The original partition keeps the entity's events in one place; a topic without it gets the key's.
    extra: dict[str, Any] = {"partition": r.source_partition} if r.source_partition in partitions and r.source_topic == dest else {}
    reports: list[tuple[object, Message]] = []
    producer.produce(dest, value=r.value, key=r.key.encode() if r.key is not None else None, headers=headers,
                     on_delivery=lambda err, msg: reports.append((err, msg)), **extra)
    producer.flush(_TIMEOUT_S + 5)
    if not reports or reports[0][0] is not None:
        cause = reports[0][0] if reports else f"no delivery report within {_TIMEOUT_S + 5:.0f}s"
        raise InfraError(f"could not replay {r.ref} to {dest} ({cause}); nothing is marked replayed for it, so "
                         "running the same command again retries it")
    msg = reports[0][1]
    return f"{dest}/{msg.partition()}/{msg.offset()}"
