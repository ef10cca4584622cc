"""How far a run got, as its run folder records it, and loading a stored run only if it finished.

The runner writes the folder's ``phase`` file as it goes: ``running`` when the folder is
created, ``checking`` once every pipeline's history is recorded, ``complete`` once
results.json, junit.xml and report.html are written. A run stopped by Ctrl-C, a kill or a
crash keeps the phase it stopped in. Re-checking such a history would judge a run against
promises it never finished testing (an interrupted drain reads as "never recovered", I7
invalid), so `chaos analyze` and `chaos report` refuse it as inconclusive: IncompleteRun,
exit 2. The same holds for a history that cannot be read back.

Run folders written before the phase file existed count as complete when they hold
results.json: the runner wrote it only at the very end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from pathlib import Path

from harness.errors import IncompleteRun, UsageError
from harness.history.ops import History

__all__ = ["Phase", "load_finished_run", "read_phase", "require_complete", "write_phase"]

PHASE_FILE = "phase"


class Phase(Enum):
    RUNNING = "running"
    CHECKING = "checking"
    COMPLETE = "complete"


def write_phase(run_dir: Path, phase: Phase) -> None:
    tmp = run_dir / f".{PHASE_FILE}.tmp"
    tmp.write_text(phase.value + "\n", encoding="utf-8")
    tmp.replace(run_dir / PHASE_FILE)  # a reader sees the old phase or the new one, never an empty file


def read_phase(run_dir: Path) -> str | None:
    """The recorded phase (as written, possibly damaged), or None when the folder records none."""
    try:
        return (run_dir / PHASE_FILE).read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None


def _rerun_hint(run_dir: Path) -> str:
    try:
        command = json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError, AttributeError):
        command = None
    return f"run it again: {command}" if isinstance(command, str) else "run the scenario again"


def require_complete(run_dir: Path) -> None:
    """Raise unless ``run_dir`` is a run folder whose run finished: UsageError if it is no run folder at all."""
    phase = read_phase(run_dir)
    if phase is None:
        if not (run_dir / "run.json").exists():
            raise UsageError(f"{run_dir} is not a run folder (no run.json); "
                             "pass a folder under runs/ written by `chaos run`")
        if (run_dir / "results.json").exists():
            return  # written before run folders recorded their phase
        phase = "an unknown phase: no phase file and no results.json"
    if phase != Phase.COMPLETE.value:
        raise IncompleteRun(f"incomplete run (stopped during {phase[:60]}): {run_dir} has no complete history "
                            f"to check, so there is no verdict; {_rerun_hint(run_dir)}")


def load_finished_run(run_dir: Path) -> tuple[Mapping[str, object], dict[str, History]]:
    """run.json and the histories of a finished run; IncompleteRun when it did not finish or is damaged."""
    from harness.history.store import load_histories

    require_complete(run_dir)
    try:
        meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("run.json is not a JSON object")
        _, histories = load_histories(run_dir / "history.jsonl")
    # A damaged file surfaces as whichever error its first bad byte trips; all mean "cannot be read back".
    except (UsageError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        cause = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise IncompleteRun(f"incomplete run (history unreadable: {cause}): "
                            f"{run_dir} cannot be re-checked; {_rerun_hint(run_dir)}") from exc
    return meta, histories
