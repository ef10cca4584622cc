"""Process faults on any named process: kill -9 then restart, SIGSTOP then SIGCONT, clean restart, crash.

Processes are found by name in a ``ProcessHost``: the infra (``kafka``, ``postgres``,
and ``connect`` when the infra runs a Connect worker) or the target (``app``,
``relay``, ``consumer.payment`` ...). A host owns the spec of each of its processes,
so it is the one that can start a process again and wait until it is ready: the
fault only says *when*. A process a later branch adds to either host is targetable
by name without touching this module.

  kill     inject: SIGKILL the process group (a crash, no shutdown hooks); heal: restart
  pause    inject: SIGSTOP the group (a GC pause, a hung VM); heal: SIGCONT
  restart  inject: SIGTERM and wait (a clean shutdown, a deploy); heal: start again
  crash    inject: arm a named crash point; the process kills itself at the point's n-th
           passage (see harness.faults.crashpoints); the window ends when it died;
           heal: disarm and restart
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from harness.errors import ChaosError, UsageError
from harness.faults.crashpoints import CrashPoints
from harness.infra.process import ManagedProcess

__all__ = ["CrashFault", "InfraHost", "ProcessHost", "ProcessKill", "ProcessPause", "ProcessRestart", "find_host"]


class ProcessHost(Protocol):
    """Something that owns named processes and can bring one back (Infra, a Target)."""

    def processes(self) -> Mapping[str, ManagedProcess]: ...

    def restart(self, name: str) -> None:
        """Start ``name`` again (stopping what is left of it first) and wait until it is ready."""

    def stop_process(self, name: str) -> None:
        """Stop ``name`` cleanly, the way its owner declares (signal and grace), without starting it."""


@dataclass(frozen=True, slots=True)
class InfraHost:
    """The infra as a ProcessHost (``Infra.processes`` is a plain dict, kept as it is)."""

    infra: object

    def processes(self) -> Mapping[str, ManagedProcess]:
        return dict(self.infra.processes)  # type: ignore[attr-defined]

    def restart(self, name: str) -> None:
        self.infra.restart(name)  # type: ignore[attr-defined]

    def stop_process(self, name: str) -> None:
        self.infra.processes[name].stop(grace_s=15.0)  # type: ignore[attr-defined]


def find_host(name: str, *hosts: ProcessHost) -> ProcessHost:
    for host in hosts:
        if name in host.processes():
            return host
    valid = sorted({n for h in hosts for n in h.processes()})
    raise UsageError(f"no process named {name!r} in this run; valid processes: {', '.join(valid)}")


def _process(host: ProcessHost, name: str) -> ManagedProcess:
    proc = host.processes().get(name)
    if proc is None:
        raise ChaosError(f"process {name} is gone from its host")
    return proc


def _running(host: ProcessHost, name: str, could_not: str) -> ManagedProcess:
    """The process, which must be alive for a fault to act on it (``could_not``: "be killed", ...)."""
    proc = _process(host, name)
    if not proc.alive():
        raise ChaosError(f"{name} was not running, so it could not {could_not}")
    return proc


@dataclass(frozen=True, slots=True)
class ProcessKill:
    process: str
    host: ProcessHost
    name: str = "kill"

    @property
    def target(self) -> str:
        return self.process

    def inject(self) -> None:
        _running(self.host, self.process, "be killed").kill()

    def heal(self) -> None:
        self.host.restart(self.process)


@dataclass(frozen=True, slots=True)
class ProcessPause:
    process: str
    host: ProcessHost
    name: str = "pause"

    @property
    def target(self) -> str:
        return self.process

    def inject(self) -> None:
        _running(self.host, self.process, "be paused").pause()

    def heal(self) -> None:
        _process(self.host, self.process).resume()


@dataclass(frozen=True, slots=True)
class ProcessRestart:
    process: str
    host: ProcessHost
    name: str = "restart"

    @property
    def target(self) -> str:
        return self.process

    def inject(self) -> None:
        _running(self.host, self.process, "be stopped")
        self.host.stop_process(self.process)  # the owner's clean stop: the spec's signal and grace

    def heal(self) -> None:
        self.host.restart(self.process)


@dataclass(frozen=True, slots=True)
class CrashFault:
    """Arm crash point ``point`` in ``process`` for its ``passage``-th passage; restart at heal."""

    process: str
    host: ProcessHost
    points: CrashPoints
    point: str
    passage: int
    event_type: str | None = None  # count only passages about this event type
    name: str = "crash"
    _arm: list[str] = field(default_factory=list)  # the arm id of this window (evidence outlives the disarm)

    @property
    def target(self) -> str:
        return self.process

    def inject(self) -> None:
        if not _process(self.host, self.process).alive():
            raise ChaosError(f"{self.process} was not running, so its crash point could not be armed")
        self._arm.append(self.points.arm(self.process, self.point, self.passage, self.event_type))

    def done(self) -> bool:
        """The window may end early: the process died at the point."""
        return not _process(self.host, self.process).alive()

    def effect(self) -> int:
        """1 if the process reported dying at the armed point, else 0 (the point was never reached)."""
        return 1 if self._arm and self.points.fired_for(self.process, self._arm[-1]) is not None else 0

    def heal(self) -> None:
        self.points.disarm(self.process)
        proc = _process(self.host, self.process)
        if not proc.alive():
            self.host.restart(self.process)
