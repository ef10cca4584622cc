"""A scenario is data: which pipelines, what traffic, which faults, what is expected.

Built in one readable place (a module under ``scenarios/`` exposing ``SCENARIO``) and
validated when constructed, so misuse fails before any infrastructure starts.
Expectations are explicit: a known-bad reference pipeline (direct publish under a
broker outage) is *expected* to lose effects (``AnomalyKind.LOST_EFFECT``), each loss
explained by the outage; that is the demonstration (harness/expect.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import sys
from pathlib import Path
from dataclasses import dataclass, field, replace

from harness.errors import UsageError
from harness.expect import Cause, Expect
from harness.faults.schedule import FaultSpec, overlapping
from harness.lag_alerts import LagThreshold
from harness.story import StoryTeller
from harness.workload.rate import Constant, RampHold, RateShape

__all__ = ["INVARIANTS", "Cause", "Expect", "Leg", "Scenario", "load_scenario", "scenario_names"]

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
_TARGET_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Leg:
    """What a scenario expects when run with another variant: ``Leg("correct", ())`` says the fix of
    the scenario's mistake must show no anomaly at all."""

    variant: str
    expect: tuple[Expect, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.variant, str) or not _TARGET_NAME.match(self.variant):
            raise UsageError(f"Leg.variant {self.variant!r} must be a variant name such as correct or no_idempotency")
        if not isinstance(self.expect, tuple) or any(not isinstance(e, Expect) for e in self.expect):
            raise UsageError(f"Leg.expect must be a tuple of Expect(...) records, got {self.expect!r}")


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
    # A deliberate mistake the targets declare they can make (their spec's ``variants``), e.g.
    # "no_idempotency"; "correct" runs the pipelines as they should be. Checked against each
    # target when the run starts (harness.capabilities), before any infrastructure.
    variant: str = "correct"
    # What the scenario needs of a target beyond what its faults name: "process:relay",
    # "link:relay->kafka", "connect", "backlog", "schema-registry" (harness.capabilities).
    needs: tuple[str, ...] = ()
    # Consumer-lag alert thresholds (records not yet committed) per group, "*" for the rest:
    # alerts are measurements in results.json and the report, never a verdict (harness.lag_alerts).
    lag_thresholds: tuple[LagThreshold, ...] = ()
    # A case study's numbers, told the article's way at the end of the run (harness.story).
    story: StoryTeller | None = field(default=None, compare=False)
    # What to expect when run with another variant (`chaos run NAME --variant V`), e.g.
    # (Leg("correct"),) for a mistake whose fix must show no anomaly (``with_variant``).
    legs: tuple[Leg, ...] = ()

    def __post_init__(self) -> None:
        if any(not isinstance(t, LagThreshold) for t in self.lag_thresholds):
            raise UsageError(f"Scenario.lag_thresholds must hold LagThreshold(group, max_lag) records, "
                             f"got {self.lag_thresholds!r}")
        if not isinstance(self.legs, tuple) or any(not isinstance(leg, Leg) for leg in self.legs):
            raise UsageError(f"Scenario.legs must be a tuple of Leg(variant, (Expect(...), ...)) records, got {self.legs!r}")
        if len({leg.variant for leg in self.legs}) != len(self.legs):
            raise UsageError(f"Scenario.legs names a variant twice: {[leg.variant for leg in self.legs]}")
        if self.story is not None and not callable(self.story):
            raise UsageError(f"Scenario.story must be a function (histories, verdicts) -> Story, got {self.story!r}")
        if not isinstance(self.variant, str) or not _TARGET_NAME.match(self.variant):
            raise UsageError(f"Scenario.variant {self.variant!r} must be a variant name such as no_idempotency")
        if not self.name.replace("_", "").isalnum():
            raise UsageError(f"Scenario.name {self.name!r} must be letters, digits and underscores")
        bad = [p for p in self.pipelines if not isinstance(p, str) or not _TARGET_NAME.match(p)]
        if not self.pipelines or bad:
            raise UsageError(f"Scenario.pipelines {self.pipelines!r} must name one or more targets, e.g. (\"outbox\",)")
        if len(set(self.pipelines)) != len(self.pipelines):
            raise UsageError(f"Scenario.pipelines {self.pipelines!r} names a target twice")
        if self.duration_s <= 0:
            raise UsageError(f"Scenario.duration_s={self.duration_s} must be positive")
        for spec in self.faults:
            if spec.at * self.duration_s + spec.for_s > self.duration_s * 1.5:
                raise UsageError(
                    f"fault {spec.kind.value}@{spec.link} runs far past the end of the workload "
                    f"({spec.at * self.duration_s + spec.for_s:.0f}s of {self.duration_s:.0f}s): shorten for_s or start earlier"
                )
        clash = overlapping(self.faults, self.duration_s)
        if clash is not None:
            a, b = clash
            raise UsageError(
                f"two {a.kind.value} windows on {a.target} overlap ({self._span(a)} and {self._span(b)} of "
                f"{self.duration_s:g} s): "
                "the first one's heal would end the other early; make them one window from the first start to the "
                "last end, or move one so they do not overlap")
        if self.drain_timeout_s <= 0:
            raise UsageError(f"Scenario.drain_timeout_s={self.drain_timeout_s} must be positive")
        if any(not isinstance(e, Expect) for e in self.expect):
            raise UsageError(f"Scenario.expect must hold Expect(...) records, got {self.expect!r}")
        if self.recovery_budget_s is not None and self.recovery_budget_s <= 0:
            raise UsageError(f"Scenario.recovery_budget_s={self.recovery_budget_s} must be positive, or None to "
                             "measure recovery without a bound")

    def _span(self, spec: FaultSpec) -> str:
        start = spec.at * self.duration_s
        jitter = f" +/- {spec.jitter * self.duration_s:g} s of jitter" if spec.jitter else ""
        return f"{start:g}-{start + spec.for_s:g} s{jitter}"

    def with_variant(self, variant: str) -> Scenario:
        """The same scenario with another variant, expecting what its ``legs`` say for that variant
        (the scenario's own expectations when it names none)."""
        if variant == self.variant:
            return self
        leg = next((leg for leg in self.legs if leg.variant == variant), None)
        return replace(self, variant=variant, expect=self.expect if leg is None else leg.expect)

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
        if pipelines is not None and len(set(pipelines)) != len(pipelines):
            raise UsageError(f"--pipelines/--target names a target twice: {', '.join(pipelines)}")
        return replace(self, shape=shape, duration_s=duration_s or self.duration_s,
                       pipelines=pipelines or self.pipelines)


