"""Terminal output: live progress during a run and the summary table at the end.

Renderers only show verdicts; they never compute or change one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.checkers.base import Validity
from harness.checkers.counts import DuplicateCounts, read
from harness.runner import Progress, RunResult
from harness.score import Score
from harness.scoring import Outcome, PipelineVerdict
from harness.story import Story

__all__ = ["LiveProgress", "print_summary", "story_table", "summary_table"]

_OUTCOME_STYLE = {Outcome.MET: "green", Outcome.UNEXPECTED: "bold red", Outcome.INCONCLUSIVE: "yellow"}


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _score(score: Score | None) -> Text:
    if score is None:
        return Text("-")
    if score.value is None:
        return Text("n/a", style="yellow")
    style = "bold red" if score.gate == "failed" else "green" if score.value >= 80 else "yellow"
    return Text(f"{score.value:g}", style=style)


def summary_table(verdicts: tuple[PipelineVerdict, ...], title: str = "", scores: Sequence[Score] = ()) -> Table:
    """One row per pipeline; columns are generic over whichever checkers ran."""
    by_pipeline = {s.pipeline: s for s in scores}
    table = Table(title=title or None, show_lines=False)
    for col, justify in (("pipeline", "left"), ("accepted", "right"), ("lost", "right"),
                         ("money lost", "right"), ("unknown", "right"), ("broken", "left"),
                         ("anomalies", "right"), ("score", "right"), ("verdict", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for v in verdicts:
        s = v.summary()
        broken = [r.invariant or r.checker for r in v.results if r.validity is Validity.INVALID]
        unknown = [r.invariant or r.checker for r in v.results if r.validity is Validity.UNKNOWN]
        cell = Text(" ".join(broken) or "none", style="red" if broken else "green")
        if unknown:
            cell.append(f" ?{' ?'.join(unknown)}", style="yellow")
        table.add_row(
            v.pipeline, str(s["accepted"]), str(s["lost"]), _money(s["lost_cents"]), str(s["unknown_outcome"]),
            cell, _anomalies(v), _score(by_pipeline.get(v.pipeline)),
            Text(v.outcome.value.upper() if v.outcome is not Outcome.MET else "as expected", style=_OUTCOME_STYLE[v.outcome]),
        )
    return table


def _anomalies(v: PipelineVerdict) -> Text:
    """How many anomalies, and how many no injected fault explains (those fail an expected break)."""
    total = v.explained + v.unexplained
    if not total:
        return Text("0", style="green")
    return Text(f"{total} ({v.unexplained} unexplained)" if v.unexplained else f"{total} explained",
                style="red" if v.unexplained else "default")


def anomaly_lines(v: PipelineVerdict) -> list[str]:
    """Per kind: how many, how many explained and by what; then the redelivery the consumers absorbed."""
    lines = []
    for t in v.tallies:
        causes: dict[str, int] = {}
        for a in v.attributions:
            if a.anomaly.kind is t.kind and a.cause is not None:
                causes[a.cause] = causes.get(a.cause, 0) + 1
        by = ", ".join(f"{c} {n}" for c, n in sorted(causes.items())) or "nothing injected"
        lines.append(f"{t.total} {t.kind.value} ({t.kind.invariant}): {t.explained} explained by {by}"
                     + (f", {t.unexplained} unexplained" if t.unexplained else "")
                     + ("" if t.expected else " [not expected]"))
    c = read(v.result("exactly-once-effect"), DuplicateCounts)
    if c is not None:
        lines.append(f"redelivery: {c.redelivered} extra copies ({c.amplification} per event), {c.absorbed} absorbed, "
                     f"{c.injected_copies} injected by faults, {c.amplification_counted} outside crash recovery"
                     + (f" (budget {c.redelivery_budget} per event)" if c.redelivery_budget is not None else ""))
    return lines


def print_summary(result: RunResult, console: Console | None = None) -> None:
    """The end-of-run summary: table, reasons, score terms, run folder, report path, reproduce command."""
    console = console or Console()
    console.print(summary_table(result.verdicts, title=f"{result.run_dir.name} (seed {result.seed})",
                                scores=result.scores))
    for v in result.verdicts:
        for reason in v.reasons:
            console.print(f"  [bold]{v.pipeline}[/bold]: {reason}", highlight=False)
        for line in anomaly_lines(v):
            console.print(f"  {v.pipeline}: {line}", highlight=False, soft_wrap=True)
    for s in result.scores:
        console.print(f"  score {s.pipeline}: {s.why}", highlight=False)
    for alert in result.lag_alerts:
        console.print(f"  lag {alert.pipeline}: {alert.describe()}", highlight=False, soft_wrap=True,
                      style="bold red" if alert.breached else None)
    if result.story is not None:
        console.print(story_table(result.story))
    # soft_wrap: paths and the command stay on one line, so they can be copied.
    console.print(f"run folder: {result.run_dir}", soft_wrap=True, highlight=False)
    if result.report_path.exists():
        console.print(f"report:     {result.report_path}", soft_wrap=True, highlight=False)
    console.print(f"reproduce:  {result.command}", soft_wrap=True, highlight=False)


def story_table(story: Story) -> Table:
    """The case study told the article's way: what it said beside what this run measured."""
    table = Table(title=story.title, caption=story.note or None, show_lines=False)
    table.add_column("", style="bold")
    table.add_column("the article said")
    table.add_column("we measured")
    for claim in story.claims:
        table.add_row(claim.what, claim.article, claim.measured)
    return table


class LiveProgress:
    """A one-line live status (phase, elapsed, ops, rate, faults active, lag), fed by the runner."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._live = Live(Text(""), console=self.console, refresh_per_second=4, transient=True)
        self._lock = threading.Lock()

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._live.__exit__(exc_type, exc, tb)

    def __call__(self, p: Progress) -> None:
        faults = ", ".join(p.faults_active) if p.faults_active else "none"
        rate: list[str | tuple[str, str]] = [("rate ", "dim"), f"{p.rate:5.1f}/s  "] if p.rate is not None else []
        lag: list[str | tuple[str, str]] = [("  lag ", "dim"), str(p.lag)] if p.lag is not None else []
        line = Text.assemble(
            (f"{p.pipeline:<8}", "bold"), f" {p.phase:<9} {p.elapsed_s:6.1f}s  ",
            ("ok ", "dim"), f"{p.ok:<6}", ("fail ", "dim"), f"{p.fail:<5}", ("info ", "dim"), f"{p.info:<5}",
            *rate,
            ("faults ", "dim"), (faults, "red" if p.faults_active else ""),
            *lag,
        )
        with self._lock:
            self._live.update(line)
        if p.phase == "done":
            self.console.print(line)
