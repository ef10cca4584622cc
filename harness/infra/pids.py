"""Pid records: every process the harness starts, written down so that `chaos infra down` finds leftovers.

PR_SET_PDEATHSIG stops most children when the harness dies, but not the ones meant to outlive
it (`chaos infra up`, Connect on an attached infra), and not a group's other members when only
its leader is killed -9 (Postgres backends, the JVM under a start script). So ManagedProcess
writes one record per process it starts into the pid folder of the base port this process
works on (``<state dir>/pids/<pid>.json``: pid, process group, name, argv, mark, start time)
and deletes it once it has stopped that process. A record that outlives its process's
stop names something nobody stopped.

Vocabulary:
  mark         a random token put in the environment of each started process (``CHAOS_PROC_MARK``)
               and inherited by everything it starts; it is how a record finds its process tree
               and how a reused pid is told apart from ours
  start ticks  field 22 of /proc/PID/stat, the process's start time: the fallback identity when
               another user's environ cannot be read
  leftover     a live process matching a record whose owner did not stop it
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import WaitTimeout
from harness.wait import wait_for

__all__ = ["MARK_ENV", "Leftovers", "PidRecord", "holding", "new_mark", "note_started", "note_stopped", "record_into",
           "records", "recording_folder", "running_started_here", "start_ticks", "started_here", "stop_leftovers"]

MARK_ENV = "CHAOS_PROC_MARK"


@dataclass(frozen=True, slots=True)
class PidRecord:
    pid: int
    pgid: int
    name: str
    argv: tuple[str, ...]
    mark: str
    start_ticks: int | None
    started_by: int  # the harness process that started it

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "pgid": self.pgid, "name": self.name, "argv": list(self.argv), "mark": self.mark,
                "start_ticks": self.start_ticks, "started_by": self.started_by}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PidRecord:  # raw: parsed JSON
        ticks = raw.get("start_ticks")
        return cls(int(raw["pid"]), int(raw["pgid"]), str(raw["name"]),
                   tuple(str(a) for a in raw["argv"]), str(raw["mark"]),
                   int(ticks) if isinstance(ticks, int) else None, int(raw["started_by"]))


# Process-wide on purpose: the processes are started deep inside targets and faults, which know
# nothing of base ports. The base port whose lock this process holds says where records go (a run
# works on that one, whatever other Infra handles it makes); without a lock, the last Infra handle.
_lock = threading.Lock()
_folder: Path | None = None
_held: list[Path] = []  # pid folders of the base ports whose lock this process holds, innermost last
_started: dict[int, tuple[str, int | None]] = {}  # pid -> (name, start ticks), all this process started


def record_into(folder: Path | None) -> None:
    """Write records into ``folder`` while no base port lock says otherwise (None: keep them in memory only)."""
    global _folder
    with _lock:
        _folder = folder


def holding(folder: Path, held: bool) -> None:
    """The lock of the base port whose pid folder is ``folder`` was taken (True) or let go (False)."""
    with _lock:
        if held:
            _held.append(folder)
        elif folder in _held:
            _held.reverse()
            _held.remove(folder)  # the innermost one
            _held.reverse()


def recording_folder() -> Path | None:
    with _lock:
        return _held[-1] if _held else _folder


def new_mark() -> str:
    return secrets.token_hex(8)


def start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22; the split starts at field 3
    except (OSError, IndexError, ValueError):
        return None


def note_started(record: PidRecord, folder: Path | None) -> None:
    with _lock:
        _started[record.pid] = (record.name, record.start_ticks)
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{record.pid}.json.tmp"
    tmp.write_text(json.dumps(record.to_json()), encoding="utf-8")
    tmp.replace(folder / f"{record.pid}.json")  # a reader never sees half a record


def note_stopped(folder: Path | None, pid: int, mark: str | None) -> None:
    """Forget the record of ``pid``; with a ``mark``, only if it is that process's record (pids are reused)."""
    if folder is None:
        return
    path = folder / f"{pid}.json"
    if mark is not None:
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("mark") != mark:
                return
        except (OSError, ValueError):
            return
    path.unlink(missing_ok=True)


