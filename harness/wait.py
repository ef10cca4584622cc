"""Waiting for a condition with a deadline, the only sanctioned way to wait.

A wait polls an observation function; the observation is kept so that a timeout
can say what it last saw, plus any evidence (a log tail) the caller supplies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import WaitTimeout

__all__ = ["wait_for"]

T = TypeVar("T")

# One module-level event that is never set: Event.wait is an interruptible pause
# between two observations of a condition, not a guess at how long something takes.
_NEVER = threading.Event()


def wait_for(
    observe: Callable[[], tuple[bool, T]],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
    evidence: Callable[[], str] | None = None,
    fatal: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``observe`` until it reports done; return its last value.

    ``observe`` returns ``(done, observation)``. Exceptions it raises count as a
    not-yet observation (a service that refuses connections is simply not ready),
    except those in ``fatal``, which end the wait at once (a process that died will
    not become ready by waiting).
    On timeout, raises WaitTimeout naming ``what``, the last observation, and the
    caller's evidence.
    """
    deadline = time.monotonic() + timeout_s
    last: object = "nothing observed yet"
    while True:
        try:
            done, value = observe()
            last = value
            if done:
                return value
        except fatal:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed probe is an observation, kept as evidence
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise WaitTimeout(what, timeout_s, str(last)[:500], evidence() if evidence else "")
        _NEVER.wait(interval_s)
