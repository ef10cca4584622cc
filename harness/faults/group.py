"""Consumer-group faults: a group that loses its committed offsets, and a group (or relay) that scales.

  group_reset  inject: stop the consumer cleanly (it commits what it applied and leaves its
               group), then delete the group (with it every committed offset) once the
               coordinator sees it empty; heal: start the consumer again. It comes back as a
               group with no committed offset, so its own ``auto.offset.reset`` decides where
               it resumes: ``earliest`` re-reads the whole topic (an idempotent consumer
               absorbs it), ``latest`` skips everything published while it was away (lost).
               At the start of traffic this is a group that starts late. Effect: the records
               on the topic when it restarts, whose reading that policy decided.
  scale        inject: start ``instances`` more instances of a process beside it (same
               command, environment, consumer group) and, for a consumer, wait until the
               group has them as members (a rebalance under load); heal: stop them, cleanly
               or with SIGKILL (then their partitions wait out the session timeout: a second
               rebalance). On a relay: a second relay polling the same outbox. Effect: the
               instances that started (and, for a consumer, joined the group).

Both act on what the target runs; they find processes through the same hosts as the
process faults, and the target starts and stops replicas (``ReplicaHost``), since it owns
the process declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from confluent_kafka import Consumer, TopicPartition

from harness.errors import ChaosError, WaitTimeout
from harness.faults.process import ProcessHost, _running
from harness.infra import kafka
from harness.infra.group_admin import group_admin
from harness.history.ops import Scalar
from harness.infra.process import ManagedProcess
from harness.wait import wait_for

__all__ = ["GroupReset", "GroupView", "ReplicaHost", "ScaleOut", "committed_total", "group_members", "topic_end_total"]

DELETE_TIMEOUT_S = 20.0  # the stopped member's leave reaches the coordinator within its session timeout at worst
JOIN_TIMEOUT_S = 30.0  # a new member joins within one rebalance; the others rejoin on their next poll
REQUEST_TIMEOUT_S = 5.0


@runtime_checkable
class ReplicaHost(Protocol):
    """A host that can run more instances of one of its processes (``SpecTarget``)."""

    def processes(self) -> Mapping[str, ManagedProcess]: ...

    def add_replicas(self, name: str, count: int) -> tuple[str, ...]:
        """Start ``count`` more instances of ``name``, wait until they are ready; return their names."""

    def remove_replica(self, name: str, kill: bool = False) -> None:
        """Stop a replica ``add_replicas`` started (SIGKILL with ``kill``) and forget it."""


def _client(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "socket.timeout.ms": int(REQUEST_TIMEOUT_S * 1000), "logger": kafka.quiet_logger()})


def _partitions(client: Consumer, topic: str) -> list[TopicPartition]:
    meta = client.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics[topic]
    if meta.error is not None:
        raise ChaosError(f"topic {topic} cannot be read: {meta.error}")
    return [TopicPartition(topic, p) for p in sorted(meta.partitions)]


def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """The sum of ``group``'s committed offsets on ``topic`` (0 for a group that committed nothing)."""
    client = _client(bootstrap, group)
    try:
        parts = _partitions(client, topic)
        return sum(tp.offset for tp in client.committed(parts, timeout=REQUEST_TIMEOUT_S) if tp.offset >= 0)
    finally:
        client.close()


def topic_end_total(bootstrap: str, topic: str) -> int:
    """Records on ``topic`` so far: the sum of its partitions' end offsets."""
    client = _client(bootstrap, f"chaos-ends-{topic}")
    try:
        return sum(client.get_watermark_offsets(tp, timeout=REQUEST_TIMEOUT_S)[1] for tp in _partitions(client, topic))
    finally:
        client.close()


@dataclass(frozen=True, slots=True)
class GroupView:
    """The coordinator's view of one consumer group: its members, and how many of them hold a partition."""

    members: int
    holding: int


def group_members(bootstrap: str, group: str) -> GroupView:
    described = group_admin(bootstrap).describe([group], timeout_s=REQUEST_TIMEOUT_S)[group]
    return GroupView(described.members, described.holding)


