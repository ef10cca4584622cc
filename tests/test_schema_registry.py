"""The schema registry on real infrastructure: Apicurio, started on demand, driven by confluent-kafka.

confluent-kafka's own ``SchemaRegistryClient`` and its Avro and JSON Schema serializers are the
clients here, as a target process would use them; the harness's ``RegistryClient`` must agree
with them. For each compatibility level a compatible change is accepted and an incompatible one
refused with HTTP 409 (NONE refuses nothing: the change BACKWARD refuses is accepted there).
"""

from __future__ import annotations

import io
import json
import struct
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema as ConfluentSchema
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro.read import SchemaResolutionError

from harness.errors import RegistryError, SchemaIncompatible
from harness.infra import kafka
from harness.infra.pids import records
from harness.infra.schema_registry import CompatibilityLevel, RegistryClient, SchemaType, parse_schema
from harness.infra.stack import REGISTRY, Infra

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def registry(chaos_infra: Infra) -> RegistryClient:
    return chaos_infra.ensure_schema_registry()


@pytest.fixture(scope="module")
def apicurio_2(chaos_infra: Infra, registry: RegistryClient) -> bool:
    """The fallback release (Java 17 only) runs: a subject's NONE does not override its global BACKWARD."""
    proc = chaos_infra.processes.get(REGISTRY)
    return proc is not None and any(a.endswith("-runner.jar") for a in proc.spec.argv)


_NONE_ON_2X = ("Apicurio 2.6.13 (the Java 17 fallback) drops a subject's NONE and applies the global BACKWARD "
               "rule instead; 3.3.3 honours it")


@pytest.fixture(scope="module")
def confluent(registry: RegistryClient) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry.base_url, "timeout": 10})


@pytest.fixture
def subject(registry: RegistryClient) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:10]}-value"
    yield name
    registry.delete_subject(name)


def _avro(*fields: dict[str, object]) -> str:
    return json.dumps({"type": "record", "name": "Order", "namespace": "chaos.test",
                       "fields": [{"name": "id", "type": "string"}, *fields]})


def _json(properties: dict[str, object], required: list[str], **extra: object) -> str:
    return json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
                       "properties": {"id": {"type": "string"}, **properties}, "required": ["id", *required], **extra})


_AMOUNT = {"name": "amount", "type": "double"}
_NOTE = {"name": "note", "type": "string", "default": ""}
_EXTRA = {"name": "extra", "type": "string"}  # no default
_NUMBER = {"amount": {"type": "number"}}
# (base, compatible change, incompatible change) per schema type and level, following each language's
# rules as the registry applies them; the incompatible one is judged against the compatible one (the latest).
# JSON Schema's content model is open (additional properties allowed):
# a property a new reader adds may clash with what old writers put there, so adding one is not BACKWARD.
CHANGES: dict[tuple[SchemaType, CompatibilityLevel], tuple[str, str, str]] = {
    (SchemaType.AVRO, CompatibilityLevel.BACKWARD): (
        _avro(_AMOUNT), _avro(_AMOUNT, _NOTE),
        _avro(_AMOUNT, _NOTE, _EXTRA)),  # a new reader cannot fill "extra" from old data
    (SchemaType.AVRO, CompatibilityLevel.FORWARD): (
        _avro(_AMOUNT), _avro(_AMOUNT, {"name": "note", "type": "string"}),
        _avro()),  # an old reader needs "amount", which new data lacks
    (SchemaType.AVRO, CompatibilityLevel.FULL): (
        _avro(_AMOUNT), _avro(_AMOUNT, _NOTE), _avro(_AMOUNT, _NOTE, _EXTRA)),
    (SchemaType.AVRO, CompatibilityLevel.NONE): (
        _avro(_AMOUNT), _avro({"name": "amount", "type": "string"}), ""),
    (SchemaType.JSON, CompatibilityLevel.BACKWARD): (
        _json(_NUMBER, ["amount"]), _json(_NUMBER, []),
        _json({**_NUMBER, "note": {"type": "string"}}, ["amount", "note"])),
    (SchemaType.JSON, CompatibilityLevel.FORWARD): (
        _json(_NUMBER, ["amount"]), _json({**_NUMBER, "note": {"type": "string"}}, ["amount"]),
        _json({}, [])),
    (SchemaType.JSON, CompatibilityLevel.FULL): (
        _json(_NUMBER, ["amount"]), _json(_NUMBER, ["amount"], description="an order"),
        _json({**_NUMBER, "note": {"type": "string"}}, ["amount"])),
    (SchemaType.JSON, CompatibilityLevel.NONE): (
        _json(_NUMBER, ["amount"]), _json({"amount": {"type": "string"}}, ["amount"]), ""),
}


