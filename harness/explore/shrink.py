"""Search and shrink with Hypothesis, where every "it failed" is confirmed k times.

Hypothesis draws ``TrialSchedule``s, runs each as a trial, and on the first failure
shrinks it (fewer faults, shorter, less load, smaller parameters). A trial is noisy: the
same schedule on real processes may fail one time and pass the next. So a schedule
counts as failing only when it shows one of the failure's anomaly kinds in each of ``k``
runs (default 3); a candidate that fails once and then passes is a pass, and shrinking
cannot walk from a real failure to one that only happened by chance.

Hypothesis's example database keeps the failing choice sequences under a key made of
the target, variant, fault kinds and this module's version of the strategy: the next
explore of the same target replays known failures before it generates anything new.

Every verdict on a schedule is remembered for the run, so Hypothesis's own replays of
the final example (and of duplicates it generates) cost nothing and cannot turn flaky.
The budget is wall time: when it is spent, the search stops where it is and keeps the
smallest confirmed failure so far; so does Ctrl-C (the interrupt is re-raised after).
"""

from __future__ import annotations

import time
import unittest
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, seed as hypothesis_seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from harness.checkers.anomaly import AnomalyKind
from harness.explore.strategy import FaultSpace, TrialSchedule, trial_schedules
from harness.explore.trial import TrialOutcome

__all__ = ["STRATEGY_VERSION", "Search", "SearchResult"]

STRATEGY_VERSION = "3"  # bump when trial_schedules draws differently: old database entries would decode to other schedules


def _valid(schedule: TrialSchedule, space: FaultSpace) -> bool:
    from harness.errors import UsageError
    from harness.explore.trial import scenario_of

    try:
        scenario_of(schedule, space.target, space.variant)
    except UsageError:
        return False
    return True


class _Confirmed(Exception):
    """Raised inside the Hypothesis test for a schedule whose failure reproduced k times."""


