"""The schema registry's local side: schemas that do not parse, registry URLs, the java for Apicurio, ports, needs.

No registry runs here: a schema that does not parse must be refused before any request is sent
(a counting HTTP server proves none was), with one line saying what is wrong and how to fix it.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.capabilities import missing_capabilities
from harness.cli import main
from harness.config import Settings
from harness.errors import SchemaInvalid, UsageError
from harness.infra.install import REGISTRY_FALLBACK, REGISTRY_PRIMARY, find_javas, pick_registry
from harness.infra.ports import HIGHEST_OFFSET, layout
from harness.infra.schema_registry import RegistryClient, SchemaType, parse_schema, validate_registry_url
from harness.infra.topology import Topology
from harness.target.registry import resolve_target

BAD_AVRO = [
    ('{"type": "record", "name": "Order", "fields": [{"name": "id"}]', "not JSON"),
    ('{"type": "record", "fields": []}', '"name" is a required field'),
    ('{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "strng"}]}', "unknown type 'strng'"),
    ('{"type": "record", "name": "Order", "fields": [{"name": "n", "type": "int", "default": "x"}]}', "Default value"),
    ('{"type": "fixed", "name": "Hash"}', "'size' attribute is missing"),
    ("string", "quote a primitive type name"),
]
BAD_JSON = [
    ('{"type": "objekt"}', "at type"),
    ('{"type": "object", "properties": []}', "at properties"),
    ('{"type": "object", "required": "id"}', "at required"),
    ("[1, 2]", "not a schema"),
    ('{"type": "object",}', "not JSON"),
]


@pytest.mark.parametrize(("text", "says"), BAD_AVRO)
def test_an_avro_schema_that_does_not_parse_is_one_line_naming_what(text: str, says: str) -> None:
    with pytest.raises(SchemaInvalid) as refused:
        parse_schema(text, SchemaType.AVRO, "orders-value")
    message = str(refused.value)
    assert refused.value.exit_code == 4 and "\n" not in message
    assert "orders-value" in message and says in message and "; " in message  # what, then how to fix it


@pytest.mark.parametrize(("text", "says"), BAD_JSON)
def test_a_json_schema_that_does_not_parse_is_one_line_naming_where(text: str, says: str) -> None:
    with pytest.raises(SchemaInvalid) as refused:
        parse_schema(text, SchemaType.JSON, "orders-value")
    message = str(refused.value)
    assert refused.value.exit_code == 4 and "\n" not in message
    assert "orders-value" in message and says in message and "; " in message  # what, then how to fix it


def test_schemas_that_parse_are_kept_as_written() -> None:
    avro = '{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "string"}]}'
    assert parse_schema(avro, SchemaType.AVRO).text == avro
    assert parse_schema('"string"', SchemaType.AVRO).type is SchemaType.AVRO
    js = json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                     "properties": {"id": {"type": "string"}}, "required": ["id"]})
    assert parse_schema(js, SchemaType.JSON).text == js


class _Counting(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def _answer(self) -> None:
        _Counting.seen.append(f"{self.command} {self.path}")
        body = b'{"id": 1, "version": 1, "is_compatible": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def counting_registry() -> Iterator[str]:
    _Counting.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/apis/ccompat/v7"
    finally:
        server.shutdown()
        server.server_close()


def test_the_client_refuses_an_unparseable_schema_before_sending_anything(counting_registry: str) -> None:
    client = RegistryClient(counting_registry, timeout_s=2)
    from harness.infra.schema_registry import Schema

    bad = Schema('{"type": "record", "name": "Order"', SchemaType.AVRO)  # built by hand, past parse_schema
    with pytest.raises(SchemaInvalid):
        client.register("orders-value", bad)
    with pytest.raises(SchemaInvalid):
        client.check_compatibility("orders-value", Schema('{"type": "objekt"}', SchemaType.JSON))
    assert _Counting.seen == []
    good = parse_schema('"string"', SchemaType.AVRO)
    assert client.register("orders-value", good).id == 1
    assert _Counting.seen and _Counting.seen[0] == "POST /apis/ccompat/v7/subjects/orders-value/versions"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8081", "https://registry.example:443/apis/ccompat/v7",
                                 "http://[::1]:8081/"])
def test_registry_urls_that_are_accepted(url: str) -> None:
    assert validate_registry_url(url) == url


@pytest.mark.parametrize("url", ["", " http://127.0.0.1:8081", "127.0.0.1:8081", "ftp://h", "http://u:p@h:1",
                                 "http://h:1?x=1", "http://h:70000", "http://h:8081/a b"])
def test_registry_urls_that_are_refused_in_one_line(url: str) -> None:
    with pytest.raises(UsageError) as refused:
        validate_registry_url(url)
    assert "\n" not in str(refused.value) and "--schema-registry" in str(refused.value)


def test_a_bad_schema_registry_option_or_variable_exits_4_before_anything_runs(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "black_friday", "--schema-registry", "localhost:8081"]) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--schema-registry" in err
    monkeypatch.setenv("CHAOS_SCHEMA_REGISTRY", "http://127.0.0.1:8081/x y")
    with pytest.raises(UsageError, match="CHAOS_SCHEMA_REGISTRY"):
        Settings.from_env()
    monkeypatch.setenv("CHAOS_SCHEMA_REGISTRY", "http://127.0.0.1:8081")
    assert Settings.from_env().schema_registry == "http://127.0.0.1:8081"


def _fake_jdk(root: Path, name: str, version: str) -> Path:
    java = root / name / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2025-01-01\' >&2\n')
    java.chmod(0o755)
    return java


def test_apicurio_3_runs_on_the_newest_java_21_plus_and_2_6_is_the_fallback_on_17(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # only the JDKs under the fake /usr/lib/jvm count
    only17 = tmp_path / "jvm17"
    _fake_jdk(only17, "java-17-openjdk-amd64", "17.0.15")
    release, java = pick_registry(find_javas(only17)) or (None, None)
    assert release is REGISTRY_FALLBACK and java is not None and java.major == 17
    both = tmp_path / "jvm"
    _fake_jdk(both, "java-17-openjdk-amd64", "17.0.15")
    newest = _fake_jdk(both, "temurin-25-jdk-amd64", "25.0.1")
    _fake_jdk(both, "broken", "not-a-version")
    release, java = pick_registry(find_javas(both)) or (None, None)
    assert release is REGISTRY_PRIMARY and java is not None and (java.path, java.major) == (newest, 25)
    assert pick_registry(find_javas(tmp_path / "nothing")) is None


def test_the_registry_ports_are_new_slots_and_every_earlier_port_stays_where_it_was() -> None:
    topo = Topology(20000)
    assert (topo.toxiproxy_port, topo.postgres_port, topo.kafka_direct_port, topo.kafka_controller_port,
            topo.connect_rest_port) == (20000, 20001, 20002, 20003, 20004)
    assert (topo.kafka_slot(0, "x").proxy_port, topo.postgres_slot(0, "x").proxy_port, topo.process_ports[0]) == \
        (20010, 20050, 20080)
    assert (topo.schema_registry_port, topo.schema_registry_management_port) == (20005, 20006)
    assert topo.schema_registry_url == "http://127.0.0.1:20005/apis/ccompat/v7"
    ports = [u.port for u in layout(20000)]
    assert len(ports) == len(set(ports)) and {20005, 20006} <= set(ports)
    assert HIGHEST_OFFSET == 99  # the layout did not grow: existing CHAOS_BASE_PORT choices stay valid


def test_a_scenario_that_needs_a_registry_runs_only_on_a_target_that_declares_one() -> None:
    from dataclasses import replace

    outbox = resolve_target("outbox")
    missing = missing_capabilities((), ("schema-registry",), "correct", outbox)
    assert missing and "schema_registry = true" in missing[0]
    assert missing_capabilities((), ("schema-registry",), "correct", replace(outbox, uses_schema_registry=True)) == []


_TOML = '''
name = "mini"
domain = "orders"
entrypoint = "app"
publisher = "app"
{registry}
[processes.app]
use = "reference:order_service.direct"
links = ["kafka", "postgres"]
'''


class _Infra:
    """Just enough infra for a SpecTarget to compute its processes' environment, counting registry starts."""

    def __init__(self) -> None:
        self.topology = Topology(20000)
        self.started = 0
        self._links = {link.name: link for link in self.topology.bind(("app->kafka", "app->postgres"))}

    def link(self, name: str) -> object:
        return self._links[name]

    def ensure_schema_registry(self) -> RegistryClient:
        self.started += 1
        return RegistryClient(self.topology.schema_registry_url)


