"""A scenario is data: which pipelines, what traffic, which faults, what is expected.

Built in one readable place (a module under ``scenarios/`` exposing ``SCENARIO``) and
validated when constructed, so misuse fails before any infrastructure starts.
Expectations are explicit: a known-bad reference pipeline (direct publish under a
broker outage) is *expected* to break I1; that is the demonstration.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field, replace

from harness.checkers.base import Validity
from harness.errors import UsageError
from harness.faults.schedule import FaultSpec
from harness.workload.rate import Constant, RampHold, RateShape

__all__ = ["INVARIANTS", "Expect", "Scenario", "load_scenario", "scenario_names"]

INVARIANTS = {
    "I1": "no-lost-effect",
    "I2": "exactly-once-effect",
    "I3": "per-entity-order",
    "I4": "no-phantom",
    "I5": "dlq-accounted",
    "I6": "trace-complete",
    "I7": "bounded-recovery",
    "I8": "schema-contract",
}
PIPELINES = ("direct", "outbox", "cdc", "cdc_outbox")


@dataclass(frozen=True, slots=True)
class Expect:
    """Pipeline ``pipeline`` is expected to end ``validity`` on ``invariant``, because ``why``."""

    pipeline: str
    invariant: str
    validity: Validity
    why: str

    def __post_init__(self) -> None:
        if self.invariant not in INVARIANTS:
            raise UsageError(f"Expect.invariant {self.invariant!r} unknown; valid: {', '.join(INVARIANTS)}")
        if self.pipeline not in PIPELINES:
            raise UsageError(f"Expect.pipeline {self.pipeline!r} unknown; valid: {', '.join(PIPELINES)}")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    pipelines: tuple[str, ...]
    shape: RateShape
    duration_s: float
    faults: tuple[FaultSpec, ...]
    expect: tuple[Expect, ...] = ()
    drain_timeout_s: float = 60.0
    tags: tuple[str, ...] = field(default=())
    recovery_budget_s: float | None = None  # I7: seconds from the last heal until lag and backlog are zero
    # A deliberately broken variant of the reference targets (targets/variants.py), e.g.
    # "no_idempotency"; "correct" runs the pipelines as they should be.
    variant: str = "correct"

    def __post_init__(self) -> None:
        from targets.variants import Variant  # the reference targets define which mistakes exist

        variant = Variant.parse(self.variant)
        wrong = [p for p in self.pipelines if not variant.applies_to(p)]
        if wrong:
            raise UsageError(f"Scenario.variant {self.variant!r} does not apply to pipeline(s) {', '.join(wrong)}")
        if not self.name.replace("_", "").isalnum():
            raise UsageError(f"Scenario.name {self.name!r} must be letters, digits and underscores")
        unknown = [p for p in self.pipelines if p not in PIPELINES]
        if not self.pipelines or unknown:
            raise UsageError(f"Scenario.pipelines {self.pipelines!r} must name some of: {', '.join(PIPELINES)}")
        if self.duration_s <= 0:
            raise UsageError(f"Scenario.duration_s={self.duration_s} must be positive")
        for spec in self.faults:
            if spec.at * self.duration_s + spec.for_s > self.duration_s * 1.5:
                raise UsageError(
                    f"fault {spec.kind.value}@{spec.link} runs far past the end of the workload "
                    f"({spec.at * self.duration_s + spec.for_s:.0f}s of {self.duration_s:.0f}s): shorten for_s or start earlier"
                )
        if self.drain_timeout_s <= 0:
            raise UsageError(f"Scenario.drain_timeout_s={self.drain_timeout_s} must be positive")
        if self.recovery_budget_s is not None and self.recovery_budget_s <= 0:
            raise UsageError(f"Scenario.recovery_budget_s={self.recovery_budget_s} must be positive, or None to "
                             "measure recovery without a bound")

    def expected(self, pipeline: str, invariant: str) -> Validity:
        for e in self.expect:
            if e.pipeline == pipeline and e.invariant == invariant:
                return e.validity
        return Validity.VALID

    def with_overrides(self, *, duration_s: float | None = None, rate: float | None = None,
                       pipelines: tuple[str, ...] | None = None) -> Scenario:
        """The same scenario with a different duration, peak rate or set of pipelines."""
        shape = self.shape
        if rate is not None:
            if rate <= 0:
                raise UsageError(f"--rate {rate} must be positive (orders per second)")
            if isinstance(shape, RampHold):
                shape = RampHold(start=max(1.0, rate * shape.start / shape.peak), peak=rate, ramp_s=shape.ramp_s)
            else:
                shape = Constant(rate)
        if duration_s is not None and duration_s <= 0:
            raise UsageError(f"--duration {duration_s} must be positive (seconds)")
        if isinstance(shape, RampHold) and duration_s is not None:
            shape = replace(shape, ramp_s=min(shape.ramp_s, duration_s / 3))
        return replace(self, shape=shape, duration_s=duration_s or self.duration_s,
                       pipelines=pipelines or self.pipelines)


def scenario_names() -> list[str]:
    import scenarios

    return sorted(
        m.name for m in pkgutil.iter_modules(scenarios.__path__)
        if not m.name.startswith(("test_", "_")) and hasattr(importlib.import_module(f"scenarios.{m.name}"), "SCENARIO")
    )


def load_scenario(name: str) -> Scenario:
    valid = scenario_names()
    if name not in valid:
        raise UsageError(f"unknown scenario {name!r}; valid scenarios: {', '.join(valid)}")
    scenario = importlib.import_module(f"scenarios.{name}").SCENARIO
    if not isinstance(scenario, Scenario):
        raise UsageError(f"scenarios/{name}.py defines SCENARIO but it is a {type(scenario).__name__}, not a Scenario")
    return scenario
