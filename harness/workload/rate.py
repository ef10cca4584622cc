"""Rate shapes: how many operations per second the workload aims for at time t.

A shape is data (a frozen dataclass) with ``rate_at(t)``; the dispatcher starts the
n-th operation when the integral of the rate first reaches n (open loop: a slow
system does not slow the arrivals, as on Black Friday).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from harness.errors import UsageError

__all__ = ["Constant", "RampHold", "RateShape", "arrival_times"]


class RateShape(Protocol):
    def rate_at(self, t: float) -> float: ...


@dataclass(frozen=True, slots=True)
class Constant:
    rate: float

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise UsageError(f"rate must be positive, got {self.rate}; pass e.g. --rate 30")

    def rate_at(self, t: float) -> float:
        return self.rate


@dataclass(frozen=True, slots=True)
class RampHold:
    """Ramp linearly from ``start`` to ``peak`` over ``ramp_s`` seconds, then hold the peak."""

    start: float
    peak: float
    ramp_s: float

    def __post_init__(self) -> None:
        if self.start <= 0 or self.peak <= 0:
            raise UsageError(f"rates must be positive, got start={self.start} peak={self.peak}")
        if self.ramp_s < 0:
            raise UsageError(f"ramp_s must be >= 0, got {self.ramp_s}")

    def rate_at(self, t: float) -> float:
        if t >= self.ramp_s or self.ramp_s == 0:
            return self.peak
        return self.start + (self.peak - self.start) * t / self.ramp_s


def arrival_times(shape: RateShape, duration_s: float, step_s: float = 0.01) -> list[float]:
    """When each operation starts: a pure function of the shape and the duration."""
    times: list[float] = []
    total = 0.0
    t = 0.0
    while t < duration_s:
        total += shape.rate_at(t) * step_s
        while total >= len(times) + 1:
            times.append(round(t, 4))
        t += step_s
    return times
