"""Test doubles and helpers for users' tests and the harness's own: build histories by hand.

    h = HistoryBuilder("outbox")
    h.order("o1", amount_cents=1200)           # place ok + pay ok
    h.fault_window(start=1.0, end=3.0)         # an injected, healed outage with an effect
    h.charge("o1")                              # the payment consumer's effect
    history = h.build()

A whole order as a correct pipeline would leave it, in every source at once:

    h = HistoryBuilder("outbox").consumers("payment", "inventory", "fulfillment", "notification")
    h.flow("o1", steps=("place", "pay", "ship"))   # ops, order row, topic records, applies, effects
    h.lag(5.0, lag=0, backlog=0)                   # a probe sample of how far behind the pipeline is

Declare the consumers before the first ``flow``: each flow applies its events for the
consumers running at that moment. The lower-level methods (``topic``, ``applied``,
``effect``, ``dlq``, ``redeliver``, ``dead_letter``, ``lag``) add one row or op each, and
``observations`` holds plain lists of dicts until ``build()``, so a test can plant exactly
one anomaly on top of a clean flow.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from harness.checkers.phantom import EVENT_OF
from harness.history.observations import REQUIRED_EFFECTS, SUBSCRIPTIONS
from harness.history.ops import History, Observation, Op, OpType, Scalar
from harness.history.table import Table
from harness.runner import RunResult

__all__ = ["EVENT_OF", "HistoryBuilder", "evidence", "hash_partition"]

_STATUS = {"place": "created", "pay": "paid", "ship": "shipped", "cancel": "cancelled"}
PARTITIONS = 3


@dataclass(repr=False)
class HistoryBuilder:
    pipeline: str = "outbox"
    ops: list[Op] = field(default_factory=list)
    observations: dict[str, list[Mapping[str, Scalar]]] = field(default_factory=dict)
    clock: float = 0.0
    _offsets: dict[int, int] = field(default_factory=dict)
    _positions: dict[str, int] = field(default_factory=dict)
    _seqs: dict[str, int] = field(default_factory=dict)

    def op(self, process: str, type_: OpType, f: str, key: str | None = None, error: str | None = None,
           at: float | None = None, **value: Scalar) -> HistoryBuilder:
        return self.op_with(process, type_, f, key, value, error=error, at=at)

    def op_with(self, process: str, type_: OpType, f: str, key: str | None, value: Mapping[str, Scalar],
                error: str | None = None, at: float | None = None) -> HistoryBuilder:
        """``op`` with its value as a mapping: for values built elsewhere (whose keys ``op``'s own
        parameters could shadow)."""
        self.clock = at if at is not None else self.clock + 0.01
        self.ops.append(Op(len(self.ops), self.clock, process, type_, f, key, MappingProxyType(dict(value)), error))
        return self

    def order(self, order_id: str, amount_cents: int = 1000, pay: OpType | None = OpType.OK,
              place: OpType = OpType.OK, at: float | None = None, client: str = "client-0") -> HistoryBuilder:
        self.op(client, OpType.INVOKE, "place", order_id, at=at, amount_cents=amount_cents)
        self.op(client, place, "place", order_id, amount_cents=amount_cents)
        if place is OpType.OK and pay is not None:
            self.op(client, OpType.INVOKE, "pay", order_id, amount_cents=amount_cents)
            self.op(client, pay, "pay", order_id, amount_cents=amount_cents)
        self.observations.setdefault("orders", [])
        if place is OpType.OK:
            self.observations["orders"].append({"order_id": order_id, "amount_cents": amount_cents,
                                                "status": "paid" if pay is OpType.OK else "created"})
        return self

    def fault_window(self, start: float, end: float, injected: bool = True, effect: int | None = 10,
                     fault: str = "outage", target: str = "relay->kafka", fault_id: int = 0) -> HistoryBuilder:
        v: dict[str, Scalar] = {"id": fault_id, "fault": fault, "target": target}
        self.op_with("nemesis", OpType.INVOKE, "inject", None, v, at=start)
        self.op_with("nemesis", OpType.OK if injected else OpType.FAIL, "inject", None, v, at=start)
        if effect is not None:
            self.op_with("nemesis", OpType.OK, "effect", None, {**v, "observed": effect}, at=end)
        self.op_with("nemesis", OpType.INVOKE, "heal", None, v, at=end)
        self.op_with("nemesis", OpType.OK, "heal", None, v, at=end)
        return self

    def consumers(self, *names: str) -> HistoryBuilder:
        """Declare which consumers the target runs (default: payment only)."""
        self.observations["consumers"] = [{"consumer": n} for n in names]
        return self

    def effect(self, order_id: str, consumer: str = "payment", kind: str = "charge", amount_cents: int | None = 1000,
               event_id: str = "e", correlation_id: str = "c", at_ms: int = 0) -> HistoryBuilder:
        self.observations.setdefault("effects", []).append(
            {"consumer": consumer, "kind": kind, "order_id": order_id, "event_id": event_id,
             "correlation_id": correlation_id, "amount_cents": amount_cents, "applied_at_ms": at_ms})
        return self

    def charge(self, order_id: str, amount_cents: int = 1000, event_id: str = "e") -> HistoryBuilder:
        return self.effect(order_id, "payment", "charge", amount_cents, event_id)

    def no_effects_observed(self) -> HistoryBuilder:
        self.observations.setdefault("effects", [])
        return self

    # ---- observations row by row ------------------------------------------------------------
    def row(self, source: str, **fields: Scalar) -> HistoryBuilder:
        """Append one row to an observation source, as a target's ``observe()`` would report it."""
        self.observations.setdefault(source, []).append(fields)
        return self

    def topic(self, order_id: str, type_: str, seq: int, event_id: str | None = None, correlation_id: str | None = None,
              partition: int | None = None, offset: int | None = None, schema_version: int | None = 1,
              payload: str | None | object = ..., undecodable: bool = False, amount_cents: int = 1000,
              customer: str = "customer-000", at_ms: int = 0) -> HistoryBuilder:
        """One record on the pipeline's topic; its payload is a valid v1 event unless given."""
        event_id = event_id or f"{order_id}/{seq}"
        partition = hash_partition(order_id) if partition is None else partition
        if offset is None:
            offset = self._offsets.get(partition, 0)
        self._offsets[partition] = max(self._offsets.get(partition, 0), offset + 1)
        if payload is ...:
            payload = json.dumps({"event_id": event_id, "type": type_, "order_id": order_id, "seq": seq,
                                  "schema_version": schema_version, "correlation_id": correlation_id,
                                  "occurred_at": "2026-01-01T00:00:00+00:00", "customer": customer,
                                  "amount_cents": amount_cents}, separators=(",", ":"))
        row: dict[str, Scalar] = {"partition": partition, "offset": offset, "key": order_id, "timestamp_ms": at_ms,
                                  "payload": payload}  # type: ignore[dict-item]
        if undecodable:
            row["undecodable"] = True
        else:
            row.update(event_id=event_id, order_id=order_id, type=type_, seq=seq, correlation_id=correlation_id,
                       schema_version=schema_version)
        self.observations.setdefault("topic", []).append(row)
        return self

    def applied(self, consumer: str, order_id: str, type_: str, seq: int, event_id: str | None = None,
                position: int | None = None, at_ms: int = 0) -> HistoryBuilder:
        """One processed-event record of a consumer, at the next position of that consumer unless given."""
        if position is None:
            position = self._positions.get(consumer, 0) + 1
        self._positions[consumer] = max(self._positions.get(consumer, 0), position)
        return self.row("applied", consumer=consumer, position=position, event_id=event_id or f"{order_id}/{seq}",
                        order_id=order_id, type=type_, seq=seq, applied_at_ms=at_ms)

    def dlq(self, consumer: str, source_partition: int, source_offset: int, reason: str | None = "undecodable",
            event_id: str | None = None, order_id: str | None = None, type_: str | None = None) -> HistoryBuilder:
        n = sum(1 for r in self.observations.get("dlq", ()) if r["consumer"] == consumer)
        return self.row("dlq", consumer=consumer, partition=0, offset=n, key=order_id, event_id=event_id,
                        order_id=order_id, type=type_, reason=reason, source_topic="orders",
                        source_partition=source_partition, source_offset=source_offset)

    def redeliver(self, event_id: str) -> HistoryBuilder:
        """A second copy of an event on the topic (a relay that published twice): at-least-once delivery."""
        original = next(r for r in self.observations["topic"] if r.get("event_id") == event_id)
        p = int(original["partition"])  # type: ignore[arg-type]
        self.observations["topic"].append({**original, "offset": self._offsets.get(p, 0)})
        self._offsets[p] = self._offsets.get(p, 0) + 1
        return self

    def dead_letter(self, consumer: str, event_id: str, reason: str | None = "handler failed 3 times") -> HistoryBuilder:
        """The consumer dead-lettered this event instead of applying it (its apply record goes)."""
        record = next(r for r in self.observations["topic"] if r.get("event_id") == event_id)
        self.observations["applied"] = [r for r in self.observations.get("applied", [])
                                        if not (r["consumer"] == consumer and r["event_id"] == event_id)]
        return self.dlq(consumer, int(record["partition"]), int(record["offset"]), reason,  # type: ignore[arg-type]
                        event_id=event_id, order_id=str(record["order_id"]), type_=str(record["type"]))

    def lag(self, at: float, lag: int | None, backlog: int | None = 0, ok: bool = True) -> HistoryBuilder:
        """A probe sample: ``probe ok lag {lag, backlog}`` (``fail`` when the sample could not be taken)."""
        value: dict[str, Scalar] = {"lag": lag, "backlog": backlog} if ok else {}
        return self.op_with("probe", OpType.OK if ok else OpType.FAIL, "lag", None, value, at=at)

    def flow(self, order_id: str, steps: tuple[str, ...] = ("place", "pay"), outcomes: dict[str, OpType] | None = None,
             amount_cents: int = 1000, at: float | None = None, client: str = "client-0",
             committed: dict[str, bool] | None = None) -> HistoryBuilder:
        """One order as a correct pipeline leaves it: for each step, the client's invoke and outcome and,
        when the step committed, the order row, the event on the topic, each running consumer's
        apply of it, and the effects it requires.

        ``outcomes`` maps a step to the client's view (ok by default); ``committed`` maps a step to
        whether it really committed (default: only if ok). Steps after one that did not commit are
        not attempted, as a client would not pay for an order it could not place.
        """
        outcomes = outcomes or {}
        committed = committed or {}
        consumers = [str(r["consumer"]) for r in self.observations.get("consumers", [{"consumer": "payment"}])]
        self.observations.setdefault("consumers", [{"consumer": c} for c in consumers])
        for name in ("orders", "topic", "applied", "effects", "dlq"):
            self.observations.setdefault(name, [])
        row: dict[str, Scalar] | None = None
        for i, step in enumerate(steps):
            outcome = outcomes.get(step, OpType.OK)
            did = committed.get(step, outcome is OpType.OK)
            cid = f"{order_id}/{step}"
            value: dict[str, Scalar] = {"amount_cents": amount_cents}
            self.op_with(client, OpType.INVOKE, step, order_id, value, at=at if i == 0 else None)
            if outcome is OpType.OK:
                value = {**value, "correlation_id": cid}
            self.op_with(client, outcome, step, order_id, value, error=None if outcome is OpType.OK else "planted")
            if not did:
                break
            seq = self._seqs.get(order_id, 0) + 1
            self._seqs[order_id] = seq
            if row is None:
                row = {"order_id": order_id, "customer": "customer-000", "amount_cents": amount_cents,
                       "status": _STATUS[step], "version": seq, "correlation_id": cid}
                self.observations["orders"].append(row)
            else:
                row.update(status=_STATUS[step], version=seq, correlation_id=cid)  # the last change's id
            type_ = EVENT_OF[step]
            self.topic(order_id, type_, seq, correlation_id=cid, amount_cents=amount_cents)
            for consumer in consumers:
                if type_ in SUBSCRIPTIONS.get(consumer, ()):
                    self.applied(consumer, order_id, type_, seq)
            for consumer, kind in REQUIRED_EFFECTS.get(step, ()):
                if consumer in consumers:
                    self.effect(order_id, consumer, kind, amount_cents, event_id=f"{order_id}/{seq}", correlation_id=cid)
        return self

    def __repr__(self) -> str:
        # Short, so a failing Hypothesis example or assertion stays readable; build() shows the rest.
        rows = ", ".join(f"{k}={len(v)}" for k, v in self.observations.items())
        orders = sorted({op.key for op in self.ops if op.key is not None})
        return f"HistoryBuilder({self.pipeline!r}, ops={len(self.ops)}, {rows}, orders={orders[:12]})"

    def build(self) -> History:
        self.observations.setdefault("consumers", [{"consumer": "payment"}])
        ops = tuple(sorted(self.ops, key=lambda o: (o.time_s, o.index)))
        return History(self.pipeline, ops, MappingProxyType(
            {k: Observation(k, Table.from_rows(rows)) for k, rows in self.observations.items()}))


def hash_partition(key: str, partitions: int = PARTITIONS) -> int:
    """A stable partition for a key, as a keyed producer would choose one."""
    return zlib.crc32(key.encode()) % partitions


def evidence(result: RunResult) -> str:
    """A short, bounded description of a run for assertion messages (never the whole history)."""
    lines = [f"run folder {result.run_dir}; reproduce: {result.command}"]
    for v in result.verdicts:
        lines.append(f"{v.pipeline}: {v.outcome.value}; " + "; ".join(v.reasons[:3]))
    return "\n".join(lines)


def leftover_processes(*, run_id: str | None = None, fragments: tuple[str, ...] = ()) -> list[str]:
    """Live processes of a run (by their CHAOS_RUN_ID) or whose command line holds a fragment.

    Used to prove that an interrupted run left nothing behind.
    """
    import os
    from pathlib import Path

    found = []
    marker = f"CHAOS_RUN_ID={run_id}".encode() if run_id else None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (proc / "environ").read_bytes() if marker else b""
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if state == "Z":
            continue
        if (marker and marker in environ.split(b"\0")) or any(f in cmdline for f in fragments):
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found
