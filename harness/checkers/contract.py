"""I8 schema-contract: every event on the topic validates against a registered schema version.

Each topic record's raw value (``payload``) is parsed and checked against the schema its
``schema_version`` names in the registry (``harness.checkers.schemas.REGISTRY``), and the
registry itself must stay backward compatible from each version to the next.

Anomalies:
  undecodable             the value is not a JSON object
  missing-schema-version  the event names no schema version
  unregistered-version    the event names a version the registry does not hold
  invalid-event           a required field is missing or has the wrong JSON type
  incompatible-versions   a registered version cannot be read by a reader of the one before

A record whose target did not report its raw value is counted ``unvalidated``; if no
record could be validated the result is unknown. The cdc pipeline's records are row
states, validated against ``ROW_STATE`` (see schemas.py).

A poison fault publishes records that are not events on purpose; the nemesis records how
many (its ``effect`` op). Up to that many failing records without an event id are the
fault's, counted as ``injected_poison``, not the pipeline's violation (I5 still demands
that every consumer dead-letters them). Fields a schema does not declare are
allowed (open content model) and counted ``undeclared_fields``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from harness.checkers._arrays import source
from harness.checkers._index import column, ops_by_role, topic_index
from harness.checkers._sources import missing, pick
from harness.checkers.anomaly import Anomaly, AnomalyKind
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chains
from harness.checkers.schemas import REGISTRY, ROW_STATE, Schema, compatibility_problems, is_row_state, validate
from harness.history.frame import ABSENT_CODE, NONE
from harness.history.ops import History, OpType

__all__ = ["SchemaContract"]

_PAYLOAD_SHOWN = 300
_ANOMALIES = ("undecodable", "missing-schema-version", "unregistered-version", "invalid-event")


@dataclass(frozen=True, slots=True)
class SchemaContract:
    name: str = "schema-contract"
    invariant: str | None = "I8"
    registry: Mapping[int, Schema] = field(default_factory=lambda: REGISTRY)
    injecting: tuple[str, ...] = ("poison",)  # faults that publish records that are not events, by design

    def check(self, history: History) -> CheckResult:
        unknown = missing(history, self.name, self.invariant, "topic")
        if unknown is not None:
            return unknown
        versions = sorted(self.registry)
        incompatible = [{"anomaly": "incompatible-versions", "from": old, "to": new, "problems": problems}
                        for old, new in zip(versions, versions[1:])
                        if (problems := compatibility_problems(self.registry[old], self.registry[new]))]

        topic = history.observed("topic")
        found: dict[str, list[dict[str, object]]] = {a: [] for a in _ANOMALIES}
        tally = dict.fromkeys(_ANOMALIES, 0)
        per_version: dict[object, int] = {}
        every: list[Anomaly] = [Anomaly(AnomalyKind.INCOMPATIBLE_VERSIONS) for _ in incompatible]
        unvalidated = undeclared = injected = 0
        # Records the nemesis itself published as poison are the fault, not the pipeline's doing:
        # as many records without an event id as it says it published are counted, not flagged.
        poison = sum(int(op.value.get("observed") or 0) for op in history.derived(ops_by_role).nemesis
                     if op.f == "effect" and op.type is OpType.OK
                     and op.value.get("fault") in self.injecting)
        shapes = _Shapes(self.registry)
        judged = _judge_fast(history, shapes) or _judge_all(history, shapes)
        unvalidated, undeclared = judged.unvalidated, judged.undeclared
        for version, n in judged.per_version.items():
            per_version[version] = per_version.get(version, 0) + n
        for i, payload, (anomaly, problems, version, _) in judged.broken:
            assert anomaly is not None
            rec = topic[i]  # a row view only for a record that breaks the contract
            if injected < poison and rec.get("event_id") is None:
                injected += 1
                continue
            tally[anomaly] += 1
            order = rec.get("order_id")
            every.append(Anomaly(AnomalyKind(anomaly), None if order is None else str(order),
                                 event_id=None if rec.get("event_id") is None else str(rec.get("event_id"))))
            if len(found[anomaly]) < MAX_EXAMPLES:
                found[anomaly].append({
                    "anomaly": anomaly, "problems": problems, "partition": rec.get("partition"),
                    "offset": rec.get("offset"), "event_id": rec.get("event_id"), "order_id": rec.get("order_id"),
                    "schema_version": rec.get("schema_version"),
                    "payload": payload[:_PAYLOAD_SHOWN] if isinstance(payload, str) else payload,
                })

        counts: dict[str, int] = {"records": len(topic), "validated": len(topic) - unvalidated,
                                  "unvalidated": unvalidated, "undeclared_fields": undeclared,
                                  "injected_poison": injected,
                                  "registered_versions": len(versions), "incompatible_versions": len(incompatible)}
        counts.update({a.replace("-", "_"): n for a, n in tally.items()})
        counts.update({f"version:{v}": n for v, n in sorted(per_version.items(), key=str)})
        bad = sum(tally.values())
        if bad or incompatible:
            examples = pick(incompatible, *found.values(), limit=MAX_EXAMPLES)
            chains = order_chains(history, {str(x["order_id"]) for x in examples if x.get("order_id") is not None})
            for x in examples:
                if x.get("order_id") is not None:
                    x["chain"] = chains[str(x["order_id"])]
            parts = [f"{n} {a}" for a, n in tally.items() if n]
            if incompatible:
                parts.append(f"{len(incompatible)} incompatible version step(s)")
            return CheckResult(self.name, self.invariant, Validity.INVALID,
                               f"{bad} of {counts['validated']} events break the contract: {', '.join(parts)}",
                               counts, tuple(examples), tuple(every))
        if topic and unvalidated == len(topic):
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               f"none of {len(topic)} topic records carries its raw value (payload), so none could "
                               "be validated", counts)
        return CheckResult(self.name, self.invariant, Validity.VALID,
                           f"all {counts['validated']} events validate against registered versions "
                           f"{', '.join(map(str, versions))}", counts)


_UNREPORTED = object()


@dataclass(frozen=True, slots=True)
class _Judged:
    """Every topic record judged: the counts of the good ones, each broken one with its outcome, in topic order."""

    unvalidated: int  # records whose raw value was not reported
    undeclared: int  # fields no schema declares, over every judged record
    per_version: dict[object, int]  # schema version -> records that validate against it
    broken: list[tuple[int, object, Outcome]]  # (record, its payload, its outcome) of each record with an anomaly


def _judge_all(history: History, shapes: _Shapes) -> _Judged:
    topic = history.observed("topic")
    unvalidated = undeclared = 0
    per_version: dict[object, int] = {}
    broken: list[tuple[int, object, Outcome]] = []
    payloads = column(topic, "payload", _UNREPORTED)
    for i, (payload, undecodable) in enumerate(zip(payloads, history.derived(topic_index).undecodable)):
        if payload is _UNREPORTED:
            unvalidated += 1
            continue
        outcome: Outcome
        if undecodable or not isinstance(payload, str):
            outcome = "undecodable", ["the value is not a JSON object"], None, 0
        else:
            outcome = shapes.judge(payload)
        undeclared += outcome[3]
        if outcome[0] is None:
            per_version[outcome[2]] = per_version.get(outcome[2], 0) + 1
        else:
            broken.append((i, payload, outcome))
    return _Judged(unvalidated, undeclared, per_version, broken)


def _judge_fast(history: History, shapes: _Shapes) -> _Judged | None:
    """As ``_judge_all``, matching each shape's pattern against all payloads at once (RE2, in C) and parsing
    only a shape's first payload and those no pattern recognises; None when the columns cannot be read so."""
    topic = source(history, "topic")
    if topic is None:
        return None
    payload = topic.columns.get("payload")
    undecodable = topic.columns.get("undecodable")
    if payload is None or payload.kind != "str" or (undecodable is not None and undecodable.kind != "bool"):
        return None
    pool = topic.frame.pool
    codes = payload.values
    bad = codes == NONE  # a null value is no JSON object
    if undecodable is not None:
        bad |= (undecodable.values != 0) & ((undecodable.mask == 0) if undecodable.mask is not None else True)
    bad &= codes != ABSENT_CODE
    outcome_of = np.full(topic.n, -1, dtype=np.int64)  # index into ``outcomes``; -1: not judged yet
    outcomes: list[Outcome] = [("undecodable", ["the value is not a JSON object"], None, 0)]
    outcome_of[bad] = 0
    pending = np.flatnonzero((codes >= 0) & ~bad)
    try:
        import pyarrow.compute as pc

        texts = pool.arrow()  # matched whole: cheaper than copying out the payloads
    except Exception:  # noqa: BLE001 - a pool not held by Arrow: the Python path, record by record
        return None
    keep = np.ones(len(pending), dtype=np.bool_)  # not recognised by a pattern yet
    patterns = 0
    todo = list(range(len(pending)))
    k = 0
    while k < len(todo):
        j = todo[k]
        k += 1
        if not keep[j]:
            continue
        keep[j] = False
        outcomes.append(shapes.judge(pool.at(int(codes[pending[j]]))))
        outcome_of[pending[j]] = len(outcomes) - 1
        if len(shapes.texts) == patterns:
            continue  # nothing new learned: the next record is judged the same way
        for text, matched in shapes.texts[patterns:]:
            outcomes.append(matched)
            try:
                hit = pc.match_substring_regex(texts, "^(?:" + text + ")$").to_numpy(zero_copy_only=False)[
                    codes[pending]]
            except Exception:  # noqa: BLE001 - a pattern RE2 does not read as Python does: parse instead
                return None
            hit &= keep
            outcome_of[pending[hit]] = len(outcomes) - 1
            keep &= ~hit
        patterns = len(shapes.texts)
        todo = np.flatnonzero(keep).tolist()
        k = 0
    judged = outcome_of >= 0
    unvalidated = int(np.count_nonzero(codes == ABSENT_CODE))
    per_version: dict[object, int] = {}
    undeclared = 0
    counted = np.bincount(outcome_of[judged], minlength=len(outcomes))
    for k, n in enumerate(counted.tolist()):
        if n:
            undeclared += outcomes[k][3] * n
            if outcomes[k][0] is None:
                per_version[outcomes[k][2]] = per_version.get(outcomes[k][2], 0) + n
    broken_at = np.flatnonzero(judged & np.isin(outcome_of, [k for k, o in enumerate(outcomes) if o[0] is not None]))
    broken = [(i, pool.at(int(codes[i])), outcomes[int(outcome_of[i])]) for i in broken_at.tolist()]
    return _Judged(unvalidated, undeclared, per_version, broken)

