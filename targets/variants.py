"""Deliberately broken variants of the reference pipelines: each one a real mistake from practice.

A variant is an option of the target (each reference spec lists the variants it accepts in ``variants``,
or ``Scenario(variant="no_idempotency")``); the correct pipeline is the default. The
harness's own tests run them to prove the checkers catch what each one does wrong.

  correct           everything as it should be
  no_idempotency    consumers write the effect on every delivery: a redelivered event
                    charges twice (the fintech team's 23 double charges)
  keyless           the publisher sends without a key: an order's events land on random
                    partitions and reach consumers out of order
  swallow_errors    consumers log an undecodable event at debug level and move on: it
                    vanishes instead of reaching the dead-letter topic
  auto_commit       consumers let the client commit offsets on a timer, before the effect:
                    a crash loses what was committed but not yet applied
  mark_before_ack   the relay marks rows sent before the broker acknowledged them: a
                    broker outage loses them
  schema_registry   not a mistake but its guard: the order service registers its event schema
                    (JSON Schema, BACKWARD) and refuses to write a version the registry rejects
                    (HTTP 409); a schema drift is stopped at registration (targets.registry)
  last_id           the relay remembers the last id it saw and reads ``id > last``: a row
                    whose transaction commits after a later id is skipped forever

Demonstrated by scenario tests: no_idempotency (test_connect_crash), keyless
(test_keyless_publisher), swallow_errors (test_poison_pill), auto_commit
(test_consumer_crash), mark_before_ack (test_relay_variants), schema_registry (test_silent_schema_drift). last_id has no test yet:
it needs rows that commit out of id order, which this workload produces only by chance.
"""

from __future__ import annotations

from enum import Enum

from harness.errors import UsageError

__all__ = ["Variant"]


class Variant(Enum):
    CORRECT = "correct"
    NO_IDEMPOTENCY = "no_idempotency"
    KEYLESS = "keyless"
    SWALLOW_ERRORS = "swallow_errors"
    AUTO_COMMIT = "auto_commit"
    MARK_BEFORE_ACK = "mark_before_ack"
    LAST_ID = "last_id"
    SCHEMA_REGISTRY = "schema_registry"

    @classmethod
    def parse(cls, name: str) -> Variant:
        try:
            return cls(name)
        except ValueError:
            raise UsageError(f"unknown variant {name!r}; valid variants: {', '.join(v.value for v in cls)}") from None

    def applies_to(self, pipeline: str) -> bool:
        """Whether this mistake can be made in ``pipeline`` (a relay bug needs a relay)."""
        if self in (Variant.MARK_BEFORE_ACK, Variant.LAST_ID):
            return pipeline == "outbox"
        if self is Variant.SCHEMA_REGISTRY:
            return pipeline in ("direct", "outbox", "cdc_outbox")  # the service writes the payload itself
        if self is Variant.KEYLESS:
            return pipeline in ("direct", "outbox")  # Debezium sets the key from configuration, not our code
        return True
