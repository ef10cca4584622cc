"""The runner: one scenario, every pipeline in it, from infra to verdicts.

    scenario -> infra up -> target up -> workload + schedule -> heal -> drain
             -> final observations -> history -> checkers -> verdicts -> run folder

Faults heal in a finally and a heal-all (Toxiproxy reset) runs before drain and on
every way out, including Ctrl-C. Infra the runner started, it stops; infra it found
running (`chaos infra up`, the pytest session), it leaves running and healed.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shlex
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness.analysis import analyze, checkers
from harness.config import Settings
from harness.faults.crashpoints import CrashPoints
from harness.faults.heal import heal_all
from harness.faults.interposer import Interposer, InterposerState
from harness.faults.nemesis import Nemesis
from harness.faults.spec import FaultKind
from harness.faults.schedule import plan
from harness.history.ops import OpType, Scalar
from harness.history.store import HistoryWriter, Recorder
from harness.lag_alerts import LagAlert
from harness.run_folder import Phase, write_phase
from harness.infra.stack import Infra
from harness.capabilities import check_capabilities
from harness.scenario import Scenario
from harness.score import Score
from harness.scoring import PipelineVerdict, exit_code
from harness.story import Story
from harness.target import Drain, RunContext, Target, TargetSpec
from harness.target.links import LinkMonitor
from harness.target.registry import load_domain, resolve_target
from harness.target.runtime import SpecTarget
from harness.errors import SpecError, UsageError, WaitTimeout
from harness.wait import wait_for

__all__ = ["Progress", "RunResult", "build_target", "reproduce_command", "resolve_targets", "run_scenario"]

LAG_SAMPLE_S = 0.5  # how often the runner probes lag and backlog (I7 measures recovery from these)
OBSERVE_ATTEMPTS = 5  # final observations tried before a pipeline that keeps moving counts as not drained


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for live display: the runner reports, the renderer decides how to show it."""

    pipeline: str
    phase: str  # "starting", "traffic", "healing", "catch-up" (the interposer), "draining", "observing", "done"
    elapsed_s: float
    ok: int = 0
    fail: int = 0
    info: int = 0
    faults_active: tuple[str, ...] = ()
    lag: int | None = None  # publish backlog + consumer lag at the last lag probe
    rate: float | None = None  # ok client ops per second over the last few seconds


ProgressSink = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    run_dir: Path
    seed: int
    command: str
    verdicts: tuple[PipelineVerdict, ...]
    wall_s: float
    scores: tuple[Score, ...] = ()
    lag_alerts: tuple[LagAlert, ...] = ()  # per pipeline and consumer group with a threshold
    story: Story | None = None  # the case study's numbers, when the scenario tells one

    @property
    def exit_code(self) -> int:
        return exit_code(self.verdicts)

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"

    def verdict(self, pipeline: str) -> PipelineVerdict:
        return next(v for v in self.verdicts if v.pipeline == pipeline)


def new_seed() -> int:
    return secrets.randbelow(2**31)


def reproduce_command(scenario: Scenario, seed: int, duration_s: float, rate: float | None,
                      target_refs: tuple[str, ...] = (), scenario_ref: str | None = None) -> str:
    parts = ["chaos", "run", scenario_ref or scenario.name, "--seed", str(seed), "--duration", f"{duration_s:g}"]
    if rate is not None:
        parts += ["--rate", f"{rate:g}"]
    if target_refs:
        for ref in target_refs:
            parts += ["--target", ref]
    elif scenario.pipelines:
        parts += ["--pipelines", ",".join(scenario.pipelines)]
    if scenario.variant != "correct":
        parts += ["--variant", scenario.variant]
    return shlex.join(parts)


def resolve_targets(scenario: Scenario, refs: tuple[str, ...] = ()) -> tuple[Scenario, tuple[TargetSpec, ...]]:
    """The specs a run uses (``refs``, else the scenario's pipelines), checked against what it needs.

    Everything here happens before any infrastructure starts: a bad spec or a missing
    capability exits 4 at once.
    """
    from dataclasses import replace

    specs = tuple(resolve_target(r) for r in refs) if refs else tuple(resolve_target(p) for p in scenario.pipelines)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UsageError(f"two targets of this run share a name ({', '.join(names)}); give each target its own name")
    if refs:
        scenario = replace(scenario, pipelines=tuple(names))
    for spec in specs:
        check_capabilities(scenario.name, scenario.faults, scenario.needs, scenario.variant, spec)
        load_domain(spec.domain)  # an unknown domain pack is a spec error, found now rather than after infra
    return scenario, specs


