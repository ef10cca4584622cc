"""Ctrl-C and SIGTERM: the first stops the run, the second must not cut its cleanup, the third forces.

The first signal raises KeyboardInterrupt in the main thread, so every ``finally`` runs:
faults heal, targets stop, infra the run started stops. Cutting that cleanup short leaves
proxies down and processes running, so a second signal only says that cleanup is still
running and returns, and the cleanup goes on (the interrupted system call is retried).
A third exits at once with 130, naming the processes this process started that are still
running, and how to stop them.

The handler writes with os.write: it runs between two bytecodes of whatever the main thread
was doing, possibly inside a print of the terminal's own console.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from harness.infra import pids

__all__ = ["InterruptPolicy", "what_is_still_running"]


def _line(text: str) -> None:
    try:
        os.write(2, (text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass  # no stderr to speak to; the exit code still says it


def what_is_still_running(fix: str) -> str:
    """One sentence on the processes this process started: all stopped, or which are still running."""
    running = pids.running_started_here()
    started = pids.started_here()
    if not started:
        return "it had not started any process"
    if not running:
        return "the one process it started was stopped" if started == 1 else f"all {started} processes it started were stopped"
    names = ", ".join(f"{name} (pid {pid})" for name, pid in running[:8]) + (" ..." if len(running) > 8 else "")
    verb = "is" if len(running) == 1 else "are"
    return f"{len(running)} of the {started} processes it started {verb} still running: {names}; {fix}"


class InterruptPolicy:
    """Counts SIGINT/SIGTERM while installed; ``restore`` puts the previous handlers back."""

    def __init__(self, fix: Callable[[], str] = lambda: "`chaos infra down` stops them") -> None:
        self.count = 0
        self._fix = fix
        # Only the main thread may install handlers; called from another (an embedding app), change nothing.
        on_main = threading.current_thread() is threading.main_thread()
        self._previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if on_main else {}
        for sig in self._previous:
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            # SIGTERM takes the same path as Ctrl-C: every finally runs, faults heal, children stop.
            raise KeyboardInterrupt(f"signal {signum}")
        if self.count == 2:
            _line("chaos: cleanup is still running (healing faults, stopping processes); "
                  "press Ctrl-C once more to force exit and leave them behind")
            return
        _line("chaos: forced exit; cleanup was cut short, so faults may still be active, and "
              + what_is_still_running(self._fix()))
        os._exit(130)
