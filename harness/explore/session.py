"""An explore session: one infra, many trials, one shrunk finding written as a scenario module.

    target spec -> FaultSpace (skipped kinds listed) -> infra up once
      -> Search (Hypothesis's database replay, the sweep, Hypothesis generate and shrink; k confirmations)
      -> the smallest confirmed failure -> scenarios module in --out -> `chaos run` command

The session folder (``<runs-dir>/explore-<target>-<stamp>/``) holds ``trials/`` (every
trial's ordinary run folder), ``trials.jsonl`` (one line per finished trial, written as
it finishes, so an interrupted session keeps them) and, by default, the found module.
Hypothesis's example database lives under CHAOS_HOME, shared by sessions, so a failure
found once replays first next time.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness.config import Settings
from harness.errors import UsageError
from harness.explore.design import Design
from harness.explore.shrink import Search, SearchResult
from harness.explore.strategy import FaultSpace, Skipped, TrialSchedule, parse_kinds
from harness.explore.sweep import sweep
from harness.explore.trial import TrialOutcome, TrialRunner
from harness.explore.writer import reproduce_command, write_scenario
from harness.target.spec import TargetSpec

__all__ = ["ExploreOptions", "ExploreResult", "explore", "parse_budget", "prepare"]

_BUDGET = re.compile(r"([0-9]+(?:\.[0-9]+)?)(s|m|h)?")
MAX_BUDGET_S = 24 * 3600.0


def parse_budget(text: str) -> float:
    """``"10m"``, ``"90s"``, ``"1.5h"`` or plain seconds -> seconds; anything else (or <= 0) is a usage error."""
    m = _BUDGET.fullmatch(text)
    if m is None:
        raise UsageError(f"--budget {text[:40]!r} is not a duration; give e.g. 10m, 90s or 1h (a positive amount)")
    seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    if not 0 < seconds <= MAX_BUDGET_S:
        raise UsageError(f"--budget {text[:40]!r} must be positive and at most 24h")
    return seconds


@dataclass(frozen=True, slots=True)
class ExploreOptions:
    target: str = "outbox"  # a name, module:attr or a target.toml path
    budget_s: float = 600.0
    seed: int = 0
    faults: str | None = None  # comma-separated kinds, None = the whole catalogue
    out: Path | None = None  # where the found module goes; default the session folder
    variant: str = "correct"
    reruns: int = 3  # k: runs that must each fail before a schedule counts as failing
    max_faults: int = 3
    durations: tuple[int, int] | None = None  # (min, max) seconds of traffic per trial; None: the strategy's
    sweep: bool = True  # one schedule per defect class first (harness/explore/sweep.py), then random search
    max_trials: int | None = None  # stop after this many trials, whatever budget is left (CI: the same trials each time)

    def __post_init__(self) -> None:
        if not self.budget_s > 0:
            raise UsageError(f"--budget {self.budget_s!r} must be positive (seconds of exploring)")
        if not isinstance(self.reruns, int) or not 1 <= self.reruns <= 10:
            raise UsageError(f"reruns={self.reruns!r} must be an integer in 1..10")
        if not 1 <= self.max_faults <= 8:
            raise UsageError(f"max_faults={self.max_faults!r} must be in 1..8")


@dataclass(frozen=True, slots=True)
class ExploreResult:
    target: str
    variant: str
    seed: int
    folder: Path
    trials: tuple[TrialOutcome, ...]
    skipped: tuple[Skipped, ...]
    search: SearchResult
    module: Path | None  # the found scenario module, when something was found
    command: str | None  # `chaos run MODULE --seed S`
    wall_s: float

    @property
    def found(self) -> bool:
        return self.search.best is not None

    @property
    def exit_code(self) -> int:
        """1 a failure was found and confirmed; 2 no trial ran to a verdict; 0 nothing found."""
        if self.found:
            return 1
        return 0 if any(t.error is None for t in self.trials) else 2

    def to_json(self) -> dict[str, object]:
        s = self.search
        return {"target": self.target, "variant": self.variant, "seed": self.seed, "folder": str(self.folder),
                "trials": len(self.trials), "wall_s": round(self.wall_s, 1),
                "trials_per_minute": round(60 * len(self.trials) / self.wall_s, 2) if self.wall_s else None,
                "found": sorted(k.value for k in s.kinds), "found_after_s": s.found_after_s,
                "shrink_s": round(s.shrink_s, 1), "shrink_steps": s.shrink_steps, "stopped_by": s.stopped_by,
                "near_copies": s.near_copies,
                "minimal": s.best.describe() if s.best else None, "module": str(self.module) if self.module else None,
                "command": self.command, "skipped": {k.kind.value: k.why for k in self.skipped}}


def prepare(opts: ExploreOptions) -> tuple[TargetSpec, FaultSpace]:
    """The target and its fault space, or a UsageError (exit 4) before any lock or infrastructure."""
    from harness.capabilities import check_capabilities
    from harness.target.registry import load_domain, resolve_target

    kinds = parse_kinds(opts.faults)
    spec = resolve_target(opts.target)
    check_capabilities("explore", (), (), opts.variant, spec)  # an unknown variant: exit 4 now
    load_domain(spec.domain)
    return spec, FaultSpace.of(spec, kinds, opts.variant)


def explore(opts: ExploreOptions, settings: Settings, *, infra: object | None = None,
            say: Callable[[str], None] = print) -> ExploreResult:
    """Explore ``opts.target``: everything before the first trial is checked first (exit 4 on bad input)."""
    from harness.infra.stack import Infra

    spec, space = prepare(opts)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = settings.runs_dir / f"explore-{spec.name}-{stamp}-{secrets.token_hex(2)}"
    (folder / "trials").mkdir(parents=True, exist_ok=True)
    say(f"chaos explore: target {spec.name}, variant {opts.variant}, seed {opts.seed}, budget {opts.budget_s:g}s, "
        f"k={opts.reruns}; reproduce the session with: chaos explore --target {opts.target} --seed {opts.seed}"
        + (f" --faults {opts.faults}" if opts.faults else "") + (f" --variant {opts.variant}" if opts.variant != "correct" else ""))
    say(f"chaos explore: fault kinds {', '.join(k.value for k in space.kinds)}")
    for s in space.skipped:
        say(f"chaos explore: skipped {s.kind.value}: {s.why}")
    say(f"chaos explore: session folder {folder}")

    started = time.monotonic()
    owned = False
    if infra is None:
        infra = Infra.attach(settings)
        if infra is None:
            say("chaos explore: starting infra (Postgres, Kafka, Toxiproxy), shared by every trial ...")
            # Not tied to this process: a trial's child may restart the broker, and a restarted process
            # must outlive that child. This session stops it at the end.
            infra = Infra.start(settings, logs_dir=folder / "infra-logs", die_with_parent=False)
            owned = True
    log = (folder / "trials.jsonl").open("a")
    runner = TrialRunner(settings=settings, folder=folder / "trials", target_ref=opts.target, pipeline=spec.name,
                         variant=opts.variant, revive=lambda: _revive(settings), say=say,
                         allowed=Design.of(spec).allows)

    def run_trial(schedule: TrialSchedule) -> TrialOutcome:
        outcome = runner(schedule)
        log.write(json.dumps(_trial_json(outcome)) + "\n")
        log.flush()
        return outcome

    patterns = sweep(space, spec, opts.seed) if opts.sweep else ()
    if patterns:
        say(f"chaos explore: sweep first: {', '.join(name for name, _ in patterns)}")
    search = Search(space, run_trial, budget_s=opts.budget_s, reruns=opts.reruns,
                    database=settings.home / "explore" / "examples", max_faults=opts.max_faults,
                    durations=opts.durations, sweep=patterns, max_trials=opts.max_trials, say=say)
    module = command = None
    try:
        try:
            search.run(opts.seed)
        finally:
            # Interrupted or not: the best confirmed schedule so far is written out, and the summary.
            if search.result.best is not None:
                module, command = _write(search.result, opts, spec.name, folder)
                say(f"chaos explore: minimal schedule: {search.result.best.describe()}")
                say(f"chaos explore: written to {module}; reproduce with: {command}")
            out = ExploreResult(spec.name, opts.variant, opts.seed, folder, tuple(runner.outcomes), space.skipped,
                                search.result, module, command, time.monotonic() - started)
            (folder / "explore.json").write_text(json.dumps(out.to_json(), indent=1))
    finally:
        log.close()
        if owned:
            # Freshly attached: a trial may have restarted a process since the session started it.
            (Infra.attach(settings, revive=True) or infra).stop()  # type: ignore[attr-defined]
    result, wall_s = search.result, out.wall_s
    n = len(out.trials)
    say(f"chaos explore: {n} trial(s) in {wall_s:.0f}s ({60 * n / wall_s:.1f}/min), stopped by {result.stopped_by}, "
        f"{result.near_copies} near-copies not run; "
        + (f"found {', '.join(sorted(k.value for k in result.kinds))} after {result.found_after_s:.0f}s, "
           f"shrunk in {result.shrink_s:.0f}s ({result.shrink_steps} step(s))" if out.found else "nothing found"))
    return out


def _revive(settings: Settings) -> None:
    """After a trial's child died mid-fault: restart whatever infra process it left dead, heal the proxies."""
    from harness.errors import InfraError
    from harness.infra.stack import Infra

    infra = Infra.attach(settings, revive=True)
    if infra is None:
        raise InfraError(f"the infra of base port {settings.base_port} is gone (no state file); "
                         "start it again with `chaos infra up`")
    infra.heal_all()


