"""Message faults: records on the pipeline's event topic that no consumer can decode.

A poison pill is published by the harness itself (through the direct listener, so no
link fault can stop it), keyed like a real order so it lands among real events. Each
pill is malformed in a different way real producers get wrong: not JSON, JSON that is
not an object, an object that misses the event's fields. A correct consumer sends each
one to its dead-letter topic with the reason; it must never vanish.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from confluent_kafka import Producer

from harness.errors import ChaosError
from harness.infra import kafka

__all__ = ["POISON_VALUES", "PoisonMessages"]

POISON_VALUES: tuple[bytes, ...] = (
    b"\x00\x01 this is not JSON",
    b'["an", "array", "not", "an", "event"]',
    b'{"type": "order.paid", "note": "an object without event_id, order_id or seq"}',
)


@dataclass(slots=True)
class PoisonMessages:
    """Publish ``count`` malformed records to ``topic``; heal has nothing to undo (they stay on the log)."""

    bootstrap: str
    topic: str
    count: int = 3
    name: str = "poison"
    published: int = field(default=0)

    @property
    def target(self) -> str:
        return self.topic

    def inject(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "message.timeout.ms": 10000,
                             "logger": kafka.quiet_logger()})
        errors: list[str] = []
        for i in range(self.count):
            producer.produce(self.topic, key=str(uuid.uuid4()).encode(), value=POISON_VALUES[i % len(POISON_VALUES)],
                             on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
        left = producer.flush(15.0)
        if left or errors:
            raise ChaosError(f"poison pills not all acknowledged ({left} unsent, errors {errors[:3]}); is Kafka healthy?")
        self.published = self.count

    def heal(self) -> None:
        return None  # a published record cannot be unpublished: consumers must cope

    def observed(self) -> int:
        """The fault's own effect: how many pills reached the topic."""
        return self.published
