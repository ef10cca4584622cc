"""The local topology: which port is whose, and which link runs through which proxy.

A *link* is one network path from a client process to a service, e.g. ``relay->kafka``.
Every link has its own Toxiproxy proxy, so a fault can cut exactly one of them.
Kafka needs more than a proxy: a client uses ``bootstrap.servers`` only for its first
metadata request and then connects to whatever address the broker advertises. So the
broker has one listener per Kafka link *slot*, bound to a private port and advertising
the slot's proxy port, plus a DIRECT listener for replication, Connect's internal topics
and the harness's own oracle reads, which are never under chaos.

The harness knows no target's processes: a target declares its links and ``bind``
gives them slots in declaration order. Slot 0 belongs to Kafka Connect, which the infra
runs (its worker's producer is configured once, at start). Listeners are fixed when the
broker starts, so the number of slots bounds a target's links.

Ports, from a base B (CHAOS_BASE_PORT, default 20000):
  B+0 Toxiproxy API      B+1 Postgres (direct)     B+2 Kafka DIRECT    B+3 Kafka CONTROLLER
  B+4 Kafka Connect REST  B+5 schema registry HTTP     B+6 schema registry management (health)
  B+10+i proxy of Kafka slot i                        B+30+i broker listener of Kafka slot i
  B+50+i proxy of Postgres slot i                    B+80..B+99 ports of target processes (http ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from harness.errors import SpecError, UsageError

__all__ = ["HOST", "KAFKA_SLOTS", "SCHEMA_REGISTRY_PATH", "MAX_KAFKA_LINKS", "MAX_POSTGRES_LINKS", "POSTGRES_SLOTS", "Link", "Service", "Topology"]

HOST = "127.0.0.1"  # never "localhost": a client may try ::1 while a proxy listens on IPv4 only

KAFKA_SLOTS = 16  # listeners on the broker (each with its own proxy); slot 0 is Kafka Connect's
POSTGRES_SLOTS = 30
PROCESS_PORTS = 20
MAX_KAFKA_LINKS = KAFKA_SLOTS - 1
MAX_POSTGRES_LINKS = POSTGRES_SLOTS - 1
INFRA_CLIENT = "connect"  # the one client the infra itself runs
SCHEMA_REGISTRY_PATH = "/apis/ccompat/v7"  # where Apicurio serves Confluent's Schema Registry API


class Service(Enum):
    KAFKA = "kafka"
    POSTGRES = "postgres"


@dataclass(frozen=True, slots=True)
class Link:
    """One proxied network path from ``client`` to ``service``, in port slot ``slot``."""

    client: str
    service: Service
    proxy_port: int
    upstream_port: int
    slot: int = 0

    @property
    def name(self) -> str:
        return f"{self.client}->{self.service.value}"

    @property
    def proxy_address(self) -> str:
        return f"{HOST}:{self.proxy_port}"

    @property
    def upstream_address(self) -> str:
        return f"{HOST}:{self.upstream_port}"

    @property
    def proxy_name(self) -> str:
        """Toxiproxy's name for this link's proxy (URL-safe spelling of ``name``)."""
        return self.name.replace("->", "_to_")

    @property
    def listener_name(self) -> str:
        """The Kafka listener that serves this link's slot (only meaningful for Kafka links)."""
        return f"L{self.slot}"


@dataclass(frozen=True, slots=True)
class Topology:
    base_port: int

    @property
    def toxiproxy_port(self) -> int:
        return self.base_port

    @property
    def postgres_port(self) -> int:
        return self.base_port + 1

    @property
    def kafka_direct_port(self) -> int:
        return self.base_port + 2

    @property
    def kafka_controller_port(self) -> int:
        return self.base_port + 3

    @property
    def connect_rest_port(self) -> int:
        return self.base_port + 4

    @property
    def schema_registry_port(self) -> int:
        """The schema registry's HTTP API (Confluent's API under ``SCHEMA_REGISTRY_PATH``); started on demand."""
        return self.base_port + 5

    @property
    def schema_registry_management_port(self) -> int:
        """Its management interface (health): Quarkus opens one, on 0.0.0.0:9000 unless told otherwise."""
        return self.base_port + 6

    @property
    def schema_registry_url(self) -> str:
        """The Confluent-compatible base URL of the harness's own registry, as clients take it."""
        return f"http://{HOST}:{self.schema_registry_port}{SCHEMA_REGISTRY_PATH}"

    @property
    def process_ports(self) -> range:
        """Ports handed to target processes that serve something (an order service's HTTP API)."""
        return range(self.base_port + 80, self.base_port + 80 + PROCESS_PORTS)

    @property
    def highest_port(self) -> int:
        return self.process_ports[-1]

    @property
    def kafka_direct(self) -> str:
        """Bootstrap address for oracle reads and admin work: never proxied, never faulted."""
        return f"{HOST}:{self.kafka_direct_port}"

    @property
    def toxiproxy_url(self) -> str:
        return f"http://{HOST}:{self.toxiproxy_port}"

    def kafka_slot(self, slot: int, client: str) -> Link:
        return Link(client, Service.KAFKA, self.base_port + 10 + slot, self.base_port + 30 + slot, slot)

    def postgres_slot(self, slot: int, client: str) -> Link:
        return Link(client, Service.POSTGRES, self.base_port + 50 + slot, self.postgres_port, slot)

    def kafka_slots(self) -> tuple[Link, ...]:
        """Every Kafka listener slot, named by slot: what the broker is configured with."""
        return tuple(self.kafka_slot(i, f"slot{i}") for i in range(KAFKA_SLOTS))

    def infra_links(self) -> tuple[Link, ...]:
        """The links of the infra's own client (Kafka Connect): slot 0 of each service."""
        return (self.kafka_slot(0, INFRA_CLIENT), self.postgres_slot(0, INFRA_CLIENT))

    def bind(self, links: Sequence[str]) -> tuple[Link, ...]:
        """Give each declared link (``client->service``) a port slot, in the order given.

        ``connect->*`` always takes slot 0; every other client's links take slots 1, 2, ...
        per service. The same declaration always gets the same ports.
        """
        bound: list[Link] = []
        next_slot = {Service.KAFKA: 1, Service.POSTGRES: 1}
        seen: set[str] = set()
        for name in links:
            client, sep, service_name = name.partition("->")
            try:
                service = Service(service_name)
            except ValueError:
                raise SpecError(f"link {name!r} must be CLIENT->SERVICE with SERVICE one of "
                                f"{', '.join(s.value for s in Service)}") from None
            if not sep or not client or name in seen:
                raise SpecError(f"link {name!r} is malformed or declared twice")
            seen.add(name)
            if client == INFRA_CLIENT:
                slot = 0
            else:
                slot = next_slot[service]
                next_slot[service] += 1
            limit = KAFKA_SLOTS if service is Service.KAFKA else POSTGRES_SLOTS
            if slot >= limit:
                raise SpecError(f"too many {service.value} links ({slot} or more); the topology has {limit - 1}")
            bound.append(self.kafka_slot(slot, client) if service is Service.KAFKA else self.postgres_slot(slot, client))
        return tuple(bound)

    def link(self, name: str) -> Link:
        """One of the infra's own links (``connect->kafka``, ``connect->postgres``); a target's come from ``bind``."""
        for link in self.infra_links():
            if link.name == name:
                return link
        raise UsageError(f"{name!r} is not an infra link; a target's links are bound when it starts "
                         "(Infra.bind_links)")
