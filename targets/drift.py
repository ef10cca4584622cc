"""Schema drift: the producer switches to a new schema version mid-run when the harness says so.

    payload = drifted(event.encode())   # v1 normally; v2 while the harness has drift switched on

Like crash points (targets/crashpoints.py) this is a file the harness writes into the
run's CHAOS_CRASHPOINTS_DIR, so a target needs nothing but the standard library:

  <dir>/<process>.drift  JSON {"change": "rename" | "remove"}; present = drift on
    rename  ``amount_cents`` becomes ``amount`` and ``schema_version`` becomes 2
    remove  ``customer`` is dropped and ``schema_version`` becomes 2

  <dir>/<process>.drift.refused  written by a producer that refused to write v2 (its schema
    registry rejected the new version, targets.registry): how many events it wrote as v1
    instead; the harness counts them as the drift's effect

A consumer written for v1 cannot read either; a tolerant one can. Each call stats the
file (one syscall); nothing is read unless it changed.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

__all__ = ["CHANGES", "drifted", "report_refused"]

CHANGES = ("rename", "remove")
_cache: dict[str, object] = {"key": None, "change": None}


@functools.cache
def _drift_path() -> Path | None:
    """Read once per process (the harness sets both variables when it starts it): a Path and two
    environment lookups cost more than the stat, and every event asks."""
    folder, process = os.environ.get("CHAOS_CRASHPOINTS_DIR"), os.environ.get("CHAOS_PROCESS")
    return Path(folder) / f"{process}.drift" if folder and process else None


def _change() -> str | None:
    path = _drift_path()
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    key = (st.st_ino, st.st_mtime_ns)
    if _cache["key"] != key:
        try:
            change = json.loads(path.read_text()).get("change")
        except (OSError, ValueError):
            return None
        _cache.update(key=key, change=change if change in CHANGES else None)
    return _cache["change"]  # type: ignore[return-value]


def drifted(payload: bytes) -> bytes:
    """``payload`` (a v1 event as JSON) as the producer currently writes it."""
    change = _change()
    if change is None:
        return payload
    event = json.loads(payload)
    event["schema_version"] = 2
    if change == "rename":
        event["amount"] = event.pop("amount_cents", None)
    else:
        event.pop("customer", None)
    return json.dumps(event, separators=(",", ":")).encode()


def report_refused(count: int) -> None:
    """Tell the harness how many drifted events this process refused to write (``<process>.drift.refused``)."""
    folder, process = os.environ.get("CHAOS_CRASHPOINTS_DIR"), os.environ.get("CHAOS_PROCESS")
    if not folder or not process:
        return
    path = Path(folder) / f"{process}.drift.refused"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(count))
    os.replace(tmp, path)  # atomic: the harness never reads half a number
