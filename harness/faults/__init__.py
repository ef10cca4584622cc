"""Faults: what can go wrong, where, when. The public names a scenario author needs.

    FaultSpec(FaultKind.LATENCY, "relay->kafka", at=0.3, for_s=5, params=Latency(800))

Kinds and their parameters live in ``spec``; schedule combinators in ``schedule``;
the injectors (network, process, messages, interposer) and the nemesis that runs them
are the harness's business and are imported from their modules directly.
"""

from harness.faults.schedule import during, plan, repeat, schedule_bytes, sequence, stagger
from harness.faults.spec import (Bandwidth, BlackHole, Crash, Duplicate, FaultKind, FaultSpec, Latency, LimitData,
                                 NoParams, OneWayCut, Poison, Reordering, ResetPeer, SchemaDrift, Slicer, SlowConsumer,
                                 catalogue)

__all__ = [
    "Bandwidth", "BlackHole", "Crash", "Duplicate", "FaultKind", "FaultSpec", "Latency", "LimitData", "NoParams",
    "OneWayCut", "Poison", "Reordering", "ResetPeer", "SchemaDrift", "Slicer", "SlowConsumer", "catalogue", "during",
    "plan", "repeat", "schedule_bytes", "sequence", "stagger",
]
