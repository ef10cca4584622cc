"""I7 bounded-recovery: after the last fault heals, the pipeline catches up within the budget.

The runner samples how far behind the pipeline is with probe ops:

    {"process": "probe", "type": "ok", "f": "lag", "value": {"lag": 12, "backlog": 3}}

``lag`` is records on the topic not yet committed by the consumers, ``backlog`` events
committed at the source and not yet on the topic; a sample that could not be taken is
``fail`` or ``info`` and is ignored. The runner's ``probe ok drain`` op means it saw
both at zero, so it counts as a zero sample too.

Recovery time is measured from the last ``nemesis ok heal`` to the first sample after it
with lag and backlog both zero; it is reported in counts (``recovery_s``) whatever the
verdict. With a budget, recovery slower than the budget is invalid; without one, the
checker only measures, and fails only a pipeline that never caught up. No sample after
the heal is unknown; a run without faults has nothing to recover from and is valid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.checkers._index import ops_by_role
from harness.checkers.anomaly import Anomaly, AnomalyKind
from harness.checkers.base import CheckResult, Validity
from harness.checkers.counts import RecoveryCounts
from harness.history.ops import History, OpType

__all__ = ["BoundedRecovery"]

_SHOWN = 8  # samples in an example: the first few after the heal and the last


@dataclass(frozen=True, slots=True)
class BoundedRecovery:
    name: str = "bounded-recovery"
    invariant: str | None = "I7"
    budget_s: float | None = None

    def check(self, history: History) -> CheckResult:
        measured = self._measure(history)
        # The record checks the keys: a count added on one path and not declared fails here, not downstream.
        measured = replace(measured, counts=RecoveryCounts(**measured.counts).as_counts())  # type: ignore[arg-type]
        dead = [r for r in history.observed("processes") if r.get("alive") is False]
        if not dead:
            return measured
        names = ", ".join(f"{r['process']} (exit {r.get('returncode')})" for r in dead)
        examples = tuple({"anomaly": "did-not-recover", "process": r["process"], "returncode": r.get("returncode"),
                          "log_tail": r.get("log_tail")} for r in dead)
        return CheckResult(self.name, self.invariant, Validity.INVALID,
                           f"did not recover: {names} not running at the end of the run; "
                           f"{measured.message}", {**measured.counts, "dead_processes": len(dead)},
                           examples + tuple(measured.examples),
                           tuple(Anomaly(AnomalyKind.DID_NOT_RECOVER, consumer=str(r["process"])) for r in dead)
                           + measured.anomalies)

    def _measure(self, history: History) -> CheckResult:
        injected = heal = None
        samples: list[tuple[float, object, object]] = []
        failed_samples = 0
        ops = history.derived(ops_by_role)
        for op in ops.nemesis:  # the last successful inject and heal
            if op.f == "inject" and op.type is OpType.OK:
                injected = op.time_s
            elif op.f == "heal" and op.type is OpType.OK:
                heal = op.time_s
        for op in ops.probe:
            if op.f == "lag":
                if op.type is OpType.OK:
                    samples.append((op.time_s, op.value.get("lag"), op.value.get("backlog")))
                elif op.type is not OpType.INVOKE:
                    failed_samples += 1
            elif op.f == "drain" and op.type is OpType.OK:
                samples.append((op.time_s, 0, 0))
        counts: dict[str, int | float | None] = {
            "samples": len(samples), "failed_samples": failed_samples, "budget_s": self.budget_s, "recovery_s": None,
            "dead_processes": 0, "samples_after_heal": None, "max_lag_after_heal": None, "max_backlog_after_heal": None,
            "watched_s": None}
        if injected is None:
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               "no fault was injected, so there was nothing to recover from", counts)
        if heal is None:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               "no fault heal succeeded, so recovery cannot be measured", counts)
        after = sorted(s for s in samples if s[0] >= heal)
        counts["samples_after_heal"] = len(after)
        if not after:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               f"no lag sample after the last heal at {heal:.3f}s; the runner took none", counts)
        counts["max_lag_after_heal"] = max((s[1] for s in after if isinstance(s[1], int)), default=None)
        counts["max_backlog_after_heal"] = max((s[2] for s in after if isinstance(s[2], int)), default=None)
        first_zero = next((s for s in after if s[1] == 0 and s[2] == 0), None)
        shown = [*after[:_SHOWN - 1], after[-1]] if len(after) > _SHOWN else after
        example = {"anomaly": "slow-recovery", "heal_s": round(heal, 3),
                   "samples": [{"time": round(t, 3), "lag": lag, "backlog": backlog} for t, lag, backlog in shown]}
        if first_zero is None:
            watched = after[-1][0] - heal
            counts["watched_s"] = round(watched, 3)
            if self.budget_s is not None and watched < self.budget_s:
                return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                                   f"not caught up {watched:.2f}s after the heal, but sampling stopped before the "
                                   f"{self.budget_s:g}s budget ran out", counts)
            return CheckResult(self.name, self.invariant, Validity.INVALID,
                               f"never caught up: lag or backlog still above zero {watched:.2f}s after the heal",
                               counts, ({**example, "anomaly": "never-recovered"},),
                               (Anomaly(AnomalyKind.NEVER_RECOVERED),))
        recovery = first_zero[0] - heal
        counts["recovery_s"] = round(recovery, 3)
        if self.budget_s is not None and recovery > self.budget_s:
            return CheckResult(self.name, self.invariant, Validity.INVALID,
                               f"caught up {recovery:.2f}s after the heal, over the {self.budget_s:g}s budget",
                               counts, (example,), (Anomaly(AnomalyKind.SLOW_RECOVERY),))
        within = f" (budget {self.budget_s:g}s)" if self.budget_s is not None else " (no budget set: measured only)"
        return CheckResult(self.name, self.invariant, Validity.VALID,
                           f"caught up {recovery:.2f}s after the heal{within}", counts)