def _write(result: SearchResult, opts: ExploreOptions, pipeline: str, folder: Path) -> tuple[Path, str]:
    assert result.best is not None
    kinds = sorted(result.kinds, key=lambda k: k.value)
    name = f"explore_{pipeline}_{opts.variant}_{opts.seed}"
    evidence = [f"chaos explore --target {opts.target} --seed {opts.seed} --variant {opts.variant}"
                + (f" --faults {opts.faults}" if opts.faults else ""),
                f"shown in {len(result.evidence)} of {opts.reruns} runs of this schedule; the first of them:"]
    for t in result.evidence[:1]:
        evidence += [f"trial {t.number}, seed {t.schedule.seed}: "
                     + ", ".join(f"{k.value} x{n}" for k, n in t.counts), f"example: {t.example}",
                     f"run folder: {t.run_dir}"]
    evidence.append(f"schedule: {result.best.describe()}")
    path = write_scenario(opts.out or folder, name, result.best, pipeline=pipeline, variant=opts.variant,
                          kinds=kinds, evidence=evidence)
    return path, reproduce_command(path, result.best.seed, opts.target, pipeline)


def _trial_json(t: TrialOutcome) -> dict[str, object]:
    return {"trial": t.number, "seed": t.schedule.seed, "schedule": t.schedule.describe(),
            "found": sorted(k.value for k in t.kinds), "counts": {k.value: n for k, n in t.counts},
            "inconclusive": t.inconclusive, "error": t.error, "wall_s": round(t.wall_s, 1),
            "run_dir": str(t.run_dir) if t.run_dir else None}
