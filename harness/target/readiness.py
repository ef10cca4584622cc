"""Readiness checks of target processes: one active probe each, polled with a deadline by the runtime.

A probe answers ``(ready, observation)`` and never waits itself; ``SpecTarget`` polls it
(harness.wait) and, on timeout, fails with the observation and the process's log tail.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from harness.infra.process import ManagedProcess
from harness.target.spec import Readiness, ReadyKind

__all__ = ["probe"]

PROBE_TIMEOUT_S = 2.0


def _fill(text: str, port: int | None) -> str:
    return text.replace("{port}", str(port)) if port is not None else text


def probe(ready: Readiness, proc: ManagedProcess, *, port: int | None, log_from: int, cwd: Path | None) -> tuple[bool, str]:
    """One observation of ``ready`` for ``proc``; ``log_from`` is where this incarnation's log starts."""
    if ready.kind is ReadyKind.NONE:
        return True, "alive"
    if ready.kind is ReadyKind.HTTP:
        url = _fill(str(ready.value), port)
        try:
            with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:  # noqa: S310 - a loopback URL of the spec
                return 200 <= response.status < 300, f"GET {url} -> {response.status}"
        except urllib.error.HTTPError as exc:
            return False, f"GET {url} -> {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return False, f"GET {url}: {exc}"
    if ready.kind is ReadyKind.TCP:
        target = _fill(str(ready.value), port)
        host, _, port_text = target.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port_text)), timeout=PROBE_TIMEOUT_S):
                return True, f"{target} accepts connections"
        except OSError as exc:
            return False, f"connect {target}: {exc}"
    if ready.kind is ReadyKind.COMMAND:
        argv = [_fill(a, port) for a in ready.value]
        try:
            done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=5, check=False)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"{argv[0]}: {exc}"
        return done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}"
    # LOG: the text must appear in what this incarnation wrote, not in an earlier one's lines.
    try:
        with proc.spec.log_path.open("rb") as fh:
            fh.seek(log_from)
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return False, "no log yet"
    found = str(ready.value) in text
    return found, f"log line {ready.value!r} {'seen' if found else 'not seen yet'}"
