"""Named crash points (the SDK side): a target process dies *exactly here* when the harness armed this point.

    from harness.sdk import crash_point
    ...publish and wait for the acks...
    crash_point("relay.after_publish")   # the harness may kill us between publish and mark-sent
    ...mark the rows sent...
    crash_point("consumer.before_effect", event_type=event.type)   # countable per event type

The mechanism is a small file, so it needs nothing but the standard library and works
for any process the harness starts, in any language (Go: harness/sdk/go/crashpoint/crashpoint.go,
one file to copy; any other language: implement these few lines of protocol):

  CHAOS_CRASHPOINTS_DIR  a folder of the run, set by the harness for every target process
  CHAOS_PROCESS          this process's name, e.g. ``relay`` or ``consumer.payment``
  <dir>/<process>.arm    JSON {"point": NAME, "passage": N, "arm_id": ID[, "event_type": T]}, written
                         atomically (write + rename) by harness.faults.crashpoints.CrashPoints.arm;
                         with ``event_type``, only passages that name that type count (a crash
                         lands on the N-th *paid* event, not on records the process ignores);
                         a passage that names no type never counts for a typed arm
  <dir>/<process>.fired  JSON {"point", "passage", "arm_id", "pid"}, written by the process
                         just before it SIGKILLs itself: the harness's evidence that the
                         crash happened at the point and not somewhere else

Each call stats the arm file (one syscall; nothing is read unless it changed). When the
armed point is passed for the N-th time since arming, the process writes the fired
file and kills itself with SIGKILL: no finally, no atexit, no flush, no offset commit,
exactly like a power cut to the process. An arm whose fired file exists is spent, so a
restarted process does not die again at the same point.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import threading
from pathlib import Path

__all__ = ["crash_point"]

_lock = threading.Lock()
_state: dict[str, object] = {"key": None, "point": None, "passage": 0, "arm_id": None, "count": 0, "event_type": None}


# Read once per process (functools.cache): the harness sets CHAOS_CRASHPOINTS_DIR and CHAOS_PROCESS
# when it starts the process, and every passage of every crash point (several per order in the order
# service) asks; two environment lookups and two Paths cost more than the stat that follows.
@functools.cache
def _paths() -> tuple[Path, Path] | None:
    folder = os.environ.get("CHAOS_CRASHPOINTS_DIR")
    process = os.environ.get("CHAOS_PROCESS")
    if not folder or not process:
        return None
    return Path(folder) / f"{process}.arm", Path(folder) / f"{process}.fired"


def crash_point(name: str, event_type: str | None = None) -> None:
    """Die here if the harness armed ``name`` for this process and this is the armed passage.

    ``event_type``: the type of the record this passage is about, so an arm for the N-th
    ``paid`` event counts only those.
    """
    paths = _paths()
    if paths is None:
        return
    arm, fired = paths
    try:
        st = os.stat(arm)
    except FileNotFoundError:
        return
    with _lock:
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if _state["key"] != key:
            try:
                spec = json.loads(arm.read_text())
            except (OSError, ValueError):
                return  # half-written or just removed: not armed for this passage
            spent = False
            try:
                spent = json.loads(fired.read_text()).get("arm_id") == spec.get("arm_id")
            except (OSError, ValueError):
                pass
            _state.update(key=key, point=None if spent else spec.get("point"), passage=int(spec.get("passage", 1)),
                          arm_id=spec.get("arm_id"), count=0, event_type=spec.get("event_type"))
        if _state["point"] != name:
            return
        if _state["event_type"] is not None and _state["event_type"] != event_type:
            return
        _state["count"] = int(_state["count"]) + 1  # type: ignore[call-overload]
        if _state["count"] != _state["passage"]:
            return
        record = {"point": name, "passage": _state["passage"], "arm_id": _state["arm_id"], "pid": os.getpid()}
        tmp = fired.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, fired)
        os.kill(os.getpid(), signal.SIGKILL)
