"""The nemesis: runs a planned schedule of faults against a target and records them as ops.

For each window: ``inject`` invoke/ok|fail, then at the end an ``effect`` probe (how
much backed up behind the fault), then ``heal`` invoke/ok|fail. A heal runs in a
finally, whatever happened, including an interrupted run.
"""

from __future__ import annotations

import threading
import time

from harness.errors import ChaosError
from harness.faults.base import Fault
from harness.faults.message import PoisonMessages
from harness.faults.network import LinkOutage
from harness.faults.schedule import FaultKind, PlannedFault
from harness.history.ops import OpType
from harness.history.store import Recorder
from harness.infra.stack import Infra
from harness.target import Target

__all__ = ["Nemesis", "build_fault"]


def build_fault(planned: PlannedFault, infra: Infra, target: Target) -> Fault:
    if planned.kind is FaultKind.CRASH:
        crash = getattr(target, "crash", None)
        if crash is None:
            raise ChaosError(f"target {target.name} cannot crash its processes (it has no crash(process) method)")
        return crash(planned.link)  # type: ignore[no-any-return]
    if planned.kind is FaultKind.POISON:
        topic = getattr(target, "topic", None)
        if topic is None:
            raise ChaosError(f"target {target.name} names no event topic to poison (it has no .topic)")
        return PoisonMessages(infra.topology.kafka_direct, str(topic))
    link = infra.topology.link(target.resolve_link(planned.link))
    if planned.kind is FaultKind.OUTAGE:
        return LinkOutage(link, infra.toxiproxy)
    raise ChaosError(f"no injector for fault kind {planned.kind}")


class Nemesis:
    def __init__(self, schedule: tuple[PlannedFault, ...], infra: Infra, target: Target, recorder: Recorder,
                 effect_probe: object) -> None:
        self.schedule = schedule
        self.faults = [(p, build_fault(p, infra, target)) for p in schedule]
        self.recorder = recorder
        self.effect_probe = effect_probe  # () -> int: what backed up behind the fault
        self.active: list[str] = []
        self.errors: list[str] = []

    def run(self, stop: threading.Event, t0: float) -> None:
        for planned, fault in self.faults:
            # Waiting for a scheduled moment (the plan), not for a condition.
            if stop.wait(max(0.0, planned.start_s - (time.monotonic() - t0))):
                return
            self._window(planned, fault, stop, t0)

    def _window(self, planned: PlannedFault, fault: Fault, stop: threading.Event, t0: float) -> None:
        value = {"id": planned.id, "fault": fault.name, "target": fault.target}
        rec = self.recorder
        rec.record("nemesis", OpType.INVOKE, "inject", value=value)
        try:
            try:
                fault.inject()
            except ChaosError as exc:
                rec.record("nemesis", OpType.FAIL, "inject", value=value, error=str(exc))
                self.errors.append(f"inject {fault.name}@{fault.target}: {exc}")
                return
            rec.record("nemesis", OpType.OK, "inject", value=value)
            self.active.append(f"{fault.name}@{fault.target}")
            stop.wait(max(0.0, planned.end_s - (time.monotonic() - t0)))
            try:
                # A fault that knows its own effect (poison pills published) reports it; others are
                # measured by what backed up behind them.
                probe = getattr(fault, "observed", None) or self.effect_probe
                observed = int(probe())  # type: ignore[operator]
                rec.record("nemesis", OpType.OK, "effect", value={**value, "observed": observed})
            except Exception as exc:  # noqa: BLE001 - a failed probe is recorded, the heal must still run
                rec.record("nemesis", OpType.FAIL, "effect", value=value, error=f"{type(exc).__name__}: {exc}")
        finally:
            rec.record("nemesis", OpType.INVOKE, "heal", value=value)
            try:
                fault.heal()
                rec.record("nemesis", OpType.OK, "heal", value=value)
            except ChaosError as exc:
                rec.record("nemesis", OpType.FAIL, "heal", value=value, error=str(exc))
                self.errors.append(f"heal {fault.name}@{fault.target}: {exc}")
            if f"{fault.name}@{fault.target}" in self.active:
                self.active.remove(f"{fault.name}@{fault.target}")
