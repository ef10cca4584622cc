"""What a target's own design allows under a fault: the losses of a best-effort publisher.

``strategy.INHERENT`` holds what a fault *is* (a reorder swaps events); this holds what a
pipeline *promises*. A target whose publisher is its entrypoint and that declares no
backlog (``TargetSpec.backlog_sql``) publishes in the request with nowhere durable for an
unpublished event to wait: the reference ``direct`` pipeline. When the publish path fails
(the publisher killed, paused or crashed, its link to the broker faulted, the broker
down), it drops what it could not deliver within its delivery timeout, by design; the
shipped scenarios expect exactly that (scenarios/broker_outage.py, crash_direct.py). So a
trial with a fault on that path may show these losses without it being a finding; every
other kind (a duplicate, a reordering, a phantom, a vanished record) still is, and so is
a loss in a trial that never touched the publish path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.checkers.anomaly import AnomalyKind
from harness.faults.spec import FaultSpec, TargetType, kind_info
from harness.target.spec import TargetSpec

__all__ = ["BEST_EFFORT_LOSS", "Design"]

BEST_EFFORT_LOSS = frozenset({AnomalyKind.LOST_EFFECT, AnomalyKind.COMMITTED_WITHOUT_EVENT,
                              AnomalyKind.COMMITTED_WITHOUT_EFFECT})
"""What a best-effort publisher loses when its publish path fails: an acknowledged order with no
effects, a committed order whose event never reached the topic."""

_ROLE = "publisher"  # a fault may name the role instead of the process (harness.faults.spec)


@dataclass(frozen=True, slots=True)
class Design:
    best_effort_publisher: str | None  # the process that publishes in the request, or None

    @classmethod
    def of(cls, spec: TargetSpec) -> Design:
        best_effort = spec.publisher == spec.entrypoint and spec.backlog_sql is None
        return cls(spec.publisher if best_effort else None)

    def on_publish_path(self, fault: FaultSpec) -> bool:
        publisher = self.best_effort_publisher
        if publisher is None:
            return False
        target_type = kind_info(fault.kind).target
        if target_type is TargetType.LINK:
            client, _, service = fault.target.partition("->")
            return client in (publisher, _ROLE) and service == "kafka"
        return target_type is TargetType.PROCESS and fault.target in (publisher, _ROLE, "kafka")

    def allows(self, faults: Iterable[FaultSpec]) -> frozenset[AnomalyKind]:
        """The anomaly kinds a trial with ``faults`` may show by this target's design."""
        return BEST_EFFORT_LOSS if any(self.on_publish_path(f) for f in faults) else frozenset()
