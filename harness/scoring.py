"""Verdicts: checker results merged per pipeline and held against the scenario's expectations.

What occurred (checker results and the anomalies they name) is kept apart from what this
pipeline is allowed (the scenario's ``Expect``s, harness/expect.py) and from what caused
it (attribution, harness/attribution.py). Outcome per pipeline:
  MET           every anomaly is of an expected kind and explained by what was injected,
                and every kind the scenario requires appeared
  UNEXPECTED    an anomaly of a kind nobody expected, an expected kind that no injected
                fault explains, or an expected break that did not happen although the
                faults bit (the reason says what appeared instead)
  INCONCLUSIVE  a result is unknown (vacuous, a fault not injected, no effect)
Exit codes follow: 1 if any pipeline is UNEXPECTED, else 2 if any is INCONCLUSIVE, else 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from harness.attribution import Attribution
from harness.checkers.anomaly import AnomalyKind
from harness.checkers.base import CheckResult, Validity, merge
from harness.checkers.counts import LossCounts, StatsCounts, read
from harness.expect import Expect

__all__ = ["AnomalyTally", "Outcome", "PipelineVerdict", "exit_code", "judge"]

_SHOWN = 3  # unexplained anomalies named in a reason


class Outcome(Enum):
    MET = "met"
    UNEXPECTED = "unexpected"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class AnomalyTally:
    """How many anomalies of one kind a pipeline showed, and how many an injected fault (or the
    planted variant) explains."""

    kind: AnomalyKind
    total: int
    explained: int
    expected: bool  # the scenario allows this kind for this pipeline

    @property
    def unexplained(self) -> int:
        return self.total - self.explained


@dataclass(frozen=True, slots=True)
class PipelineVerdict:
    pipeline: str
    validity: Validity  # what occurred, merged worst-first
    outcome: Outcome  # what occurred against what was expected
    results: tuple[CheckResult, ...]
    reasons: tuple[str, ...]
    attributions: tuple[Attribution, ...] = ()
    tallies: tuple[AnomalyTally, ...] = ()

    def result(self, checker: str) -> CheckResult | None:
        return next((r for r in self.results if r.checker == checker), None)

    @property
    def explained(self) -> int:
        return sum(t.explained for t in self.tallies)

    @property
    def unexplained(self) -> int:
        return sum(t.unexplained for t in self.tallies)

    def summary(self) -> Mapping[str, int]:
        """The headline numbers of the terminal table."""
        stats = read(self.result("stats"), StatsCounts)
        loss = read(self.result("no-lost-effect"), LossCounts)
        out = {"accepted": 0, "lost": 0, "lost_cents": 0, "unknown_outcome": 0,
               "anomalies_explained": self.explained, "anomalies_unexplained": self.unexplained}
        if loss is not None:
            out["accepted"], out["lost"], out["lost_cents"] = loss.acknowledged_orders, loss.lost, loss.lost_cents
        if stats is not None:
            out["unknown_outcome"] = stats.info
        return out

    def to_json(self) -> dict[str, object]:
        unexplained = [a for a in self.attributions if not a.explained][:20]
        return {"pipeline": self.pipeline, "validity": self.validity.value, "outcome": self.outcome.value,
                "reasons": list(self.reasons), "summary": dict(self.summary()),
                "anomalies": {
                    "explained": self.explained, "unexplained": self.unexplained,
                    "by_kind": {t.kind.value: {"total": t.total, "explained": t.explained, "expected": t.expected}
                                for t in self.tallies},
                    "unexplained_examples": [{**a.anomaly.to_json(), "how": a.how} for a in unexplained],
                    "causes": _causes(self.attributions)},
                "results": [r.to_json() for r in self.results]}


def _causes(attributions: Sequence[Attribution]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in attributions:
        if a.cause is not None:
            out[a.cause] = out.get(a.cause, 0) + 1
    return out


def judge(pipeline: str, results: tuple[CheckResult, ...], expects: Sequence[Expect] = (),
          attributions: Sequence[Attribution] | None = None) -> PipelineVerdict:
    """Hold ``results`` against this pipeline's ``expects``; ``attributions`` (one per anomaly, in
    result order) say what explains each. Without them no anomaly counts as explained."""
    mine = [e for e in expects if e.pipeline == pipeline]
    allowed = frozenset().union(*(e.allowed for e in mine)) if mine else frozenset()
    required = [k for e in mine for k in e.anomalies]
    if attributions is None:
        attributions = tuple(Attribution(a, None, "not attributed") for r in results for a in r.anomalies)
    reasons: list[str] = []
    inconclusive = unexpected = False
    for r in results:
        if r.validity is Validity.UNKNOWN:
            inconclusive = True
            reasons.append(f"{r.invariant or r.checker} unknown: {r.message}")
        elif r.validity is Validity.INVALID and not r.anomalies:
            unexpected = True
            reasons.append(f"{r.invariant or r.checker} invalid without naming an anomaly: {r.message}")

    by_kind: dict[AnomalyKind, list[Attribution]] = {}
    for a in attributions:
        by_kind.setdefault(a.anomaly.kind, []).append(a)
    message = {a.kind: r for r in results for a in r.anomalies}
    tallies: list[AnomalyTally] = []
    for kind in AnomalyKind:  # vocabulary order: stable reasons
        group = by_kind.get(kind)
        if not group:
            continue
        explained = [a for a in group if a.explained]
        tallies.append(AnomalyTally(kind, len(group), len(explained), kind in allowed))
        source = message[kind]
        if kind not in allowed:
            unexpected = True
            reasons.append(f"unexpected {kind.value} ({kind.invariant}) x{len(group)}: {source.message}")
        elif len(explained) < len(group):
            unexpected = True
            missing = [a for a in group if not a.explained]
            named = "; ".join(f"{a.anomaly.entity or 'run'}: {a.how}" for a in missing[:_SHOWN])
            reasons.append(f"{len(missing)} of {len(group)} {kind.value} ({kind.invariant}) not explained by any "
                           f"injected fault or the planted defect, e.g. {named}")

    seen = set(by_kind)
    stats = next((r for r in results if r.checker == "stats"), None)
    for kind in dict.fromkeys(required):
        if kind in seen:
            continue
        instead = ", ".join(f"{t.total} {t.kind.value}" for t in tallies) or "no anomaly at all"
        if stats is not None and stats.validity is Validity.UNKNOWN:
            inconclusive = True
            reasons.append(f"expected {kind.value} did not happen, and the faults may not have bitten "
                           f"({stats.message}); instead: {instead}")
        else:
            unexpected = True
            bit = f"the faults bit ({stats.message})" if stats is not None else "no stats were taken"
            reasons.append(f"expected {kind.value} ({kind.invariant}) did not happen although {bit}; "
                           f"instead: {instead}")
    outcome = Outcome.UNEXPECTED if unexpected else Outcome.INCONCLUSIVE if inconclusive else Outcome.MET
    return PipelineVerdict(pipeline, merge(r.validity for r in results), outcome, results, tuple(reasons),
                           tuple(attributions), tuple(tallies))


def exit_code(verdicts: tuple[PipelineVerdict, ...]) -> int:
    outcomes = {v.outcome for v in verdicts}
    if Outcome.UNEXPECTED in outcomes:
        return 1
    if Outcome.INCONCLUSIVE in outcomes or not verdicts:
        return 2
    return 0
