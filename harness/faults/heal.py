"""Heal-all: put every proxy, toxic and process back, whatever the faults managed to do.

Runs after the last fault window, before drain, and on every way out of a run
(including Ctrl-C and SIGTERM). Each step is idempotent, so running it twice is safe:
  1. SIGCONT every process of the infra and the target (a paused process that is never
     resumed would look like a loss to the checkers);
  2. Toxiproxy /reset: every proxy enabled, every toxic removed;
  3. restart any infra process that is dead (a kill whose heal never ran), so a shared
     infra is never left harmed for the next run.
A dead *target* process is left as evidence: the drain will show what it cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from harness.infra.process import ManagedProcess
from harness.infra.stack import Infra

__all__ = ["heal_all"]


class _HasProcesses(Protocol):
    def processes(self) -> Mapping[str, ManagedProcess]: ...


def heal_all(infra: Infra, *hosts: _HasProcesses) -> None:
    for host in hosts:
        for proc in host.processes().values():
            proc.resume()
    infra.heal_all()
