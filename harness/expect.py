"""What a scenario expects of a pipeline: anomalies by kind, each explained by what was injected.

A known-bad pipeline under a fault is *expected* to show certain anomalies; that is the
demonstration. An expectation names kinds from the anomaly vocabulary
(harness/checkers/anomaly.py), not invariants: "I4 invalid" cannot tell the expected
committed-without-effect from a new defect that leaves a phantom event, and a pipeline
judged by kind can.

    Expect("direct", (AnomalyKind.LOST_EFFECT,), "direct publish drops what it cannot deliver")

  anomalies  kinds that must each appear at least once (the expected break); none may
             appear unexplained by the scenario's faults
  may        kinds allowed when explained, not required (a side effect that depends on
             timing: a swap that lands on paid/shipped dead-letters the shipment)
  by         FAULT: every expected anomaly must be explained by an injected fault
             (harness/attribution.py); VARIANT: the scenario's planted defect produces
             these kinds on its own (a keyless publisher scatters orders with no fault)

A pipeline without an Expect may show no anomaly at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from harness.checkers.anomaly import AnomalyKind, kinds_of, parse_kind
from harness.errors import UsageError

__all__ = ["Cause", "Expect", "expectations_from_json"]

_TARGET_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_INVARIANT = re.compile(r"^I[1-8]$")


class Cause(Enum):
    FAULT = "fault"
    VARIANT = "variant"


@dataclass(frozen=True, slots=True)
class Expect:
    """Pipeline ``pipeline`` is expected to show ``anomalies`` (and may show ``may``), because ``why``."""

    pipeline: str
    anomalies: tuple[AnomalyKind, ...]
    why: str
    may: tuple[AnomalyKind, ...] = field(default=())
    by: Cause = Cause.FAULT

    def __post_init__(self) -> None:
        if not isinstance(self.pipeline, str) or not _TARGET_NAME.match(self.pipeline):
            raise UsageError(f"Expect.pipeline {self.pipeline!r} must name a target, e.g. outbox")
        object.__setattr__(self, "anomalies", _kinds("anomalies", self.anomalies))
        object.__setattr__(self, "may", _kinds("may", self.may))
        if not self.anomalies and not self.may:
            raise UsageError(f"Expect for {self.pipeline!r} names no anomaly kind; a pipeline expected to show "
                             "nothing needs no Expect")
        if not isinstance(self.by, Cause):
            raise UsageError(f"Expect.by {self.by!r} must be Cause.FAULT or Cause.VARIANT")
        if not isinstance(self.why, str) or not self.why.strip():
            raise UsageError(f"Expect for {self.pipeline!r} must say why (the demonstration it makes)")

    @property
    def allowed(self) -> frozenset[AnomalyKind]:
        return frozenset(self.anomalies) | frozenset(self.may)

    @property
    def kinds(self) -> tuple[AnomalyKind, ...]:
        """Required kinds, then allowed ones, in the order written (for display)."""
        return self.anomalies + self.may

    def to_json(self) -> dict[str, object]:
        return {"pipeline": self.pipeline, "anomalies": [k.value for k in self.anomalies],
                "may": [k.value for k in self.may], "by": self.by.value, "why": self.why}


def _kinds(name: str, value: object) -> tuple[AnomalyKind, ...]:
    if isinstance(value, (str, AnomalyKind)):
        if isinstance(value, str) and _INVARIANT.match(value):
            kinds = ", ".join(k.value for k in kinds_of(value))
            raise UsageError(f"Expect.{name} names the invariant {value!r}; expectations name anomaly kinds now, "
                             f"e.g. Expect(pipeline, (AnomalyKind.LOST_EFFECT,), why). {value}'s kinds: {kinds}")
        value = (value,)
    if not isinstance(value, Iterable):
        raise UsageError(f"Expect.{name} must be a tuple of anomaly kinds, got {value!r}")
    out = tuple(parse_kind(v) for v in value)  # type: ignore[arg-type]
    if len(set(out)) != len(out):
        raise UsageError(f"Expect.{name} names a kind twice: {', '.join(k.value for k in out)}")
    return out


def expectations_from_json(raw: Sequence[Mapping[str, object]]) -> tuple[Expect, ...]:
    """The expectations of a stored run.json.

    Runs written before expectations named anomalies stored ``{"invariant": "I1", "validity":
    "invalid"}``: such a run is re-judged leniently, every kind of that invariant allowed and
    explained by its variant, since nothing finer was ever promised of it.
    """
    out: list[Expect] = []
    for e in raw:
        why = str(e.get("why") or "expected by the scenario")
        if "invariant" in e:
            if e.get("validity") == "invalid":
                out.append(Expect(str(e["pipeline"]), (), why, may=kinds_of(str(e["invariant"])), by=Cause.VARIANT))
            continue
        out.append(Expect(str(e["pipeline"]), tuple(e.get("anomalies") or ()), why,  # type: ignore[arg-type]
                          may=tuple(e.get("may") or ()), by=Cause(str(e.get("by") or "fault"))))  # type: ignore[arg-type]
    return tuple(out)