def _alive(pid: int, ticks: int | None) -> bool:
    """Alive, not a zombie, and (when known) the very process that started at ``ticks``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return rest[0] != "Z" and (ticks is None or int(rest[19]) == ticks)


def started_here() -> int:
    """How many processes this process has started."""
    with _lock:
        return len(_started)


def running_started_here() -> list[tuple[str, int]]:
    """(name, pid) of every process this process started that is still running."""
    with _lock:
        started = dict(_started)
    return [(name, pid) for pid, (name, ticks) in sorted(started.items()) if _alive(pid, ticks)]


def records(folder: Path) -> list[PidRecord]:
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append(PidRecord.from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # a record cut short when its writer died: names nothing we can check
    return out


def _marked() -> tuple[dict[str, list[int]], set[int]]:
    """mark -> live pids carrying it; and the pids whose environ we may not read."""
    by_mark: dict[str, list[int]] = {}
    unreadable: set[int] = set()
    prefix = MARK_ENV.encode() + b"="
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        pid = int(proc.name)
        try:
            environ = (proc / "environ").read_bytes()
        except PermissionError:
            unreadable.add(pid)
            continue
        except OSError:
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(prefix) and _alive(pid, None):
                by_mark.setdefault(entry[len(prefix):].decode("ascii", "replace"), []).append(pid)
    return by_mark, unreadable


def _cmdline(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # gone already, or not ours: what is still alive afterwards is reported as not stopped


@dataclass(frozen=True, slots=True)
class Leftovers:
    """What ``stop_leftovers`` did: descriptions such as ``relay (pid 123)``."""

    stopped: tuple[str, ...]
    not_stopped: tuple[str, ...]


def stop_leftovers(folder: Path, grace_s: float = 5.0) -> Leftovers:
    """Stop every live process a record in ``folder`` names (SIGTERM, then SIGKILL), and clear the records.

    A process counts as the record's only if its environ carries the record's mark, or, when that
    environ is not readable, if its pid, start time and command line are the recorded ones. So a
    pid reused by an unrelated program is left alone. Call it only while holding the base port's
    lock: then no live run owns these records.
    """
    recs = records(folder)
    if not recs:
        return Leftovers((), ())
    by_mark, unreadable = _marked()
    targets: dict[int, str] = {}
    matched: list[tuple[PidRecord, list[int]]] = []
    for rec in recs:
        pids = list(by_mark.get(rec.mark, ()))
        if (not pids and rec.pid in unreadable and _alive(rec.pid, rec.start_ticks)
                and _cmdline(rec.pid) == rec.argv):
            pids = [rec.pid]
        matched.append((rec, pids))
        for pid in pids:
            targets[pid] = f"{rec.name} (pid {pid})" if pid == rec.pid else f"{rec.name} (pid {pid}, started under pid {rec.pid})"
    pids = sorted(targets)
    _signal(pids, signal.SIGCONT)  # a paused process cannot act on SIGTERM
    _signal(pids, signal.SIGTERM)

    def alive() -> list[int]:
        return [p for p in pids if _alive(p, None)]

    try:
        wait_for(lambda: (not alive(), f"still alive: {alive()}"), timeout_s=grace_s,
                 what="left-over processes to exit after SIGTERM", interval_s=0.05)
    except WaitTimeout:
        _signal(alive(), signal.SIGKILL)
        try:
            wait_for(lambda: (not alive(), f"still alive: {alive()}"), timeout_s=5.0,
                     what="left-over processes to exit after SIGKILL", interval_s=0.05)
        except WaitTimeout:
            pass  # reported below as not stopped
    left = set(alive())
    stopped = tuple(targets[p] for p in pids if p not in left)
    not_stopped = tuple(targets[p] for p in pids if p in left)
    for rec, rec_pids in matched:
        if not left.intersection(rec_pids):  # keep the record of anything that would not stop
            (folder / f"{rec.pid}.json").unlink(missing_ok=True)
    return Leftovers(stopped, not_stopped)
