"""The event schema registry: which ``schema_version`` means which fields, and the compatibility rule.

A schema is a set of fields, each with a JSON type and whether it is required. The
registry holds every version a producer may write; I8 validates each topic record
against the version it names. The rule between consecutive versions is *backward
compatible*: a reader of the old version can read the new one, so a new version may
only add optional fields (never remove a field, change a type, or add a required one).

The content model is open: a record may carry fields its schema does not declare
(readers ignore them), which I8 counts but does not flag. Version 1 is the ``Event``
of ``targets/domain.py``; a test pins the two together so they cannot drift apart.

The cdc pipeline puts a second shape on the wire: the ``orders`` row after a change, as
Debezium's ExtractNewRecordState leaves it (JSON without schemas). It names no schema
version; consumers turn it into the same Event. It is registered as ``ROW_STATE`` and
recognised by its shape (``status`` and ``version``, no ``event_id``), as the consumers'
decoder recognises it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

__all__ = ["REGISTRY", "ROW_STATE", "Field", "JsonType", "Schema", "compatibility_problems", "is_row_state",
           "validate"]


class JsonType(Enum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"

    def admits(self, value: object) -> bool:
        # bool is an int in Python but not an integer in JSON: check it first.
        if self is JsonType.BOOLEAN:
            return value is True or value is False
        if value is True or value is False:
            return False
        if self is JsonType.STRING:
            return type(value) is str
        if self is JsonType.INTEGER:
            return type(value) is int
        return type(value) is int or type(value) is float


@dataclass(frozen=True, slots=True)
class Field:
    type: JsonType
    required: bool = True


@dataclass(frozen=True, slots=True)
class Schema:
    version: int
    fields: Mapping[str, Field]


def compatibility_problems(old: Schema, new: Schema) -> list[str]:
    """Why ``new`` cannot be read by a reader of ``old``; empty when it is backward compatible."""
    problems: list[str] = []
    for name, field in old.fields.items():
        if name not in new.fields:
            problems.append(f"v{new.version} removes field {name!r} of v{old.version}")
        elif new.fields[name].type is not field.type:
            problems.append(f"v{new.version} changes {name!r} from {field.type.value} to {new.fields[name].type.value}")
        elif new.fields[name].required and not field.required:
            problems.append(f"v{new.version} makes optional field {name!r} required")
    for name, field in new.fields.items():
        if name not in old.fields and field.required:
            problems.append(f"v{new.version} adds required field {name!r}; a new field must be optional")
    return problems


def validate(schema: Schema, record: Mapping[str, object]) -> list[str]:
    """The ways ``record`` breaks ``schema``: missing required fields and wrong JSON types."""
    problems: list[str] = []
    for name, field in schema.fields.items():
        if name not in record or record[name] is None:
            if field.required:
                problems.append(f"missing-field {name}")
        elif not field.type.admits(record[name]):
            problems.append(f"wrong-type {name}: expected {field.type.value}, got {type(record[name]).__name__}")
    return problems


def _schema(number: int, **fields: Field) -> Schema:
    return Schema(number, MappingProxyType(fields))


_S, _I = JsonType.STRING, JsonType.INTEGER

REGISTRY: Mapping[int, Schema] = MappingProxyType({
    1: _schema(
        1,
        event_id=Field(_S), type=Field(_S), order_id=Field(_S), seq=Field(_I), schema_version=Field(_I),
        correlation_id=Field(_S), occurred_at=Field(_S), customer=Field(_S), amount_cents=Field(_I),
    ),
})
"""schema_version -> Schema. Register a new version here; tests check it stays compatible."""

ROW_STATE = _schema(
    1,
    order_id=Field(_S), customer=Field(_S), amount_cents=Field(_I), status=Field(_S), version=Field(_I),
    correlation_id=Field(_S), updated_at=Field(_S),
)
"""The cdc pipeline's record value: an ``orders`` row version (``targets.domain.event_from_row`` reads it)."""


def is_row_state(record: Mapping[str, object]) -> bool:
    return "event_id" not in record and "schema_version" not in record and "status" in record and "version" in record
