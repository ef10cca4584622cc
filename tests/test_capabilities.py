"""A scenario's needs are checked against the target before any infrastructure starts (exit 4)."""

from __future__ import annotations

import pytest

from harness.capabilities import missing_capabilities
from harness.errors import UsageError
from harness.faults.spec import Crash, FaultKind, FaultSpec, SchemaDrift
from harness.target.registry import resolve_target


@pytest.mark.parametrize(
    ("fault", "named"),
    [
        (FaultSpec(FaultKind.LATENCY, "payments->kafka", 0.2, 5), "consumer.payment->kafka"),
        (FaultSpec(FaultKind.KILL, "zookeeper", 0.2, 5), "consumer.payment"),
        (FaultSpec(FaultKind.SLOW_CONSUMER, "relay#1", 0.2, 5), "slow_consumer"),
        (FaultSpec(FaultKind.CRASH, "relay", 0.2, 5, params=Crash(point="relay.somewhere")), "relay.after_publish"),
        (FaultSpec(FaultKind.SCHEMA_DRIFT, "app", 0.2, 5, params=SchemaDrift("reverse")), "rename"),
        (FaultSpec(FaultKind.KILL, "connect", 0.2, 5), "Kafka Connect"),
    ],
)
def test_a_fault_the_target_cannot_take_is_named_with_what_it_has(fault: FaultSpec, named: str) -> None:
    missing = missing_capabilities((fault,), (), "correct", resolve_target("outbox"))
    assert missing and named in " ".join(missing)


def test_what_the_target_has_passes_and_publisher_resolves_per_target() -> None:
    faults = (FaultSpec(FaultKind.OUTAGE, "publisher->kafka", 0.2, 5),
              FaultSpec(FaultKind.CRASH, "relay", 0.2, 5, params=Crash("relay.after_publish")),
              FaultSpec(FaultKind.KILL, "kafka", 0.2, 5))
    assert missing_capabilities(faults, ("process:relay", "backlog"), "last_id", resolve_target("outbox")) == []
    # direct has no relay, cdc has no backlog query of its own but a runtime that reads one
    assert missing_capabilities(faults[1:2], (), "correct", resolve_target("direct"))
    assert missing_capabilities((), ("connect",), "correct", resolve_target("cdc")) == []
    assert "variant 'last_id'" in " ".join(missing_capabilities((), (), "last_id", resolve_target("cdc")))


def test_a_malformed_need_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="process:NAME"):
        missing_capabilities((), ("relay",), "correct", resolve_target("outbox"))
