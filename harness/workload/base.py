"""The Workload role: business traffic at a rate shape, recorded as client ops; it never asserts.

A domain pack says what one customer does (``Domain.workload``); the harness only drives it:
``run`` until the plan is done or ``stop`` is set, on the clock origin ``t0`` that the fault
schedule shares. The reference order domain's workload is ``harness.workload.orders``
(place, pay, ship or cancel over HTTP); another domain brings its own object with these
three members, recording each request as invoke then ok / fail / info with its step as
``f`` and the entity id as ``key``, the vocabulary its ``Requirement`` rows use.
"""

from __future__ import annotations

import threading
from typing import Protocol

__all__ = ["Workload"]


class Workload(Protocol):
    concurrency: int  # clients it can have in flight at once (recorded: an open-loop workload needs enough)
    max_start_late_s: float  # how far behind its plan the latest request started (recorded after the run)

    def run(self, stop: threading.Event, t0: float) -> None:
        """Send the planned traffic, arrivals measured from ``t0``, until done or ``stop`` is set."""
