"""`chaos dlq replay` on real Kafka and Postgres: a replayed event takes effect once, however often it is replayed.

The reference payment consumer runs as a real process against the session's broker and a database of
its own; a paid event sits in a dead-letter topic with this project's headers. Replaying it charges
the order once; replaying it again (ledger kept), rerunning after an interruption between publish and
ledger mark, and replaying with the ledger lost all leave exactly one charge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from harness.cli import main
from harness.infra import kafka, postgres
from harness.target.oracle import Oracle
from harness.target.registry import load_domain
from harness.wait import wait_for
from targets.domain import SCHEMA_SQL, Event, EventType, event_id_for

pytestmark = pytest.mark.chaos

ROOT = Path(__file__).resolve().parents[1]


class Pipeline:
    def __init__(self, infra: object, tmp_path: Path) -> None:
        topo = infra.topology  # type: ignore[attr-defined]
        self.bootstrap: str = topo.kafka_direct
        self.pg_port: int = topo.postgres_port
        tag = uuid.uuid4().hex[:8]
        self.database = f"dlq_replay_{tag}"
        self.topic = f"dlq-replay.orders.{tag}"
        self.dlq = f"dlq-replay.dlq.payment.{tag}"
        self.group = f"dlq-replay.payment.{tag}"
        self.log = tmp_path / "payment.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with postgres.connect_direct(self.pg_port) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        with postgres.connect_direct(self.pg_port, self.database) as conn:
            conn.execute(SCHEMA_SQL)
        futures = kafka.admin(self.bootstrap).create_topics(
            [NewTopic(self.topic, 3, 1), NewTopic(self.dlq, 1, 1)], operation_timeout=10, request_timeout=15)
        for fut in futures.values():
            fut.result(timeout=20)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CHAOS_PIPELINE": "outbox", "CHAOS_KAFKA": self.bootstrap,
               "CHAOS_PG_DSN": f"host=127.0.0.1 port={self.pg_port} dbname={self.database} user=postgres",
               "CHAOS_TOPIC": self.topic, "CHAOS_GROUP": self.group, "CHAOS_DLQ_TOPIC": self.dlq}
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "targets.consumers.payment"], env=env, stdout=fh,
                                         stderr=subprocess.STDOUT, cwd=ROOT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        with postgres.connect_direct(self.pg_port) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        kafka.admin(self.bootstrap).delete_topics([self.topic, self.dlq], operation_timeout=10, request_timeout=15)

    def charges(self, order_id: str) -> int:
        with postgres.connect_direct(self.pg_port, self.database) as conn:
            row = conn.execute("SELECT count(*) FROM payment_charges WHERE order_id = %s", (order_id,)).fetchone()
        return int(row[0]) if row else 0

    def records_on_topic(self, topic: str | None = None) -> int:
        """Records on the event topic, or on ``topic`` (the dead-letter topic, say)."""
        oracle = Oracle(self.bootstrap, "t", load_domain("orders"))
        try:
            return sum(oracle.end_offsets(topic or self.topic).values())
        finally:
            oracle.close()

    def caught_up(self) -> None:
        """Wait until the consumer committed everything on the topic: any second effect would be there by now."""
        oracle = Oracle(self.bootstrap, "t", load_domain("orders"))
        try:
            wait_for(lambda: (oracle.lag(self.topic, [self.group])[self.group] == 0, "lag"), timeout_s=60,
                     what="the payment consumer to commit every record of the topic", evidence=self.tail)
        finally:
            oracle.close()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


@pytest.fixture
def pipeline(chaos_infra: object, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(chaos_infra, tmp_path)
    try:
        p.start()
        yield p
    finally:
        p.stop()


def _dead_letter(p: Pipeline, order_id: str) -> str:
    """A paid event, dead-lettered by the payment consumer (this project's headers), as the DLQ holds it."""
    event = Event(event_id=event_id_for(order_id, 2), type=EventType.PAID.value, order_id=order_id, seq=2,
                  schema_version=1, correlation_id=str(uuid.uuid4()), occurred_at="2026-12-06T02:00:00+00:00",
                  customer="customer-1", amount_cents=4200)
    producer = Producer({"bootstrap.servers": p.bootstrap, "logger": kafka.quiet_logger()})
    producer.produce(p.dlq, key=order_id.encode(), value=event.encode(), headers=[
        ("reason", b"rejected by the database: DataError: planted"), ("source_topic", p.topic.encode()),
        ("source_partition", b"1"), ("source_offset", b"0"), ("consumer", b"payment"),
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
    assert producer.flush(15) == 0
    return event.event_id


def _replay(p: Pipeline, ledger: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, object]]:
    code = main(["dlq", "replay", "--bootstrap", p.bootstrap, "--topic", p.dlq, "--ledger", str(ledger), "--json", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_replaying_a_record_twice_takes_effect_once(pipeline: Pipeline, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    p = pipeline
    order_id = str(uuid.uuid4())
    event_id = _dead_letter(p, order_id)
    ledger = tmp_path / "ledger.jsonl"

    # list: the record, read by its content, with its reason, original coordinates and correlation id.
    assert main(["dlq", "list", "--bootstrap", p.bootstrap, "--topic", p.dlq, "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["event_id"], listed["convention"], listed["source_topic"], listed["source_partition"]) == (
        event_id, "chaos", p.topic, 1)
    assert listed["reason"].startswith("rejected by the database") and listed["correlation_id"]

    # --dry-run publishes nothing and writes no ledger.
    (dry,) = _replay(p, ledger, capsys, "--all", "--dry-run")
    assert dry["action"] == "would replay" and p.records_on_topic() == 0 and not ledger.exists()

    (first,) = _replay(p, ledger, capsys, "0/0")
    assert first["action"] == "replayed" and str(first["destination"]).startswith(f"{p.topic}/1/")
    wait_for(lambda: (p.charges(order_id) == 1, p.charges(order_id)), timeout_s=60,
             what="the replayed event's charge", evidence=p.tail)

    (second,) = _replay(p, ledger, capsys, "--event", event_id)
    assert second["action"] == "skipped"
    assert p.records_on_topic() == 1  # the ledger kept it from being published again

    # Interrupted between publish and ledger mark: the rerun finds its record on the topic and skips it.
    lines = ledger.read_text().splitlines()
    ledger.write_text(lines[0] + "\n")  # only the "publishing" mark survived
    assert json.loads(lines[0])["state"] == "publishing"
    (rerun,) = _replay(p, ledger, capsys, "--all")
    assert rerun["action"] == "skipped" and "interrupted" in str(rerun["detail"])
    assert p.records_on_topic() == 1

    # Ledger lost: the record goes out a second time, and the consumer's dedupe by event id absorbs it.
    ledger.unlink()
    (again,) = _replay(p, ledger, capsys, "--all")
    assert again["action"] == "replayed" and p.records_on_topic() == 2
    p.caught_up()
    assert p.charges(order_id) == 1, p.tail()
    assert "duplicate delivery absorbed" in p.tail()


def test_replay_to_a_topic_that_does_not_exist_exits_4(pipeline: Pipeline, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    p = pipeline
    _dead_letter(p, str(uuid.uuid4()))
    code = main(["dlq", "replay", "--bootstrap", p.bootstrap, "--topic", p.dlq, "--all", "--to", "no-such-topic",
                 "--ledger", str(tmp_path / "ledger.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 4 and len(err.splitlines()) == 1 and "topic no-such-topic does not exist" in err
    assert not (tmp_path / "ledger.jsonl").exists()
