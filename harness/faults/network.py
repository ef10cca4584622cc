"""Network faults on one link, through that link's Toxiproxy proxy."""

from __future__ import annotations

from dataclasses import dataclass

from harness.infra.topology import Link
from harness.infra.toxiproxy import ToxiproxyClient

__all__ = ["LinkOutage"]


@dataclass(frozen=True, slots=True)
class LinkOutage:
    """The link is down: the proxy is disabled, existing connections drop, new ones are refused.

    The service itself stays healthy: this is the client-side view of a broker outage.
    """

    link: Link
    toxiproxy: ToxiproxyClient
    name: str = "outage"

    @property
    def target(self) -> str:
        return self.link.name

    def inject(self) -> None:
        self.toxiproxy.set_enabled(self.link.proxy_name, False)

    def heal(self) -> None:
        self.toxiproxy.set_enabled(self.link.proxy_name, True)