# Both derive from KeyboardInterrupt, not BaseException: Hypothesis saves the choices of an example
# that raised any other BaseException into the example database (engine.test_function), so every
# session the budget stopped mid-trial left a schedule that had *not* failed, and the next session
# replayed it first as a "known failure". An interrupt is the one exception it neither saves nor shrinks.
class _Aborted(KeyboardInterrupt):
    """Carries an error of a trial itself (infra down, a bug) out of Hypothesis, which would otherwise
    take it for a failure of the schedule and shrink it."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _OutOfTime(KeyboardInterrupt):
    """Stops Hypothesis where it is (a BaseException, so Hypothesis does not shrink it as a failure)."""


@dataclass(slots=True)
class SearchResult:
    """What a search saw: the first confirmed failure, the smallest, and how long each took."""

    first: TrialSchedule | None = None
    best: TrialSchedule | None = None
    kinds: frozenset[AnomalyKind] = frozenset()  # the kinds the best schedule showed in every one of its k runs
    found_after_s: float | None = None
    shrink_s: float = 0.0
    shrink_steps: int = 0  # confirmed, smaller failures after the first
    evidence: list[TrialOutcome] = field(default_factory=list)  # the confirming runs of the best
    flaky: list[TrialSchedule] = field(default_factory=list)  # failed once, did not reproduce k times
    stopped_by: str = "search ended"  # "search ended", "budget", "trials", "interrupted", "max examples"
    near_copies: int = 0  # drawn while searching and not run: a schedule of the same shape had run and passed


class Search:
    def __init__(self, space: FaultSpace, run_trial: Callable[[TrialSchedule], TrialOutcome], *, budget_s: float,
                 reruns: int = 3, database: Path | None = None, max_faults: int = 3,
                 durations: tuple[int, int] | None = None, sweep: Sequence[tuple[str, TrialSchedule]] = (),
                 max_trials: int | None = None, say: Callable[[str], None] = print) -> None:
        self.space = space
        self.run_trial = run_trial
        self.budget_s = budget_s
        self.reruns = reruns
        self.database = database
        self.max_faults = max_faults
        self.durations = durations
        self.sweep = tuple(sweep)
        self.max_trials = max_trials  # a count instead of (or as well as) the wall-time budget: CI wants the same trials
        self._trials = 0
        self.say = say
        self._verdicts: dict[TrialSchedule, bool] = {}
        self._tried: set[frozenset[tuple[object, ...]]] = set()  # shapes of the schedules run while searching
        self._goal: frozenset[AnomalyKind] | None = None  # the kinds of the first confirmed failure
        self._started = 0.0
        self.result = SearchResult()

    def _left_s(self) -> float:
        if self.max_trials is not None and self._trials >= self.max_trials:
            return 0.0
        return self.budget_s - (time.monotonic() - self._started)

    def _confirm(self, schedule: TrialSchedule) -> bool:
        """Run ``schedule`` up to k times; True when every run shows one of the goal's kinds."""
        runs: list[TrialOutcome] = []
        common: frozenset[AnomalyKind] | None = None
        for i in range(self.reruns):
            if i > 0 and self._left_s() <= 0:
                raise _OutOfTime  # an unconfirmed candidate is no finding; stop with the best so far
            self._trials += 1
            try:
                outcome = self.run_trial(schedule)
            except Exception as exc:  # noqa: BLE001 - re-raised as it was, outside Hypothesis
                raise _Aborted(exc) from exc
            runs.append(outcome)
            shown = outcome.kinds if self._goal is None else outcome.kinds & self._goal
            if not shown:
                if i > 0:
                    self.result.flaky.append(schedule)
                    self.say(f"chaos explore: did not reproduce on run {i + 1} of {self.reruns}: counted as a pass")
                return False
            common = shown if common is None else (common & shown) or shown
        assert common is not None
        now = time.monotonic() - self._started
        first = self.result.first is None
        if first:
            self._goal = common
            self.result.first = schedule
            self.result.found_after_s = now
            kinds = ", ".join(sorted(k.value for k in common))
            self.say(f"chaos explore: confirmed {self.reruns}/{self.reruns}: {kinds}; shrinking")
        best = self.result.best
        if best is None or schedule.size() < best.size():
            if not first:
                self.result.shrink_steps += 1
                self.say(f"chaos explore: smaller schedule still fails {self.reruns}/{self.reruns}: "
                         f"{schedule.describe()}")
            self.result.best = schedule
            self.result.kinds = common
            self.result.evidence = runs
        if first:
            self._drop_faults(schedule)
            self._simplify()
        return True

    def _verdict(self, schedule: TrialSchedule) -> bool:
        known = self._verdicts.get(schedule)
        if known is None:
            if self._left_s() <= 0:
                raise _OutOfTime
            known = self._verdicts[schedule] = self._confirm(schedule)
        return known

    def _drop_faults(self, schedule: TrialSchedule) -> None:
        """Before Hypothesis's own passes: try the schedule without each of its faults, greedily.

        Fewer faults is the shrink that matters most to a reader, and on real processes every
        candidate costs k trials; Hypothesis's shrinker tries many value changes before it deletes
        an element. Confirmed smaller schedules become the best; Hypothesis then goes on.
        """
        current = schedule
        while len(current.faults) > 1:
            for i in range(len(current.faults)):
                candidate = replace(current, faults=current.faults[:i] + current.faults[i + 1:])
                if self._verdict(candidate):
                    current = candidate
                    break
            else:
                return

    def _simplify(self) -> None:
        """Then the load and the fault lengths of the best schedule, greedily: least traffic, lowest rate,
        each fault half as long. Candidates that do not make a valid scenario are skipped."""
        from harness.explore.strategy import MIN_DURATION_S, MIN_RATE

        changed = True
        while changed and self.result.best is not None:
            changed = False
            best = self.result.best
            candidates = [replace(best, duration_s=MIN_DURATION_S), replace(best, rate=MIN_RATE)]
            for i, f in enumerate(best.faults):
                if f.for_s > 1:
                    shorter = replace(f, for_s=float(max(1, int(f.for_s) // 2)))
                    candidates.append(replace(best, faults=best.faults[:i] + (shorter,) + best.faults[i + 1:]))
            for candidate in candidates:
                if candidate.size() >= best.size() or not _valid(candidate, self.space):
                    continue
                if self._verdict(candidate):
                    changed = True
                    break

    def _test(self, schedule: TrialSchedule) -> None:
        best = self.result.best
        if schedule not in self._verdicts and best is not None and schedule.size() >= best.size():
            # Shrinking: a candidate no smaller than the best confirmed schedule can never replace it, and
            # on real processes it would cost k trials. Not run; Hypothesis moves on.
            return
        known = self._verdicts.get(schedule)
        shape = schedule.shape(self.space.delivery_s)
        if known is None and self.result.first is None and shape in self._tried:
            # Searching, not shrinking: a schedule of this shape (the same faults on the same places, the
            # same side of the delivery timeout, sizes within a factor of two; any start, any load) already
            # ran and passed. Hypothesis mutates around what it drew, and a session once spent trials 6-12
            # of 12 on one schedule with a fault repeated or moved; a trial costs tens of seconds.
            self.result.near_copies += 1
            return
        if known is None:
            self._tried.add(shape)
            known = self._verdict(schedule)
        if known:
            raise _Confirmed(schedule.describe())

    def run(self, seed: int) -> SearchResult:
        self._started = time.monotonic()
        strategy = trial_schedules(self.space, self.max_faults, self.durations) if self.durations else \
            trial_schedules(self.space, self.max_faults)

        def test(schedule: TrialSchedule) -> None:
            self._test(schedule)

        # The database key: the same target, variant and fault kinds replay the same known failures.
        test._hypothesis_internal_add_digest = "|".join(  # type: ignore[attr-defined]
            [STRATEGY_VERSION, self.space.target, self.space.variant, *(k.value for k in self.space.kinds),
             str(self.max_faults), str(self.durations)]).encode()
        db = DirectoryBasedExampleDatabase(str(self.database)) if self.database is not None else None

        def hypothesis(*phases: Phase) -> Callable[[], None]:
            return settings(database=db, deadline=None, max_examples=10_000, verbosity=Verbosity.quiet,  # type: ignore[no-any-return]
                            suppress_health_check=list(HealthCheck), report_multiple_bugs=False, phases=phases)(
                hypothesis_seed(seed)(given(strategy)(test)))

        try:
            # Known failures first (the example database), then the sweep (one schedule per defect class,
            # harness/explore/sweep.py), then Hypothesis's own generation and shrinking.
            if db is not None:
                try:
                    hypothesis(Phase.explicit, Phase.reuse)()
                except unittest.SkipTest:
                    pass  # an empty database: Hypothesis had nothing to replay
            for name, schedule in self.sweep:
                if self._left_s() <= 0:
                    raise _OutOfTime
                self.say(f"chaos explore: sweep: {name}")
                self._test(schedule)
            if self._left_s() <= 0:
                raise _OutOfTime
            hypothesis(Phase.generate, Phase.shrink)()
            self.result.stopped_by = "max examples"
        except _Confirmed:
            self.result.stopped_by = "search ended"
        except _OutOfTime:
            self.result.stopped_by = "trials" if self.max_trials is not None and self._trials >= self.max_trials \
                else "budget"
        except _Aborted as aborted:
            self.result.stopped_by = f"error: {type(aborted.error).__name__}"
            raise aborted.error from None
        except KeyboardInterrupt:
            self.result.stopped_by = "interrupted"
            raise
        finally:
            if self.result.first is not None:  # shrinking runs from the first confirmation to the end of the search
                self.result.shrink_s = max(0.0, time.monotonic() - self._started - (self.result.found_after_s or 0.0))
        return self.result
