"""Dead-letter records recognised by their content, whichever framework wrote them.

A dead-letter record is the original event (its value, usually unchanged) plus headers that say
why it failed and where it came from. Each framework names those headers its own way:

  chaos          this project's consumers: ``reason``, ``source_topic``, ``source_partition``,
                 ``source_offset`` (decimal text), ``consumer``
  spring-kafka   Spring Kafka's DeadLetterPublishingRecoverer: ``kafka_dlt-exception-message``,
                 ``kafka_dlt-exception-fqcn``, ``kafka_dlt-original-topic``, and the partition and
                 offset as big-endian binary (4 and 8 bytes), ``kafka_dlt-original-consumer-group``
  kafka-connect  Kafka Connect's error reporter (``errors.deadletterqueue.context.headers.enable``):
                 ``__connect.errors.exception.message``, ``__connect.errors.exception.class.name``,
                 ``__connect.errors.topic``, ``.partition``, ``.offset`` (decimal text),
                 ``__connect.errors.connector.name``
  none           no known header at all: a record is still dead-lettered when it sits on a
                 dead-letter topic; the event in its value says which one, and the reason is unknown

Judging a target by one framework's header names would report a Spring or Connect pipeline as
losing the events it dead-lettered. The oracle (``harness.target.oracle``) and ``chaos dlq``
both read dead letters through :func:`read_dead_letter`, so they agree on what a record says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

__all__ = ["CONVENTIONS", "REPLAY_OF", "REPLAY_SOURCE", "Convention", "DeadLetter", "HeaderNames",
           "is_dead_letter_header", "read_dead_letter"]

Headers = Iterable[tuple[str, bytes | None]]
"""Kafka record headers as a client returns them: (name, raw value) pairs, names may repeat."""

REPLAY_OF = "chaos.replay.of"
"""Header ``chaos dlq replay`` puts on a replayed record: the dead-letter record it came from (TOPIC/P/O)."""
REPLAY_SOURCE = "chaos.replay.source"
"""Header ``chaos dlq replay`` puts on a replayed record: the original record's coordinates (TOPIC/P/O)."""

UNKNOWN_REASON = "unknown: the record carries no dead-letter headers (recognised by the event in its value)"


class Convention(Enum):
    CHAOS = "chaos"
    SPRING = "spring-kafka"
    CONNECT = "kafka-connect"
    NONE = "none"


class _Ints(Enum):
    TEXT = "text"  # decimal digits
    BINARY = "binary"  # Java's ByteBuffer.putInt / putLong: big-endian, 4 or 8 bytes


@dataclass(frozen=True, slots=True)
class HeaderNames:
    """One convention's header names; ``""`` where it has no such header."""

    convention: Convention
    reason: str
    exception_class: str
    topic: str
    partition: str
    offset: str
    consumer: str
    ints: _Ints

    def names(self) -> frozenset[str]:
        return frozenset(n for n in (self.reason, self.exception_class, self.topic, self.partition, self.offset,
                                     self.consumer) if n)

    def markers(self) -> frozenset[str]:
        """The names that identify the convention (a bare ``consumer`` header says nothing on its own)."""
        return self.names() - {self.consumer}


CONVENTIONS: tuple[HeaderNames, ...] = (
    HeaderNames(Convention.CHAOS, "reason", "", "source_topic", "source_partition", "source_offset", "consumer",
                _Ints.TEXT),
    HeaderNames(Convention.SPRING, "kafka_dlt-exception-message", "kafka_dlt-exception-fqcn",
                "kafka_dlt-original-topic", "kafka_dlt-original-partition", "kafka_dlt-original-offset",
                "kafka_dlt-original-consumer-group", _Ints.BINARY),
    HeaderNames(Convention.CONNECT, "__connect.errors.exception.message", "__connect.errors.exception.class.name",
                "__connect.errors.topic", "__connect.errors.partition", "__connect.errors.offset",
                "__connect.errors.connector.name", _Ints.TEXT),
)
"""The conventions in the order they are tried: the first one with any header present wins."""

# Headers a dead-letter writer adds beyond the ones read above (stack traces, timestamps); dropped on replay
# so the replayed record looks like the original.
_PREFIXES = ("kafka_dlt-", "__connect.errors.")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What a dead-letter record's headers say, in one shape whatever the convention."""

    convention: Convention
    reason: str  # "" when the convention's reason header is present but empty: I5 flags it
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    consumer: str | None  # the consumer, group or connector that gave up on it, when the headers say


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw is not None else ""


def _int(raw: bytes | None, ints: _Ints) -> int | None:
    if raw is None:
        return None
    if ints is _Ints.BINARY and len(raw) in (4, 8):
        return int.from_bytes(raw, "big", signed=True)
    text = _text(raw)
    return int(text) if text.isascii() and text.isdigit() else None


def read_dead_letter(headers: Headers | None) -> DeadLetter:
    """Recognise the convention of a dead-letter record's headers and read its reason and origin."""
    found: dict[str, bytes | None] = {}
    for name, value in headers or ():
        found.setdefault(name, value)  # the first of a repeated name: what the writer set first
    for names in CONVENTIONS:
        if not names.markers() & found.keys():
            continue
        message = _text(found.get(names.reason)).strip()
        cls = _text(found.get(names.exception_class)).strip() if names.exception_class else ""
        reason = f"{cls}: {message}" if cls and message else (message or cls)
        consumer = (_text(found.get(names.consumer)) or None) if names.consumer in found else None
        return DeadLetter(names.convention, reason, _text(found.get(names.topic)) or None,
                          _int(found.get(names.partition), names.ints), _int(found.get(names.offset), names.ints),
                          consumer)
    return DeadLetter(Convention.NONE, UNKNOWN_REASON, None, None, None, None)


_ALL_NAMES = frozenset().union(*(c.names() for c in CONVENTIONS))


def is_dead_letter_header(name: str) -> bool:
    """True for a header a dead-letter writer (or an earlier replay) added, of any known convention."""
    return name in _ALL_NAMES or name.startswith(_PREFIXES) or name in (REPLAY_OF, REPLAY_SOURCE)
