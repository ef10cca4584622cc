"""The Fault role: one injected failure with an ``inject`` and a ``heal``, one state change each.

Heals always run (in a finally), and the runner's heal-all runs before drain anyway.
A fault that could not be injected makes the verdict unknown, never pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from harness.history.ops import Scalar

__all__ = ["Evidence", "Fault", "Touching"]


class Fault(Protocol):
    # Read-only, so frozen dataclasses satisfy it.
    @property
    def name(self) -> str: ...  # "outage"

    @property
    def target(self) -> str: ...  # "relay->kafka", "consumer.payment"

    def inject(self) -> None: ...

    def heal(self) -> None: ...


@runtime_checkable
class Touching(Protocol):
    """A message fault that knows what it touched: the entity ids (record keys) and event ids of
    the records it duplicated, held back or rewrote. Recorded with its effect, so attribution
    can tell an anomaly of a touched entity (explained) from one of an untouched entity (not)."""

    def touched(self) -> frozenset[str]: ...


@runtime_checkable
class Evidence(Protocol):
    """A fault that can say what it saw besides its effect count (a scale fault: the most members its
    consumer group had). Recorded in its ``effect`` op as ``e.<name>`` values, for a reader and a test."""

    def evidence(self) -> Mapping[str, Scalar]: ...
