"""`chaos explore` without infrastructure: input checks, the fault space, the strategy, shrinking, writing.

Trials here are a fake (a pure function of the schedule with a planted bug), so the search
and shrinking logic is tested for what it finds, not for how fast real processes are.
The real-infrastructure quality tier is tests/test_explore_quality.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from harness.checkers.anomaly import AnomalyKind
from harness.cli import main
from harness.errors import UsageError
from harness.explore import (
    ExploreOptions, FaultSpace, Search, TrialOutcome, TrialSchedule, parse_budget, parse_kinds, scenario_of,
    trial_schedules, write_scenario,
)
from harness.explore import session as session_module
from harness.capabilities import missing_capabilities
from harness.faults.spec import FaultKind, Latency
from harness.scenario import load_scenario
from harness.target.registry import resolve_target

OUTBOX = resolve_target("outbox")


@pytest.mark.parametrize(("argv", "named"), [
    (["explore", "--faults", "kill,meteor"], "'meteor'"),
    (["explore", "--budget", "0"], "must be positive"),
    (["explore", "--budget=-5m"], "not a duration"),
    (["explore", "--budget", "ten"], "not a duration"),
    (["explore", "--seed", "1.5"], "not a seed"),
    (["explore", "--target", "kafka_streams"], "available targets"),
    (["explore", "--variant", "typo"], "variant 'typo'"),
    (["explore", "--target", "cdc", "--faults", "schema_drift", "--variant", "last_id"], "last_id"),
])
def test_bad_input_exits_4_with_one_line_before_any_infrastructure(
        argv: list[str], named: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.infra.stack import Infra

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("infrastructure was touched before bad input was refused")

    monkeypatch.setattr(Infra, "attach", refuse)
    monkeypatch.setattr(Infra, "start", refuse)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals (a seed that is not an integer)
        code = exc.code  # type: ignore[assignment]
    assert code == 4
    err = capsys.readouterr().err.strip()
    assert named in err and len(err.splitlines()) == 1, err


def test_budget_takes_units() -> None:
    assert parse_budget("10m") == 600 and parse_budget("90s") == 90 and parse_budget("1.5h") == 5400
    assert parse_budget("45") == 45
    with pytest.raises(UsageError):
        ExploreOptions(budget_s=0)


def test_a_kind_the_target_cannot_take_is_skipped_and_named() -> None:
    go = resolve_target("examples/go_outbox/target.toml")  # declares no schema drift change
    space = FaultSpace.of(go, parse_kinds("schema_drift,kill"))
    assert space.kinds == (FaultKind.KILL,)
    assert [s.kind for s in space.skipped] == [FaultKind.SCHEMA_DRIFT] and "drift" in space.skipped[0].why
    with pytest.raises(UsageError, match="none of the fault kinds"):
        FaultSpace.of(go, parse_kinds("schema_drift"))


def test_the_space_covers_every_process_link_and_crash_point_of_the_target() -> None:
    space = FaultSpace.of(OUTBOX, parse_kinds(None))
    assert space.kinds == tuple(FaultKind) and not space.skipped
    assert set(space.places[FaultKind.OUTAGE]) == set(OUTBOX.links())
    # kill -9 of every process of the target, the database and the broker too
    assert {"relay", "app", "consumer.payment", "postgres", "kafka"} <= set(space.places[FaultKind.KILL])
    assert set(space.places[FaultKind.CRASH]) == {p for p, pts in OUTBOX.crash_points().items() if pts}


@pytest.mark.parametrize("target", ["outbox", "direct", "cdc", "examples/go_outbox/target.toml"])
def test_every_drawn_schedule_is_a_valid_scenario_the_target_can_run(target: str) -> None:
    spec = resolve_target(target)
    space = FaultSpace.of(spec, parse_kinds(None))

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(trial_schedules(space))
    def check(schedule: TrialSchedule) -> None:
        scenario = scenario_of(schedule, spec.name, "correct")  # validates timing and parameters
        assert not missing_capabilities(scenario.faults, (), "correct", spec)
        assert 1 <= len(schedule.faults) <= 3

    check()


def _outcome(schedule: TrialSchedule, kinds: frozenset[AnomalyKind], number: int = 1) -> TrialOutcome:
    return TrialOutcome(number, schedule, None, kinds, tuple((k, 1) for k in kinds), False, 0.0)


def _planted(schedule: TrialSchedule) -> frozenset[AnomalyKind]:
    """A planted bug: killing the payment consumer for 3 s or more charges twice."""
    bad = any(f.kind is FaultKind.KILL and f.target == "consumer.payment" and f.for_s >= 3 for f in schedule.faults)
    return frozenset({AnomalyKind.DUPLICATE_EFFECT}) if bad else frozenset()


def test_search_finds_a_planted_bug_and_shrinks_it_to_its_one_fault(tmp_path: Path) -> None:
    space = FaultSpace.of(OUTBOX, parse_kinds("kill,pause,outage"))
    runs: list[TrialSchedule] = []

    def trial(schedule: TrialSchedule) -> TrialOutcome:
        runs.append(schedule)
        return _outcome(schedule, _planted(schedule), len(runs))

    result = Search(space, trial, budget_s=60, reruns=3, database=None, say=lambda line: None).run(seed=3)
    assert result.best is not None and result.kinds == {AnomalyKind.DUPLICATE_EFFECT}
    best = result.best
    assert len(best.faults) == 1 and best.faults[0].target == "consumer.payment" and best.faults[0].for_s == 3
    assert best.duration_s == 6 and best.rate == 5  # shrunk to the least load the strategy draws
    assert best.size() <= result.first.size()  # type: ignore[union-attr]
    # every confirmation took k runs: the best schedule ran three times
    assert sum(1 for r in runs if r == best) == 3


def test_a_failure_that_does_not_reproduce_k_times_is_never_reported(tmp_path: Path) -> None:
    space = FaultSpace.of(OUTBOX, parse_kinds("kill"))
    seen: dict[TrialSchedule, int] = {}

    def flaky(schedule: TrialSchedule) -> TrialOutcome:
        # Noise: every schedule "fails" on its first and second runs, and passes on its third.
        seen[schedule] = seen.get(schedule, 0) + 1
        return _outcome(schedule, frozenset({AnomalyKind.LOST_EFFECT}) if seen[schedule] < 3 else frozenset())

    result = Search(space, flaky, budget_s=2, reruns=3, database=None, say=lambda line: None).run(seed=1)
    assert result.best is None and result.flaky
    assert result.stopped_by == "budget"


def test_a_known_failure_replays_first_from_the_example_database(tmp_path: Path) -> None:
    space = FaultSpace.of(OUTBOX, parse_kinds("kill,pause,outage"))
    first: list[int] = []
    for attempt in range(2):
        runs: list[TrialSchedule] = []

        def trial(schedule: TrialSchedule) -> TrialOutcome:
            runs.append(schedule)
            return _outcome(schedule, _planted(schedule))

        # A different session seed the second time: only the database can make it find the bug at once.
        result = Search(space, trial, budget_s=60, reruns=1, database=tmp_path / "db",
                        say=lambda line: None).run(seed=10 + attempt)
        assert result.best is not None
        first.append(runs.index(result.first))  # type: ignore[arg-type]
    assert first[1] == 0, f"the stored failure was not the first trial of the second session: {first}"


def test_the_written_module_is_an_ordinary_scenario_with_the_same_faults(tmp_path: Path) -> None:
    space = FaultSpace.of(OUTBOX, parse_kinds("crash,latency,duplicate"))

    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(trial_schedules(space))
    def check(schedule: TrialSchedule) -> None:
        path = write_scenario(tmp_path, "explore_outbox_x", schedule, pipeline="outbox", variant="no_idempotency",
                              kinds=(AnomalyKind.DUPLICATE_EFFECT,), evidence=['a """quoted""" C:\\path'])
        loaded = load_scenario(str(path))
        assert loaded.faults == schedule.faults and loaded.variant == "no_idempotency"
        assert loaded.duration_s == schedule.duration_s and loaded.pipelines == ("outbox",)

    check()


class _FakeInfra:
    def heal_all(self) -> None:
        pass


def test_interrupting_keeps_finished_trials_and_writes_the_best_schedule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.config import Settings

    class Runner:
        def __init__(self, **kwargs: object) -> None:
            self.outcomes: list[TrialOutcome] = []

        def __call__(self, schedule: TrialSchedule) -> TrialOutcome:
            if len(self.outcomes) >= 12:
                raise KeyboardInterrupt  # Ctrl-C in the middle of shrinking
            out = _outcome(schedule, _planted(schedule), len(self.outcomes) + 1)
            self.outcomes.append(out)
            return out

    monkeypatch.setattr(session_module, "TrialRunner", Runner)
    settings_ = Settings(home=tmp_path / "home", runs_dir=tmp_path / "runs", base_port=27900, schema_registry=None)
    opts = ExploreOptions(target="outbox", budget_s=60, seed=3, faults="kill,pause,outage", reruns=1,
                          out=tmp_path / "found", sweep=False)  # the planted bug is Hypothesis's to find
    with pytest.raises(KeyboardInterrupt):
        session_module.explore(opts, settings_, infra=_FakeInfra(), say=lambda line: None)
    written = list((tmp_path / "found").glob("*.py"))
    assert len(written) == 1
    assert load_scenario(str(written[0])).faults  # the best confirmed schedule so far, loadable
    trials = list((tmp_path / "runs").glob("explore-outbox-*/trials.jsonl"))
    assert len(trials) == 1 and len(trials[0].read_text().splitlines()) == 12
    import json

    summary = json.loads((trials[0].parent / "explore.json").read_text())
    assert summary["stopped_by"] == "interrupted" and summary["trials"] == 12 and summary["module"]


_TYPED_LOOP = ("from harness.sdk import crash_point\n"
               "for i, t in enumerate(['order.created', 'order.paid', 'order.created', 'order.paid', 'order.paid']):\n"
               "    crash_point('consumer.before_effect', t)\n"
               "    print(i, flush=True)\n")


def test_a_crash_armed_for_an_event_type_counts_only_records_of_that_type(tmp_path: Path) -> None:
    """Explore arms crashes for the N-th record of one type, so they land on records that matter."""
    import os
    import signal
    import subprocess
    import sys

    from harness.faults.crashpoints import CrashPoints

    points = CrashPoints(tmp_path)
    points.arm("consumer.payment", "consumer.before_effect", 2, event_type="order.paid")
    env = {**os.environ, "CHAOS_CRASHPOINTS_DIR": str(tmp_path), "CHAOS_PROCESS": "consumer.payment"}
    died = subprocess.run([sys.executable, "-c", _TYPED_LOOP], env=env, capture_output=True, text=True, timeout=30,
                          check=False)
    assert died.returncode == -signal.SIGKILL, died
    assert died.stdout.split() == ["0", "1", "2"], "it must die at the second paid record (the fourth record)"


def test_rewind_takes_only_a_consumer_of_the_target() -> None:
    from harness.faults.spec import FaultSpec, Rewind

    space = FaultSpace.of(OUTBOX, parse_kinds("rewind"))
    assert set(space.places[FaultKind.REWIND]) == {p.name for p in OUTBOX.processes if p.consumer}
    assert missing_capabilities((FaultSpec(FaultKind.REWIND, "relay", 0.2, 3, params=Rewind(0)),), (), "correct", OUTBOX)
    assert not missing_capabilities((FaultSpec(FaultKind.REWIND, "consumer.payment", 0.2, 3),), (), "correct", OUTBOX)
    with pytest.raises(UsageError, match="consumer of the target"):
        FaultSpec(FaultKind.REWIND, "kafka", 0.2, 3)


def test_overlapping_faults_on_one_process_are_drawn_inside_the_first_ones_window() -> None:
    """A stalled consumer killed while stalled: two faults on one process, the second inside the first."""
    from hypothesis import find

    from harness.explore.strategy import process_of

    space = FaultSpace.of(OUTBOX, parse_kinds("outage,kill"))

    def stalled_then_killed(schedule: TrialSchedule) -> bool:
        f = schedule.faults
        return any(a.kind is FaultKind.OUTAGE and b.kind is FaultKind.KILL and process_of(a) == process_of(b)
                   and a.target.endswith("->postgres") and a.at <= b.at < a.at + a.for_s / schedule.duration_s
                   for a in f for b in f)

    found = find(trial_schedules(space), stalled_then_killed,
                 settings=settings(max_examples=300, database=None, suppress_health_check=list(HealthCheck)))
    assert stalled_then_killed(found)


def test_latency_jitter_is_drawn_up_to_the_latency_itself() -> None:
    """Jitter as large as the delay lets answers overtake each other: commits land out of id order."""
    from hypothesis import find

    space = FaultSpace.of(OUTBOX, parse_kinds("latency"))
    found = find(trial_schedules(space), lambda s: any(
        isinstance(f.params, Latency) and f.params.jitter_ms >= f.params.latency_ms >= 100 for f in s.faults),
        settings=settings(max_examples=300, database=None, suppress_health_check=list(HealthCheck)))
    assert found.faults


def test_the_sweep_runs_first_and_a_failure_it_finds_is_confirmed_and_shrunk() -> None:
    """One schedule per defect class before random search: a stalled consumer killed mid-stall is the
    sweep's third pattern, and a bug only that pair opens is found by the third trial."""
    from harness.explore.strategy import process_of
    from harness.explore.sweep import sweep

    space = FaultSpace.of(OUTBOX, parse_kinds(None))
    patterns = sweep(space, OUTBOX, seed=5)
    names = [n for n, _ in patterns]
    assert names[:3] == ["redelivery", "poison", "stalled crash"] and "late commits" in names
    runs: list[TrialSchedule] = []

    def stalled_then_killed(schedule: TrialSchedule) -> TrialOutcome:
        runs.append(schedule)
        f = schedule.faults
        lost = any(a.kind is FaultKind.OUTAGE and b.kind is FaultKind.KILL and process_of(a) == process_of(b)
                   for a in f for b in f)
        return _outcome(schedule, frozenset({AnomalyKind.LOST_EFFECT}) if lost else frozenset(), len(runs))

    result = Search(space, stalled_then_killed, budget_s=60, reruns=2, database=None, sweep=patterns,
                    say=lambda line: None).run(seed=5)
    assert result.first == patterns[2][1] and runs.index(result.first) == 2
    assert result.best is not None and len(result.best.faults) == 2  # neither fault alone does it