def build_target(spec: TargetSpec, infra: Infra, ctx: RunContext) -> Target:
    """The running Target of ``spec``: its own runtime if it brings one, else the generic ``SpecTarget``."""
    if spec.runtime is not None:
        return spec.runtime(spec, infra, ctx)
    return SpecTarget(spec, infra, ctx, load_domain(spec.domain))


def run_scenario(
    scenario: Scenario,
    *,
    settings: Settings,
    seed: int,
    infra: Infra | None = None,
    rate: float | None = None,
    progress: ProgressSink = lambda p: None,
    say: Callable[[str], None] = print,
    targets: tuple[str, ...] = (),
    scenario_ref: str | None = None,
) -> RunResult:
    """Run ``scenario`` on its pipelines, or on ``targets`` (names, module:attr or .toml paths) when given."""
    scenario, specs = resolve_targets(scenario, targets)
    started = time.monotonic()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{secrets.token_hex(2)}"
    run_dir = settings.runs_dir / f"{scenario.name}-{run_id}"
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = reproduce_command(scenario, seed, scenario.duration_s, rate, targets, scenario_ref)
    say(f"chaos: scenario {scenario.name}, seed {seed}; reproduce with: {command}")
    say(f"chaos: run folder {run_dir}")
    write_phase(run_dir, Phase.RUNNING)  # kept if the run stops here: `chaos analyze` then says so

    owned = infra is None
    if infra is None:
        infra = Infra.attach(settings)
        owned = infra is None
        if infra is None:
            say("chaos: starting infra (Postgres, Kafka, Toxiproxy) for this run ...")
            infra = Infra.start(settings, logs_dir=logs)
        else:
            say(f"chaos: using the infra already running on base port {settings.base_port}")
    _write_run_json(run_dir, scenario, seed, command, infra, run_id, specs)
    writer = HistoryWriter(run_dir / "history.jsonl", run_id, seed)
    histories = {}
    try:
        infra.heal_all()  # start from a clean network whatever an earlier run left
        for spec in specs:
            pipeline = spec.name
            recorder = writer.recorder(pipeline)
            interposed = any(f.kind is FaultKind.REORDER for f in scenario.faults)
            ctx = RunContext(run_id, pipeline, logs, seed, interposed, scenario.variant)
            _run_pipeline(scenario, spec, infra, recorder, ctx, progress)
            histories[pipeline] = recorder.history()
    finally:
        writer.close()
        try:
            infra.heal_all()
        finally:
            if owned:
                infra.stop()

    _write_columnar(writer.path)
    write_phase(run_dir, Phase.CHECKING)
    verdicts = analyze(histories, scenario.expect, checkers(scenario.recovery_budget_s), scenario.variant)
    wall_s = time.monotonic() - started
    # results.json, junit.xml and report.html: the same code path as `chaos report RUN_DIR`.
    from harness.report.outputs import write_outputs

    outputs = write_outputs(run_dir, histories, verdicts, wall_s=wall_s, storyteller=scenario.story)
    write_phase(run_dir, Phase.COMPLETE)
    result = RunResult(run_id, run_dir, seed, command, verdicts, wall_s, outputs.scores, outputs.lag_alerts,
                       outputs.story)
    say(f"chaos: seed {seed}; reproduce with: {command}")
    say(f"chaos: report {result.report_path}")
    return result


