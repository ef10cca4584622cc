"""The reference pipelines as Targets: ``direct`` and ``outbox``, with the payment consumer.

Each run of a pipeline gets its own database and topics (named after the run), so runs
never see each other's data even on one long-lived infra.
"""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from harness.errors import TargetError, UsageError
from harness.history.ops import Scalar
from harness.infra import kafka, postgres
from harness.infra.process import ManagedProcess, ProcessSpec
from harness.infra.stack import Infra
from harness.infra.topology import HOST, Service
from harness.target import Drain, RunContext
from harness.wait import wait_for
from targets.domain import SCHEMA_SQL

__all__ = ["Pipeline", "PipelineTarget"]

TARGET_READY_S = 60.0
PARTITIONS = 3


class Pipeline(Enum):
    DIRECT = "direct"
    OUTBOX = "outbox"

    @classmethod
    def parse(cls, name: str) -> Pipeline:
        try:
            return cls(name)
        except ValueError:
            raise UsageError(f"unknown pipeline {name!r}; valid pipelines: {', '.join(p.value for p in cls)}") from None


class PipelineTarget:
    """A pipeline plus its consumers, started as real processes on the given infra."""

    def __init__(self, pipeline: Pipeline, infra: Infra, ctx: RunContext) -> None:
        self.pipeline = pipeline
        self.name = pipeline.value
        self.infra = infra
        self.ctx = ctx
        self.topo = infra.topology
        suffix = ctx.run_id.replace("-", "_")
        self.database = f"chaos_{self.name}_{suffix}"
        self.topic = f"orders.{self.name}.{ctx.run_id}"
        self.dlq_topic = f"dlq.payment.{self.name}.{ctx.run_id}"
        self.group = f"payment.{self.name}.{ctx.run_id}"
        self._procs: dict[str, ManagedProcess] = {}
        self.publish_topic = f"{self.topic}.interposer" if ctx.interposed else self.topic

    # ---- shape -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.topo.order_service_port}"

    @property
    def publisher(self) -> str:
        return "app" if self.pipeline is Pipeline.DIRECT else "relay"

    def links(self) -> Sequence[str]:
        clients = ["app", "consumer.payment"] + (["relay"] if self.pipeline is Pipeline.OUTBOX else [])
        return [f"{c}->{s.value}" for c in clients for s in Service]

    def resolve_link(self, link: str) -> str:
        resolved = link.replace("publisher->", f"{self.publisher}->")
        if resolved not in self.links():
            raise UsageError(f"pipeline {self.name} has no link {link!r}; its links: {', '.join(self.links())}")
        return resolved

    def processes(self) -> Mapping[str, ManagedProcess]:
        return dict(self._procs)

    @property
    def crashpoints_dir(self) -> Path:
        return self.ctx.logs_dir / f"{self.name}.crashpoints"

    def restart(self, name: str) -> None:
        """Start process ``name`` again from its spec (stopping what is left of it) and wait until ready."""
        old = self._procs.get(name)
        if old is None:
            raise UsageError(f"pipeline {self.name} has no process {name!r}; its processes: {', '.join(self._procs)}")
        old.stop(grace_s=5.0)
        self._procs[name] = ManagedProcess(old.spec).start()
        self._await_ready()

    # ---- lifecycle ---------------------------------------------------------------------
    def _dsn(self, client: str) -> str:
        port = self.topo.link(f"{client}->postgres").proxy_port
        return f"host={HOST} port={port} dbname={self.database} user=postgres"

    def _spawn(self, name: str, module: str, client: str) -> ManagedProcess:
        env = {
            "CHAOS_RUN_ID": self.ctx.run_id,  # marks every process of this run (leak checks look for it)
            "CHAOS_PIPELINE": self.name,
            "CHAOS_PG_DSN": self._dsn(client),
            "CHAOS_KAFKA": self.topo.link(f"{client}->kafka").proxy_address,
            # With an interposer (reorder faults), publishers write to it and the harness forwards.
            "CHAOS_TOPIC": self.publish_topic if name in ("app", "relay") else self.topic,
            "CHAOS_DLQ_TOPIC": self.dlq_topic,
            "CHAOS_GROUP": self.group,
            "CHAOS_HTTP_PORT": str(self.topo.order_service_port),
            "CHAOS_PROCESS": name,  # crash points (targets/crashpoints.py) are armed per process
            "CHAOS_CRASHPOINTS_DIR": str(self.crashpoints_dir),
            "PYTHONUNBUFFERED": "1",
        }
        spec = ProcessSpec(name=name, argv=[sys.executable, "-m", module], env=env,
                           log_path=self.ctx.logs_dir / f"{self.name}.{name}.log")
        proc = ManagedProcess(spec).start()
        self._procs[name] = proc
        return proc

    def start(self) -> None:
        try:
            self._create_database()
            self._create_topics()
            self._spawn("consumer.payment", "targets.consumers.payment", "consumer.payment")
            self._spawn("app", "targets.order_service", "app")
            if self.pipeline is Pipeline.OUTBOX:
                self._spawn("relay", "targets.relay", "relay")
            self._await_ready()
        except BaseException:
            self.stop()
            raise

    def _create_database(self) -> None:
        with postgres.connect_direct(self.topo.postgres_port) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        with postgres.connect_direct(self.topo.postgres_port, self.database) as conn:
            conn.execute(SCHEMA_SQL)

    def _create_topics(self) -> None:
        admin = kafka.admin(self.topo.kafka_direct)
        topics = [NewTopic(self.topic, PARTITIONS, 1), NewTopic(self.dlq_topic, 1, 1)]
        if self.publish_topic != self.topic:
            topics.append(NewTopic(self.publish_topic, PARTITIONS, 1))
        futures = admin.create_topics(topics,
                                      operation_timeout=10, request_timeout=15)
        for name, fut in futures.items():
            try:
                fut.result(timeout=20)
            except Exception as exc:  # noqa: BLE001 - re-raised with what to do
                raise TargetError(f"could not create topic {name}: {exc}; is Kafka healthy? `chaos infra status`") from exc

    def _await_ready(self) -> None:
        admin = kafka.admin(self.topo.kafka_direct)

        def observe() -> tuple[bool, str]:
            for proc in self._procs.values():
                if not proc.alive():
                    raise TargetError(f"{proc.name} exited with {proc.returncode()} during start:\n{proc.tail(20)}")
            status, _ = self._http("GET", "/health")
            # Keep the AdminClient referenced until the future resolves: a collected client never answers.
            group = admin.describe_consumer_groups([self.group])[self.group].result(timeout=3)
            members = len(group.members)
            assigned = sum(len(m.assignment.topic_partitions) for m in group.members if m.assignment)
            return status == 200 and assigned == PARTITIONS, f"http={status} group members={members} assigned={assigned}"

        try:
            wait_for(observe, timeout_s=TARGET_READY_S, what=f"pipeline {self.name} to be ready", interval_s=0.2,
                     evidence=lambda: "\n".join(f"--- {p.name} ---\n{p.tail(10)}" for p in self._procs.values()),
                     fatal=(TargetError,))
        except TargetError:
            raise
        except Exception as exc:
            raise TargetError(str(exc)) from exc

    def stop(self) -> None:
        for proc in reversed(list(self._procs.values())):
            proc.stop(grace_s=5.0)

    def _http(self, method: str, path: str) -> tuple[int, dict[str, object]]:
        conn = http.client.HTTPConnection(HOST, self.topo.order_service_port, timeout=2)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    # ---- oracle reads ----------------------------------------------------------------
    def _sql(self, query: str) -> list[tuple[object, ...]]:
        with postgres.connect_direct(self.topo.postgres_port, self.database) as conn:
            return conn.execute(query).fetchall()

    def _end_offsets(self, consumer: Consumer, topic: str) -> dict[int, int]:
        meta = consumer.list_topics(topic, timeout=5).topics[topic]
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in meta.partitions}

    def _oracle_consumer(self, group: str) -> Consumer:
        return Consumer({"bootstrap.servers": self.topo.kafka_direct, "group.id": group, "enable.auto.commit": False,
                         "socket.timeout.ms": 5000, "logger": kafka.quiet_logger()})

    def drain_state(self) -> Drain:
        if self.pipeline is Pipeline.OUTBOX:
            backlog = int(self._sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0])  # type: ignore[arg-type]
        else:
            status, body = self._http("GET", "/health")
            backlog = int(body.get("publish_queue", 0)) if status == 200 else 1  # type: ignore[arg-type]
        consumer = self._oracle_consumer(self.group)
        try:
            ends = self._end_offsets(consumer, self.topic)
            committed = consumer.committed([TopicPartition(self.topic, p) for p in ends], timeout=5)
            lag = sum(max(0, ends[tp.partition] - max(tp.offset, 0)) for tp in committed)
        finally:
            consumer.close()
        return Drain(publish_backlog=backlog, consumer_lag=lag)

    def publish_backlog(self) -> int:
        """Events committed at the source but not on the topic: the effect of a publish-link fault."""
        if self.pipeline is Pipeline.OUTBOX:
            return int(self._sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0])  # type: ignore[arg-type]
        expected = int(self._sql("SELECT count(*) + count(*) FILTER (WHERE status = 'paid') FROM orders")[0][0])  # type: ignore[arg-type]
        consumer = self._oracle_consumer(f"oracle.{self.ctx.run_id}")
        try:
            on_topic = sum(self._end_offsets(consumer, self.topic).values())
        finally:
            consumer.close()
        return max(0, expected - on_topic)

    def observe(self) -> Mapping[str, list[Mapping[str, Scalar]]]:
        def rows(query: str, names: tuple[str, ...]) -> list[Mapping[str, Scalar]]:
            return [dict(zip(names, r)) for r in self._sql(query)]  # type: ignore[misc]

        epoch_ms = "(extract(epoch FROM {}) * 1000)::bigint"
        return {
            "orders": rows("SELECT order_id::text, customer, amount_cents, status, version, correlation_id::text FROM orders",
                           ("order_id", "customer", "amount_cents", "status", "version", "correlation_id")),
            "applied": rows(
                "SELECT consumer, position, event_id::text, order_id::text, type, seq, "
                f"{epoch_ms.format('processed_at')} FROM processed_events ORDER BY position",
                ("consumer", "position", "event_id", "order_id", "type", "seq", "applied_at_ms")),
            "effects": rows(
                "SELECT 'payment', 'charge', order_id::text, event_id::text, correlation_id::text, amount_cents, "
                f"{epoch_ms.format('charged_at')} FROM payment_charges ORDER BY id",
                ("consumer", "kind", "order_id", "event_id", "correlation_id", "amount_cents", "applied_at_ms")),
            "topic": self._read_topic(self.topic),
            "dlq": [{**r, "consumer": "payment"} for r in self._read_topic(self.dlq_topic)],
            "consumers": [{"consumer": "payment"}],
        }

    def _read_topic(self, topic: str) -> list[Mapping[str, Scalar]]:
        consumer = self._oracle_consumer(f"oracle.{self.ctx.run_id}")
        rows: list[Mapping[str, Scalar]] = []
        try:
            ends = {p: e for p, e in self._end_offsets(consumer, topic).items() if e > 0}
            if not ends:
                return rows
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            remaining = dict(ends)

            def read() -> tuple[bool, str]:
                for msg in consumer.consume(500, timeout=0.5):
                    if msg.error():
                        continue
                    rows.append(_record(msg))
                    if msg.offset() + 1 >= remaining.get(msg.partition(), 0):
                        remaining.pop(msg.partition(), None)
                return not remaining, f"partitions still being read: {sorted(remaining)}"

            wait_for(read, timeout_s=60, what=f"reading topic {topic} to its end", interval_s=0)
        finally:
            consumer.close()
        return rows


def _record(msg: object) -> Mapping[str, Scalar]:
    raw = msg.value()  # type: ignore[attr-defined]
    key = msg.key()  # type: ignore[attr-defined]
    row: dict[str, Scalar] = {
        "partition": msg.partition(), "offset": msg.offset(),  # type: ignore[attr-defined]
        "key": key.decode("utf-8", "replace") if key else None,
        "timestamp_ms": msg.timestamp()[1],  # type: ignore[attr-defined]
        "payload": raw.decode("utf-8", "replace")[:2000] if raw else None,
    }
    try:
        event = json.loads(raw)
        if not isinstance(event, dict):
            raise ValueError("not an object")
        for field in ("event_id", "order_id", "type", "seq", "correlation_id", "schema_version"):
            row[field] = event.get(field)
    except (TypeError, ValueError, UnicodeDecodeError):
        row["undecodable"] = True
    for name, value in msg.headers() or ():  # type: ignore[attr-defined]
        if name in ("reason", "source_topic", "source_partition", "source_offset"):
            text = value.decode("utf-8", "replace")
            row[name] = int(text) if name != "reason" and name != "source_topic" and text.isdigit() else text
    return row
