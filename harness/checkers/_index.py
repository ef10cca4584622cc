"""Indexes of a history that several checkers share, each built once per History (``History.derived``).

A million-event history is mostly touched, not computed on: every pass over its ops or
rows costs tens of milliseconds before a checker does any work. Checkers that group the
same rows by the same key read one shared index instead of each making its own pass.
Every index here is a pure function of the history, keeps the history's order wherever a
checker's examples depend on it, and is read-only by convention (tuples and mappings that
no caller mutates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.history.ops import History, Op, OpType

__all__ = ["OpsByRole", "ops_by_role"]


@dataclass(frozen=True, slots=True)
class OpsByRole:
    """A history's ops split by who recorded them, each part in history order."""

    client: Mapping[OpType, tuple[Op, ...]]  # ops of client processes ("client-3"), by type
    completions: tuple[Op, ...]  # client ops that are not invokes: ok, fail and info, interleaved
    nemesis: tuple[Op, ...]  # process "nemesis": faults
    probe: tuple[Op, ...]  # process "probe": lag samples and the drain

    @property
    def client_count(self) -> int:
        return sum(map(len, self.client.values()))


def _role(process: str) -> str:
    if process in ("nemesis", "probe"):
        return process
    return "client" if process.startswith("client") else "other"


def ops_by_role(history: History) -> OpsByRole:
    """Split the ops in one pass; a process's role is decided once per distinct process name."""
    invoke, ok, fail = OpType.INVOKE, OpType.OK, OpType.FAIL
    # Lists named per type, not a dict keyed by OpType: an Enum hashes in Python, per lookup.
    invokes: list[Op] = []
    oks: list[Op] = []
    fails: list[Op] = []
    infos: list[Op] = []
    completions: list[Op] = []
    parts: dict[str, list[Op]] = {"nemesis": [], "probe": [], "other": []}
    role_of: dict[str, str] = {}
    for op in history.ops:
        role = role_of.get(op.process)
        if role is None:
            role = role_of[op.process] = _role(op.process)
        if role != "client":
            parts[role].append(op)
            continue
        t = op.type
        if t is invoke:
            invokes.append(op)
            continue
        completions.append(op)
        (oks if t is ok else fails if t is fail else infos).append(op)
    client = {invoke: tuple(invokes), ok: tuple(oks), fail: tuple(fails), OpType.INFO: tuple(infos)}
    return OpsByRole({t: client[t] for t in OpType}, tuple(completions), tuple(parts["nemesis"]),
                     tuple(parts["probe"]))