def _run_pipeline(scenario: Scenario, spec: TargetSpec, infra: Infra, recorder: Recorder, ctx: RunContext,
                  progress: ProgressSink) -> None:
    pipeline = spec.name
    t_start = time.monotonic()
    # The anchor between this pipeline's monotonic clock and the epoch times effects carry
    # (applied_at_ms): what end-to-end latency is measured with.
    recorder.record("probe", OpType.OK, "clock", value={"epoch_ms": int(time.time() * 1000)})
    target = build_target(spec, infra, ctx)
    progress(Progress(pipeline, "starting", 0.0))
    cold_before = infra.connect_cold_start_s
    registry_before = infra.registry_cold_start_s
    # Watching starts before the target does: its first connections are the proof a link is used.
    monitor = LinkMonitor(infra.topology.bind(target.links())).start()
    try:
        target.start()
    except BaseException:
        monitor.stop()
        raise
    # The harness's waits, each on the record with how long it took: starting the target here,
    # the interposer's catch-up and the drain below (their samples), and reading what it left.
    recorder.record("probe", OpType.OK, "target-ready", value={"waited_s": round(time.monotonic() - t_start, 3)})
    if infra.connect_cold_start_s is not None and infra.connect_cold_start_s != cold_before:
        # This target paid Kafka Connect's cold start: a measurement for the report, not a verdict.
        recorder.record("probe", OpType.OK, "connect_start", value={"cold_start_s": round(infra.connect_cold_start_s, 2)})
    if infra.registry_cold_start_s is not None and infra.registry_cold_start_s != registry_before:
        recorder.record("probe", OpType.OK, "schema_registry_start",
                        value={"cold_start_s": round(infra.registry_cold_start_s, 2)})
    interposer = Interposer(infra.topology.kafka_direct, target.topic) if ctx.interposed else None
    try:
        if interposer is not None:
            interposer.start()
        schedule = plan(scenario.faults, scenario.duration_s, ctx.seed)
        nemesis = Nemesis(schedule, infra, target, recorder, CrashPoints(target.crashpoints_dir), interposer)
        workload = target.workload(recorder, scenario.shape, scenario.duration_s, ctx.seed)
        stop = threading.Event()
        # One origin for the workload's arrivals and the fault windows: both plans are relative to it.
        t0 = time.monotonic()
        lag = _LagProbe(target, recorder, interposer)
        probe_stop = threading.Event()
        threads = [threading.Thread(target=workload.run, args=(stop, t0), name="workload"),
                   threading.Thread(target=nemesis.run, args=(stop, t0), name="nemesis")]
        prober = threading.Thread(target=lag.run, args=(probe_stop,), name="lag-probe")
        for t in (*threads, prober):
            t.start()
        recent: list[tuple[float, int]] = []
        try:
            while threads[0].is_alive() or threads[1].is_alive():
                threads[0].join(0.5)
                counts = _counts(recorder)
                now = time.monotonic()
                recent = [(t, n) for t, n in recent if now - t <= 5.0] + [(now, counts[0])]
                rate = (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0]) if len(recent) > 1 else None
                progress(Progress(pipeline, "traffic", now - t_start, *counts,
                                  faults_active=tuple(nemesis.active), lag=lag.last, rate=rate))
        finally:
            stop.set()
            probe_stop.set()
            for t in (*threads, prober):
                t.join()
            # Was the workload open-loop? A client that fell behind its plan under-reports the load.
            recorder.record("probe", OpType.OK, "workload", value={
                "clients": workload.concurrency, "max_start_late_s": round(workload.max_start_late_s, 3)})
            # Heal-all before drain, whatever the nemesis managed to do (proxies, toxics, paused processes).
            heal_all(infra, target)
            if interposer is not None:
                interposer.release()
        if interposer is not None:
            _catch_up(interposer, scenario.drain_timeout_s, recorder, pipeline, progress, t_start)
        progress(Progress(pipeline, "draining", time.monotonic() - t_start, *_counts(recorder)))
        drained = _drain(target, scenario.drain_timeout_s, recorder, pipeline, progress, t_start, interposer)
        observing = time.monotonic()
        progress(Progress(pipeline, "observing", observing - t_start, *_counts(recorder)))
        sources, settled = _observe_settled(target, drained, scenario.drain_timeout_s, recorder, pipeline, progress,
                                            t_start, interposer)
        recorder.observe("drain", [{"drained": drained and settled,
                                    "nemesis_errors": "; ".join(nemesis.errors) or None}])
        for source, rows in sources.items():
            recorder.observe(source, list(rows))
        recorder.record("probe", OpType.OK, "observed", value={"waited_s": round(time.monotonic() - observing, 3)})
        unused = monitor.stop()
        recorder.observe("links", [{"link": name, "connected": name not in unused} for name in target.links()])
        if unused:
            raise SpecError(
                f"target {spec.name}: no process connected through {', '.join(unused)} during the whole run, so "
                "every fault on it would be a no-op; have the process use its CHAOS_LINK_*/CHAOS_KAFKA/CHAOS_PG_DSN "
                "address, or remove the service from its links")
    finally:
        monitor.stop()
        try:
            if interposer is not None:
                interposer.stop()
        finally:
            target.stop()
    progress(Progress(pipeline, "done", time.monotonic() - t_start, *_counts(recorder)))