def test_a_pattern_the_kinds_asked_for_cannot_make_is_left_out() -> None:
    from harness.explore.sweep import sweep

    crash_only = sweep(FaultSpace.of(OUTBOX, parse_kinds("crash")), OUTBOX, seed=1)
    assert [n for n, _ in crash_only] == ["publisher crash", "entrypoint crash"]
    points = [f.params.point for f in crash_only[0][1].faults]  # type: ignore[union-attr]
    assert points == list(OUTBOX.crash_points()["relay"])  # each crash point of the publisher, in turn
    cdc = resolve_target("cdc")
    assert "publisher crash" not in [n for n, _ in sweep(FaultSpace.of(cdc, parse_kinds(None)), cdc, seed=1)]


def test_only_a_best_effort_publisher_may_lose_and_only_when_its_publish_path_is_faulted() -> None:
    from harness.explore.design import BEST_EFFORT_LOSS, Design
    from harness.faults.spec import FaultSpec

    direct = Design.of(resolve_target("direct"))
    assert direct.best_effort_publisher == "app" and Design.of(OUTBOX).best_effort_publisher is None
    on_path = [FaultSpec(FaultKind.OUTAGE, "app->kafka", 0.2, 3), FaultSpec(FaultKind.KILL, "kafka", 0.2, 3),
               FaultSpec(FaultKind.PAUSE, "app", 0.2, 3), FaultSpec(FaultKind.LATENCY, "publisher->kafka", 0.2, 3)]
    off_path = [FaultSpec(FaultKind.OUTAGE, "app->postgres", 0.2, 3), FaultSpec(FaultKind.KILL, "consumer.payment", 0.2, 3),
                FaultSpec(FaultKind.DUPLICATE, "events", 0.2, 1)]
    for f in on_path:
        assert direct.allows([f]) == BEST_EFFORT_LOSS, f
        assert Design.of(OUTBOX).allows([f]) == frozenset(), f  # the outbox promises no loss under any fault
    for f in off_path:
        assert direct.allows([f]) == frozenset(), f
    assert AnomalyKind.DUPLICATE_EFFECT not in BEST_EFFORT_LOSS


