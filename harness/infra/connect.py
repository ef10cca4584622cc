"""Kafka Connect in distributed mode with the Debezium Postgres connector, as a local JVM.

Distributed mode keeps connector offsets in Kafka topics, so a killed and restarted
worker behaves as in production: it resumes from the last *flushed* offset and sends
what came after it again (Debezium is at-least-once across a crash).

Where its traffic goes:
  internal topics (configs, offsets, status)  the broker's DIRECT listener, never under chaos
  records the source tasks produce            ``connect->kafka`` proxy (worker ``producer.bootstrap.servers``)
  the connector's database link               ``connect->postgres`` proxy (set per connector)

Connect is started only when a cdc pipeline needs it (``Infra.ensure_connect``): it costs
a JVM with a 1 GB heap and tens of seconds of cold start, which the other pipelines
should not pay.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.infra._http import call_json
from harness.infra.install import Installation
from harness.infra.process import ProcessSpec
from harness.infra.topology import HOST, Topology

__all__ = ["ConnectClient", "ConnectorState", "spec", "worker_properties"]

HEAP = "1g"
# How often source offsets are committed. After a worker crash everything produced since
# the last flush is produced again: this is the size of Debezium's redelivery window.
# Connect's own default (60 s). It was 10 s, and a crash landing just after a flush then
# redelivered next to nothing: connect_crash would have proved no deduplication. Every
# connector is created per run, so a crash in a scenario shorter than a minute redelivers
# all the run has streamed so far, whatever the timing.
OFFSET_FLUSH_MS = 60_000

_LOG4J2 = """\
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %X{connector.context}%m (%c)%n
logger.reflections.name=org.reflections
logger.reflections.level=ERROR
logger.kafkaclients.name=org.apache.kafka.clients
logger.kafkaclients.level=WARN
"""


def worker_properties(topo: Topology, plugin_path: Path, home: Path) -> str:
    group = f"chaos-connect-{topo.base_port}"
    props = {
        "bootstrap.servers": topo.kafka_direct,
        "group.id": group,
        "config.storage.topic": f"_{group}-configs",
        "offset.storage.topic": f"_{group}-offsets",
        "status.storage.topic": f"_{group}-status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "offset.storage.partitions": "1",
        "status.storage.partitions": "1",
        "offset.flush.interval.ms": str(OFFSET_FLUSH_MS),
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "listeners": f"http://{HOST}:{topo.connect_rest_port}",
        "rest.advertised.host.name": HOST,
        "rest.advertised.port": str(topo.connect_rest_port),
        "plugin.path": str(plugin_path),
        # Debezium's jars carry service manifests: loading them is much faster than reflective scanning.
        "plugin.discovery": "service_load",
        # Source tasks' producers go through the connect->kafka proxy; the broker's listener behind
        # that proxy advertises the proxy's port, so every produce request stays inside it.
        "producer.bootstrap.servers": topo.link("connect->kafka").proxy_address,
        "producer.socket.connection.setup.timeout.ms": "2000",
        "producer.linger.ms": "5",
        "connector.client.config.override.policy": "All",
        # A one-worker cluster: no reason to wait for other members before assigning, and a killed
        # worker's old membership should expire quickly so its restarted self gets the tasks.
        "scheduled.rebalance.max.delay.ms": "0",
        "session.timeout.ms": "6000",
        "heartbeat.interval.ms": "2000",
        "task.shutdown.graceful.timeout.ms": "3000",
    }
    home.mkdir(parents=True, exist_ok=True)
    return "".join(f"{k}={v}\n" for k, v in props.items())


def spec(inst: Installation, topo: Topology, home: Path, log: Path, die_with_parent: bool) -> ProcessSpec:
    inst.require_debezium()
    if not list(inst.kafka_libs.glob("connect-runtime-*.jar")):
        raise InfraError(f"connect-runtime is missing from {inst.kafka_libs}; reinstall Kafka: delete "
                         f"{inst.kafka_libs.parent} and run `chaos infra install`")
    props = home / "connect-distributed.properties"
    props.parent.mkdir(parents=True, exist_ok=True)
    props.write_text(worker_properties(topo, inst.connect_plugins, home))
    log4j = home / "connect-log4j2.properties"
    log4j.write_text(_LOG4J2)
    argv = [
        str(inst.java), "-Xms256m", f"-Xmx{HEAP}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
        "-cp", str(inst.kafka_libs / "*"), "org.apache.kafka.connect.cli.ConnectDistributed", str(props),
    ]
    return ProcessSpec(name="connect", argv=argv, log_path=log, die_with_parent=die_with_parent)


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """A connector's status as the REST API reports it: its own state and each task's."""

    name: str
    connector: str  # RUNNING, PAUSED, FAILED, UNASSIGNED, ...
    tasks: tuple[str, ...]
    trace: str  # the first failed task's trace, if any

    @property
    def running(self) -> bool:
        return self.connector == "RUNNING" and bool(self.tasks) and all(t == "RUNNING" for t in self.tasks)

    @property
    def failed(self) -> bool:
        return self.connector == "FAILED" or "FAILED" in self.tasks


class ConnectClient:
    """The Connect REST API; every call has a timeout (a chaos harness never hangs on its own control plane)."""

    def __init__(self, topo: Topology, timeout_s: float = 10.0) -> None:
        self.base_url = f"http://{HOST}:{topo.connect_rest_port}"
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        return call_json(self.base_url, method, path, body, timeout_s=self.timeout_s, service="Kafka Connect",
                         error=InfraError, hint="see the connect log in the infra logs folder", detail_chars=500)

    def version(self) -> str:
        return str(self._call("GET", "/")["version"])

    def plugins(self) -> list[str]:
        return [p["class"] for p in self._call("GET", "/connector-plugins")]

    def connectors(self) -> list[str]:
        return list(self._call("GET", "/connectors"))

    def put(self, name: str, config: Mapping[str, str]) -> None:
        self._call("PUT", f"/connectors/{_quote(name)}/config", dict(config))

    def delete(self, name: str) -> None:
        try:
            self._call("DELETE", f"/connectors/{_quote(name)}")
        except InfraError as exc:
            if "answered 404" not in str(exc):
                raise

    def status(self, name: str) -> ConnectorState:
        raw = self._call("GET", f"/connectors/{_quote(name)}/status")
        tasks = raw.get("tasks") or []
        trace = next((t.get("trace", "") for t in tasks if t.get("state") == "FAILED"), "")
        trace = trace or raw["connector"].get("trace", "")
        return ConnectorState(name, raw["connector"]["state"], tuple(t["state"] for t in tasks), trace[:2000])


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")