def _counts(recorder: Recorder) -> tuple[int, int, int]:
    ops = recorder.history().client_ops()
    return (sum(1 for o in ops if o.type.value == "ok"), sum(1 for o in ops if o.type.value == "fail"),
            sum(1 for o in ops if o.type.value == "info"))


def _record_interposer(recorder: Recorder, state: InterposerState) -> None:
    recorder.record("probe", OpType.OK, "interposer", value={
        "lag": state.lag, "unread": state.unread, "held": state.held, "unacked": state.unacked,
        "forwarded": state.forwarded, "swapped": state.swapped})


def _catch_up(interposer: Interposer, timeout_s: float, recorder: Recorder, pipeline: str, progress: ProgressSink,
              t_start: float) -> None:
    """Wait for the interposer to forward what was published; every sample goes to the history."""
    started = time.monotonic()

    def report(state: InterposerState) -> None:
        _record_interposer(recorder, state)
        progress(Progress(pipeline, "catch-up", time.monotonic() - t_start, *_counts(recorder), lag=state.lag))

    try:
        interposer.caught_up(timeout_s, report)
    finally:
        # How long the harness's own hop held the run up: bench/reruns.py reads it back.
        recorder.record("probe", OpType.OK, "interposer-caught-up",
                        value={"waited_s": round(time.monotonic() - started, 3)})


def _drain(target: Target, timeout_s: float, recorder: Recorder, pipeline: str, progress: ProgressSink,
           t_start: float, interposer: Interposer | None = None) -> bool:
    def observe() -> tuple[bool, str]:
        state = target.drain_state()
        _record_lag(recorder, state, "drain")
        # A publisher may still be emptying its backlog into the interposer topic: the pipeline
        # has drained only when the harness's hop has forwarded that too.
        hop = interposer.state() if interposer is not None else None
        if hop is not None:
            _record_interposer(recorder, hop)
        owed = hop.lag if hop is not None else 0
        progress(Progress(pipeline, "draining", time.monotonic() - t_start,
                          lag=state.publish_backlog + state.consumer_lag + owed))
        return state.done and owed == 0, (f"publish backlog {state.publish_backlog}, consumer lag {state.consumer_lag}"
                                          + (f", {hop.describe()}" if hop is not None else ""))

    try:
        last = wait_for(observe, timeout_s=timeout_s, what=f"pipeline {pipeline} to drain", interval_s=LAG_SAMPLE_S)
        recorder.record("probe", OpType.OK, "drain", value={"state": last})
        return True
    except WaitTimeout as exc:
        # Not an infra failure: a pipeline that cannot drain is evidence for the checkers.
        recorder.record("probe", OpType.INFO, "drain", value={"state": exc.last})
        return False


def _observe_settled(target: Target, drained: bool, timeout_s: float, recorder: Recorder, pipeline: str,
                     progress: ProgressSink, t_start: float, interposer: Interposer | None
                     ) -> tuple[Mapping[str, list[Mapping[str, Scalar]]], bool]:
    """The target's final observation, read while nothing moved: (sources, settled).

    The sources are read one after another (tables, then topics), so a pipeline still at work
    while they are read gives a snapshot no moment ever had: a process resumed at the heal still
    answering the requests queued while it was paused committed orders after the orders table was
    read and published them before the topic was, which the checkers then saw as phantom events
    and vanished records. A drained reading (nothing owed) before and after, with the same number of
    records on the topic, shows nothing was committed, published or applied in between; otherwise
    the pipeline is drained again and read again, up to OBSERVE_ATTEMPTS times. Each unsettled
    attempt is a probe op in the history; a pipeline that never settles counts as not drained.
    """
    if not drained:
        return target.observe(), False  # the drain's timeout is the evidence already
    sources: Mapping[str, list[Mapping[str, Scalar]]] = {}
    for attempt in range(1, OBSERVE_ATTEMPTS + 1):
        before = target.drain_state()
        sources = target.observe()
        after = target.drain_state()
        if before.done and after.done and before.published == after.published:
            return sources, True
        recorder.record("probe", OpType.INFO, "observe-unsettled", value={
            "attempt": attempt, "published_before": before.published, "published_after": after.published,
            "backlog": after.publish_backlog, "lag": after.consumer_lag})
        if not _drain(target, timeout_s, recorder, pipeline, progress, t_start, interposer):
            return target.observe(), False
    return sources, False