@dataclass(slots=True)
class GroupReset:
    process: str
    host: ProcessHost
    group: str
    topic: str
    bootstrap: str  # the DIRECT listener: the harness's own path, never under chaos
    name: str = "group_reset"
    forgotten: int = field(default=0)  # the committed offsets deleted (records it had read)
    decided: int = field(default=0)  # records on the topic when it restarted with no committed offset

    @property
    def target(self) -> str:
        return self.process

    def inject(self) -> None:
        _running(self.host, self.process, "be stopped for a group reset")
        self.host.stop_process(self.process)
        self.forgotten = committed_total(self.bootstrap, self.group, self.topic)
        admin = group_admin(self.bootstrap)

        def delete() -> tuple[bool, str]:
            # Accepted once the group has no member left (the stopped consumer's leave has reached
            # the coordinator); no such group means there is nothing left to forget either.
            return True, "deleted" if admin.delete(self.group, timeout_s=REQUEST_TIMEOUT_S) else "no such group"

        try:
            wait_for(delete, timeout_s=DELETE_TIMEOUT_S, what=f"group {self.group} to be deleted", interval_s=0.5)
        except WaitTimeout as exc:
            raise ChaosError(f"could not delete group {self.group} (does another replica of {self.process} still "
                             f"run in it?): {exc}") from exc

    def effect(self) -> int:
        return self.decided

    def evidence(self) -> Mapping[str, Scalar]:
        return {"forgotten": self.forgotten, "decided": self.decided}

    def heal(self) -> None:
        try:
            # Sampled before the start: from here on, the reset policy decides what the group reads.
            self.decided = topic_end_total(self.bootstrap, self.topic)
        finally:
            self.host.restart(self.process)


@dataclass(slots=True)
class ScaleOut:
    """``instances`` more instances of ``process`` while the fault is active; ``group`` when it is a consumer."""

    process: str
    host: ReplicaHost
    instances: int
    kill: bool
    group: str | None
    bootstrap: str
    partitions: int  # of the event topic: a group with more members than this leaves some idle
    name: str = "scale"
    started: list[str] = field(default_factory=list)
    members_seen: int = field(default=0)  # the most members the group had while the fault was active
    rebalanced: bool = field(default=False)  # the group spread its partitions over the new members

    @property
    def target(self) -> str:
        return self.process

    def inject(self) -> None:
        # The first instance may be down (another fault killed it): the new ones then take over its
        # partitions, which is a scaling event too.
        before = group_members(self.bootstrap, self.group).members if self.group is not None else 0
        # Started together and awaited once: a fault's window opens when inject returns, so a slow
        # inject late in a trial would leave it no traffic to act on.
        self.started.extend(self.host.add_replicas(self.process, self.instances))
        if self.group is None:
            return
        group = self.group
        want = before + self.instances

        def joined() -> tuple[bool, GroupView]:
            # A member that has joined holds nothing until the rebalance completes: wait for the
            # partitions to be spread over the new members too, so the fault's window is a rebalanced group.
            view = group_members(self.bootstrap, group)
            self.members_seen = max(self.members_seen, view.members)
            return view.members >= want and view.holding >= min(view.members, self.partitions), view

        try:
            wait_for(joined, timeout_s=JOIN_TIMEOUT_S, what=f"group {group} to have {want} members holding "
                     "partitions", interval_s=0.2)
            self.rebalanced = True
        except WaitTimeout as exc:
            raise ChaosError(f"the new instances of {self.process} did not join group {group}: {exc}") from exc

    def effect(self) -> int:
        """The instances that ran (for a consumer: only if the group had them as members, a rebalance)."""
        if self.group is not None and not self.rebalanced:
            return 0
        return len(self.started)

    def evidence(self) -> Mapping[str, Scalar]:
        return {"instances": ",".join(self.started), "members": self.members_seen if self.group is not None else None}

    def heal(self) -> None:
        errors: list[str] = []
        for name in reversed(self.started):
            try:
                self.host.remove_replica(name, kill=self.kill)
            except Exception as exc:  # noqa: BLE001 - every instance gets its stop; the failures are reported together
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        if errors:
            raise ChaosError("could not stop the added instances: " + "; ".join(errors)
                             + " (`chaos infra down` stops what is left)")
