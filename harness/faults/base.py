"""The Fault role: one injected failure with an ``inject`` and a ``heal``, one state change each.

Heals always run (in a finally), and the runner's heal-all runs before drain anyway.
A fault that could not be injected makes the verdict unknown, never pass.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Fault"]


class Fault(Protocol):
    name: str  # "outage"
    target: str  # "relay->kafka", "consumer.payment"

    def inject(self) -> None: ...

    def heal(self) -> None: ...