@pytest.mark.parametrize("declared", [True, False])
def test_only_a_target_that_declares_a_registry_starts_one_and_gets_its_url(tmp_path: Path, declared: bool) -> None:
    from harness.target.protocol import RunContext
    from harness.target.registry import load_domain
    from harness.target.runtime import SpecTarget

    path = tmp_path / "target.toml"
    path.write_text(_TOML.format(registry="schema_registry = true" if declared else ""))
    spec = resolve_target(str(path))
    assert spec.uses_schema_registry is declared
    infra = _Infra()
    target = SpecTarget(spec, infra, RunContext("r1", "mini", tmp_path, 1), load_domain(spec.domain))  # type: ignore[arg-type]
    target.attach_schema_registry()
    env = target._env(target._replicas["app"])  # noqa: SLF001 - the environment contract is what is tested
    assert infra.started == (1 if declared else 0)
    if declared:
        assert env["CHAOS_SCHEMA_REGISTRY_URL"] == "http://127.0.0.1:20005/apis/ccompat/v7"
    else:
        assert "CHAOS_SCHEMA_REGISTRY_URL" not in env


def test_schema_registry_in_a_target_file_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "target.toml"
    path.write_text(_TOML.format(registry='schema_registry = "yes"'))
    with pytest.raises(UsageError, match="schema_registry"):
        resolve_target(str(path))
