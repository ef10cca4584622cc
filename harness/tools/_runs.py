"""Loading a run folder's histories for the tools, and picking one pipeline's."""

from __future__ import annotations

from pathlib import Path

from harness.errors import UsageError
from harness.history.ops import History
from harness.history.store import load_histories

__all__ = ["load_run"]


def load_run(run_dir: Path, pipeline: str | None = None) -> dict[str, History]:
    """The histories of ``run_dir`` (only ``pipeline``'s when given), finished or not.

    Unlike `chaos analyze`, a tool may read an interrupted run: what it recorded is still evidence.
    """
    if not (run_dir / "run.json").exists():
        raise UsageError(f"{run_dir} is not a run folder (no run.json); pass a folder under runs/ written by `chaos run`")
    _, histories = load_histories(run_dir / "history.jsonl")
    if pipeline is not None:
        if pipeline not in histories:
            raise UsageError(f"--pipeline {pipeline!r} is not in {run_dir.name}; its pipelines: "
                             f"{', '.join(sorted(histories)) or 'none'}")
        return {pipeline: histories[pipeline]}
    return histories

