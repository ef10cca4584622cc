"""A single KRaft Kafka broker from Maven Central jars, with one listener per proxied link.

Each Kafka link gets its own listener, bound to a private port and *advertising the
proxy's port*: after the first metadata request a client connects to the advertised
address, so this is what keeps its produce and fetch traffic inside the proxy.
DIRECT serves replication, admin work and the harness's oracle reads.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import subprocess
import threading
from pathlib import Path

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from harness.errors import InfraError
from harness.infra.group_admin import group_admin
from harness.infra.install import Installation
from harness.infra.process import ProcessSpec
from harness.infra.topology import HOST, Topology
from harness.wait import wait_for

__all__ = ["admin", "broker_properties", "format_storage", "probe", "coordinates", "quiet_logger", "read_to_end", "spec"]

_LOG4J2 = """\
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.state.name=state.change.logger
logger.state.level=WARN
logger.request.name=kafka.request.logger
logger.request.level=WARN
"""


def broker_properties(topo: Topology, log_dir: Path) -> str:
    links = topo.kafka_slots()
    listeners = [f"DIRECT://{HOST}:{topo.kafka_direct_port}", f"CONTROLLER://{HOST}:{topo.kafka_controller_port}"]
    listeners += [f"{link.listener_name}://{link.upstream_address}" for link in links]
    advertised = [f"DIRECT://{HOST}:{topo.kafka_direct_port}"]
    advertised += [f"{link.listener_name}://{link.proxy_address}" for link in links]
    protocols = ["DIRECT:PLAINTEXT", "CONTROLLER:PLAINTEXT"] + [f"{link.listener_name}:PLAINTEXT" for link in links]
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{topo.kafka_controller_port}",
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "listener.security.protocol.map": ",".join(protocols),
        "inter.broker.listener.name": "DIRECT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(log_dir),
        "num.partitions": "3",
        "auto.create.topics.enable": "false",
        # One node on two cores: replication factor 1 everywhere, few threads, no rebalance delay.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # A broker killed with -9 comes back as a new incarnation, and the controller refuses to register
        # it (DUPLICATE_BROKER_REGISTRATION) until the old one's session expires: 9 s by default, measured
        # as 8 of a broker restart's 18 s here. Heartbeats go over loopback inside one JVM.
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "750",
        "num.network.threads": "2",
        "num.io.threads": "2",
        # The broker requires strictly more than 1 MiB per cleaner thread.
        "log.cleaner.dedupe.buffer.size": "2097152",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _java_argv(inst: Installation, log4j: Path, main: str, heap: str = "512m") -> list[str]:
    return [
        str(inst.java), f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}", "-cp", str(inst.kafka_libs / "*"), main,
    ]


def format_storage(inst: Installation, topo: Topology, home: Path, log: Path) -> Path:
    """Write server.properties and format a fresh KRaft log dir; returns the properties path."""
    data = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    props = home / "server.properties"
    props.write_text(broker_properties(topo, data))
    log4j = home / "log4j2.properties"
    log4j.write_text(_LOG4J2)
    import uuid
    import base64

    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        # Static controller.quorum.voters: format without --standalone. The id is passed as
        # --cluster-id=ID because a url-safe base64 id can start with "-", which argparse then
        # takes for an option (one start in 64 failed that way).
        result = subprocess.run(  # noqa: S603
            _java_argv(inst, log4j, "kafka.tools.StorageTool", heap="256m") + ["format", f"--cluster-id={cluster_id}", "-c", str(props)],
            stdout=fh, stderr=subprocess.STDOUT, timeout=120, check=False,
        )
    if result.returncode != 0:
        raise InfraError(f"Kafka storage format failed with exit {result.returncode}; see {log}")
    return props


def spec(inst: Installation, home: Path, log: Path, die_with_parent: bool) -> ProcessSpec:
    argv = _java_argv(inst, home / "log4j2.properties", "kafka.Kafka") + [str(home / "server.properties")]
    return ProcessSpec(name="kafka", argv=argv, log_path=log, die_with_parent=die_with_parent)


def quiet_logger() -> logging.Logger:
    """librdkafka logs every refused connection to stderr; route it to a logger instead."""
    logger = logging.getLogger("chaos.librdkafka")
    logger.propagate = False
    if not logger.handlers:
        # Without a handler of its own, logging's last resort prints WARNING and up to stderr anyway
        # (a `chaos dlq` against a stopped broker printed a hundred refused connections).
        logger.addHandler(logging.NullHandler())
    return logger


_ADMINS: dict[tuple[str, int], AdminClient] = {}
_ADMINS_LOCK = threading.Lock()


def admin(bootstrap: str, timeout_ms: int = 3000) -> AdminClient:
    """One AdminClient per address for the life of the harness process.

    A request that timed out on the caller's side still holds the client until the broker
    answers; if that late answer drops the last reference, librdkafka destroys the client
    from its own background thread and aborts the whole process (seen when a readiness
    wait retried describe_consumer_groups during a rebalance). Clients that are never
    released cannot be destroyed from the wrong thread.

    A harness that stops the broker releases them first (``release_admins``).
    """
    key = (bootstrap, timeout_ms)
    with _ADMINS_LOCK:
        client = _ADMINS.get(key)
        if client is None:
            client = _ADMINS[key] = AdminClient({
                "bootstrap.servers": bootstrap,
                "socket.timeout.ms": timeout_ms,
                "socket.connection.setup.timeout.ms": timeout_ms,
                "logger": quiet_logger(),  # type: ignore[dict-item]  # the stubs omit the Logger librdkafka takes
            })
        return client


def _keep_admins_at_exit() -> None:
    """Never destroy the cached clients at interpreter exit: leak them to the OS instead.

    After a broker was killed with -9 and came back, destroying a client at exit could block
    forever in librdkafka (gdb: Admin_dealloc -> rd_kafka_destroy_app), so a `chaos run` whose run
    folder was complete never exited. The process is ending: its sockets and threads go with it,
    and a reference no one drops means the client is never destroyed at all."""
    with _ADMINS_LOCK:
        for client in _ADMINS.values():
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(client))


atexit.register(_keep_admins_at_exit)


# How long a release waits for librdkafka to destroy a client before leaving it to a daemon thread.
RELEASE_WAIT_S = 5.0


def release_admins(bootstrap: str) -> None:
    """Destroy the cached clients of ``bootstrap``, waiting at most RELEASE_WAIT_S for it.

    Called before a harness stops a broker it owns. The destroy runs on a daemon thread: after
    the broker was killed with -9 and restarted during a run, librdkafka's destroy can block
    forever even while the broker answers (seen in a pytest session's teardown: Infra.stop stuck
    here for 15 minutes). A destroy that does not finish in time is left behind; the process
    exits without it, as it does with the clients still cached at exit (_keep_admins_at_exit).
    """
    with _ADMINS_LOCK:
        stale = [key for key in _ADMINS if key[0] == bootstrap]
        doomed = [_ADMINS.pop(key) for key in stale]
    if not doomed:
        return
    worker = threading.Thread(target=doomed.clear, name=f"release-admins {bootstrap}", daemon=True)
    del stale
    worker.start()  # the list's references are the last: the clients are destroyed on that thread
    del doomed
    worker.join(RELEASE_WAIT_S)


# A consumer group nobody joins: describing it is a request to the group coordinator, which
# answers DEAD for it once it has loaded the offsets topic.
READINESS_GROUP = "chaos-harness-readiness"


def probe(topo: Topology) -> tuple[bool, str]:
    """Ready: the broker is in the metadata *and* the group coordinator answers.

    Metadata comes first after a start: a broker restarted after a kill -9 answered metadata while
    its group coordinator said NOT_COORDINATOR (once for minutes, after a DUPLICATE_BROKER_REGISTRATION),
    and consumers started then could not join. Asked through the group-admin child (librdkafka#4605).
    """
    meta = admin(topo.kafka_direct).list_topics(timeout=2)
    if not meta.brokers:
        return False, "no broker in the metadata yet"
    # An error (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) is raised: the wait keeps it as evidence.
    state = group_admin(topo.kafka_direct).describe([READINESS_GROUP], timeout_s=2)[READINESS_GROUP]
    return True, f"brokers={sorted(meta.brokers)}, group coordinator answers (a group nobody joins: {state.state.lower()})"


def coordinates(msg: Message) -> tuple[int, int]:
    """(partition, offset) of a record a consumer returned without an error. The client's type hints
    allow None for both, which only a message that was never on a topic has."""
    partition, offset = msg.partition(), msg.offset()
    if partition is None or offset is None:
        raise InfraError(f"a consumed record has no partition or offset (error: {msg.error()}); "
                         "this is a bug in the harness's consumer loop")
    return partition, offset


def read_to_end(consumer: Consumer, topic: str, ends: dict[int, int], timeout_s: float = 60) -> list[Message]:
    """Every record of ``topic`` from offset 0 up to ``ends`` (partition -> end offset), read by ``consumer``.

    The ends are taken before reading, so records produced meanwhile are not waited for; a
    partition whose end is 0 is not assigned at all. Raises WaitTimeout naming the partitions
    still unread after ``timeout_s``."""
    messages: list[Message] = []
    remaining = {p: e for p, e in ends.items() if e > 0}
    if not remaining:
        return messages
    consumer.assign([TopicPartition(topic, p, 0) for p in remaining])

    def read() -> tuple[bool, str]:
        for msg in consumer.consume(500, timeout=0.5):
            if msg.error():
                continue
            messages.append(msg)
            partition, offset = coordinates(msg)
            if offset + 1 >= remaining.get(partition, 0):
                remaining.pop(partition, None)
        return not remaining, f"partitions still being read: {sorted(remaining)}"

    wait_for(read, timeout_s=timeout_s, what=f"reading topic {topic} to its end", interval_s=0)
    return messages