def _record_lag(recorder: Recorder, state: Drain, phase: str) -> None:
    """One lag sample: the totals I7 (bounded-recovery) and the score read, then one op per consumer group
    with its lag per partition (``p0``, ``p1``, ...: op values are flat scalars), which lag alerts read
    (harness/history/observations.py, harness/lag_alerts.py)."""
    recorder.record("probe", OpType.OK, "lag", value={
        "lag": state.consumer_lag, "backlog": state.publish_backlog,
        # Each group's total as ``lag:<consumer>``: the score judges the worst group (harness.score).
        **{f"lag:{consumer}": sum(n for _, n in parts) for consumer, parts in state.groups}})
    for consumer, parts in state.groups:
        recorder.record("probe", OpType.OK, "group_lag", key=consumer,
                        value={"phase": phase, "total": sum(n for _, n in parts), **{f"p{p}": n for p, n in parts}})


class _LagProbe:
    """Samples publish backlog and consumer lag every LAG_SAMPLE_S into the history.

    The report charts them and the score takes peak lag and recovery time from them. A
    probe that fails is recorded as such; it never stops the run.
    """

    INTERVAL_S = LAG_SAMPLE_S

    def __init__(self, target: Target, recorder: Recorder, interposer: Interposer | None = None) -> None:
        self.target = target
        self.recorder = recorder
        self.interposer = interposer
        self.last: int | None = None

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                state = self.target.drain_state()
            except Exception as exc:  # noqa: BLE001 - a failed probe is evidence, not a reason to stop the run
                self.recorder.record("probe", OpType.FAIL, "lag", error=f"{type(exc).__name__}: {exc}")
            else:
                self.last = state.publish_backlog + state.consumer_lag
                _record_lag(self.recorder, state, "traffic")
            if self.interposer is not None:
                # The harness's own hop, sampled beside the pipeline: its lag is not the pipeline's.
                try:
                    _record_interposer(self.recorder, self.interposer.state())
                except Exception as exc:  # noqa: BLE001 - a failed probe is evidence, not a reason to stop the run
                    self.recorder.record("probe", OpType.FAIL, "interposer", error=f"{type(exc).__name__}: {exc}")
            # Sampling on a period, not waiting for a condition.
            stop.wait(self.INTERVAL_S)


def _write_columnar(jsonl: Path) -> None:
    """history.arrow beside the finished history.jsonl, so `chaos analyze` and `chaos report` map it
    instead of parsing the jsonl. Derived, so best effort: without it they read the jsonl (and build it)."""
    from harness.history.store import load_histories

    try:
        load_histories(jsonl)  # reads the jsonl as analysis would and writes its columnar form
    except (OSError, UsageError):
        pass  # the live verdicts do not need it; analysis of the folder reads the jsonl instead


def _write_run_json(run_dir: Path, scenario: Scenario, seed: int, command: str, infra: Infra, run_id: str,
                    specs: tuple[TargetSpec, ...]) -> None:
    meta = {
        "run_id": run_id,
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": seed,
        "command": command,
        "duration_s": scenario.duration_s,
        "pipelines": list(scenario.pipelines),
        "variant": scenario.variant,
        "targets": [{"name": t.name, "origin": t.origin, "domain": t.domain, "processes": list(t.process_names()),
                     "links": list(t.links()), "lag_thresholds": [x.to_json() for x in t.lag_thresholds]}
                    for t in specs],
        "faults": [{"kind": f.kind.value, "target": f.target, "at": f.at, "for_s": f.for_s,
                    "params": dict(f.param_items())} for f in scenario.faults],
        "expect": [e.to_json() for e in scenario.expect],
        "recovery_budget_s": scenario.recovery_budget_s,
        "lag_thresholds": [t.to_json() for t in scenario.lag_thresholds],
        "versions": {**infra.versions(), "python": platform.python_version(), "chaos-harness": _version()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "started_at": datetime.now(timezone.utc).isoformat(),
        "argv": sys.argv,
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chaos-harness")
    except PackageNotFoundError:
        return "dev"
