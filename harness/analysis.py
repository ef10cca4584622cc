"""From stored histories to verdicts: a pure function, so `chaos analyze RUN_DIR` re-checks a run.

The run folder's run.json carries the expectations, so re-analysis needs nothing but
the folder itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from harness.checkers.base import Checker, Validity, run_checker
from harness.checkers.loss import NoLostEffect
from harness.checkers.stats import Stats
from harness.errors import UsageError
from harness.history.ops import History
from harness.history.store import load_histories
from harness.scoring import PipelineVerdict, judge

__all__ = ["CHECKERS", "analyze", "analyze_run_dir"]

CHECKERS: tuple[Checker, ...] = (Stats(), NoLostEffect())

Expectations = Mapping[str, Mapping[str, Validity]]
"""pipeline -> invariant id -> expected validity (VALID where absent)."""


def analyze(histories: Mapping[str, History], expectations: Expectations,
            checkers: tuple[Checker, ...] = CHECKERS) -> tuple[PipelineVerdict, ...]:
    return tuple(
        judge(pipeline, tuple(run_checker(c, history) for c in checkers), expectations.get(pipeline, {}))
        for pipeline, history in histories.items()
    )


def expectations_from_run_json(raw: Mapping[str, object]) -> dict[str, dict[str, Validity]]:
    out: dict[str, dict[str, Validity]] = {}
    for e in raw.get("expect") or ():  # type: ignore[union-attr]
        out.setdefault(e["pipeline"], {})[e["invariant"]] = Validity(e["validity"])  # type: ignore[index]
    return out


def analyze_run_dir(run_dir: Path) -> tuple[PipelineVerdict, ...]:
    run_json = run_dir / "run.json"
    if not run_json.exists():
        raise UsageError(f"{run_dir} is not a run folder (no run.json); pass a folder under runs/ written by `chaos run`")
    meta = json.loads(run_json.read_text())
    _, histories = load_histories(run_dir / "history.jsonl")
    return analyze(histories, expectations_from_run_json(meta))
