"""Network faults on one link, through that link's Toxiproxy proxy.

Every link (``relay->kafka``) has its own proxy, so a fault cuts exactly that path.
``upstream`` is the client-to-service direction, ``downstream`` the answers.

  outage       the proxy is disabled: open connections drop, new ones are refused
  one_way_cut  a ``timeout`` toxic with timeout 0 on ONE stream: bytes in that direction
               are dropped and the connection stays open. Chosen over ``limit_data 0``,
               which closes the whole connection (both directions) at the first byte, so
               it is not one-way at all. downstream-only is the lost-ack window: a produce
               or an INSERT reaches the service and is applied, its answer never comes back.
               (tests/test_network_faults.py verifies both directions on a real broker.)
  black_hole   the same toxic on both streams: nothing moves, nothing closes
  latency, bandwidth, reset_peer, slicer, limit_data: the Toxiproxy toxics of the same
               names, each on one stream with a toxicity (the fraction of connections hit)

Toxics apply to connections already open, so a fault bites long-lived Kafka
connections at once. Inject and heal are one state change each: a multi-toxic inject
that fails half-way removes what it added before raising.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import ToxiproxyError
from harness.faults.spec import (Bandwidth, BlackHole, FaultKind, LimitData, Latency, OneWayCut, Params, ResetPeer,
                                 Slicer, SlowConsumer)
from harness.infra.topology import Link
from harness.infra.toxiproxy import Stream, ToxiproxyClient

__all__ = ["LinkOutage", "Toxic", "ToxicFault", "toxics_for"]


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


@dataclass(frozen=True, slots=True)
class Toxic:
    """One Toxiproxy toxic: its type, stream, toxicity and attributes."""

    type: str
    stream: Stream
    toxicity: float
    attributes: tuple[tuple[str, int], ...]

    def name(self, fault: str) -> str:
        return f"chaos-{fault}-{self.stream.value}"


def toxics_for(kind: FaultKind, params: Params) -> tuple[Toxic, ...]:
    """The toxics that make up one network fault."""
    if isinstance(params, OneWayCut):
        return (Toxic("timeout", Stream(params.stream), params.toxicity, (("timeout", 0),)),)
    if isinstance(params, BlackHole):
        return tuple(Toxic("timeout", s, params.toxicity, (("timeout", 0),)) for s in Stream)
    if isinstance(params, Latency):
        return (Toxic("latency", Stream(params.stream), params.toxicity,
                      (("latency", params.latency_ms), ("jitter", params.jitter_ms))),)
    if isinstance(params, Bandwidth):
        return (Toxic("bandwidth", Stream(params.stream), params.toxicity, (("rate", params.rate_kbps),)),)
    if isinstance(params, SlowConsumer):
        return (Toxic("bandwidth", Stream.DOWNSTREAM, 1.0, (("rate", params.rate_kbps),)),)
    if isinstance(params, ResetPeer):
        return (Toxic("reset_peer", Stream(params.stream), params.toxicity, (("timeout", params.timeout_ms),)),)
    if isinstance(params, Slicer):
        return (Toxic("slicer", Stream(params.stream), params.toxicity,
                      (("average_size", params.average_size), ("size_variation", params.size_variation),
                       ("delay", params.delay_us))),)
    if isinstance(params, LimitData):
        return (Toxic("limit_data", Stream(params.stream), params.toxicity, (("bytes", params.bytes),)),)
    raise ValueError(f"{kind.value} is not a toxic fault")


@dataclass(frozen=True, slots=True)
class ToxicFault:
    """One or more toxics on a link, added at inject and removed at heal."""

    name: str  # the fault kind's name: "latency", "black_hole" ...
    link: Link
    toxiproxy: ToxiproxyClient
    toxics: tuple[Toxic, ...]

    @property
    def target(self) -> str:
        return self.link.name

    def inject(self) -> None:
        added: list[str] = []
        try:
            for toxic in self.toxics:
                self.toxiproxy.add_toxic(self.link.proxy_name, toxic.name(self.name), toxic.type, toxic.stream,
                                         toxic.toxicity, dict(toxic.attributes))
                added.append(toxic.name(self.name))
        except ToxiproxyError:
            for name in added:
                self._remove(name)
            raise

    def heal(self) -> None:
        errors = []
        for toxic in self.toxics:
            try:
                self._remove(toxic.name(self.name))
            except ToxiproxyError as exc:
                errors.append(str(exc))
        if errors:
            raise ToxiproxyError("; ".join(errors))

    def _remove(self, name: str) -> None:
        present = {t["name"] for t in self.toxiproxy.toxics(self.link.proxy_name)}
        if name in present:
            self.toxiproxy.remove_toxic(self.link.proxy_name, name)
