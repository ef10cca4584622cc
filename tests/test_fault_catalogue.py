"""The fault catalogue without infrastructure: validation, schedules, crash points, vacuity."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from harness.checkers.base import Validity
from harness.checkers.stats import Stats
from harness.cli import main
from harness.errors import UsageError
from harness.faults.crashpoints import CrashPoints
from harness.faults.schedule import during, plan, repeat, schedule_bytes, sequence, stagger
from harness.faults.spec import (Bandwidth, Crash, FaultKind, FaultSpec, Latency, NoParams, OneWayCut, Poison,
                                 SlowConsumer, catalogue)
from harness.history.ops import OpType
from harness.testing import HistoryBuilder


def _mixed() -> tuple[FaultSpec, ...]:
    return (
        *sequence(FaultSpec(FaultKind.LATENCY, "consumer.payment->kafka", 0.1, 3, jitter=0.05, params=Latency(300, 50)),
                  FaultSpec(FaultKind.KILL, "relay", 0.0, 2, jitter=0.05),
                  duration_s=30, gap_s=1),
        *stagger(FaultSpec(FaultKind.PAUSE, "consumer.payment", 0.5, 1, jitter=0.02), ["consumer.payment", "kafka"], 0.1),
        *during(0.6, 0.9, repeat(FaultSpec(FaultKind.OUTAGE, "publisher->kafka", 0.0, 1, jitter=0.1), 3, 0.3)),
        FaultSpec(FaultKind.CRASH, "relay", 0.7, 4, params=Crash("relay.after_publish", 2)),
    )


def test_same_seed_gives_the_same_schedule_byte_for_byte() -> None:
    first = schedule_bytes(plan(_mixed(), 30, seed=1234))
    second = schedule_bytes(plan(_mixed(), 30, seed=1234))
    assert first == second
    assert first != schedule_bytes(plan(_mixed(), 30, seed=1235)), "the seed does not reach the schedule"
    assert b'"heal_all_s"' in first and b'"latency_ms":300' in first


def test_combinators_compose_windows() -> None:
    seq = sequence(FaultSpec(FaultKind.OUTAGE, "relay->kafka", 0.1, 3), FaultSpec(FaultKind.KILL, "relay", 0.0, 2),
                   duration_s=20, gap_s=1)
    assert [s.at for s in seq] == [0.1, 0.3]  # 0.1 + (3 + 1) / 20
    st = stagger(FaultSpec(FaultKind.PAUSE, "app", 0.2, 1), ["consumer.payment", "relay"], 0.1)
    assert [(s.target, s.at) for s in st] == [("consumer.payment", 0.2), ("relay", 0.3)]
    assert [s.at for s in during(0.5, 0.9, repeat(FaultSpec(FaultKind.OUTAGE, "app->kafka", 0.0, 1), 2, 0.5))] == [0.5, 0.7]
    schedule = plan(seq, 20, seed=0)
    assert [(p.start_s, p.end_s) for p in schedule] == [(2.0, 5.0), (6.0, 8.0)]
    assert schedule.heal_all_s == 20
    with pytest.raises(UsageError, match="FaultSpec.at"):
        repeat(FaultSpec(FaultKind.OUTAGE, "app->kafka", 0.6, 1), 3, 0.3)


@pytest.mark.parametrize(
    ("build", "field", "valid"),
    [
        (lambda: FaultSpec(FaultKind.OUTAGE, "relay->redis", 0.2, 5), "FaultSpec.target", "postgres"),
        (lambda: FaultSpec(FaultKind.KILL, "relay->kafka", 0.2, 5), "FaultSpec.target", "relay"),
        (lambda: FaultSpec(FaultKind.DUPLICATE, "orders", 0.2, 5), "FaultSpec.target", "events"),
        (lambda: FaultSpec(FaultKind.OUTAGE, "relay->kafka", 0.2, -1), "FaultSpec.for_s", "positive"),
        (lambda: FaultSpec(FaultKind.OUTAGE, "relay->kafka", 1.2, 5), "FaultSpec.at", r"\[0, 1\)"),
        (lambda: Latency(toxicity=1.5), "Latency.toxicity", r"\[0, 1\]"),
        (lambda: Bandwidth(toxicity=-0.1), "Bandwidth.toxicity", r"\[0, 1\]"),
        (lambda: Latency(latency_ms=-5), "Latency.latency_ms", ">= 0"),
        (lambda: OneWayCut(stream="sideways"), "OneWayCut.stream", "upstream, downstream"),
        (lambda: Crash(passage=0), "Crash.passage", "positive"),
        (lambda: Poison(count=0), "Poison.count", ">= 1"),
        (lambda: SlowConsumer(rate_kbps=0), "SlowConsumer.rate_kbps", ">= 1"),
        (lambda: FaultSpec(FaultKind.LATENCY, "relay->kafka", 0.2, 5, params=Bandwidth()), "FaultSpec.params",
         "Latency"),
    ],
)
def test_bad_fault_parameters_fail_at_construction(build: object, field: str, valid: str) -> None:
    with pytest.raises(UsageError, match=field) as exc:
        build()  # type: ignore[operator]
    assert re.search(valid, str(exc.value)), f"the message does not name the valid choices: {exc.value}"


def test_defaults_fill_params_and_catalogue_covers_every_kind() -> None:
    spec = FaultSpec(FaultKind.OUTAGE, "relay->kafka", 0.2, 5)
    assert isinstance(spec.params, NoParams) and spec.link == "relay->kafka"
    assert FaultSpec(FaultKind.LATENCY, "relay->kafka", 0.2, 5).params == Latency()
    assert {i.kind for i in catalogue()} == set(FaultKind)


def test_chaos_faults_lists_every_kind_with_parameters_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ.setdefault("COLUMNS", "220")
    assert main(["faults"]) == 0
    out = capsys.readouterr().out
    for info in catalogue():
        assert info.kind.value in out
        for f in fields(info.params):
            assert f"{f.name}=" in out, f"{info.kind.value}: parameter {f.name} not listed"
    assert "latency_ms=500" in out and "publisher" in out


_LOOP = "from harness.sdk import crash_point\nfor i in range(5):\n    crash_point('relay.after_publish')\n    print(i, flush=True)\n"


def _loop(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAOS_CRASHPOINTS_DIR": str(folder), "CHAOS_PROCESS": "relay"}
    return subprocess.run([sys.executable, "-c", _LOOP], env=env, capture_output=True, text=True, timeout=30, check=False)


def test_an_armed_crash_point_kills_the_process_at_its_nth_passage_once(tmp_path: Path) -> None:
    points = CrashPoints(tmp_path)
    assert _loop(tmp_path).stdout.split() == ["0", "1", "2", "3", "4"], "an unarmed crash point must do nothing"
    points.arm("relay", "relay.after_publish", 3)
    died = _loop(tmp_path)
    assert died.returncode == -signal.SIGKILL, died
    assert died.stdout.split() == ["0", "1"], "it must die at the third passage, before the third print"
    fired = points.fired("relay")
    assert fired is not None and fired["point"] == "relay.after_publish" and fired["passage"] == 3
    assert _loop(tmp_path).returncode == 0, "a spent arm must not kill the restarted process again"
    points.disarm("relay")
    assert points.armed("relay") is None and _loop(tmp_path).returncode == 0
    points.arm("app", "relay.after_publish", 1)
    assert _loop(tmp_path).returncode == 0, "an arm for another process must not fire here"


def test_failed_probe_or_effectless_fault_makes_the_run_unknown() -> None:
    h = HistoryBuilder()
    h.order("o1", at=1.0).charge("o1")
    h.fault_window(start=0.5, end=3.0, effect=None)
    v = {"id": 0, "fault": "latency", "target": "relay->kafka"}
    h.op("nemesis", OpType.FAIL, "effect", at=2.9, **v)
    result = Stats().check(h.build())
    assert result.validity is Validity.UNKNOWN and "could not be measured" in result.message
    h2 = HistoryBuilder().order("o1", at=1.0).charge("o1").fault_window(start=0.5, end=3.0, effect=0, fault="crash")
    assert Stats().check(h2.build()).validity is Validity.UNKNOWN


def test_overlapping_dlq_refusals_of_one_topic_lift_only_when_the_last_one_heals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two windows on one dead-letter topic (a generated schedule overlaps them): the first heal keeps the refusal."""
    from confluent_kafka.admin import AlterConfigOpType

    from harness.faults.dlq import DeadLetterRefusal

    calls: list[tuple[str, AlterConfigOpType]] = []
    monkeypatch.setattr(DeadLetterRefusal, "_alter", lambda self, op, value: calls.append((self.topic, op)))
    monkeypatch.setattr(DeadLetterRefusal, "_probe_refused", lambda self: True)
    first, second = (DeadLetterRefusal("consumer.payment", "dlq.payment", "b:1") for _ in range(2))
    other = DeadLetterRefusal("consumer.inventory", "dlq.inventory", "b:1")
    for fault in (first, second, other):
        fault.inject()
    assert first.effect() == 1
    first.heal()
    assert ("dlq.payment", AlterConfigOpType.DELETE) not in calls  # the second window still holds it
    other.heal()
    assert calls[-1] == ("dlq.inventory", AlterConfigOpType.DELETE)
    second.heal()
    assert calls[-1] == ("dlq.payment", AlterConfigOpType.DELETE)
    uncounted = DeadLetterRefusal("consumer.payment", "dlq.payment", "b:1")
    uncounted.heal()  # its inject failed: a heal still lifts a refusal nobody holds
    assert calls[-1] == ("dlq.payment", AlterConfigOpType.DELETE) and len(calls) == 6