def test_registry_starts_on_demand_once_on_loopback_and_answers_with_backward(chaos_infra: Infra,
                                                                             registry: RegistryClient) -> None:
    proc = chaos_infra.processes[REGISTRY]
    assert registry.base_url == chaos_infra.topology.schema_registry_url
    assert registry.compatibility() is CompatibilityLevel.BACKWARD  # Confluent's default, not Apicurio's NONE
    again = chaos_infra.ensure_schema_registry()
    assert chaos_infra.processes[REGISTRY].pid == proc.pid and again.base_url == registry.base_url
    status = {s.name: s for s in chaos_infra.status()}
    assert status[REGISTRY].alive and status[REGISTRY].pid == proc.pid, status[REGISTRY].detail
    assert any(r.pid == proc.pid and r.name == REGISTRY for r in records(chaos_infra.settings.pids_dir)), \
        "`chaos infra down` finds leftovers through pid records; the registry has none"
    # Quarkus listens on 0.0.0.0 unless told otherwise: every socket of the JVM must be on loopback.
    listening = _listening_addresses(proc.pid or 0)
    assert listening and all(addr.startswith("127.0.0.1:") for addr in listening), listening


def _listening_addresses(pid: int) -> list[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addr, port = fields[1].rsplit(":", 1)
                # IPv4 (or IPv4-mapped IPv6, which Java uses) loopback: the last 8 hex digits are 0100007F.
                found.append(f"{'127.0.0.1' if addr.endswith('0100007F') else addr}:{int(port, 16)}")
    return found


def test_confluent_client_registers_avro_and_json_schemas(confluent: SchemaRegistryClient, subject: str,
                                                          registry: RegistryClient) -> None:
    avro_id = confluent.register_schema(subject, ConfluentSchema(_avro(_AMOUNT), "AVRO"))
    latest = confluent.get_latest_version(subject)
    assert latest.schema_id == avro_id and latest.version == 1 and latest.schema.schema_type == "AVRO"
    json_subject = subject.replace("-value", "-json-value")
    try:
        json_id = confluent.register_schema(json_subject, ConfluentSchema(_json(_NUMBER, ["amount"]), "JSON"))
        latest = confluent.get_latest_version(json_subject)
        assert latest.schema_id == json_id and latest.schema.schema_type == "JSON"
        assert json_id != avro_id
        # The harness's client reads the same registry: same subjects, and registering again is idempotent.
        assert {subject, json_subject} <= set(registry.subjects())
        again = registry.register(json_subject, parse_schema(_json(_NUMBER, ["amount"]), SchemaType.JSON))
        assert (again.id, again.version) == (json_id, 1)
    finally:
        registry.delete_subject(json_subject)


@pytest.mark.parametrize(("schema_type", "level"), list(CHANGES), ids=[f"{t.value}-{lv.value}" for t, lv in CHANGES])
def test_each_level_accepts_a_compatible_change_and_refuses_an_incompatible_one(
        schema_type: SchemaType, level: CompatibilityLevel, confluent: SchemaRegistryClient,
        registry: RegistryClient, subject: str, apicurio_2: bool) -> None:
    if apicurio_2 and level is CompatibilityLevel.NONE:
        pytest.xfail(_NONE_ON_2X)
    base, compatible, incompatible = CHANGES[(schema_type, level)]
    confluent.register_schema(subject, ConfluentSchema(base, schema_type.value))
    confluent.set_compatibility(subject, level.value)
    assert registry.compatibility(subject) is level

    assert registry.check_compatibility(subject, parse_schema(compatible, schema_type)).compatible
    confluent.register_schema(subject, ConfluentSchema(compatible, schema_type.value))
    assert registry.versions(subject) == [1, 2]

    if level is CompatibilityLevel.NONE:
        # NONE refuses nothing: the change BACKWARD refuses goes in as version 2, checked above.
        refused_elsewhere = CHANGES[(schema_type, CompatibilityLevel.BACKWARD)][2]
        confluent.register_schema(subject, ConfluentSchema(refused_elsewhere, schema_type.value))
        assert registry.versions(subject) == [1, 2, 3]
        return
    if schema_type is SchemaType.AVRO:
        # The registry's verdicts are Avro's own resolution rules: fastavro, reading with one schema what
        # the other wrote, agrees in the direction(s) the level asks for.
        assert _avro_resolves(compatible, base, level) and not _avro_resolves(incompatible, compatible, level)
    check = registry.check_compatibility(subject, parse_schema(incompatible, schema_type))
    assert not check.compatible
    with pytest.raises(SchemaRegistryError) as refused:
        confluent.register_schema(subject, ConfluentSchema(incompatible, schema_type.value))
    assert refused.value.http_status_code == 409
    with pytest.raises(SchemaIncompatible) as ours:
        registry.register(subject, parse_schema(incompatible, schema_type))
    assert ours.value.status == 409 and ours.value.exit_code == 4
    assert registry.versions(subject) == [1, 2], "a refused schema must not become a version"


def _avro_resolves(new: str, old: str, level: CompatibilityLevel) -> bool:
    """Can data of one schema be read with the other, in the directions ``level`` names (fastavro's resolution)?"""
    directions = {CompatibilityLevel.BACKWARD: [(old, new)], CompatibilityLevel.FORWARD: [(new, old)],
                  CompatibilityLevel.FULL: [(old, new), (new, old)]}[level]
    for writer, reader in directions:
        w, r = fastavro.parse_schema(json.loads(writer)), fastavro.parse_schema(json.loads(reader))
        sample = {f["name"]: {"string": "s", "double": 1.5}[f["type"]] for f in json.loads(writer)["fields"]}
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, w, sample)
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, w, r)
        except SchemaResolutionError:
            return False
    return True