Outcome = tuple[str | None, list[str], object, int]
"""(anomaly or None, problems, schema version, undeclared fields) of one event."""

# JSON text of a value of each Python type, for shapes whose strings need no escapes.
_TEXT = {str: r'"[^"\\\x00-\x1f]*"', int: r"-?(?:0|[1-9][0-9]*)", bool: r"(?:true|false)", type(None): "null"}
_MAX_SHAPES = 16


class _Shapes:
    """Judges event payloads, remembering the outcome per *shape* (keys in order and their JSON types).

    Parsing every payload dominates the cost of this checker. Producers write one shape per
    event type, so after the first event of a shape a compiled pattern recognises its text
    without parsing it: a compact JSON object with exactly these keys in this order and
    values of these types, strings without escapes, and the same literal ``schema_version``
    (it picks the schema). A payload no pattern matches is
    parsed and judged in full, so the fast path can only skip work, never change an outcome.
    """

    def __init__(self, registry: Mapping[int, Schema]) -> None:
        self.registry = registry
        self.known: dict[tuple[object, ...], Outcome] = {}
        self.patterns: list[tuple[Callable[[str], object], Outcome]] = []
        self.texts: list[tuple[str, Outcome]] = []  # each pattern's text, for matching many payloads at once

    def judge(self, payload: str) -> Outcome:
        for match, matched in self.patterns:
            if match(payload):
                return matched
        try:
            event = json.loads(payload)
        except ValueError:
            return "undecodable", ["the value is not JSON"], None, 0
        if not isinstance(event, dict):
            return "undecodable", [f"the value is a JSON {type(event).__name__}, not an object"], None, 0
        shape = (event.get("schema_version"), *event, *map(type, event.values()))
        outcome = self.known.get(shape)
        if outcome is None:
            outcome = self.known[shape] = _judge(self.registry, event)
            if len(self.patterns) < _MAX_SHAPES and all(type(v) in _TEXT for v in event.values()):
                # The version picks the schema, so a pattern holds its literal value, never "any integer".
                text = ",".join(re.escape(json.dumps(k)) + ":"
                                + (re.escape(json.dumps(v)) if k == "schema_version" else _TEXT[type(v)])
                                for k, v in event.items())
                self.patterns.append((re.compile("\\{" + text + "\\}").fullmatch, outcome))
                self.texts.append(("\\{" + text + "\\}", outcome))
        return outcome


def _judge(registry: Mapping[int, Schema], event: Mapping[str, object]) -> Outcome:
    version = event.get("schema_version")
    if version is None and is_row_state(event):
        problems = validate(ROW_STATE, event)
        extra = sum(1 for k in event if k not in ROW_STATE.fields)
        return ("invalid-event" if problems else None), problems, "row-state", extra
    if version is None:
        return "missing-schema-version", ["the event has no schema_version"], None, 0
    schema = registry.get(version) if type(version) is int else None  # type: ignore[arg-type]
    if schema is None:
        return "unregistered-version", [f"schema_version {version!r} is not registered; registered: "
                                        f"{', '.join(map(str, sorted(registry)))}"], version, 0
    extra = sum(1 for k in event if k not in schema.fields)
    problems = validate(schema, event)
    return ("invalid-event" if problems else None), problems, version, extra
