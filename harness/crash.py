"""Crash logs: where an unexpected exception's traceback goes, so the terminal gets one line.

An exception the harness did not raise on purpose is a fault of the harness (a bug, an
unwritable folder), not of the pipeline under test; the CLI exits 5 for it, never 1, which
means "an invariant broke". The traceback is what a bug report needs, so it is kept in a
file rather than lost: under the runs folder if it can be written, else under CHAOS_HOME,
else the system's temporary folder (an unwritable runs folder is one of the usual causes).
"""

from __future__ import annotations

import os
import platform
import tempfile
import traceback
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["write_crash_log"]


def _candidates() -> list[Path]:
    # Read raw: the settings may be what failed, and a crash log must not fail the same way.
    out = []
    runs = os.environ.get("CHAOS_RUNS_DIR", "runs").strip()
    home = os.environ.get("CHAOS_HOME", "").strip()
    for folder in (runs or "runs", home and str(Path(home) / "crashes"), tempfile.gettempdir()):
        if folder and "\0" not in folder:
            out.append(Path(folder).expanduser())
    return out


def write_crash_log(exc: BaseException, argv: list[str]) -> Path | None:
    """Write the traceback of ``exc`` to the first writable place; its path, or None if none was writable."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    text = (f"chaos-harness crash at {stamp} UTC\nargv: {argv!r}\npython {platform.python_version()} "
            f"on {platform.platform()}\n\n" + "".join(traceback.format_exception(exc)))
    for folder in _candidates():
        path = folder / f"chaos-crash-{stamp}-{os.getpid()}.log"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except (OSError, ValueError):
            continue
        return path.resolve()
    return None
