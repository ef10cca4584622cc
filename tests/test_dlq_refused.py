"""The dlq_refused fault on real Kafka, against the reference payment consumer as a real process.

While the consumer's dead-letter topic refuses writes, a malformed record cannot be dead-lettered:
the correct consumer keeps trying, so the good record behind it on the same partition waits (lag,
not loss) and the dead-letter topic stays empty. At the heal both go through: the malformed record
lands in the dead-letter topic and the good one is applied, once. A fault that did not refuse
fails the first half; one that did not heal fails the second.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from harness.faults.dlq import DeadLetterRefusal
from harness.infra import kafka
from harness.wait import wait_for
from targets.domain import Event, EventType, event_id_for
from tests.test_dlq_replay import Pipeline, pipeline  # noqa: F401  # the fixture, by name

pytestmark = pytest.mark.chaos

REFUSED_LINE = "dead-letter topic did not acknowledge"


def test_a_refused_dead_letter_topic_stalls_the_consumer_until_the_heal_and_loses_nothing(pipeline: Pipeline) -> None:
    p = pipeline
    order_id = str(uuid.uuid4())
    paid = Event(event_id=event_id_for(order_id, 2), type=EventType.PAID.value, order_id=order_id, seq=2,
                 schema_version=1, correlation_id=str(uuid.uuid4()), occurred_at="2026-12-06T02:00:00+00:00",
                 customer="customer-1", amount_cents=4200)
    fault = DeadLetterRefusal("consumer.payment", p.dlq, p.bootstrap)
    try:
        fault.inject()
        assert fault.effect() == 1, "the probe write was not refused: the fault was not in force"
        producer = Producer({"bootstrap.servers": p.bootstrap, "logger": kafka.quiet_logger()})
        # One key, so one partition: the good record queues behind the malformed one.
        producer.produce(p.topic, key=order_id.encode(), value=b"{not json")
        producer.produce(p.topic, key=order_id.encode(), value=paid.encode())
        assert producer.flush(15) == 0
        wait_for(lambda: (REFUSED_LINE in p.log.read_text(errors="replace"), "no refusal logged yet"), timeout_s=60,
                 what="the payment consumer to meet the refusing dead-letter topic", evidence=p.tail)
        assert p.records_on_topic(p.dlq) == 0, f"a record reached the refusing dead-letter topic:\n{p.tail()}"
        assert p.charges(order_id) == 0, "the record behind the undeliverable one was applied before it"
    finally:
        fault.heal()
    wait_for(lambda: (p.records_on_topic(p.dlq) == 1 and p.charges(order_id) == 1,
                      f"dlq records {p.records_on_topic(p.dlq)}, charges {p.charges(order_id)}"),
             timeout_s=60, what="the malformed record dead-lettered and the paid one applied after the heal",
             evidence=p.tail)
    p.caught_up()
    assert p.charges(order_id) == 1
