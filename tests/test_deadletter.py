"""Dead-letter records are recognised by content: this project's headers, Spring Kafka's, Kafka Connect's, or none."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import pytest

from harness.deadletter import UNKNOWN_REASON, Convention, is_dead_letter_header, read_dead_letter
from harness.target.oracle import Oracle
from harness.target.registry import load_domain

EVENT = {"event_id": "5d3c5a8e-1b61-5f0e-9d1c-6a1f0d1a2b3c", "type": "order.paid",
         "order_id": "0f8e2a4c-7b1d-4f7e-8a55-1c2b3d4e5f60", "seq": 2, "schema_version": 1,
         "correlation_id": "a1b2c3d4-0000-4000-8000-000000000001", "occurred_at": "2026-12-06T02:00:00+00:00",
         "customer": "customer-1", "amount_cents": 1234}

CHAOS = [("reason", b"not applicable: shipped before paid"), ("source_topic", b"orders.outbox.r1"),
         ("source_partition", b"2"), ("source_offset", b"41"), ("consumer", b"fulfillment")]
SPRING = [("kafka_dlt-exception-fqcn", b"org.springframework.kafka.listener.ListenerExecutionFailedException"),
          ("kafka_dlt-exception-message", b"Listener failed; insufficient funds"),
          ("kafka_dlt-exception-stacktrace", b"at com.acme.Pay.handle(Pay.java:42)"),
          ("kafka_dlt-original-topic", b"orders"), ("kafka_dlt-original-partition", struct.pack(">i", 2)),
          ("kafka_dlt-original-offset", struct.pack(">q", 41)),
          ("kafka_dlt-original-timestamp", struct.pack(">q", 1796523174289)),
          ("kafka_dlt-original-consumer-group", b"payments")]
CONNECT = [("__connect.errors.topic", b"orders"), ("__connect.errors.partition", b"2"),
           ("__connect.errors.offset", b"41"), ("__connect.errors.connector.name", b"pg-sink"),
           ("__connect.errors.task.id", b"0"), ("__connect.errors.stage", b"VALUE_CONVERTER"),
           ("__connect.errors.class.name", b"org.apache.kafka.connect.json.JsonConverter"),
           ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
           ("__connect.errors.exception.message", b"Converting byte[] to Kafka Connect data failed")]


@pytest.mark.parametrize(("headers", "convention", "reason", "by"), [
    (CHAOS, Convention.CHAOS, "not applicable: shipped before paid", "fulfillment"),
    (SPRING, Convention.SPRING,
     "org.springframework.kafka.listener.ListenerExecutionFailedException: Listener failed; insufficient funds",
     "payments"),
    (CONNECT, Convention.CONNECT,
     "org.apache.kafka.connect.errors.DataException: Converting byte[] to Kafka Connect data failed", "pg-sink"),
], ids=["chaos", "spring", "connect"])
def test_each_convention_gives_reason_and_origin(headers, convention, reason, by) -> None:  # type: ignore[no-untyped-def]
    found = read_dead_letter(headers)
    assert found.convention is convention
    assert found.reason == reason
    assert (found.source_partition, found.source_offset) == (2, 41)
    assert found.source_topic in ("orders", "orders.outbox.r1")
    assert found.consumer == by


def test_no_headers_is_a_dead_letter_whose_reason_is_unknown() -> None:
    for headers in (None, [], [("traceparent", b"00-abc-def-01"), ("consumer", b"payment")]):
        found = read_dead_letter(headers)
        assert found.convention is Convention.NONE
        assert found.reason == UNKNOWN_REASON
        assert (found.source_topic, found.source_partition, found.source_offset) == (None, None, None)


def test_a_present_but_empty_reason_stays_empty() -> None:
    # I5 flags dlq-without-reason: an empty reason must not be papered over as "unknown".
    found = read_dead_letter([("source_topic", b"t"), ("source_offset", b"3")])
    assert (found.convention, found.reason, found.source_offset) == (Convention.CHAOS, "", 3)


def test_replay_drops_every_conventions_headers_and_keeps_the_rest() -> None:
    names = [n for n, _ in CHAOS + SPRING + CONNECT]
    assert all(is_dead_letter_header(n) for n in names)
    assert not is_dead_letter_header("traceparent")


@dataclass
class _Msg:
    value_: bytes | None
    headers_: list[tuple[str, bytes | None]] | None

    def value(self) -> bytes | None:
        return self.value_

    def key(self) -> bytes:
        return EVENT["order_id"].encode()  # type: ignore[union-attr]

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7

    def timestamp(self) -> tuple[int, int]:
        return (1, 1796523174289)

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self.headers_


@pytest.mark.parametrize(("headers", "convention"), [
    (CHAOS, "chaos"), (SPRING, "spring-kafka"), (CONNECT, "kafka-connect"), (None, "none")])
def test_the_oracle_reads_a_dead_letter_by_its_content(headers, convention) -> None:  # type: ignore[no-untyped-def]
    oracle = Oracle("127.0.0.1:1", "r1", load_domain("orders"))
    row = oracle.record(_Msg(json.dumps(EVENT).encode(), headers), dead_letter=True)
    assert row["convention"] == convention
    assert (row["event_id"], row["order_id"], row["type"]) == (EVENT["event_id"], EVENT["order_id"], EVENT["type"])
    assert row["reason"]  # every convention gives one; no headers gives "unknown ..."
    if headers is not None:
        assert row["source_offset"] == 41 and row["source_partition"] == 2
        assert set(json.loads(str(row["headers"]))) == {n for n, _ in headers}
    # Spring's binary partition is shown as hex, not as control characters.
    if convention == "spring-kafka":
        assert json.loads(str(row["headers"]))["kafka_dlt-original-partition"] == "0x00000002"
