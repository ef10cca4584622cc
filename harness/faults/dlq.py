"""Dead-letter faults: a consumer's dead-letter topic that refuses writes while its fetch goes on.

  dlq_refused  inject: set the consumer's dead-letter topic's ``max.message.bytes`` below any
               record (a topic override, through the DIRECT listener), then prove the broker
               refuses a write there (a probe record, MSG_SIZE_TOO_LARGE); heal: drop the override
               (the topic's limit is the broker's again). Every dead-letter write in the window
               fails at once, while the consumer's link, its fetch and its commits work: a DLQ
               whose limits are stricter than its source's, an ACL or quota on the DLQ, a DLQ
               on another cluster that is down. A correct consumer keeps trying (its partition
               stalls: lag, not loss); one that treats the DLQ as best effort drops the record,
               which is then neither applied nor dead-lettered. Effect: 1 when the probe write
               was refused (the refusal was in force), else 0 (unknown, never pass).

A link fault cannot do this: a consumer's dead-letter producer and its fetch share its link
(``consumer.payment->kafka``), so cutting one cuts both.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from harness.errors import ChaosError, WaitTimeout
from harness.infra import kafka
from harness.wait import wait_for

__all__ = ["DeadLetterRefusal"]

LIMIT = "max.message.bytes"
REFUSING_LIMIT = "1"  # below a record batch's own header: every write is refused
REQUEST_TIMEOUT_S = 10.0
# A heal that meets the broker down (a broker kill in the same schedule) keeps trying this long: a refusal
# left in force would stall a correct consumer for the rest of the run, and read as its failure.
HEAL_TIMEOUT_S = 60.0

# Refusals in force per (broker, topic): two windows on one topic may overlap (a generated schedule
# does that), and the first to end must not lift the refusal the other still holds.
_ACTIVE: dict[tuple[str, str], int] = {}
_ACTIVE_LOCK = threading.Lock()


@dataclass(slots=True)
class DeadLetterRefusal:
    process: str  # the consumer whose dead-letter topic refuses (the fault's target)
    topic: str  # its dead-letter topic
    bootstrap: str  # the DIRECT listener: the harness's own path, never under chaos
    name: str = "dlq_refused"
    refused: int = field(default=0)
    _counted: bool = field(default=False)

    @property
    def target(self) -> str:
        return self.process

    def _alter(self, op: AlterConfigOpType, value: str | None) -> None:
        entry = ConfigEntry(LIMIT, value, incremental_operation=op)  # value None: DELETE takes none
        resource = ConfigResource(ResourceType.TOPIC, self.topic, incremental_configs=[entry])
        try:
            kafka.admin(self.bootstrap).incremental_alter_configs([resource])[resource].result(REQUEST_TIMEOUT_S)
        except Exception as exc:  # KafkaException, or a timeout: the broker did not take the change
            raise ChaosError(f"could not change {LIMIT} of dead-letter topic {self.topic} through {self.bootstrap}: "
                             f"{exc}; is the broker up and the topic created (the target creates it at start)?") from exc

    def inject(self) -> None:
        with _ACTIVE_LOCK:
            self._alter(AlterConfigOpType.SET, REFUSING_LIMIT)
            _ACTIVE[self.bootstrap, self.topic] = _ACTIVE.get((self.bootstrap, self.topic), 0) + 1
            self._counted = True
        self.refused = 1 if self._probe_refused() else 0

    def _probe_refused(self) -> bool:
        """One write of our own, refused as the consumer's will be: the fault is in force, not assumed."""
        outcome: list[KafkaError | None] = []
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                             "message.timeout.ms": int(REQUEST_TIMEOUT_S * 1000), "logger": kafka.quiet_logger()})
        producer.produce(self.topic, value=b"chaos-harness dlq_refused probe",
                         on_delivery=lambda err, _msg: outcome.append(err))
        producer.flush(REQUEST_TIMEOUT_S + 2)
        return bool(outcome) and outcome[0] is not None and outcome[0].code() == KafkaError.MSG_SIZE_TOO_LARGE

    def effect(self) -> int:
        return self.refused

    def heal(self) -> None:
        key = (self.bootstrap, self.topic)
        with _ACTIVE_LOCK:
            # Not counted (its inject failed): lift a refusal only nobody else holds, in case it was set.
            left = _ACTIVE.get(key, 0) - (1 if self._counted else 0)
            self._counted = False
            if left > 0:
                _ACTIVE[key] = left
                return
            _ACTIVE.pop(key, None)

            def lifted() -> tuple[bool, str]:
                self._alter(AlterConfigOpType.DELETE, None)  # raises while the broker is away: tried again
                return True, "lifted"

            try:
                wait_for(lifted, timeout_s=HEAL_TIMEOUT_S, what=f"{LIMIT} of {self.topic} restored", interval_s=1.0)
            except WaitTimeout as exc:
                raise ChaosError(f"dead-letter topic {self.topic} still refuses writes: {exc}") from exc
