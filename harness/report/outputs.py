"""The outputs of a run folder: results.json, junit.xml and report.html, from verdicts and histories.

One code path for both ways in: the runner calls ``write_outputs`` at the end of a run,
and `chaos report RUN_DIR` calls ``rerender`` on a stored folder (run.json +
history.jsonl), which re-checks and re-scores without re-running anything. Renderers
only read verdicts; they never change one.

Each file is rendered in full before any is written, and each is written to a temporary
file then renamed over the old one: a renderer that fails, or a run that is killed, leaves
the previous results.json whole rather than half a new one. ``rerender`` refuses a run that
did not finish (run_folder.py), so a damaged history never replaces good results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.history.ops import History
from harness.lag_alerts import LagAlert, lag_alerts, merge_thresholds, thresholds_from_json
from harness.report.html import render_report
from harness.report.junit import junit_xml
from harness.report.results import results_document, to_json_text
from harness.score import Measurements, Score, measure, score
from harness.scoring import PipelineVerdict
from harness.story import Story, StoryTeller, tell

__all__ = ["Outputs", "read_run_json", "rerender", "write_outputs"]


@dataclass(frozen=True, slots=True)
class Outputs:
    run_dir: Path
    verdicts: tuple[PipelineVerdict, ...]
    scores: tuple[Score, ...]
    measurements: tuple[Measurements, ...]
    lag_alerts: tuple[LagAlert, ...] = ()
    story: Story | None = None

    @property
    def results_json(self) -> Path:
        return self.run_dir / "results.json"

    @property
    def junit_xml(self) -> Path:
        return self.run_dir / "junit.xml"

    @property
    def report_html(self) -> Path:
        return self.run_dir / "report.html"


def read_run_json(run_dir: Path) -> dict[str, object]:
    path = run_dir / "run.json"
    if not path.exists():
        raise UsageError(f"{run_dir} is not a run folder (no run.json); pass a folder under runs/ written by `chaos run`")
    return json.loads(path.read_text(encoding="utf-8"))


def _harness_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chaos-harness")
    except PackageNotFoundError:
        return "dev"


def write_outputs(run_dir: Path, histories: Mapping[str, History], verdicts: tuple[PipelineVerdict, ...], *,
                  wall_s: float | None = None, meta: Mapping[str, object] | None = None,
                  storyteller: StoryTeller | None = None) -> Outputs:
    meta = meta if meta is not None else read_run_json(run_dir)
    measured = {v.pipeline: measure(histories[v.pipeline], v) for v in verdicts if v.pipeline in histories}
    scores = {p: score(next(v for v in verdicts if v.pipeline == p), m) for p, m in measured.items()}
    scenario_thresholds = thresholds_from_json(meta.get("lag_thresholds"))
    targets = {str(t.get("name")): t for t in meta.get("targets") or () if isinstance(t, Mapping)}  # type: ignore[attr-defined]
    alerts = tuple(a for p, h in histories.items() for a in lag_alerts(p, h, merge_thresholds(
        scenario_thresholds, thresholds_from_json(targets.get(p, {}).get("lag_thresholds")))))
    story = tell(storyteller, histories, verdicts)
    document = results_document(meta, verdicts, measured, scores, wall_s, alerts, story)
    texts = {
        "results.json": to_json_text(document),
        "junit.xml": junit_xml(meta, verdicts),
        "report.html": render_report(meta, verdicts, measured, scores, document, _harness_version()),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        _replace(run_dir / name, text)
    return Outputs(run_dir, verdicts, tuple(scores.values()), tuple(measured.values()), alerts, story)


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def rerender(run_dir: Path) -> Outputs:
    """Re-check, re-score and re-render a stored run folder; the run's wall time is kept if known."""
    from harness.analysis import analyze_run_dir
    from harness.run_folder import load_finished_run

    meta, histories = load_finished_run(run_dir)
    verdicts = analyze_run_dir(run_dir, histories)  # the same checkers and budget as `chaos analyze`
    wall_s = None
    previous = run_dir / "results.json"
    if previous.exists():
        try:
            raw = json.loads(previous.read_text(encoding="utf-8")).get("wall_s")
            wall_s = float(raw) if isinstance(raw, (int, float)) else None
        except (ValueError, AttributeError):
            wall_s = None  # an unreadable earlier results.json is replaced, not trusted
    return write_outputs(run_dir, histories, verdicts, wall_s=wall_s, meta=dict(meta),
                         storyteller=_named_story(str(meta.get("scenario") or "")))


def _named_story(name: str) -> StoryTeller | None:
    """The story of a named scenario (scenarios/NAME.py), for re-rendering; none for a scenario file."""
    from harness.scenario import load_scenario, scenario_names

    return load_scenario(name).story if name in scenario_names() else None
