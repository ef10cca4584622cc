"""What every checker needs before it can decide: the observations it reads, and the consumers that run.

A checker whose source was never observed (the run ended before drain, or the target
does not report it) cannot decide and says so: unknown, naming the missing source.
A source that was observed and is empty is evidence ("nothing there"), not absence.
"""

from __future__ import annotations

from harness.checkers.base import CheckResult, Validity
from harness.history.ops import History

__all__ = ["missing", "pick", "running_consumers"]


def missing(history: History, name: str, invariant: str | None, *sources: str) -> CheckResult | None:
    """An unknown result naming the sources this checker needs and the history lacks; None if all are there."""
    absent = [s for s in sources if s not in history.observations]
    if not absent:
        return None
    return CheckResult(name, invariant, Validity.UNKNOWN,
                       f"cannot decide: the history has no {', '.join(absent)} observation "
                       "(the run ended before drain, or the target does not report it)",
                       {"missing_sources": ",".join(absent)})


def running_consumers(history: History) -> list[str]:
    """The consumers the target runs, in a stable order."""
    return sorted({str(r["consumer"]) for r in history.observed("consumers")})


def pick(*kinds: list[dict[str, object]], limit: int) -> list[dict[str, object]]:
    """Up to ``limit`` examples, round-robin across anomaly kinds so every kind is shown."""
    out: list[dict[str, object]] = []
    i = 0
    while len(out) < limit and any(i < len(k) for k in kinds):
        out.extend(k[i] for k in kinds if i < len(k))
        i += 1
    return out[:limit]