def test_the_entrypoint_crashes_at_each_of_its_points_unless_it_is_the_publisher() -> None:
    """A write split over two commits dies between them only at a crash point of the entrypoint."""
    from harness.explore.sweep import sweep

    patterns = dict(sweep(FaultSpace.of(OUTBOX, parse_kinds("crash")), OUTBOX, seed=3))
    crashes = patterns["entrypoint crash"].faults
    assert [f.target for f in crashes] == [OUTBOX.entrypoint] * len(crashes)
    assert [f.params.point for f in crashes] == list(OUTBOX.crash_points()[OUTBOX.entrypoint])  # type: ignore[union-attr]
    assert [f.at for f in crashes] == sorted(f.at for f in crashes)  # one after the other: one arm per process
    direct = resolve_target("direct")  # its entrypoint publishes: the publisher crash is already that trial
    assert "entrypoint crash" not in dict(sweep(FaultSpace.of(direct, parse_kinds("crash")), direct, seed=3))


def test_consumer_crashes_kill_one_consumer_inside_its_slowed_database_then_every_other_once() -> None:
    from harness.explore.sweep import SLOW_DB_MS, sweep

    schedule = dict(sweep(FaultSpace.of(OUTBOX, parse_kinds("latency,kill")), OUTBOX, seed=4))["consumer crashes"]
    slow, *kills = schedule.faults
    assert slow.kind is FaultKind.LATENCY and slow.params == Latency(SLOW_DB_MS, 0, "downstream")
    consumer = slow.target.removesuffix("->postgres")
    inside = [k for k in kills if k.target == consumer]
    assert len(inside) == 3 and all(k.kind is FaultKind.KILL for k in kills)
    # Each kill of the slowed consumer lands inside the slowdown.
    start, end = slow.at * schedule.duration_s, slow.at * schedule.duration_s + slow.for_s
    assert all(start < k.at * schedule.duration_s < end for k in inside)
    others = [k.target for k in kills if k.target != consumer]
    assert sorted(others) == sorted(p.name for p in OUTBOX.processes if p.consumer and p.name != consumer)
    assert all(a.at < b.at for a, b in zip(kills, kills[1:]))  # one at a time
    assert "consumer crashes" not in dict(sweep(FaultSpace.of(OUTBOX, parse_kinds("kill")), OUTBOX, seed=4))


