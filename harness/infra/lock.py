"""One run at a time per base port: an flock beside the infra's state folder.

Two runs on one infra share its proxies and processes: the second run's heal-all ends the
first run's outage early, and the first reports a pass it did not earn. So whoever runs
scenarios on a base port (`chaos run`, a pytest session using ``chaos_infra``) holds an
exclusive flock on ``<CHAOS_HOME>/infra/<base port>.lock`` for as long as it runs them, and
``Infra.start`` holds it while it starts the processes. `chaos infra up` therefore lets go
when it returns, and a later `chaos run` attaches and takes the lock for itself.

The file sits beside the state folder, not in it: ``Infra.start`` wipes that folder, and an
flock on a deleted file locks nothing. The holder writes its pid and command into the file
so that the run turned away can say whom it waits for. The kernel drops an flock when its
holder dies, however it dies (even -9): there is never a stale lock to clean up.

Holding is re-entrant within a process (``chaos run`` holds it, and ``Infra.start`` inside
that run takes it again). A holder may lend its lock to the processes it starts
(``lend_to_children``, through the environment): the pytest session does, so a test can
drive `chaos run` as a child on the session's infra while the session itself waits.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shlex
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.config import Settings
from harness.errors import BasePortLocked
from harness.infra import pids

__all__ = ["LEND_ENV", "Holder", "acquire_base_port", "hold_base_port", "holder_of", "lock_path", "release_base_port"]

LEND_ENV = "CHAOS_BASE_PORT_LENT"
"""``<base port>:<token>[,...]`` in a child's environment: it runs under its parent's lock of those base ports."""


def _lent() -> list[str]:
    return [e for e in os.environ.get(LEND_ENV, "").split(",") if e]


def _lend(entry: str, on: bool) -> None:
    # A list, so lending one base port (a test's) never takes back the lending of another (the session's).
    entries = [e for e in _lent() if e != entry] + ([entry] if on else [])
    if entries:
        os.environ[LEND_ENV] = ",".join(entries)
    else:
        os.environ.pop(LEND_ENV, None)


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    command: str
    since: float  # epoch seconds
    token: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command}), since {time.strftime('%H:%M:%S', time.localtime(self.since))}"


@dataclass(slots=True)
class _Held:
    fd: int | None  # None: lent by the parent, nothing to unlock here
    count: int
    holder: Holder
    lent: bool


_guard = threading.Lock()
_held: dict[Path, _Held] = {}


def lock_path(settings: Settings) -> Path:
    return settings.state_dir.parent / f"{settings.base_port}.lock"


def _this_command() -> str:
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    # `python -m pytest` reports .../pytest/__main__.py: the package says more than the file.
    name = argv0.parent.name if argv0.name == "__main__.py" else argv0.name
    return shlex.join([name, *sys.argv[1:]])[:200]


def _read(fd: int) -> Holder | None:
    try:
        raw = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return Holder(int(raw["pid"]), str(raw["command"]), float(raw["since"]), str(raw["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # written by no one yet (its holder is between flock and write) or damaged


def holder_of(settings: Settings) -> Holder | None:
    """Who holds the lock of this base port now (None when it is free)."""
    path = lock_path(settings)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _refusal(settings: Settings, path: Path, other: Holder | None) -> BasePortLocked:
    from harness.infra.ports import suggest_base_port

    who = other.describe() if other else f"a process that has not yet written its name into {path}"
    return BasePortLocked(
        f"base port {settings.base_port} is in use by another run: {who}; wait for it to finish, "
        f"or give this one its own ports, e.g. CHAOS_BASE_PORT={suggest_base_port(settings.base_port)}"
    )


def acquire_base_port(settings: Settings, *, command: str | None = None, lend_to_children: bool = False) -> Holder:
    """Take the lock of ``settings.base_port`` now or raise BasePortLocked; pair with ``release_base_port``."""
    path = lock_path(settings)
    with _guard:
        held = _held.get(path)
        if held is not None:
            held.count += 1
            return held.holder
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC: the processes this one starts must not inherit the lock and keep it after we end.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read(fd)
            os.close(fd)
            if other is not None and f"{settings.base_port}:{other.token}" in _lent():
                _held[path] = _Held(None, 1, other, lent=False)
                pids.holding(settings.pids_dir, True)
                return other
            raise _refusal(settings, path, other) from None
        except BaseException:
            os.close(fd)
            raise
        holder = Holder(os.getpid(), command or _this_command(), time.time(), secrets.token_hex(8))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": holder.pid, "command": holder.command, "since": holder.since,
                                  "token": holder.token}).encode("utf-8"), 0)
        _held[path] = _Held(fd, 1, holder, lent=lend_to_children)
        # What this process starts while it holds the port is that port's: its pid records go there.
        pids.holding(settings.pids_dir, True)
        if lend_to_children:
            _lend(f"{settings.base_port}:{holder.token}", True)
        return holder


def release_base_port(settings: Settings) -> None:
    path = lock_path(settings)
    with _guard:
        held = _held.get(path)
        if held is None:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _held[path]
        pids.holding(settings.pids_dir, False)
        if held.lent:
            _lend(f"{settings.base_port}:{held.holder.token}", False)
        if held.fd is not None:
            os.ftruncate(held.fd, 0)  # the next one turned away must not name a holder that has gone
            os.close(held.fd)  # closing the last descriptor drops the flock


@contextmanager
def hold_base_port(settings: Settings, *, command: str | None = None,
                   lend_to_children: bool = False) -> Iterator[Holder]:
    """Hold the lock of ``settings.base_port`` for the block, or raise BasePortLocked at once.

    Never waits: a run that cannot have the port now should say so within a second, not queue.
    """
    holder = acquire_base_port(settings, command=command, lend_to_children=lend_to_children)
    try:
        yield holder
    finally:
        release_base_port(settings)
