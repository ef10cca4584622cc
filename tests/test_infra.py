"""The real topology: every Kafka link's metadata names only its proxy, and an outage really cuts it."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from harness.infra import kafka
from harness.infra.stack import Infra
from harness.infra.topology import Service

pytestmark = pytest.mark.chaos

# A target's links, as a spec would declare them: bound to proxies the way a run binds them.
LINKS = ("app->postgres", "app->kafka", "relay->postgres", "relay->kafka", "consumer.payment->kafka",
         "consumer.payment->postgres")


@pytest.fixture
def bound(chaos_infra: Infra) -> dict[str, object]:
    return chaos_infra.bind_links(LINKS)  # type: ignore[return-value]


def test_metadata_through_each_kafka_proxy_names_only_proxy_ports(chaos_infra: Infra, bound: dict[str, object]) -> None:
    """The trap of INFRA.md: if the broker advertised its real port, faults would silently miss."""
    for link in chaos_infra.links.values():
        if link.service is not Service.KAFKA:
            continue
        meta = kafka.admin(link.proxy_address).list_topics(timeout=10)
        advertised = {(b.host, b.port) for b in meta.brokers.values()}
        assert advertised == {("127.0.0.1", link.proxy_port)}, (
            f"{link.name}: metadata through proxy {link.proxy_address} advertised {advertised}; "
            "clients would bypass the proxy"
        )


def test_every_link_has_its_own_enabled_proxy(chaos_infra: Infra, bound: dict[str, object]) -> None:
    proxies = chaos_infra.toxiproxy.proxies()
    for link in chaos_infra.links.values():
        proxy = proxies[link.proxy_name]
        assert proxy.enabled and not proxy.toxics, f"{link.name} is not clean at the start of a test"
        assert proxy.upstream == link.upstream_address
    kafka_links = [link for link in chaos_infra.links.values() if link.service is Service.KAFKA]
    assert len({link.listener_name for link in kafka_links}) == len(kafka_links)
    assert len({link.proxy_port for link in chaos_infra.links.values()}) == len(chaos_infra.links)


def test_binding_another_target_replaces_the_proxies_of_its_slots(chaos_infra: Infra) -> None:
    """Slots are reused by the next target: the proxy on a port is renamed, never duplicated."""
    chaos_infra.bind_links(LINKS)
    chaos_infra.bind_links(("forwarder->postgres", "forwarder->kafka"))
    proxies = chaos_infra.toxiproxy.proxies()
    listens = [p.listen for p in proxies.values()]
    assert len(listens) == len(set(listens)), "two proxies listen on one port"
    assert "forwarder_to_kafka" in proxies and chaos_infra.link("forwarder->kafka").slot == 1
    assert proxies["forwarder_to_kafka"].listen == chaos_infra.topology.kafka_slot(1, "x").proxy_address


def test_disabled_proxy_cuts_produce_on_that_link_only(chaos_infra: Infra, bound: dict[str, object]) -> None:
    topo = chaos_infra.topology
    admin = kafka.admin(topo.kafka_direct)
    topic = "chaos.probe.outage"
    if topic not in admin.list_topics(timeout=5).topics:
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=20)
    cut, other = chaos_infra.link("relay->kafka"), chaos_infra.link("app->kafka")

    def send(address: str) -> object:
        outcome: list[object] = []
        p = Producer({"bootstrap.servers": address, "message.timeout.ms": 3000,
                      "socket.connection.setup.timeout.ms": 1000, "logger": kafka.quiet_logger()})
        p.produce(topic, b"x", on_delivery=lambda err, msg: outcome.append(err))
        p.flush(10)
        assert outcome, "no delivery report within the flush timeout"
        return outcome[0]

    assert send(cut.proxy_address) is None, "the probe cannot even produce through a healthy proxy"
    chaos_infra.toxiproxy.set_enabled(cut.proxy_name, False)
    try:
        assert send(cut.proxy_address) is not None, "a produce through a disabled proxy was acknowledged"
        assert send(other.proxy_address) is None, "cutting relay->kafka also cut app->kafka"
    finally:
        chaos_infra.toxiproxy.set_enabled(cut.proxy_name, True)