def test_swapped_steps_swap_a_later_pair_of_an_orders_events_and_only_when_reorder_is_asked_for() -> None:
    """Position 2 (order.paid behind order.shipped): a consumer that skips a step it cannot apply yet
    is found by it (bench/defects.py, consumer_skip_without_dlq); the first pair is the reorder scenario's."""
    from harness.explore.sweep import sweep
    from harness.faults.spec import Reordering

    schedule = dict(sweep(FaultSpace.of(OUTBOX, parse_kinds("reorder")), OUTBOX, seed=6))["swapped steps"]
    (swap,) = schedule.faults
    assert swap.kind is FaultKind.REORDER and isinstance(swap.params, Reordering)
    assert swap.params.position == 2 and swap.params.distance == 1
    assert "swapped steps" not in dict(sweep(FaultSpace.of(OUTBOX, parse_kinds("duplicate,kill")), OUTBOX, seed=6))


def test_a_pattern_is_the_same_trial_whichever_other_kinds_are_asked_for() -> None:
    """So a variant's session (--faults crash) and the correct pipeline's (more kinds) run the very same trial."""
    from harness.explore.sweep import sweep

    alone = dict(sweep(FaultSpace.of(OUTBOX, parse_kinds("crash")), OUTBOX, seed=12))
    together = dict(sweep(FaultSpace.of(OUTBOX, parse_kinds("duplicate,poison,outage,kill,crash,latency")), OUTBOX, seed=12))
    assert alone["publisher crash"] == together["publisher crash"]
    assert alone["entrypoint crash"] == together["entrypoint crash"]


