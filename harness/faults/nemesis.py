"""The nemesis: runs a planned schedule of faults against a target and records them as ops.

For each window, in its own thread so windows may overlap:
  ``inject`` invoke/ok|fail -> the window (until its end, or until the fault says it is
  done, e.g. a crashed process) -> ``heal`` invoke/ok|fail, in a finally, whatever
  happened, including an interrupted run -> ``effect`` ok|fail (did the fault bite?),
  measured after the heal so a slow probe never stretches a fault past its window.
After the last window a ``heal-all`` op restores every proxy, toxic and process.

The effect of a fault is measured, not assumed:
  - faults that know their own effect report it (messages published, crash fired);
  - every other fault is probed: the target's pending work (publish backlog + consumer
    lag) sampled during the window, minus a baseline sampled just before inject, plus
    the client requests that failed or timed out during the window.
An effect of 0 makes the stats checker call the run unknown, never pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from harness.errors import ChaosError, UsageError
from harness.faults.base import Evidence, Fault, Touching
from harness.faults.crashpoints import CrashPoints
from harness.faults.dlq import DeadLetterRefusal
from harness.faults.heal import heal_all
from harness.faults.messages import DuplicateDelivery, PoisonMessage, SchemaDriftFault
from harness.faults.network import LinkOutage, ToxicFault, toxics_for
from harness.faults.process import CrashFault, InfraHost, ProcessKill, ProcessPause, ProcessRestart, find_host
from harness.faults.schedule import PlannedFault, Schedule
from harness.faults.interposer import Interposer, ReorderFault
from harness.faults.group import GroupReset, ReplicaHost, ScaleOut
from harness.faults.offsets import OffsetRewind
from harness.faults.spec import (
    Crash, Duplicate, FaultKind, Poison, Reordering, Rewind, Scale, SchemaDrift, TargetType, kind_info,
)
from harness.history.ops import OpType, Scalar
from harness.history.store import Recorder
from harness.infra.stack import Infra
from harness.target import Target

__all__ = ["Nemesis", "build_fault"]

SAMPLE_EVERY_S = 0.5


def _process_name(name: str, target: Target) -> str:
    return target.resolve_process(name)


def _consumer_entry(process: str, target: Target, table: str, what: str, required: bool = True) -> str | None:
    """What the target's ``table`` (``groups``, ``dlq_topics``: consumer -> name) holds for a consumer
    process (replicas share their process's); None for a process that is no consumer, when not ``required``.
    ``what`` finishes the errors: "its offsets moved", "its dead-letter topic made to refuse"."""
    spec = getattr(target, "spec", None)
    entries = getattr(target, table, None)
    if spec is None or entries is None:
        raise UsageError(f"target {type(target).__name__} has no {table} (consumer -> name), so {process} cannot "
                         f"have {what}")
    consumer = spec.process(process.split("#", 1)[0]).consumer
    if consumer is None or consumer not in entries:
        if not required:
            return None
        raise UsageError(f"{process} is not a consumer of this target, so it cannot have {what}")
    return str(entries[consumer])


def _group_of(process: str, target: Target, required: bool = True) -> str | None:
    """The consumer group of a consumer process."""
    return _consumer_entry(process, target, "groups", "its offsets moved", required)


def _dlq_topic_of(process: str, target: Target) -> str:
    """The dead-letter topic of a consumer process."""
    return str(_consumer_entry(process, target, "dlq_topics", "its dead-letter topic made to refuse"))


def build_fault(planned: PlannedFault, infra: Infra, target: Target, crashpoints: CrashPoints | None = None,
                interposer: Interposer | None = None) -> Fault:
    """The injector for one planned window; UsageError if the target has no such link or process."""
    kind, params = planned.kind, planned.params
    info = kind_info(kind)
    if kind is FaultKind.OUTAGE:
        return LinkOutage(infra.link(target.resolve_link(planned.target)), infra.toxiproxy)
    if info.target is TargetType.LINK:
        link = infra.link(target.resolve_link(planned.target))
        return ToxicFault(kind.value, link, infra.toxiproxy, toxics_for(kind, params))
    if kind is FaultKind.SLOW_CONSUMER:
        link = infra.link(target.resolve_link(f"{planned.target}->kafka"))
        return ToxicFault(kind.value, link, infra.toxiproxy, toxics_for(kind, params))
    if kind is FaultKind.SCHEMA_DRIFT:
        assert isinstance(params, SchemaDrift)
        if crashpoints is None:
            raise UsageError("this target has no crash-point folder, so schema drift cannot be switched on")
        find_host(planned.target, target)
        return SchemaDriftFault(planned.target, crashpoints.folder, params.change, target.topic,
                                infra.topology.kafka_direct)
    if info.target is TargetType.PROCESS:
        name = _process_name(planned.target, target)
        host = find_host(name, target, InfraHost(infra))
        if kind is FaultKind.KILL:
            return ProcessKill(name, host)
        if kind is FaultKind.PAUSE:
            return ProcessPause(name, host)
        if kind is FaultKind.RESTART:
            return ProcessRestart(name, host)
        if kind is FaultKind.REWIND:
            assert isinstance(params, Rewind)
            return OffsetRewind(name, host, str(_group_of(name, target)), target.topic, infra.topology.kafka_direct,
                                params.records)
        if kind is FaultKind.DLQ_REFUSED:
            return DeadLetterRefusal(name, _dlq_topic_of(name, target), infra.topology.kafka_direct)
        if kind is FaultKind.GROUP_RESET:
            return GroupReset(name, host, str(_group_of(name, target)), target.topic, infra.topology.kafka_direct)
        if kind is FaultKind.SCALE:
            assert isinstance(params, Scale)
            if not isinstance(target, ReplicaHost) or host is not target:
                raise UsageError(f"{name} cannot be scaled: only a process of the target whose runtime starts "
                                 "replicas (SpecTarget.add_replicas) can, not an infra process")
            return ScaleOut(name, target, params.instances, params.stop == "kill", _group_of(name, target, False),
                            infra.topology.kafka_direct, target.spec.partitions)
        if kind is FaultKind.CRASH:
            assert isinstance(params, Crash)
            if crashpoints is None:
                raise UsageError("this target has no crash-point folder, so crash faults cannot be armed")
            return CrashFault(name, host, crashpoints, params.point, params.passage, params.event_type)
    topic = target.topic
    if kind is FaultKind.DUPLICATE:
        assert isinstance(params, Duplicate)
        return DuplicateDelivery(topic, target.group, infra.topology.kafka_direct, params.count)
    if kind is FaultKind.REORDER:
        assert isinstance(params, Reordering)
        if interposer is None:
            raise UsageError("a reorder fault needs the interposer topic; the runner adds it when the scenario "
                             "has a reorder fault (RunContext.interposed)")
        return ReorderFault(interposer, params.entities, params.position, params.distance)
    if kind is FaultKind.POISON:
        assert isinstance(params, Poison)
        return PoisonMessage(topic, infra.topology.kafka_direct, params.count)
    raise ChaosError(f"no injector for fault kind {kind.value}")


def _flat_params(planned: PlannedFault) -> dict[str, Scalar]:
    from dataclasses import fields

    return {f"p.{f.name}": getattr(planned.params, f.name) for f in fields(planned.params)}  # type: ignore[arg-type]


class Nemesis:
    def __init__(self, schedule: Schedule | tuple[PlannedFault, ...], infra: Infra, target: Target,
                 recorder: Recorder, crashpoints: CrashPoints | None = None, interposer: Interposer | None = None) -> None:
        self.schedule = schedule
        faults = schedule.faults if isinstance(schedule, Schedule) else schedule
        self.faults = [(p, build_fault(p, infra, target, crashpoints, interposer)) for p in faults]
        self.infra = infra
        self.target = target
        self.recorder = recorder
        self.active: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def run(self, stop: threading.Event, t0: float) -> None:
        threads: list[threading.Thread] = []
        try:
            for planned, fault in self.faults:
                # Waiting for a scheduled moment (the plan), not for a condition.
                if stop.wait(max(0.0, planned.start_s - (time.monotonic() - t0))):
                    break
                t = threading.Thread(target=self._window, args=(planned, fault, stop, t0),
                                     name=f"fault-{planned.id}-{fault.name}")
                t.start()
                threads.append(t)
        finally:
            for t in threads:
                t.join()
            self.heal_all()

    def heal_all(self) -> None:
        rec = self.recorder
        rec.record("nemesis", OpType.INVOKE, "heal-all")
        try:
            heal_all(self.infra, self.target)
            rec.record("nemesis", OpType.OK, "heal-all")
        except ChaosError as exc:
            rec.record("nemesis", OpType.FAIL, "heal-all", error=str(exc))
            self.errors.append(f"heal-all: {exc}")

    # ---- one window ------------------------------------------------------------------
    def _pending(self) -> int:
        try:
            state = self.target.drain_state()
        except Exception:
            # With the broker itself down, consumer lag cannot be read; the source-side backlog
            # (an outbox table) often still can, and it is what a broker fault backs up.
            return int(self.target.publish_backlog())
        return state.publish_backlog + state.consumer_lag

    def _client_errors(self, since: float, until: float) -> int:
        return sum(1 for op in self.recorder.history().client_ops()
                   if since <= op.time_s <= until and op.type in (OpType.FAIL, OpType.INFO))

    def _window(self, planned: PlannedFault, fault: Fault, stop: threading.Event, t0: float) -> None:
        value: dict[str, Scalar] = {"id": planned.id, "fault": fault.name, "target": fault.target, **_flat_params(planned)}
        rec = self.recorder
        label = f"{fault.name}@{fault.target}"
        own_effect: Callable[[], int] | None = getattr(fault, "effect", None)
        done: Callable[[], bool] | None = getattr(fault, "done", None)
        sampler = None if own_effect is not None else _Sampler(self._pending)
        rec.record("nemesis", OpType.INVOKE, "inject", value=value)
        injected = False
        since = until = rec.now()
        try:
            try:
                fault.inject()
            except Exception as exc:  # noqa: BLE001 - any failed inject is recorded: the verdict becomes unknown
                rec.record("nemesis", OpType.FAIL, "inject", value=value, error=f"{type(exc).__name__}: {exc}")
                self._error(f"inject {label}: {type(exc).__name__}: {exc}")
                return
            injected = True
            since = rec.now()
            rec.record("nemesis", OpType.OK, "inject", value=value)
            with self._lock:
                self.active.append(label)
            if sampler is not None:
                sampler.start()
            while not stop.is_set():
                left = planned.end_s - (time.monotonic() - t0)
                if left <= 0 or (done is not None and done()):
                    break
                stop.wait(min(left, 0.1))  # a deadline (the plan) or a condition (done), whichever first
        finally:
            # Heal first, measure after: a probe that hangs (a paused Postgres, a dead broker) must
            # never stretch the fault beyond its planned window.
            until = rec.now()
            if sampler is not None:
                sampler.stop.set()
            rec.record("nemesis", OpType.INVOKE, "heal", value=value)
            try:
                fault.heal()
                rec.record("nemesis", OpType.OK, "heal", value=value)
            except Exception as exc:  # noqa: BLE001 - recorded and reported; heal-all still runs after
                rec.record("nemesis", OpType.FAIL, "heal", value=value, error=f"{type(exc).__name__}: {exc}")
                self._error(f"heal {label}: {type(exc).__name__}: {exc}")
            with self._lock:
                if label in self.active:
                    self.active.remove(label)
            if injected:
                self._effect(fault, value, own_effect, sampler, since, until)

    def _effect(self, fault: Fault, value: dict[str, Scalar], own_effect: Callable[[], int] | None,
                sampler: _Sampler | None, since: float, until: float) -> None:
        rec = self.recorder
        try:
            if own_effect is not None:
                observed: dict[str, Scalar] = {**value, "observed": own_effect()}
                if isinstance(fault, Touching):  # what attribution holds this fault to (harness/attribution.py)
                    observed["touched"] = ",".join(sorted(fault.touched()))
                if isinstance(fault, Evidence):  # what the fault saw, beside its effect (group members, ...)
                    observed.update({f"e.{k}": v for k, v in fault.evidence().items()})
                rec.record("nemesis", OpType.OK, "effect", value=observed)
                return
            assert sampler is not None
            delta = sampler.finish()
            errors = self._client_errors(since, until)
            measured = delta is not None or errors > 0
            rec.record("nemesis", OpType.OK if measured else OpType.FAIL, "effect",
                       value={**value, "observed": (delta or 0) + errors, "pending_delta": delta,
                              "client_errors": errors, "samples": sampler.count},
                       error=None if measured else f"no pending-work sample succeeded: {sampler.last_error}")
        except Exception as exc:  # noqa: BLE001 - a failed probe is recorded (the verdict turns unknown)
            rec.record("nemesis", OpType.FAIL, "effect", value=value, error=f"{type(exc).__name__}: {exc}")

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)


class _Sampler:
    """Samples a target's pending work in the background and keeps its largest rise.

    The rise is the largest increase from any sample to a later one, the baseline taken
    just before inject being the first. Peak minus baseline would be fooled by a backlog
    an earlier fault left behind, draining while this one is active.
    """

    def __init__(self, probe: Callable[[], int]) -> None:
        self.probe = probe
        self.stop = threading.Event()
        self.count = 0
        self.last_error = ""
        self._low: int | None = None
        self.rise: int | None = None
        self._lock = threading.Lock()
        self._add(self._sample())  # the baseline, before inject: what was pending anyway
        self._thread = threading.Thread(target=self._run, name="effect-sampler", daemon=True)

    def _sample(self) -> int | None:
        try:
            return int(self.probe())
        except Exception as exc:  # noqa: BLE001 - a failed sample is kept as evidence, not raised
            self.last_error = f"{type(exc).__name__}: {exc}"
            return None

    def _add(self, value: int | None) -> None:
        if value is None:
            return
        with self._lock:
            self.count += 1
            if self._low is not None:
                self.rise = max(self.rise or 0, value - self._low)
            self._low = value if self._low is None else min(self._low, value)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self._add(self._sample())
            self.stop.wait(SAMPLE_EVERY_S)

    def finish(self) -> int | None:
        """The largest rise of pending work during the window; None if fewer than two samples succeeded."""
        self.stop.set()
        if self.count < 2:  # a short window still gets a second sample; a long one is not held up by it
            self._add(self._sample())
        with self._lock:
            return self.rise
