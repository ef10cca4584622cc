"""Process faults: a crash (SIGKILL) of one process of the target, healed by restarting it.

The target knows how to kill and restart its own processes (Kafka Connect restarts
through the infra and must find its connector RUNNING again), so it hands the fault
both as callables; the fault only sequences them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProcessCrash"]


@dataclass(frozen=True, slots=True)
class ProcessCrash:
    """SIGKILL ``process`` (no shutdown hooks, no offset flush); heal = restart and await readiness."""

    process: str
    kill: Callable[[], None]
    restart: Callable[[], None]
    name: str = "crash"

    @property
    def target(self) -> str:
        return self.process

    def inject(self) -> None:
        self.kill()

    def heal(self) -> None:
        self.restart()
