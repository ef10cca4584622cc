"""Stats and vacuity: did the faults happen, did they hit traffic, and did they bite?

A fault whose injection failed, a fault window with no client traffic inside it, or a
fault with no observable effect (the publish backlog never grew) makes the verdict
unknown: a pipeline cannot pass a test that never touched it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from harness.checkers._arrays import op_arrays
from harness.checkers._index import ops_by_role
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.counts import StatsCounts
from harness.history.ops import History, OpType

__all__ = ["CRASH_FAULTS", "LEAD_S", "MARGIN_S", "FaultWindow", "Stats", "fault_windows"]

MARGIN_S = 10.0
"""How long after its heal a fault still explains what happens: above the clients' own delivery
and session timeouts here (2-5 s) plus a restarted process's catch-up (harness/attribution.py)."""

LEAD_S = 5.0
"""How long before its inject a fault still explains what happens to an entity: an acknowledged
request's events are on their way for the pipeline's normal delivery time (a relay's poll, a
producer's batch), well under this here."""

CRASH_FAULTS = frozenset({"kill", "pause", "restart", "crash"})
"""Faults after which a process recovers from its last commit: redelivery there is the price of recovery."""

_TIME = attrgetter("time_s")


@dataclass(frozen=True, slots=True)
class FaultWindow:
    fault: str
    target: str
    start_s: float
    end_s: float | None  # None: never healed in the history (the run was cut short)
    injected: bool
    effect: int | None  # the fault's effect probe (e.g. pending work it caused), if taken
    effect_failed: bool = False  # the probe ran and could not measure anything
    id: str = ""  # the planned fault's id, as the nemesis recorded it
    # What a message fault touched (entity ids, event ids), from its effect op; None when the
    # fault does not say (a network or process fault, or a history from before faults did).
    touched: frozenset[str] | None = None


def fault_windows(history: History) -> list[FaultWindow]:
    windows: list[FaultWindow] = []
    open_: dict[str, tuple[float, bool, str, str]] = {}
    effects: dict[str, int] = {}
    touched: dict[str, frozenset[str]] = {}
    failed: set[str] = set()
    nemesis = history.derived(ops_by_role).nemesis
    for op in nemesis:  # the effect is measured after the heal, so collect it first
        fid = str(op.value.get("id"))
        if op.f == "effect" and op.type is OpType.OK:
            effects[fid] = int(op.value.get("observed") or 0)
            if isinstance(op.value.get("touched"), str):
                touched[fid] = frozenset(t for t in str(op.value["touched"]).split(",") if t)
        elif op.f == "effect" and op.type is OpType.FAIL:
            failed.add(fid)
    for op in nemesis:
        fid = str(op.value.get("id"))
        if op.f == "inject" and op.type is not OpType.INVOKE:
            open_[fid] = (op.time_s, op.type is OpType.OK, str(op.value.get("fault")), str(op.value.get("target")))
        elif op.f == "heal" and op.type is not OpType.INVOKE and fid in open_:
            start, ok, fault, target = open_.pop(fid)
            windows.append(FaultWindow(fault, target, start, op.time_s, ok, effects.get(fid), fid in failed, fid,
                                       touched.get(fid)))
    for fid, (start, ok, fault, target) in open_.items():
        windows.append(FaultWindow(fault, target, start, None, ok, effects.get(fid), fid in failed, fid,
                                   touched.get(fid)))
    return windows


@dataclass(frozen=True, slots=True)
class Stats:
    name: str = "stats"
    invariant: str | None = None

    def check(self, history: History) -> CheckResult:
        ops = history.derived(ops_by_role)
        windows = fault_windows(history)
        arrays = op_arrays(history)
        if arrays is not None:  # counted on the ops' columns, without making the client ops
            n_invoke, n_ok, n_fail, n_info = (int(np.count_nonzero(m)) for m in
                                              (arrays.invoke, arrays.ok, arrays.fail, arrays.info))
            invoked: Sequence[float] = np.sort(arrays.time[arrays.invoke]).tolist() if windows else []
        else:
            n_invoke, n_ok, n_fail, n_info = (len(ops.client[t]) for t in
                                              (OpType.INVOKE, OpType.OK, OpType.FAIL, OpType.INFO))
            invoked = sorted(map(_TIME, ops.client[OpType.INVOKE])) if windows else []
        n_client = n_invoke + n_ok + n_fail + n_info
        clients: int | None = None
        late: float | None = None
        for op in ops.probe:  # the workload's own report: did it keep its arrival schedule?
            if op.f == "workload":
                clients = int(op.value.get("clients") or 0)
                late = float(op.value.get("max_start_late_s") or 0.0)
        typed = StatsCounts(invoke=n_invoke, ok=n_ok, fail=n_fail, info=n_info, faults=len(windows),
                            clients=clients, max_start_late_s=late)
        counts = typed.as_counts()
        problems: list[dict[str, object]] = []
        for w in windows:
            end = w.end_s if w.end_s is not None else float("inf")
            inside = bisect_right(invoked, end) - bisect_left(invoked, w.start_s)
            counts[f"ops_during:{w.fault}@{w.target}"] = inside
            if not w.injected:
                problems.append({"fault": w.fault, "target": w.target, "problem": "injection failed"})
            elif inside == 0:
                problems.append({"fault": w.fault, "target": w.target, "problem": "no client traffic during the fault (vacuous)"})
            elif w.effect is None and w.effect_failed:
                problems.append({"fault": w.fault, "target": w.target,
                                 "problem": "the fault's effect could not be measured (its probe failed)"})
            elif w.effect is not None and w.effect <= 0:
                problems.append({"fault": w.fault, "target": w.target,
                                 "problem": "the fault had no observable effect (nothing backed up behind it, "
                                            "no request failed, no message injected, no crash)"})
        if not n_client:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN, "no client traffic at all", counts)
        if problems:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               "; ".join(f"{p['fault']}@{p['target']}: {p['problem']}" for p in problems),
                               counts, tuple(problems[:MAX_EXAMPLES]))
        return CheckResult(self.name, self.invariant, Validity.VALID,
                           f"{n_client} client ops, {len(windows)} fault(s) injected with traffic and effect", counts)
