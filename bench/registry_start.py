"""Benchmark: the schema registry's cold start and footprint, on the infra of CHAOS_BASE_PORT.

    CHAOS_BASE_PORT=24000 python bench/registry_start.py --times 3

Needs a running infra (`chaos infra up`). Each round stops the harness's registry if it runs,
starts it with ``Infra.ensure_schema_registry`` (what a run that needs it pays), and measures:
  ready_s     from start until Confluent's API lists subjects (and Quarkus says ready)
  rss_mb      the JVM's resident memory once ready, and again after registering 50 schemas
Prints one JSON line per round. The last registry is left running (`chaos infra down` stops it).
Timing lives here, never in a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.config import Settings
from harness.infra.install import locate_registry
from harness.infra.schema_registry import SchemaType, parse_schema
from harness.infra.stack import REGISTRY, Infra


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--times", type=int, default=3)
    args = parser.parse_args()
    settings = Settings.from_env()
    infra = Infra.attach(settings)
    if infra is None:
        raise SystemExit(f"no infra on base port {settings.base_port}: run `chaos infra up` first")
    reg = locate_registry(settings)
    for _ in range(args.times):
        infra.stop_schema_registry()
        client = infra.ensure_schema_registry()
        pid = infra.processes[REGISTRY].pid or 0
        ready_rss = _rss_mb(pid)
        for i in range(50):
            schema = json.dumps({"type": "record", "name": f"R{i}", "fields": [{"name": "id", "type": "string"}]})
            client.register(f"bench-{i}-value", parse_schema(schema, SchemaType.AVRO))
        print(json.dumps({"registry": f"apicurio {reg.release.version}", "java": reg.java.major,
                          "ready_s": round(infra.registry_cold_start_s or 0.0, 2), "rss_mb_ready": ready_rss,
                          "rss_mb_after_50_schemas": _rss_mb(pid)}), flush=True)


if __name__ == "__main__":
    main()
