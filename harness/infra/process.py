"""Real OS processes the harness owns: start, stop, kill -9, pause, resume, log tail.

Every process runs in its own session (process group), so a signal reaches the whole
tree it spawned, and a terminal's Ctrl-C does not reach it behind the harness's back:
the harness stops what it started, in a finally. Processes meant to die with the
harness also get PR_SET_PDEATHSIG, a safety net for when the harness itself is killed -9.
Every start is written down as a pid record (pids.py) and forgotten at stop, so that
`chaos infra down` can stop what neither of those reached.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import TargetError, WaitTimeout
from harness.infra import pids
from harness.wait import wait_for

__all__ = ["ManagedProcess", "ProcessSpec", "log_tail", "pid_alive"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_spawner_lock = threading.Lock()
_spawner_pool: list[object] = []


def _spawn_thread_run(fn: object) -> object:
    """Run ``fn`` on one long-lived spawner thread.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the
    process. A process restarted from a short-lived thread (a nemesis window healing a
    kill) would be SIGKILLed the moment that thread ends; forking from one thread that
    lives as long as the harness keeps the safety net without that trap.
    """
    from concurrent.futures import ThreadPoolExecutor

    with _spawner_lock:
        if not _spawner_pool:
            _spawner_pool.append(ThreadPoolExecutor(1, thread_name_prefix="spawner"))
        pool = _spawner_pool[0]
    return pool.submit(fn).result()  # type: ignore[attr-defined, operator]


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """What to run. ``user`` drops privileges (Postgres refuses to run as root)."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None
    die_with_parent: bool = True


class ManagedProcess:
    """A started process. Not a context manager on purpose: owners stop it in their finally."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self._popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self._mark: str | None = None  # the pid record's mark; None for an adopted process
        self._records: Path | None = None  # where its pid record went

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self) -> ManagedProcess:
        spec = self.spec
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._mark = pids.new_mark()
        env = {**os.environ, **spec.env, pids.MARK_ENV: self._mark}
        with spec.log_path.open("ab") as log:

            def popen() -> subprocess.Popen[bytes]:
                return subprocess.Popen(  # noqa: S603 - argv built by the harness
                    list(spec.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=spec.cwd,
                    start_new_session=True,
                    user=spec.user,
                    preexec_fn=_die_with_parent if spec.die_with_parent else None,  # noqa: PLW1509
                )

            try:
                if spec.die_with_parent and threading.current_thread() is not threading.main_thread():
                    self._popen = _spawn_thread_run(popen)  # type: ignore[assignment]
                else:
                    self._popen = popen()
            except OSError as exc:
                raise TargetError(f"could not start {spec.name} ({spec.argv[0]}): {exc}") from exc
        assert self._popen is not None  # set just above, or start() raised
        self.pid = self._popen.pid
        self._records = pids.recording_folder()
        # start_new_session makes the child its own group leader: its pgid is its pid.
        pids.note_started(pids.PidRecord(self.pid, self.pid, spec.name, tuple(spec.argv), self._mark,
                                         pids.start_ticks(self.pid), os.getpid()), self._records)
        return self

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return self.pid is not None and pid_alive(self.pid)

    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def log_size(self) -> int:
        """Bytes in the log so far: where this incarnation's output starts (log readiness reads from there)."""
        try:
            return self.spec.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.spec.log_path, lines)

    def signal_group(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to the process group; False if it was already gone."""
        if self.pid is None:
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the whole group and reap it: a crash, not a shutdown."""
        self.signal_group(signal.SIGCONT)  # a paused group must not linger as stopped zombies
        self.signal_group(signal.SIGKILL)
        self._reap(5.0)
        self._forget()

    def _forget(self) -> None:
        if self.pid is not None:
            pids.note_stopped(self._records or pids.recording_folder(), self.pid, self._mark)

    def pause(self) -> None:
        self.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal_group(signal.SIGCONT)

    def stop(self, grace_s: float = 10.0, sig: signal.Signals = signal.SIGTERM) -> None:
        """``sig`` (SIGTERM), wait up to ``grace_s``, then SIGKILL. Safe to call twice."""
        if self.pid is None:
            return
        self.signal_group(signal.SIGCONT)
        if self.signal_group(sig) and not self._reap(grace_s):
            self.signal_group(signal.SIGKILL)
            self._reap(5.0)
        # Children of the leader that ignored SIGTERM (e.g. Postgres backends) die with the group.
        self.signal_group(signal.SIGKILL)
        self._forget()

    def _reap(self, timeout_s: float) -> bool:
        if self._popen is not None:
            try:
                self._popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return False
            return True
        # A process we did not start (found in a state file): poll the pid.
        pid = self.pid
        if pid is None:
            return True  # never started
        try:
            wait_for(lambda: (not pid_alive(pid), f"pid {pid} alive"), timeout_s=timeout_s,
                     what=f"{self.name} (pid {pid}) to exit", interval_s=0.05)
        except WaitTimeout:
            return False
        return True

    @classmethod
    def adopt(cls, spec: ProcessSpec, pid: int) -> ManagedProcess:
        """Represent a process started by an earlier `chaos infra up`."""
        proc = cls(spec)
        proc.pid = pid
        return proc
