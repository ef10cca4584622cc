"""Apicurio Registry as a local JVM: the harness's own schema registry, speaking Confluent's API.

Apicurio serves Confluent's Schema Registry REST API under ``/apis/ccompat/v7`` (subjects,
versions, config, compatibility), so confluent-kafka's ``SchemaRegistryClient`` and its Avro and
JSON Schema serializers work against it unchanged, and so does a target process that is
handed ``CHAOS_SCHEMA_REGISTRY_URL``. Storage is in memory (H2): a restart forgets every schema.

Why these flags:
  loopback only    Quarkus binds 0.0.0.0 by default, and 3.x opens a management port (9000) too
  BACKWARD         Apicurio's global rule defaults to NONE; Confluent's default is BACKWARD, and
                   a Confluent client expects it (2.x enforces the rule but its GET /config says NONE)
  -Xmx256m         measured 230-280 MB RSS and a 10-12 s start on 2 cores

Like Kafka Connect it is started on demand (``Infra.ensure_schema_registry``), the first time a
target declares it uses one: a session that never needs a registry never pays its JVM.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from harness.infra.install import RegistryInstall
from harness.infra.process import ProcessSpec
from harness.infra.topology import HOST, Topology

__all__ = ["HEAP", "probe", "spec"]

HEAP = "256m"
_PROBE_TIMEOUT_S = 3.0


def spec(reg: RegistryInstall, topo: Topology, log: Path, die_with_parent: bool) -> ProcessSpec:
    rule = "apicurio.rules.global.compatibility" if reg.release.major >= 3 else "registry.rules.global.compatibility"
    argv = [
        str(reg.java.path), "-Xms64m", f"-Xmx{HEAP}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dquarkus.http.host={HOST}", f"-Dquarkus.http.port={topo.schema_registry_port}",
        f"-Dquarkus.management.host={HOST}", f"-Dquarkus.management.port={topo.schema_registry_management_port}",
        f"-D{rule}=BACKWARD",
        "-jar", str(reg.launcher),
    ]
    # cwd: Quarkus resolves relative paths (and writes nothing else) from there.
    return ProcessSpec(name="schema-registry", argv=argv, log_path=log, cwd=reg.launcher.parent,
                       die_with_parent=die_with_parent)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT_S) as response:  # noqa: S310 - loopback only
            return response.status, response.read(300).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(300).decode("utf-8", "replace")


def probe(topo: Topology, major: int) -> tuple[bool, str]:
    """Ready when Confluent's API lists subjects (and, on 3.x, Quarkus's readiness check is UP)."""
    if major >= 3:
        status, body = _get(f"http://{HOST}:{topo.schema_registry_management_port}/health/ready")
        if status != 200:
            return False, f"/health/ready answered {status}: {body[:200]}"
    status, body = _get(f"{topo.schema_registry_url}/subjects")
    return status == 200, f"GET /subjects answered {status}: {body[:200]}"
