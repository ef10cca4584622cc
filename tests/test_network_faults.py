"""Network and infra-process faults on the real topology: each bites, each heals to a clean state."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from harness.faults.network import LinkOutage, ToxicFault, toxics_for
from harness.faults.process import InfraHost, ProcessKill, ProcessPause
from harness.faults.spec import FaultKind, OneWayCut, kind_info
from harness.infra import kafka, postgres
from harness.infra.stack import Infra
from harness.infra.topology import Link
from harness.wait import wait_for

pytestmark = pytest.mark.chaos


def _link(infra: Infra, name: str) -> Link:
    """The link as a run binds it: every link these tests use gets its proxy, in one fixed order."""
    infra.bind_links(("app->postgres", "app->kafka", "relay->postgres", "relay->kafka", "consumer.payment->kafka",
                      "consumer.payment->postgres"))
    return infra.link(name)

TOPIC = "chaos.probe.oneway"


def _topic(infra: Infra) -> str:
    admin = kafka.admin(infra.topology.kafka_direct)
    if TOPIC not in admin.list_topics(timeout=5).topics:
        admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(timeout=20)
    return TOPIC


def _end_offset(infra: Infra) -> int:
    c = Consumer({"bootstrap.servers": infra.topology.kafka_direct, "group.id": "probe", "logger": kafka.quiet_logger()})
    try:
        return c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=5)[1]
    finally:
        c.close()


def _connected_producer(address: str) -> Producer:
    """A producer whose connection is open before the fault: toxics bite open connections."""
    p = Producer({"bootstrap.servers": address, "message.timeout.ms": 4000, "request.timeout.ms": 3000,
                  "retries": 0, "socket.connection.setup.timeout.ms": 1000, "logger": kafka.quiet_logger()})
    outcome: list[object] = []
    p.produce(TOPIC, b"warm-up", on_delivery=lambda err, msg: outcome.append(err))
    p.flush(10)
    assert outcome == [None], f"the probe cannot produce through a healthy proxy: {outcome}"
    return p


def _send(p: Producer, value: bytes) -> object:
    outcome: list[object] = []
    p.produce(TOPIC, value, on_delivery=lambda err, msg: outcome.append(err))
    p.flush(10)
    assert outcome, "no delivery report within the flush timeout"
    return outcome[0]


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_one_way_cut_stops_exactly_one_direction(chaos_infra: Infra, stream: str) -> None:
    """downstream cut: the broker applies the produce, the ack never returns. upstream: nothing arrives."""
    _topic(chaos_infra)
    link = _link(chaos_infra, "relay->kafka")
    producer = _connected_producer(link.proxy_address)
    fault = ToxicFault("one_way_cut", link, chaos_infra.toxiproxy, toxics_for(FaultKind.ONE_WAY_CUT, OneWayCut(stream)))
    before = _end_offset(chaos_infra)
    fault.inject()
    try:
        err = _send(producer, f"cut-{stream}-{uuid.uuid4()}".encode())
        assert err is not None, f"a produce was acknowledged through a {stream} cut"
        after = _end_offset(chaos_infra)  # read through the DIRECT listener, never faulted
    finally:
        fault.heal()
    if stream == "downstream":
        assert after > before, "the request never reached the broker: the cut was not one-way"
    else:
        assert after == before, "the request reached the broker through an upstream cut"
    assert not chaos_infra.toxiproxy.toxics(link.proxy_name), "heal left a toxic behind"


@pytest.mark.parametrize("kind", [k for k in FaultKind if kind_info(k).target.value == "link" and k is not FaultKind.OUTAGE])
def test_every_toxic_fault_injects_and_heals_to_a_clean_proxy(chaos_infra: Infra, kind: FaultKind) -> None:
    link = _link(chaos_infra, "consumer.payment->postgres")
    params = kind_info(kind).params()
    fault = ToxicFault(kind.value, link, chaos_infra.toxiproxy, toxics_for(kind, params))
    fault.inject()
    try:
        present = chaos_infra.toxiproxy.toxics(link.proxy_name)
        assert {t["type"] for t in present} == {t.type for t in fault.toxics}
        assert all(t["toxicity"] == getattr(params, "toxicity", 1.0) for t in present)
    finally:
        fault.heal()
    assert chaos_infra.toxiproxy.toxics(link.proxy_name) == []
    fault.heal()  # a second heal is harmless


def test_outage_heals_and_update_toxic_changes_in_place(chaos_infra: Infra) -> None:
    link = _link(chaos_infra, "app->kafka")
    outage = LinkOutage(link, chaos_infra.toxiproxy)
    outage.inject()
    assert not chaos_infra.toxiproxy.proxies()[link.proxy_name].enabled
    outage.heal()
    assert chaos_infra.toxiproxy.proxies()[link.proxy_name].enabled
    from harness.infra.toxiproxy import Stream

    chaos_infra.toxiproxy.add_toxic(link.proxy_name, "probe", "latency", Stream.DOWNSTREAM, 1.0, {"latency": 10})
    try:
        chaos_infra.toxiproxy.update_toxic(link.proxy_name, "probe", toxicity=0.5, attributes={"latency": 900})
        (toxic,) = chaos_infra.toxiproxy.toxics(link.proxy_name)
        assert toxic["toxicity"] == 0.5 and toxic["attributes"]["latency"] == 900
    finally:
        chaos_infra.toxiproxy.remove_toxic(link.proxy_name, "probe")


def _pg_answers(infra: Infra) -> tuple[bool, str]:
    return postgres.probe(infra.topology.postgres_port)


def test_pause_and_kill_of_postgres_heal_to_a_working_database(chaos_infra: Infra) -> None:
    host = InfraHost(chaos_infra)
    pause = ProcessPause("postgres", host)
    pause.inject()
    try:
        with pytest.raises(Exception):  # noqa: B017 - any client error: a stopped server cannot answer
            postgres.probe(chaos_infra.topology.postgres_port)
    finally:
        pause.heal()
    wait_for(lambda: _pg_answers(chaos_infra), timeout_s=20, what="postgres to answer after SIGCONT")
    old_pid = chaos_infra.processes["postgres"].pid
    kill = ProcessKill("postgres", host)
    kill.inject()
    try:
        assert not chaos_infra.processes["postgres"].alive()
    finally:
        kill.heal()
    assert chaos_infra.processes["postgres"].pid != old_pid
    assert _pg_answers(chaos_infra)[0]
    assert all(s.alive for s in chaos_infra.status()), "the infra is not whole after a kill and restart"


def test_heal_all_resumes_paused_and_restarts_dead_infra_processes(chaos_infra: Infra) -> None:
    """The safety net for a fault whose own heal never ran (an interrupted or crashed nemesis)."""
    chaos_infra.processes["kafka"].pause()
    chaos_infra.processes["postgres"].kill()
    link = _link(chaos_infra, "relay->kafka")
    chaos_infra.toxiproxy.set_enabled(link.proxy_name, False)
    chaos_infra.heal_all()
    assert _pg_answers(chaos_infra)[0]
    wait_for(lambda: kafka.probe(chaos_infra.topology), timeout_s=30, what="kafka to answer after heal-all")
    assert chaos_infra.toxiproxy.proxies()[link.proxy_name].enabled
    assert all(s.alive for s in chaos_infra.status())
