"""Fault specifications and schedules: when which fault starts and stops.

A ``FaultSpec`` is validated where the scenario is built, so a bad parameter fails
before any infrastructure starts. A schedule is a pure function of the seed: the same
seed gives the same windows, byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from harness.errors import UsageError
from harness.infra.topology import CLIENTS

__all__ = ["FaultKind", "FaultSpec", "PlannedFault", "plan"]

_ROLE_CLIENTS = ("publisher",)  # resolved per pipeline: app for direct, relay for outbox
_SERVICES = ("kafka", "postgres")


class FaultKind(Enum):
    OUTAGE = "outage"  # a link is down (its proxy disabled)
    CRASH = "crash"  # a process is SIGKILLed, then restarted at heal; ``link`` names the process
    POISON = "poison"  # malformed records appear on the event topic (``link``: publisher->kafka)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault on ``link`` starting at ``at`` (fraction of the workload's duration) for ``for_s`` seconds.

    ``jitter`` (a fraction of the duration) shifts the start by a seeded amount.
    """

    kind: FaultKind
    link: str
    at: float
    for_s: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FaultKind):
            raise UsageError(f"FaultSpec.kind must be a FaultKind, got {self.kind!r}; valid: "
                             f"{', '.join(k.value for k in FaultKind)}")
        client, sep, service = self.link.partition("->")
        if self.kind is FaultKind.CRASH:
            if sep or client not in (*CLIENTS, *_ROLE_CLIENTS):
                raise UsageError(f"FaultSpec.link {self.link!r} of a crash must name a process, one of "
                                 f"{', '.join((*_ROLE_CLIENTS, *CLIENTS))}")
        elif not sep or service not in _SERVICES or client not in (*CLIENTS, *_ROLE_CLIENTS):
            raise UsageError(
                f"FaultSpec.link {self.link!r} is not a link; write CLIENT->SERVICE with CLIENT one of "
                f"{', '.join((*_ROLE_CLIENTS, *CLIENTS))} and SERVICE one of {', '.join(_SERVICES)}"
            )
        if not 0.0 <= self.at < 1.0:
            raise UsageError(f"FaultSpec.at={self.at} must be a fraction of the run in [0, 1)")
        if self.for_s <= 0:
            raise UsageError(f"FaultSpec.for_s={self.for_s} must be a positive number of seconds")
        if not 0.0 <= self.jitter < 0.5:
            raise UsageError(f"FaultSpec.jitter={self.jitter} must be in [0, 0.5)")


@dataclass(frozen=True, slots=True)
class PlannedFault:
    id: int
    kind: FaultKind
    link: str
    start_s: float
    end_s: float


def plan(specs: tuple[FaultSpec, ...], duration_s: float, seed: int) -> tuple[PlannedFault, ...]:
    """The concrete windows for one run: a pure function of the specs, the duration and the seed."""
    rng = random.Random(seed)
    out = []
    for i, spec in enumerate(specs):
        shift = rng.uniform(-spec.jitter, spec.jitter) * duration_s if spec.jitter else 0.0
        start = round(max(0.0, spec.at * duration_s + shift), 3)
        out.append(PlannedFault(i, spec.kind, spec.link, start, round(start + spec.for_s, 3)))
    return tuple(sorted(out, key=lambda p: (p.start_s, p.id)))
