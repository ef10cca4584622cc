"""Verdicts: checker results merged per pipeline and held against the scenario's expectations.

What occurred (a checker's validity) is kept apart from what this pipeline is allowed
(the scenario's expectation). Outcome per pipeline:
  MET           every result is what the scenario expected (valid unless it says otherwise)
  UNEXPECTED    a result differs from its expectation (an invariant broke, or a planted
                defect was not caught)
  INCONCLUSIVE  a result is unknown (vacuous, a fault not injected, no effect)
Exit codes follow: 1 if any pipeline is UNEXPECTED, else 2 if any is INCONCLUSIVE, else 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from harness.checkers.base import CheckResult, Validity, merge

__all__ = ["Outcome", "PipelineVerdict", "exit_code", "judge"]


class Outcome(Enum):
    MET = "met"
    UNEXPECTED = "unexpected"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class PipelineVerdict:
    pipeline: str
    validity: Validity  # what occurred, merged worst-first
    outcome: Outcome  # what occurred against what was expected
    results: tuple[CheckResult, ...]
    reasons: tuple[str, ...]

    def result(self, checker: str) -> CheckResult | None:
        return next((r for r in self.results if r.checker == checker), None)

    def summary(self) -> Mapping[str, int]:
        """The headline numbers of the terminal table."""
        stats = self.result("stats")
        loss = self.result("no-lost-effect")
        out = {"accepted": 0, "lost": 0, "lost_cents": 0, "unknown_outcome": 0}
        if loss is not None:
            out["accepted"] = int(loss.counts.get("acknowledged_orders") or 0)
            out["lost"] = int(loss.counts.get("lost") or 0)
            out["lost_cents"] = int(loss.counts.get("lost_cents") or 0)
        if stats is not None:
            out["unknown_outcome"] = int(stats.counts.get("info") or 0)
        return out

    def to_json(self) -> dict[str, object]:
        return {"pipeline": self.pipeline, "validity": self.validity.value, "outcome": self.outcome.value,
                "reasons": list(self.reasons), "summary": dict(self.summary()),
                "results": [r.to_json() for r in self.results]}


def judge(pipeline: str, results: tuple[CheckResult, ...], expected: Mapping[str, Validity]) -> PipelineVerdict:
    """``expected`` maps invariant id -> validity the scenario expects (VALID when absent)."""
    reasons: list[str] = []
    inconclusive = unexpected = False
    for r in results:
        want = expected.get(r.invariant, Validity.VALID) if r.invariant else Validity.VALID
        if r.validity is Validity.UNKNOWN:
            inconclusive = True
            reasons.append(f"{r.invariant or r.checker} unknown: {r.message}")
        elif r.validity is not want:
            unexpected = True
            reasons.append(f"{r.invariant or r.checker} {r.validity.value}, expected {want.value}: {r.message}")
    outcome = Outcome.UNEXPECTED if unexpected else Outcome.INCONCLUSIVE if inconclusive else Outcome.MET
    return PipelineVerdict(pipeline, merge(r.validity for r in results), outcome, results, tuple(reasons))


def exit_code(verdicts: tuple[PipelineVerdict, ...]) -> int:
    outcomes = {v.outcome for v in verdicts}
    if Outcome.UNEXPECTED in outcomes:
        return 1
    if Outcome.INCONCLUSIVE in outcomes or not verdicts:
        return 2
    return 0
