"""From stored histories to verdicts: a pure function, so `chaos analyze RUN_DIR` re-checks a run.

The run folder's run.json carries the expectations, so re-analysis needs nothing but
the folder itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.attribution import attribute
from harness.checkers.base import Checker, CheckResult, run_checker
from harness.checkers.contract import SchemaContract
from harness.checkers.dlq import DlqAccounted
from harness.checkers.duplicates import ExactlyOnceEffect
from harness.checkers.loss import NoLostEffect
from harness.checkers.ordering import PerEntityOrder
from harness.checkers.phantom import NoPhantom
from harness.checkers.recovery import BoundedRecovery
from harness.checkers.stats import Stats
from harness.checkers.trace import TraceComplete
from harness.errors import UsageError
from harness.expect import Cause, Expect, expectations_from_json
from harness.history.ops import History
from harness.history.store import bulk, load_histories
from harness.scoring import PipelineVerdict, judge

__all__ = ["CHECKERS", "analyze", "analyze_run_dir", "checkers"]


def checkers(recovery_budget_s: float | None = None) -> tuple[Checker, ...]:
    """Every checker, in report order: stats, then I1-I8. The budget is the scenario's (I7)."""
    return (Stats(), NoLostEffect(), ExactlyOnceEffect(), PerEntityOrder(), NoPhantom(), DlqAccounted(),
            TraceComplete(), BoundedRecovery(budget_s=recovery_budget_s), SchemaContract())


CHECKERS: tuple[Checker, ...] = checkers()

def analyze(histories: Mapping[str, History], expects: Sequence[Expect] = (),
            checkers: tuple[Checker, ...] = CHECKERS, variant: str = "correct") -> tuple[PipelineVerdict, ...]:
    """Check every history, attribute every anomaly to what was injected, and judge it against ``expects``."""
    with bulk():
        return tuple(_verdict(pipeline, history, expects, checkers, variant) for pipeline, history in histories.items())


def _verdict(pipeline: str, history: History, expects: Sequence[Expect], checkers: tuple[Checker, ...],
             variant: str) -> PipelineVerdict:
    results: tuple[CheckResult, ...] = tuple(run_checker(c, history) for c in checkers)
    by_variant = {k for e in expects if e.pipeline == pipeline and e.by is Cause.VARIANT for k in e.allowed}
    attributions = attribute(history, [a for r in results for a in r.anomalies],
                             variant=variant if variant != "correct" else None, variant_kinds=by_variant)
    return judge(pipeline, results, expects, attributions)


def analyze_run_dir(run_dir: Path, histories: Mapping[str, History] | None = None) -> tuple[PipelineVerdict, ...]:
    """The verdicts of a stored run; pass its ``histories`` if already loaded (loading is the slow part)."""
    run_json = run_dir / "run.json"
    if not run_json.exists():
        raise UsageError(f"{run_dir} is not a run folder (no run.json); pass a folder under runs/ written by `chaos run`")
    meta = json.loads(run_json.read_text())
    if histories is None:
        _, histories = load_histories(run_dir / "history.jsonl")
    budget = meta.get("recovery_budget_s")
    return analyze(histories, expectations_from_json(meta.get("expect") or ()),
                   checkers(float(budget) if budget is not None else None), str(meta.get("variant") or "correct"))
