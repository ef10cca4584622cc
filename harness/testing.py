"""Test doubles and helpers for users' tests and the harness's own: build histories by hand.

    h = HistoryBuilder("outbox")
    h.order("o1", amount_cents=1200)           # place ok + pay ok
    h.fault_window(start=1.0, end=3.0)         # an injected, healed outage with an effect
    h.charge("o1")                              # the payment consumer's effect
    history = h.build()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from harness.history.ops import History, Observation, Op, OpType, Scalar
from harness.runner import RunResult

__all__ = ["HistoryBuilder", "evidence"]


@dataclass
class HistoryBuilder:
    pipeline: str = "outbox"
    ops: list[Op] = field(default_factory=list)
    observations: dict[str, list[Mapping[str, Scalar]]] = field(default_factory=dict)
    clock: float = 0.0

    def op(self, process: str, type_: OpType, f: str, key: str | None = None, error: str | None = None,
           at: float | None = None, **value: Scalar) -> HistoryBuilder:
        self.clock = at if at is not None else self.clock + 0.01
        self.ops.append(Op(len(self.ops), self.clock, process, type_, f, key, MappingProxyType(value), error))
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
        v = {"id": fault_id, "fault": fault, "target": target}
        self.op("nemesis", OpType.INVOKE, "inject", at=start, **v)
        self.op("nemesis", OpType.OK if injected else OpType.FAIL, "inject", at=start, **v)
        if effect is not None:
            self.op("nemesis", OpType.OK, "effect", at=end, observed=effect, **v)
        self.op("nemesis", OpType.INVOKE, "heal", at=end, **v)
        self.op("nemesis", OpType.OK, "heal", at=end, **v)
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

    def build(self) -> History:
        self.observations.setdefault("consumers", [{"consumer": "payment"}])
        ops = tuple(sorted(self.ops, key=lambda o: (o.time_s, o.index)))
        return History(self.pipeline, ops, MappingProxyType(
            {k: Observation(k, tuple(MappingProxyType(dict(r)) for r in rows)) for k, rows in self.observations.items()}))


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