def test_two_windows_of_one_kind_on_one_place_that_overlap_are_refused_before_anything_runs() -> None:
    """The first one's heal (a link enabled, a process restarted, a toxic removed) would end the other early."""
    from harness.faults.schedule import overlapping
    from harness.scenario import Scenario
    from harness.workload.rate import Constant

    outage = FaultSpec(FaultKind.OUTAGE, "relay->kafka", 0.2, 4)
    later = FaultSpec(FaultKind.OUTAGE, "relay->kafka", 0.3, 2)
    with pytest.raises(UsageError, match=r"two outage windows on relay->kafka overlap \(4-8 s and 6-8 s of 20 s\)"):
        Scenario(name="x", description="x", pipelines=("outbox",), shape=Constant(5), faults=(outage, later), duration_s=20)
    assert overlapping((outage, later), 20) == (outage, later)
    # Apart, on another place, of another kind, on the other stream, or a kind whose windows stack: fine.
    assert overlapping((outage, FaultSpec(FaultKind.OUTAGE, "relay->kafka", 0.4, 2)), 20) is None  # 4-8 s, 8-10 s
    assert overlapping((outage, FaultSpec(FaultKind.OUTAGE, "app->kafka", 0.3, 2)), 20) is None
    assert overlapping((outage, FaultSpec(FaultKind.LATENCY, "relay->kafka", 0.3, 2)), 20) is None
    up, down = (FaultSpec(FaultKind.LATENCY, "relay->kafka", 0.2, 4, params=Latency(100, 0, s)) for s in ("upstream", "downstream"))
    assert overlapping((up, down), 20) is None
    assert overlapping((up, FaultSpec(FaultKind.LATENCY, "relay->kafka", 0.25, 1, params=Latency(300, 0, "upstream"))), 20)
    kills = (FaultSpec(FaultKind.KILL, "consumer.payment", 0.2, 4), FaultSpec(FaultKind.KILL, "consumer.payment", 0.25, 1))
    assert overlapping(kills, 20) == kills
    assert overlapping((FaultSpec(FaultKind.POISON, "events", 0.2, 4, params=Poison(2)),
                        FaultSpec(FaultKind.POISON, "events", 0.25, 1, params=Poison(2))), 20) is None
    # Jitter counts both ways, so no seed makes two windows overlap that were accepted.
    assert overlapping((outage, FaultSpec(FaultKind.OUTAGE, "relay->kafka", 0.45, 2, jitter=0.1)), 20)
