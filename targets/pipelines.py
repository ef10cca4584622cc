"""The reference pipelines as Targets: ``direct``, ``outbox`` and ``cdc``, each with four consumers.

  direct  the order service publishes in the request (best effort)
  outbox  the order service writes an outbox row in the order's transaction; a relay publishes
  cdc     the order service only commits; Debezium on Kafka Connect streams ``orders`` from the WAL
  cdc_outbox  outbox rows as in ``outbox``, published by Debezium's outbox event router instead of a relay

Consumers (separate processes, each with its own links ``consumer.<name>->kafka|postgres``,
its own consumer group and its own dead-letter topic): payment, inventory, fulfillment,
notification. A broken ``Variant`` (``targets.variants``) swaps in one real mistake.

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
from harness.infra.connect import ConnectClient
from harness.infra.process import ManagedProcess, ProcessSpec
from harness.infra.stack import Infra
from harness.infra.topology import HOST, Service
from harness.target import Drain, RunContext
from harness.wait import wait_for
from targets.cdc import Capture
from targets.domain import CONSUMERS, EFFECT_TABLES, SCHEMA_SQL, decode_event
from targets.variants import Variant

__all__ = ["Pipeline", "PipelineTarget"]

TARGET_READY_S = 60.0
PARTITIONS = 3


class Pipeline(Enum):
    DIRECT = "direct"
    OUTBOX = "outbox"
    CDC = "cdc"
    CDC_OUTBOX = "cdc_outbox"

    @property
    def captured(self) -> bool:
        """Whether Debezium on Kafka Connect publishes (rather than the app or a relay)."""
        return self in (Pipeline.CDC, Pipeline.CDC_OUTBOX)

    @classmethod
    def parse(cls, name: str) -> Pipeline:
        try:
            return cls(name)
        except ValueError:
            raise UsageError(f"unknown pipeline {name!r}; valid pipelines: {', '.join(p.value for p in cls)}") from None


_PUBLISHER = {Pipeline.DIRECT: "app", Pipeline.OUTBOX: "relay", Pipeline.CDC: "connect", Pipeline.CDC_OUTBOX: "connect"}


class PipelineTarget:
    """A pipeline plus its four consumers, started as real processes on the given infra."""

    def __init__(self, pipeline: Pipeline, infra: Infra, ctx: RunContext, variant: Variant = Variant.CORRECT) -> None:
        if not variant.applies_to(pipeline.value):
            raise UsageError(f"variant {variant.value} does not apply to pipeline {pipeline.value}; "
                             "see targets/variants.py for which pipeline each mistake belongs to")
        self.pipeline = pipeline
        self.variant = variant
        self.name = pipeline.value
        self.infra = infra
        self.ctx = ctx
        self.topo = infra.topology
        suffix = ctx.run_id.replace("-", "_")
        self.database = f"chaos_{self.name}_{suffix}"
        table = "outbox" if pipeline is Pipeline.CDC_OUTBOX else "orders"
        self.capture = Capture(ctx.run_id, self.database, self.topo, table) if pipeline.captured else None
        self.topic = self.capture.topic if self.capture else f"orders.{self.name}.{ctx.run_id}"
        self.dlq_topics = {c: f"dlq.{c}.{self.name}.{ctx.run_id}" for c in CONSUMERS}
        self.groups = {c: f"{c}.{self.name}.{ctx.run_id}" for c in CONSUMERS}
        self._procs: dict[str, ManagedProcess] = {}
        self._spawned: dict[str, tuple[str, str, str]] = {}  # name -> how to start it again (module, client, consumer)
        self._connect: ConnectClient | None = None
        # A reorder fault needs an interposer between publishers and the topic; only Python publishers
        # (app, relay) can be redirected, Debezium writes where its connector says.
        self.publish_topic = f"{self.topic}.interposer" if ctx.interposed and not pipeline.captured else self.topic

    # ---- shape -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.topo.order_service_port}"

    @property
    def publisher(self) -> str:
        return _PUBLISHER[self.pipeline]

    def links(self) -> Sequence[str]:
        clients = ["app", *(f"consumer.{c}" for c in CONSUMERS)]
        if self.pipeline is not Pipeline.DIRECT:
            clients.append(self.publisher)
        return [f"{c}->{s.value}" for c in clients for s in Service]

    def resolve_link(self, link: str) -> str:
        resolved = link.replace("publisher->", f"{self.publisher}->")
        if resolved not in self.links():
            raise UsageError(f"pipeline {self.name} has no link {link!r}; its links: {', '.join(self.links())}")
        return resolved

    def processes(self) -> Mapping[str, ManagedProcess]:
        procs = dict(self._procs)
        if self.pipeline.captured and "connect" in self.infra.processes:
            procs["connect"] = self.infra.processes["connect"]
        return procs

    @property
    def group(self) -> str:
        """The payment consumer's group: what "already delivered" means to a duplicate-delivery fault."""
        return self.groups["payment"]

    @property
    def crashpoints_dir(self) -> Path:
        """Where the harness arms crash points and schema drift for this target's processes."""
        return self.ctx.logs_dir / f"{self.name}.crashpoints"

    def restart(self, name: str) -> None:
        """Start process ``name`` again (stopping what is left of it) and wait until the pipeline is ready.

        Kafka Connect restarts through the infra and must find its connector task RUNNING again.
        """
        if name == "connect" and self.pipeline.captured:
            self._restart_connect()
            return
        if name not in self._spawned:
            valid = sorted(self._spawned) + (["connect"] if self.pipeline.captured else [])
            raise UsageError(f"pipeline {self.name} has no process {name!r}; its processes: {', '.join(valid)}")
        self._procs[name].stop(grace_s=5.0)
        module, client, consumer = self._spawned[name]
        # ManagedProcess forks restarts from one long-lived thread, so PDEATHSIG stays tied to the harness.
        self._spawn(name, module, client, consumer)
        self._await_ready()

    def _restart_connect(self) -> None:
        assert self.capture is not None
        self._connect = self.infra.ensure_connect()
        # The worker reads its connector back from the config topic and the task resumes from the
        # last flushed offset: readiness is the same as at first start.
        self.capture.await_running(self._connect)

    # ---- lifecycle ---------------------------------------------------------------------
    def _dsn(self, client: str) -> str:
        port = self.topo.link(f"{client}->postgres").proxy_port
        return f"host={HOST} port={port} dbname={self.database} user=postgres"

    def _spawn(self, name: str, module: str, client: str, consumer: str = "", die_with_parent: bool = True) -> ManagedProcess:
        env = {
            "CHAOS_RUN_ID": self.ctx.run_id,  # marks every process of this run (leak checks look for it)
            "CHAOS_PIPELINE": self.name,
            "CHAOS_VARIANT": self.variant.value,
            "CHAOS_PG_DSN": self._dsn(client),
            "CHAOS_KAFKA": self.topo.link(f"{client}->kafka").proxy_address,
            # With an interposer (reorder faults), publishers write to it and the harness forwards.
            "CHAOS_TOPIC": self.publish_topic if name in ("app", "relay") else self.topic,
            "CHAOS_DLQ_TOPIC": self.dlq_topics.get(consumer, ""),
            "CHAOS_GROUP": self.groups.get(consumer, ""),
            "CHAOS_HTTP_PORT": str(self.topo.order_service_port),
            "CHAOS_PROCESS": name,  # crash points (targets/crashpoints.py) are armed per process
            "CHAOS_CRASHPOINTS_DIR": str(self.crashpoints_dir),
            "PYTHONUNBUFFERED": "1",
        }
        spec = ProcessSpec(name=name, argv=[sys.executable, "-m", module], env=env,
                           log_path=self.ctx.logs_dir / f"{self.name}.{name}.log", die_with_parent=die_with_parent)
        proc = ManagedProcess(spec).start()
        self._procs[name] = proc
        self._spawned[name] = (module, client, consumer)
        return proc

    def start(self) -> None:
        try:
            self._create_database()
            self._create_topics()
            for consumer in CONSUMERS:
                self._spawn(f"consumer.{consumer}", f"targets.consumers.{consumer}", f"consumer.{consumer}", consumer)
            self._spawn("app", "targets.order_service", "app")
            if self.pipeline is Pipeline.OUTBOX:
                self._spawn("relay", "targets.relay", "relay")
            if self.capture is not None:
                self._connect = self.infra.ensure_connect()
                self.capture.register(self._connect)
            self._await_ready()
        except BaseException:
            self.stop()
            raise

    def _create_database(self) -> None:
        with postgres.connect_direct(self.topo.postgres_port) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        with postgres.connect_direct(self.topo.postgres_port, self.database) as conn:
            conn.execute(SCHEMA_SQL)
        if self.capture is not None:
            self.capture.create_publication()

    def _create_topics(self) -> None:
        admin = kafka.admin(self.topo.kafka_direct)
        topics = [NewTopic(self.topic, PARTITIONS, 1)] + [NewTopic(t, 1, 1) for t in self.dlq_topics.values()]
        if self.publish_topic != self.topic:
            topics.append(NewTopic(self.publish_topic, PARTITIONS, 1))
        futures = admin.create_topics(topics, operation_timeout=10, request_timeout=15)
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
            # Keep the AdminClient referenced until the futures resolve: a collected client never answers.
            futures = admin.describe_consumer_groups(list(self.groups.values()))
            assigned = {}
            for consumer, group in self.groups.items():
                described = futures[group].result(timeout=3)
                assigned[consumer] = sum(len(m.assignment.topic_partitions) for m in described.members if m.assignment)
            ready = status == 200 and all(n == PARTITIONS for n in assigned.values())
            return ready, f"http={status} partitions assigned per consumer={assigned}"

        try:
            wait_for(observe, timeout_s=TARGET_READY_S, what=f"pipeline {self.name} to be ready", interval_s=0.2,
                     evidence=lambda: "\n".join(f"--- {p.name} ---\n{p.tail(10)}" for p in self._procs.values()))
        except TargetError:
            raise
        except Exception as exc:
            raise TargetError(str(exc)) from exc

    def stop(self) -> None:
        try:
            if self.capture is not None:
                # Even if Connect is down (a crash fault that never healed), the slot must go.
                client = self.infra.connect_client if self.infra.connect_running else None
                self.capture.teardown(client)
        finally:
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
        if self.pipeline is Pipeline.DIRECT:
            status, body = self._http("GET", "/health")
            # What direct publish dropped is gone: only what it still holds counts as backlog.
            backlog = int(body.get("publish_queue", 0)) if status == 200 else 1  # type: ignore[arg-type]
        else:
            backlog = self.publish_backlog()
        consumer = self._oracle_consumer(f"oracle.{self.ctx.run_id}")
        try:
            ends = self._end_offsets(consumer, self.topic)
            lag = 0
            for group in self.groups.values():
                committed = self._committed(group, ends)
                lag += sum(max(0, ends[p] - committed.get(p, 0)) for p in ends)
        finally:
            consumer.close()
        return Drain(publish_backlog=backlog, consumer_lag=lag)

    def _committed(self, group: str, ends: Mapping[int, int]) -> dict[int, int]:
        consumer = self._oracle_consumer(group)
        try:
            committed = consumer.committed([TopicPartition(self.topic, p) for p in ends], timeout=5)
            return {tp.partition: max(tp.offset, 0) for tp in committed}
        finally:
            consumer.close()

    def publish_backlog(self) -> int:
        """Events committed at the source but not on the topic: the effect of a publish-link fault."""
        if self.pipeline is Pipeline.OUTBOX:
            return int(self._sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0])  # type: ignore[arg-type]
        # Every version of every order is one event (one outbox row, for cdc_outbox).
        count = "count(*) FROM outbox" if self.pipeline is Pipeline.CDC_OUTBOX else "coalesce(sum(version), 0) FROM orders"
        expected = int(self._sql(f"SELECT {count}")[0][0])  # type: ignore[arg-type]
        consumer = self._oracle_consumer(f"oracle.{self.ctx.run_id}")
        try:
            on_topic = sum(self._end_offsets(consumer, self.topic).values())
        finally:
            consumer.close()
        if on_topic < expected or not self.pipeline.captured:
            return max(0, expected - on_topic)
        # Debezium redelivers after a crash, so a full count may hide a missing tail: count distinct events.
        distinct = {r["event_id"] for r in self._read_topic(self.topic) if r.get("event_id")}
        return max(0, expected - len(distinct))

    def observe(self) -> Mapping[str, list[Mapping[str, Scalar]]]:
        def rows(query: str, names: tuple[str, ...]) -> list[Mapping[str, Scalar]]:
            return [dict(zip(names, r)) for r in self._sql(query)]  # type: ignore[misc]

        epoch_ms = "(extract(epoch FROM {}) * 1000)::bigint"
        effects = " UNION ALL ".join(
            f"SELECT '{consumer}' AS consumer, '{kind}' AS kind, order_id::text, event_id::text, correlation_id::text, "
            f"amount_cents, {epoch_ms.format('applied_at')} AS applied_at_ms, id FROM {table}"
            for consumer, (kind, table) in EFFECT_TABLES.items()
        )
        return {
            "orders": rows("SELECT order_id::text, customer, amount_cents, status, version, correlation_id::text FROM orders",
                           ("order_id", "customer", "amount_cents", "status", "version", "correlation_id")),
            "applied": rows(
                "SELECT consumer, position, event_id::text, order_id::text, type, seq, "
                f"{epoch_ms.format('processed_at')} FROM processed_events ORDER BY position",
                ("consumer", "position", "event_id", "order_id", "type", "seq", "applied_at_ms")),
            "effects": rows(
                "SELECT consumer, kind, order_id, event_id, correlation_id, amount_cents, applied_at_ms "
                f"FROM ({effects}) AS e ORDER BY applied_at_ms, consumer, id",
                ("consumer", "kind", "order_id", "event_id", "correlation_id", "amount_cents", "applied_at_ms")),
            "topic": self._read_topic(self.topic),
            "dlq": [{**r, "consumer": c} for c, t in self.dlq_topics.items() for r in self._read_topic(t)],
            "consumers": [{"consumer": c} for c in CONSUMERS],
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
        # The consumers' own decoder: a cdc row and a domain event come out as the same fields.
        event = decode_event(raw)
        row.update(event_id=event.event_id, order_id=event.order_id, type=event.type, seq=event.seq,
                   correlation_id=event.correlation_id, schema_version=event.schema_version)
    except ValueError:
        # Contract: undecodable only when the value is not a JSON object; an object missing
        # fields keeps what it has (a schema checker judges it from ``payload``).
        try:
            data = json.loads(raw) if raw is not None else None
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            for field in ("event_id", "order_id", "type", "seq", "correlation_id", "schema_version"):
                value = data.get(field)
                row[field] = value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
        else:
            row["undecodable"] = True
    for name, value in msg.headers() or ():  # type: ignore[attr-defined]
        if name in ("reason", "source_topic", "source_partition", "source_offset"):
            text = value.decode("utf-8", "replace")
            row[name] = int(text) if name in ("source_partition", "source_offset") and text.isdigit() else text
    return row
