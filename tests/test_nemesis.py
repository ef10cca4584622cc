"""The nemesis without infrastructure: windows overlap, heals always run, failures and no-effects turn unknown."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from harness.checkers.base import Validity
from harness.checkers.stats import Stats, fault_windows
from harness.errors import ChaosError
from harness.faults.nemesis import Nemesis
from harness.faults.schedule import PlannedFault, Schedule
from harness.faults.spec import FaultKind, NoParams
from harness.history.ops import OpType
from harness.history.store import Recorder
from harness.target import Drain


@dataclass
class FakeFault:
    name: str
    target: str = "relay->kafka"
    fail_inject: Exception | None = None
    own_effect: int | None = None
    log: list[str] = field(default_factory=list)

    def inject(self) -> None:
        self.log.append(f"inject {self.name}")
        if self.fail_inject is not None:
            raise self.fail_inject

    def heal(self) -> None:
        self.log.append(f"heal {self.name}")


@dataclass
class EffectFault(FakeFault):
    def effect(self) -> int:
        return self.own_effect or 0


class FakeTarget:
    def __init__(self, pending: list[int]) -> None:
        self.pending = pending

    def processes(self) -> dict[str, object]:
        return {}

    def drain_state(self) -> Drain:
        value = self.pending.pop(0) if len(self.pending) > 1 else self.pending[0]
        return Drain(publish_backlog=value, consumer_lag=0)


class FakeInfra:
    healed = 0
    processes: dict[str, object] = {}

    def heal_all(self) -> None:
        self.healed += 1


def _nemesis(faults: list[tuple[float, float, FakeFault]], pending: list[int]) -> tuple[Nemesis, Recorder, FakeInfra]:
    recorder = Recorder(None, "outbox")
    planned = [PlannedFault(i, FaultKind.OUTAGE, f.target, start, end, NoParams()) for i, (start, end, f) in enumerate(faults)]
    infra = FakeInfra()
    nemesis = Nemesis(Schedule((), 1.0), infra, FakeTarget(pending), recorder)  # type: ignore[arg-type]
    nemesis.faults = [(p, f) for p, (_, _, f) in zip(planned, faults)]
    return nemesis, recorder, infra


def _traffic(recorder: Recorder, stop: threading.Event) -> None:
    while not stop.is_set():
        recorder.record("client-0", OpType.INVOKE, "place", "o1")
        recorder.record("client-0", OpType.OK, "place", "o1")
        stop.wait(0.02)


def _run(nemesis: Nemesis, recorder: Recorder) -> None:
    stop = threading.Event()
    clients = threading.Thread(target=_traffic, args=(recorder, stop))
    clients.start()
    try:
        nemesis.run(threading.Event(), time.monotonic())
    finally:
        stop.set()
        clients.join()


def test_overlapping_windows_each_inject_measure_and_heal_then_heal_all() -> None:
    a, b = FakeFault("outage"), EffectFault("duplicate", "events", own_effect=7)
    nemesis, recorder, infra = _nemesis([(0.0, 0.6, a), (0.2, 0.4, b)], pending=[0, 5, 9, 12])
    _run(nemesis, recorder)
    assert a.log == ["inject outage", "heal outage"] and b.log == ["inject duplicate", "heal duplicate"]
    windows = {w.fault: w for w in fault_windows(recorder.history())}
    assert windows["duplicate"].effect == 7
    assert (windows["outage"].effect or 0) > 0, "the pending-work rise was not measured"
    assert windows["duplicate"].start_s < windows["outage"].end_s  # type: ignore[operator]
    assert infra.healed == 1 and recorder.history().ops[-1].f == "heal-all"
    assert Stats().check(recorder.history()).validity is Validity.VALID


def test_a_failed_inject_of_any_exception_is_recorded_and_the_run_is_unknown() -> None:
    broken = FakeFault("latency", fail_inject=KeyError("no such toxic"))
    nemesis, recorder, _ = _nemesis([(0.0, 0.2, broken)], pending=[0, 3])
    _run(nemesis, recorder)
    assert broken.log == ["inject latency", "heal latency"], "the heal must run even after a failed inject"
    result = Stats().check(recorder.history())
    assert result.validity is Validity.UNKNOWN and "injection failed" in result.message
    assert nemesis.errors and "KeyError" in nemesis.errors[0]


def test_a_fault_with_no_effect_makes_the_run_unknown() -> None:
    quiet = FakeFault("latency")
    nemesis, recorder, _ = _nemesis([(0.0, 0.3, quiet)], pending=[4])  # pending work never rises
    _run(nemesis, recorder)
    result = Stats().check(recorder.history())
    assert result.validity is Validity.UNKNOWN and "no observable effect" in result.message


def test_heals_run_when_the_run_is_stopped_mid_window() -> None:
    long = FakeFault("outage")
    nemesis, recorder, infra = _nemesis([(0.0, 30.0, long)], pending=[0, 1])
    stop = threading.Event()
    t = threading.Thread(target=nemesis.run, args=(stop, time.monotonic()))
    t.start()
    deadline = time.monotonic() + 5
    while "inject outage" not in long.log and time.monotonic() < deadline:
        stop.wait(0.01)
    stop.set()  # what Ctrl-C does through the runner
    t.join(timeout=10)
    assert not t.is_alive() and long.log == ["inject outage", "heal outage"] and infra.healed == 1


def test_chaos_errors_in_heal_are_recorded_not_raised() -> None:
    class BadHeal(FakeFault):
        def heal(self) -> None:
            raise ChaosError("toxiproxy gone")

    bad = BadHeal("outage")
    nemesis, recorder, _ = _nemesis([(0.0, 0.1, bad)], pending=[0, 2])
    _run(nemesis, recorder)
    heal = [op for op in recorder.history().ops if op.f == "heal" and op.type is OpType.FAIL]
    assert heal and "toxiproxy gone" in (heal[0].error or "")


def test_a_process_the_pipeline_does_not_run_is_a_usage_error_naming_the_valid_ones() -> None:
    import pytest

    from harness.errors import UsageError
    from harness.faults.process import find_host

    class Host:
        def __init__(self, *names: str) -> None:
            self.names = names

        def processes(self) -> dict[str, object]:
            return dict.fromkeys(self.names)

        def restart(self, name: str) -> None: ...

    target, infra = Host("app", "consumer.payment"), Host("kafka", "postgres", "toxiproxy")
    assert find_host("kafka", target, infra) is infra  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="'relay'.*valid processes: app, consumer.payment, kafka"):
        find_host("relay", target, infra)  # type: ignore[arg-type]
