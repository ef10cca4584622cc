"""The local topology: which port is whose, and which link runs through which proxy.

A *link* is one network path from a client process to a service, e.g. ``relay->kafka``.
Every link has its own Toxiproxy proxy, so a fault can cut exactly one of them.
Kafka needs more than a proxy: a client uses ``bootstrap.servers`` only for its first
metadata request and then connects to whatever address the broker advertises. So the
broker gets one listener per Kafka link, bound to a private port and advertising the
proxy's port, plus a DIRECT listener for replication, Connect's internal topics and the
harness's own oracle reads, which are never under chaos.

Ports, from a base B (CHAOS_BASE_PORT, default 20000):
  B+0 Toxiproxy API      B+1 Postgres (direct)     B+2 Kafka DIRECT    B+3 Kafka CONTROLLER
  B+4 Kafka Connect REST  B+10+i proxy of Kafka link i   B+30+i broker listener of Kafka link i
  B+50+i proxy of Postgres link i                    B+80.. HTTP of the order service
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["CLIENTS", "Link", "Service", "Topology"]

HOST = "127.0.0.1"  # never "localhost": a client may try ::1 while a proxy listens on IPv4 only

# Every process that may talk to a service. The order is part of the port layout: append only.
CLIENTS: tuple[str, ...] = (
    "app",
    "relay",
    "connect",
    "consumer.payment",
    "consumer.inventory",
    "consumer.fulfillment",
    "consumer.notification",
)


class Service(Enum):
    KAFKA = "kafka"
    POSTGRES = "postgres"


@dataclass(frozen=True, slots=True)
class Link:
    """One proxied network path from ``client`` to ``service``."""

    client: str
    service: Service
    proxy_port: int
    upstream_port: int

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
        """The Kafka listener that serves this link (only meaningful for Kafka links)."""
        return "L_" + self.client.upper().replace(".", "_")


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
    def order_service_port(self) -> int:
        return self.base_port + 80

    @property
    def kafka_direct(self) -> str:
        """Bootstrap address for oracle reads and admin work: never proxied, never faulted."""
        return f"{HOST}:{self.kafka_direct_port}"

    @property
    def toxiproxy_url(self) -> str:
        return f"http://{HOST}:{self.toxiproxy_port}"

    @property
    def links(self) -> tuple[Link, ...]:
        kafka = tuple(
            Link(client, Service.KAFKA, self.base_port + 10 + i, self.base_port + 30 + i)
            for i, client in enumerate(CLIENTS)
        )
        postgres = tuple(
            Link(client, Service.POSTGRES, self.base_port + 50 + i, self.postgres_port)
            for i, client in enumerate(CLIENTS)
        )
        return kafka + postgres

    def link(self, name: str) -> Link:
        for link in self.links:
            if link.name == name:
                return link
        from harness.errors import UsageError

        valid = ", ".join(link.name for link in self.links)
        raise UsageError(f"unknown link {name!r}; valid links: {valid}")

    def kafka_links(self) -> tuple[Link, ...]:
        return tuple(link for link in self.links if link.service is Service.KAFKA)
