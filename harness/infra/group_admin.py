"""Consumer-group admin requests (describe, delete) made in a child process of their own.

Requests that go to a group's coordinator (DescribeConsumerGroups, DeleteConsumerGroups,
ListConsumerGroupOffsets, ...) can abort the whole process from librdkafka's main thread
when their connection drops: ``rd_kafka_enq_once_del_source_return: Assertion
eonce->refcnt > 0`` (librdkafka#4605; the fix, PR #5397, is not released). A chaos run drops
those connections on purpose (a broker killed and restarted), and the harness aborted 3
times in about 12 loaded process_faults runs, losing the run. So the harness never makes
these requests itself: a small child (``python -m harness.infra.group_admin BOOTSTRAP``)
makes them and answers one JSON line per request. A child that aborts costs one failed
request, which the caller's wait retries; the next request starts a new child.

Other admin requests (metadata, topics) do not use the coordinator path and stay in
``harness.infra.kafka.admin``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import InfraError

__all__ = ["GroupAdmin", "GroupState", "group_admin"]

# A new child imports confluent_kafka first: allow for that on a loaded machine.
START_ALLOWANCE_S = 10.0


@dataclass(frozen=True, slots=True)
class GroupState:
    """The coordinator's view of one consumer group."""

    state: str  # "STABLE", "PREPARING_REBALANCE", "EMPTY", "DEAD", ...
    members: int
    holding: int  # members with at least one partition assigned
    partitions: int  # partitions assigned over all members


class GroupAdmin:
    """One child process answering describe/delete requests for consumer groups of ``bootstrap``.

    Thread-safe: requests are serialised. A child that died or did not answer in time is
    killed, the request fails with InfraError, and the next request starts a new one."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self.starts = 0  # children started: more than one means one died or hung

    def describe(self, groups: Sequence[str], timeout_s: float = 3.0) -> dict[str, GroupState]:
        answer = self._call({"op": "describe", "groups": list(groups), "timeout_s": timeout_s}, timeout_s)
        return {g: GroupState(str(v["state"]), int(v["members"]), int(v["holding"]), int(v["partitions"]))
                for g, v in answer.items()}

    def delete(self, group: str, timeout_s: float = 5.0) -> bool:
        """Delete ``group`` (it must have no member left); False when no such group exists."""
        return bool(self._call({"op": "delete", "group": group, "timeout_s": timeout_s}, timeout_s))

    def close(self) -> None:
        with self._lock:
            self._stop()

    # ---- the child ---------------------------------------------------------------------
    def _call(self, request: Mapping[str, object], timeout_s: float) -> Any:
        with self._lock:
            started = self._proc is None
            proc = self._start() if self._proc is None else self._proc
            deadline = time.monotonic() + timeout_s + 2.0 + (START_ALLOWANCE_S if started else 0.0)
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
                line = self._read_line(proc, deadline)
            except (OSError, InfraError) as exc:
                rc = proc.poll()
                self._stop()
                why = f"exited {rc}" if rc is not None else "did not answer in time"
                raise InfraError(f"the consumer-group admin child for {self.bootstrap} {why} during {request['op']} "
                                 f"({exc}); librdkafka aborts on a coordinator request whose connection drops "
                                 "(librdkafka#4605), so it runs apart; the next request starts a new child") from exc
        reply = json.loads(line)
        if not reply.get("ok"):
            raise InfraError(f"{request['op']} on Kafka at {self.bootstrap} failed: {reply.get('error')}")
        return reply.get("result")

    def _start(self) -> subprocess.Popen[bytes]:
        self.starts += 1
        self._buffer = b""
        self._proc = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "harness.infra.group_admin", self.bootstrap],
            # No death signal tied to the parent: prctl's follows the *thread* that forked, and requests
            # come from short-lived threads too. The child leaves when its input closes instead.
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return self._proc

    def _read_line(self, proc: subprocess.Popen[bytes], deadline: float) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InfraError("no answer before the deadline")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise InfraError("its output closed")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


_ADMINS: dict[str, GroupAdmin] = {}
_ADMINS_LOCK = threading.Lock()


def group_admin(bootstrap: str) -> GroupAdmin:
    """The one GroupAdmin of ``bootstrap`` in this process (its child starts at the first request)."""
    with _ADMINS_LOCK:
        found = _ADMINS.get(bootstrap)
        if found is None:
            found = _ADMINS[bootstrap] = GroupAdmin(bootstrap)
        return found


# ---- the child's side ------------------------------------------------------------------
def _serve(bootstrap: str) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    client = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000,
                          "socket.connection.setup.timeout.ms": 3000, "log_level": 0})
    for raw in sys.stdin.buffer:
        request = json.loads(raw)
        timeout_s = float(request["timeout_s"])
        try:
            if request["op"] == "describe":
                futures = client.describe_consumer_groups(request["groups"], request_timeout=timeout_s)
                result: object = {}
                for group, future in futures.items():
                    d = future.result(timeout=timeout_s + 1)
                    result[group] = {  # type: ignore[index]
                        "state": str(getattr(d.state, "name", d.state)), "members": len(d.members),
                        "holding": sum(1 for m in d.members if m.assignment and m.assignment.topic_partitions),
                        "partitions": sum(len(m.assignment.topic_partitions) for m in d.members if m.assignment)}
            elif request["op"] == "delete":
                group = request["group"]
                try:
                    client.delete_consumer_groups([group], request_timeout=timeout_s)[group].result(timeout=timeout_s + 1)
                    result = True
                except KafkaException as exc:
                    if "GROUP_ID_NOT_FOUND" not in str(exc):
                        raise
                    result = False
            else:
                raise ValueError(f"unknown op {request['op']!r}")
            reply = {"ok": True, "result": result}
        except Exception as exc:  # noqa: BLE001 - every request gets its answer; the parent decides
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    # The parent closed our input: leave without destroying the client, whose destroy can block
    # forever after a broker restart (see harness.infra.kafka._keep_admins_at_exit).
    os._exit(0)


if __name__ == "__main__":
    _serve(sys.argv[1])