def test_a_near_copy_of_a_schedule_that_passed_is_not_run_while_searching() -> None:
    """Moved, repeated, resized by less than a factor of two, under other load: the same window, not a new trial.
    Outlasting the delivery timeout, another place or another crash point is a new window."""
    from harness.faults.spec import Crash, FaultSpec

    space = FaultSpace.of(OUTBOX, parse_kinds("kill,latency,outage,crash"))
    slow = FaultSpec(FaultKind.LATENCY, "app->postgres", at=0.2, for_s=4.0, params=Latency(300, 100, "downstream"))
    first = TrialSchedule(10, 10, (slow,), seed=1)
    near = [
        TrialSchedule(12, 20, (replace(slow, at=0.6),), seed=2),  # later, more load
        TrialSchedule(10, 10, (slow, replace(slow, at=0.5)), seed=3),  # the same fault twice
        TrialSchedule(10, 10, (replace(slow, for_s=6.0, params=Latency(400, 120, "downstream")),), seed=4),
    ]
    new = [
        TrialSchedule(10, 10, (replace(slow, for_s=space.delivery_s + 5),), seed=5),  # outlasts the delivery timeout
        TrialSchedule(10, 10, (replace(slow, target="relay->postgres"),), seed=6),
        TrialSchedule(10, 10, (replace(slow, params=Latency(1200, 100, "downstream")),), seed=7),  # 4x the delay
        TrialSchedule(10, 10, (FaultSpec(FaultKind.CRASH, "app", 0.2, 2.0, params=Crash("app.before_commit", 1)),), 8),
        TrialSchedule(10, 10, (FaultSpec(FaultKind.CRASH, "app", 0.2, 2.0, params=Crash("app.after_commit", 1)),), 9),
    ]
    runs: list[TrialSchedule] = []

    def passes(schedule: TrialSchedule) -> TrialOutcome:
        runs.append(schedule)
        return _outcome(schedule, frozenset(), len(runs))

    search = Search(space, passes, budget_s=60, reruns=1, database=None,
                    sweep=[(f"s{i}", x) for i, x in enumerate([first, *near, *new])], max_trials=len(new) + 1,
                    say=lambda line: None)
    result = search.run(seed=1)
    assert runs == [first, *new]
    assert result.near_copies == len(near)