def scenario_names() -> list[str]:
    import scenarios

    return sorted(
        m.name for m in pkgutil.iter_modules(scenarios.__path__)
        # conftest: the scenario tests' shared runs (pytest's), not a scenario.
        if not m.name.startswith(("test_", "_")) and m.name != "conftest" and hasattr(importlib.import_module(f"scenarios.{m.name}"), "SCENARIO")
    )


def load_scenario(name: str) -> Scenario:
    """A named scenario (``scenarios/NAME.py``) or a path to a module that defines ``SCENARIO``."""
    if name.endswith(".py") or "/" in name:
        return _load_path(Path(name))
    valid = scenario_names()
    if name not in valid:
        raise UsageError(f"unknown scenario {name!r}; valid scenarios: {', '.join(valid)}")
    scenario = importlib.import_module(f"scenarios.{name}").SCENARIO
    if not isinstance(scenario, Scenario):
        raise UsageError(f"scenarios/{name}.py defines SCENARIO but it is a {type(scenario).__name__}, not a Scenario")
    return scenario


def _load_path(path: Path) -> Scenario:
    if not path.is_file():
        raise UsageError(f"scenario file {path} does not exist; give a scenario name (`chaos scenarios`) or a .py path")
    module_name = f"chaos_scenario_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's file: name it and what went wrong
        raise UsageError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    scenario = getattr(module, "SCENARIO", None)
    if not isinstance(scenario, Scenario):
        raise UsageError(f"{path} must define SCENARIO = Scenario(...) (found {type(scenario).__name__})")
    return scenario
