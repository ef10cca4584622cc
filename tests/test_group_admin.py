"""The consumer-group admin child: requests answered, and a child that dies costs one request, not the run.

No Kafka needed for the failure paths: a child pointed at a closed port answers with an error,
and a child killed mid-session is replaced at the next request. The real describe/delete are
exercised by every scenario's readiness wait and by scenarios/test_explore_faults.py."""

from __future__ import annotations

import socket

import pytest

from harness.errors import InfraError
from harness.infra.group_admin import GroupAdmin


def _closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return f"127.0.0.1:{port}"


def test_a_request_to_an_unreachable_broker_fails_with_an_error_naming_it() -> None:
    admin = GroupAdmin(_closed_port())
    try:
        with pytest.raises(InfraError, match="describe on Kafka at 127.0.0.1"):
            admin.describe(["g"], timeout_s=1.0)
        assert admin.starts == 1  # the child answered: it was not restarted
    finally:
        admin.close()


def test_a_child_that_dies_fails_its_request_and_the_next_one_gets_a_new_child() -> None:
    admin = GroupAdmin(_closed_port())
    try:
        with pytest.raises(InfraError):
            admin.describe(["g"], timeout_s=1.0)
        proc = admin._proc
        assert proc is not None
        proc.kill()  # as librdkafka's abort would (SIGABRT)
        proc.wait()
        with pytest.raises(InfraError, match="child .* exited"):
            admin.describe(["g"], timeout_s=1.0)
        with pytest.raises(InfraError, match="describe on Kafka"):  # a new child, answering again
            admin.describe(["g"], timeout_s=1.0)
        assert admin.starts == 2
    finally:
        admin.close()


class _Metadata:
    brokers = {1: "127.0.0.1:1"}


class _Admin:
    def list_topics(self, timeout: float) -> _Metadata:
        return _Metadata()


class _Coordinator:
    def __init__(self, answers: list[object]) -> None:
        self.answers = answers

    def describe(self, groups: list[str], timeout_s: float) -> dict[str, object]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {groups[0]: answer}


def test_kafka_is_ready_only_once_its_group_coordinator_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Metadata alone is not readiness: a restarted broker answered it while its coordinator said NOT_COORDINATOR."""
    from harness.infra import kafka
    from harness.infra.group_admin import GroupState
    from harness.infra.topology import Topology
    from harness.wait import wait_for

    coordinator = _Coordinator([InfraError("describe on Kafka failed: NOT_COORDINATOR"),
                                InfraError("describe on Kafka failed: COORDINATOR_LOAD_IN_PROGRESS"),
                                GroupState("DEAD", 0, 0, 0)])
    monkeypatch.setattr(kafka, "admin", lambda bootstrap: _Admin())
    monkeypatch.setattr(kafka, "group_admin", lambda bootstrap: coordinator)
    topo = Topology(base_port=29500)
    with pytest.raises(InfraError, match="NOT_COORDINATOR"):
        kafka.probe(topo)
    seen = wait_for(lambda: kafka.probe(topo), timeout_s=10, what="kafka ready", interval_s=0)
    assert coordinator.answers == []  # asked until the coordinator answered, not before
    assert "group coordinator answers" in str(seen)