def test_max_trials_stops_the_search_after_that_many_trials() -> None:
    space = FaultSpace.of(OUTBOX, parse_kinds("kill,pause"))
    runs: list[TrialSchedule] = []

    def trial(schedule: TrialSchedule) -> TrialOutcome:
        runs.append(schedule)
        return _outcome(schedule, frozenset(), len(runs))

    result = Search(space, trial, budget_s=600, reruns=1, database=None, max_trials=3, say=lambda line: None).run(seed=2)
    assert len(runs) == 3 and result.stopped_by == "trials"


def test_a_child_that_completes_its_run_folder_and_then_hangs_is_stopped_and_its_verdict_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka's teardown after a broker kill can hang a `chaos run` child after its verdict is written."""
    import subprocess
    import sys

    from harness.config import Settings
    from harness.explore import trial as trial_module

    monkeypatch.setattr(trial_module, "EXIT_GRACE_S", 0.5)
    run_dir = tmp_path / "0001" / "runs" / "r1"
    hang = (f"import pathlib, threading; d = pathlib.Path({str(run_dir)!r}); d.mkdir(parents=True); "
            "(d / 'run.json').write_text('{}'); (d / 'phase').write_text('complete\\n'); threading.Event().wait()")
    child = subprocess.Popen([sys.executable, "-c", hang])
    lines: list[str] = []
    runner = trial_module.TrialRunner(settings=Settings(home=tmp_path, runs_dir=tmp_path, base_port=27900,
                                                        schema_registry=None),
                                      folder=tmp_path, target_ref="outbox", pipeline="outbox", variant="correct",
                                      say=lines.append)
    assert runner._wait(child, tmp_path / "0001", timeout_s=30) == trial_module.VERDICT_THEN_HUNG
    assert child.poll() is not None and "did not exit" in lines[0]


def test_a_session_stopped_by_its_budget_stores_no_example_that_did_not_fail(tmp_path: Path) -> None:
    """Hypothesis saves an example that raised; the search's stop signal must not look like a failure,
    or the next session replays a passing schedule first as a "known failure"."""
    space = FaultSpace.of(OUTBOX, parse_kinds("kill,pause"))

    def passing(schedule: TrialSchedule) -> TrialOutcome:
        return _outcome(schedule, frozenset())

    result = Search(space, passing, budget_s=600, reruns=1, database=tmp_path / "db", max_trials=2,
                    say=lambda line: None).run(seed=4)
    assert result.stopped_by == "trials"
    stored = [p for p in (tmp_path / "db").rglob("*") if p.is_file()]
    assert stored == [], f"a passing schedule was stored as an example: {stored}"