def test_a_subject_level_set_by_the_harness_client_overrides_the_global_one(registry: RegistryClient,
                                                                             subject: str, apicurio_2: bool) -> None:
    if apicurio_2:
        pytest.xfail(_NONE_ON_2X)
    base, _, incompatible = CHANGES[(SchemaType.AVRO, CompatibilityLevel.BACKWARD)]
    first = registry.register(subject, parse_schema(base, SchemaType.AVRO, subject))
    assert first.version == 1
    with pytest.raises(SchemaIncompatible):
        registry.register(subject, parse_schema(incompatible, SchemaType.AVRO, subject))
    registry.set_compatibility(subject, CompatibilityLevel.NONE)
    second = registry.register(subject, parse_schema(incompatible, SchemaType.AVRO, subject))
    assert second.version == 2 and second.id != first.id
    assert registry.compatibility() is CompatibilityLevel.BACKWARD, "a subject's level leaked into the global one"


def _round_trip(chaos_infra: Infra, topic: str, serializer: object, deserializer: object,
                record: dict[str, object]) -> tuple[bytes, object]:
    admin = kafka.admin(chaos_infra.topology.kafka_direct)
    admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=10, request_timeout=15)[topic].result(timeout=20)
    ctx = SerializationContext(topic, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": chaos_infra.topology.kafka_direct, "message.timeout.ms": 10000})
    delivered: list[object] = []
    producer.produce(topic, key=b"o-1", value=serializer(record, ctx),  # type: ignore[operator]
                     on_delivery=lambda err, msg: delivered.append(err or msg))
    assert producer.flush(15) == 0 and delivered and not isinstance(delivered[0], Exception), delivered
    consumer = Consumer({"bootstrap.servers": chaos_infra.topology.kafka_direct, "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        msg = None
        for _ in range(60):  # a bounded number of 0.5 s polls: the deadline of this read
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.error() is None, f"nothing read back from {topic}: {msg and msg.error()}"
        raw = msg.value()
        return raw, deserializer(raw, ctx)  # type: ignore[operator]
    finally:
        consumer.close()
        admin.delete_topics([topic], operation_timeout=10)


def _header_id(raw: bytes) -> int:
    magic, schema_id = struct.unpack(">bI", raw[:5])
    assert magic == 0, "Confluent's wire format starts with magic byte 0"
    return int(schema_id)


def test_avro_serializer_round_trips_a_record_through_kafka(chaos_infra: Infra, confluent: SchemaRegistryClient,
                                                            registry: RegistryClient) -> None:
    topic = f"registry-avro-{uuid.uuid4().hex[:8]}"
    schema = _avro(_AMOUNT, {"name": "note", "type": ["null", "string"], "default": None})
    record = {"id": "o-1", "amount": 12.5, "note": "gift"}
    try:
        raw, back = _round_trip(chaos_infra, topic, AvroSerializer(confluent, schema),
                                AvroDeserializer(confluent), record)
        assert back == record
        # The serializer registered the schema under TopicNameStrategy's subject, and its id heads the record.
        assert _header_id(raw) == confluent.get_latest_version(f"{topic}-value").schema_id
    finally:
        registry.delete_subject(f"{topic}-value")


def test_json_serializer_round_trips_a_record_through_kafka(chaos_infra: Infra, confluent: SchemaRegistryClient,
                                                            registry: RegistryClient) -> None:
    topic = f"registry-json-{uuid.uuid4().hex[:8]}"
    schema = _json(_NUMBER, ["amount"])
    record = {"id": "o-1", "amount": 12.5}
    try:
        raw, back = _round_trip(chaos_infra, topic, JSONSerializer(schema, confluent),
                                JSONDeserializer(schema, schema_registry_client=confluent), record)
        assert back == record
        assert _header_id(raw) == confluent.get_latest_version(f"{topic}-value").schema_id
    finally:
        registry.delete_subject(f"{topic}-value")


def test_a_users_own_registry_is_used_instead_and_must_answer(chaos_infra: Infra, registry: RegistryClient) -> None:
    """--schema-registry URL: nothing starts; a URL that does not answer is an infra failure (exit 3)."""
    own = Infra(replace(chaos_infra.settings, schema_registry=registry.base_url), {}, chaos_infra.logs_dir, owned=False)
    assert own.ensure_schema_registry().base_url == registry.base_url
    assert REGISTRY not in own.processes, "a user's registry was given, yet the harness started its own"
    gone = Infra(replace(chaos_infra.settings, schema_registry="http://127.0.0.1:9/apis/ccompat/v7"), {},
                 chaos_infra.logs_dir, owned=False)
    with pytest.raises(RegistryError) as failed:
        gone.ensure_schema_registry()
    assert failed.value.exit_code == 3 and "127.0.0.1:9" in str(failed.value)


_REGISTRAR = '''
import os, signal
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

client = SchemaRegistryClient({"url": os.environ["CHAOS_SCHEMA_REGISTRY_URL"], "timeout": 10})
schema = '{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "string"}]}'
# The key subject: the order service registers the value subject itself (its JSON Schema gate).
schema_id = client.register_schema(os.environ["CHAOS_TOPIC"] + "-key", Schema(schema, "AVRO"))
print(f"registered schema {schema_id}", flush=True)
signal.pause()
'''

_TARGET = '''
name = "registered"
domain = "orders"
entrypoint = "app"
publisher = "app"
schema_registry = true

[processes.app]
use = "reference:order_service.direct"

[processes."consumer.payment"]
use = "reference:consumer.payment"

[processes.registrar]
command = ["{python}", "registrar.py"]
ready = { log = "registered schema", timeout_s = 30 }
'''


def test_a_target_that_declares_a_registry_gets_its_url_and_registers_under_its_topic(
        chaos_run, registry: RegistryClient, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.scenario import Scenario
    from harness.workload.rate import Constant

    (tmp_path / "registrar.py").write_text(_REGISTRAR)
    (tmp_path / "target.toml").write_text(_TARGET)
    scenario = Scenario(name="registered", description="a target process registers its value schema",
                        pipelines=("outbox",), shape=Constant(5), duration_s=2, faults=(), drain_timeout_s=30,
                        needs=("schema-registry",))
    result = chaos_run(scenario, target=str(tmp_path / "target.toml"))
    subject = f"orders.registered.{result.run_id}-key"  # the run's event topic, TopicNameStrategy
    try:
        assert subject in registry.subjects(), f"the registrar did not register {subject}: {registry.subjects()}"
    finally:
        registry.delete_subject(subject)
