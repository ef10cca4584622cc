"""The order domain, the cdc capture config and the broken variants, without infrastructure."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.faults.messages import POISON_PAYLOADS as POISON_VALUES
from harness.faults.schedule import FaultKind, FaultSpec
from harness.infra.connect import worker_properties
from harness.infra.topology import Topology
from harness.sdk.provenance import LSN_HEADER, OUTBOX_ID_HEADER
from scenarios.connect_crash import SCENARIO as CRASH
from targets.cdc import Capture
from targets.domain import EVENT_NAMESPACE, SCHEMA_VERSION, Event, decode_event, event_from_row, event_id_for
from targets.variants import Variant

ROW = {"order_id": "0b6f7c1e-6a7e-4a59-9d0c-1f6f0e6f2a11", "customer": "customer-007", "amount_cents": 1234,
       "status": "paid", "version": 2, "correlation_id": "9a0f1d0e-3a53-4f0c-8d7c-2b8a7c1e0f55",
       "created_at": "2026-11-26T20:00:00.000001Z", "updated_at": "2026-11-26T20:00:01.000002Z"}


def test_a_debezium_row_decodes_to_the_domain_event_with_a_deterministic_id() -> None:
    event = decode_event(json.dumps(ROW).encode())
    assert event == event_from_row(ROW)
    assert (event.type, event.seq, event.schema_version) == ("order.paid", 2, SCHEMA_VERSION)
    assert event.correlation_id == ROW["correlation_id"] and event.occurred_at == ROW["updated_at"]
    # Redelivery of the same row version must carry the same id, and the next version a new one.
    assert event.event_id == event_id_for(ROW["order_id"], 2) == decode_event(json.dumps(ROW).encode()).event_id
    assert event_id_for(ROW["order_id"], 3) != event.event_id


def test_ids_are_the_uuids_the_standard_library_makes() -> None:
    # event_id_for and the order service's _uuid4 skip the uuid module's objects (hot path); the ids
    # they make must stay what uuid5 and uuid4 would: other pipelines (the Go service) derive the same ids.
    from targets.order_service import _uuid4

    for i in range(500):
        order = str(uuid.uuid4())
        assert event_id_for(order, i) == str(uuid.uuid5(EVENT_NAMESPACE, f"{order}:{i}"))
    made = {_uuid4() for _ in range(500)}
    assert len(made) == 500
    assert all(str(uuid.UUID(u)) == u and uuid.UUID(u).version == 4 and uuid.UUID(u).variant == uuid.RFC_4122
               for u in made)


@pytest.mark.parametrize("text", ["".join(map(chr, range(128))), "caf\u00e9 \u2028 \U0001F600", "lone \ud800", "plain"])
@pytest.mark.parametrize("amount", [0, -2**63, 2**64, 10**30])
def test_an_event_encodes_to_json_dumps_bytes_whichever_encoder_ran(text: str, amount: int) -> None:
    # Event.encode takes msgspec's encoder where it writes json.dumps's bytes, json.dumps elsewhere
    # (non-ASCII, DEL, lone surrogates, ints past 64 bits): an event's bytes must not depend on which.
    event = Event(str(uuid.uuid4()), text, str(uuid.uuid4()), 1, SCHEMA_VERSION, text[::-1], "t", text, amount)
    fields = {f: getattr(event, f) for f in Event.__dataclass_fields__}
    assert event.encode() == json.dumps(fields, separators=(",", ":")).encode()


def test_a_domain_event_round_trips() -> None:
    event = event_from_row(ROW)
    assert decode_event(event.encode()) == event


@pytest.mark.parametrize("raw", [*POISON_VALUES, None, b'{"status": "lost", "version": 1}'])
def test_malformed_values_raise_value_error_naming_the_problem(raw: bytes | None) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        decode_event(raw)


def test_capture_streams_orders_through_its_proxies_with_a_run_owned_slot_and_publication() -> None:
    topo = Topology(23000)
    config = Capture("20261126-200000-abcd", "chaos_cdc_x", topo).config()
    assert config["plugin.name"] == "pgoutput"
    assert config["publication.autocreate.mode"] == "disabled"
    assert config["snapshot.mode"] == "no_data"
    assert config["slot.name"] == "chaos_orders_20261126_200000_abcd"
    assert config["database.port"] == str(topo.link("connect->postgres").proxy_port)
    # Debezium names the header <prefix><field>: the provenance header chaos trace reads.
    assert config["transforms.unwrap.add.headers.prefix"] + config["transforms.unwrap.add.headers"] == LSN_HEADER


def test_outbox_capture_routes_every_outbox_row_to_one_topic_keyed_by_order() -> None:
    capture = Capture("20261126-200000-abcd", "chaos_cdc_outbox_x", Topology(23000), table="outbox")
    config = capture.config()
    assert config["table.include.list"] == "public.outbox"
    assert config["transforms.outbox.type"] == "io.debezium.transforms.outbox.EventRouter"
    assert config["transforms.outbox.table.field.event.key"] == "order_id"
    assert config["transforms.outbox.route.topic.replacement"] == capture.topic
    assert config["transforms.outbox.table.fields.additional.placement"] == f"id:header:{OUTBOX_ID_HEADER}"


def test_connect_keeps_internal_topics_direct_and_produces_through_its_proxy(tmp_path: Path) -> None:
    topo = Topology(23000)
    props = dict(line.split("=", 1) for line in worker_properties(topo, tmp_path, tmp_path).splitlines())
    assert props["bootstrap.servers"] == topo.kafka_direct
    assert props["producer.bootstrap.servers"] == topo.link("connect->kafka").proxy_address
    assert props["listeners"] == f"http://127.0.0.1:{topo.connect_rest_port}"


def test_variants_parse_and_know_their_pipelines() -> None:
    assert Variant.parse("no_idempotency") is Variant.NO_IDEMPOTENCY
    with pytest.raises(UsageError, match="valid variants"):
        Variant.parse("sloppy")
    assert Variant.LAST_ID.applies_to("outbox") and not Variant.LAST_ID.applies_to("cdc")
    # A relay mistake on a pipeline without a relay is refused before any infrastructure starts.
    from harness.runner import resolve_targets

    with pytest.raises(UsageError, match="variant 'mark_before_ack'"):
        resolve_targets(replace(CRASH, variant="mark_before_ack"))


def test_a_kill_names_a_process_not_a_link() -> None:
    assert FaultSpec(FaultKind.KILL, "connect", at=0.3, for_s=3).target == "connect"
    with pytest.raises(UsageError, match="connect->kafka"):
        FaultSpec(FaultKind.KILL, "connect->kafka", at=0.3, for_s=3)
