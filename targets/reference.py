"""The reference pipelines as target specs: ``direct``, ``outbox``, ``cdc``, ``cdc_outbox``.

  direct      the order service publishes in the request (best effort)
  outbox      the order service writes an outbox row in the order's transaction; a relay publishes
  cdc         the order service only commits; Debezium on Kafka Connect streams ``orders`` from the WAL
  cdc_outbox  outbox rows as in ``outbox``, published by Debezium's outbox event router instead of a relay

Each is a ``TargetSpec`` built from reusable components (``COMPONENTS``: the order service
in each mode, the relay, the four consumers), registered in pyproject.toml under the
``chaos.targets`` entry point group, exactly as a user's own pipeline would be; a team's
target.toml can reuse any component with ``use = "reference:consumer.payment"``. The
harness runs them with its generic ``SpecTarget``; ``ReferenceTarget`` adds only what
no spec can say: the direct service's in-memory publish queue as its backlog, and the
Debezium connector of the cdc pipelines. A broken ``Variant`` (``targets.variants``)
swaps in one real mistake.
"""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Mapping
from types import MappingProxyType

from harness.history.ops import Scalar
from harness.infra.schema_registry import RegistryClient
from harness.infra.stack import Infra
from harness.infra.topology import HOST
from harness.target import ProcessDecl, Readiness, ReadyKind, RunContext, StopSpec, TargetSpec, Timeouts
from harness.target.registry import load_domain
from harness.target.runtime import SpecTarget
from targets.cdc import Capture
from targets.domain import CONSUMERS
from targets.drift import CHANGES
from targets.variants import Variant

__all__ = ["COMPONENTS", "ReferenceTarget", "cdc", "cdc_outbox", "direct", "outbox"]

_PY = sys.executable


def _module(name: str, module: str, links: tuple[str, ...], **kw: object) -> ProcessDecl:
    return ProcessDecl(name=name, command=(_PY, "-m", module), links=links, stop=StopSpec("TERM", 5.0), **kw)  # type: ignore[arg-type]


def _order_service(mode: str, links: tuple[str, ...]) -> ProcessDecl:
    return _module("app", "targets.order_service", links, ports=("http",),
                   env=MappingProxyType({"ORDER_SERVICE_MODE": mode}),
                   ready=Readiness(ReadyKind.HTTP, "http://127.0.0.1:{port}/health", 60.0),
                   crash_points=("app.before_commit", "app.after_commit"), publishes=mode == "direct")


COMPONENTS: Mapping[str, ProcessDecl] = MappingProxyType({
    # The order service: ``direct`` publishes in the request; ``outbox`` writes an outbox row in the
    # order's transaction; ``commit_only`` just commits (a CDC connector reads the WAL).
    "order_service.direct": _order_service("direct", ("postgres", "kafka")),
    "order_service.outbox": _order_service("outbox", ("postgres",)),
    "order_service.commit_only": _order_service("commit_only", ("postgres",)),
    "relay": _module("relay", "targets.relay", ("postgres", "kafka"), publishes=True,
                     crash_points=("relay.before_publish", "relay.after_publish")),
    **{f"consumer.{c}": _module(f"consumer.{c}", f"targets.consumers.{c}", ("kafka", "postgres"), consumer=c,
                                crash_points=("consumer.before_effect", "consumer.after_effect")) for c in CONSUMERS},
})
"""Reusable processes of the reference pipelines (entry point group ``chaos.components``, name ``reference``)."""


def _consumers() -> tuple[ProcessDecl, ...]:
    return tuple(COMPONENTS[f"consumer.{c}"] for c in CONSUMERS)


def _variants(pipeline: str) -> tuple[str, ...]:
    return tuple(v.value for v in Variant if v.applies_to(pipeline))


def _spec(name: str, processes: tuple[ProcessDecl, ...], publisher: str, **kw: object) -> TargetSpec:
    return TargetSpec(name=name, domain="orders", processes=processes, entrypoint="app", publisher=publisher,
                      variants=_variants(name), drift_changes=CHANGES, runtime=ReferenceTarget.build,
                      origin="built-in (targets.reference)", **kw)  # type: ignore[arg-type]


def direct() -> TargetSpec:
    # Consumers first: they are in their groups before the first order is published.
    return _spec("direct", (*_consumers(), COMPONENTS["order_service.direct"]), "app",
                 timeouts=Timeouts(delivery_s=5.0, session_s=45.0))


def outbox() -> TargetSpec:
    return _spec("outbox", (*_consumers(), COMPONENTS["order_service.outbox"], COMPONENTS["relay"]), "relay",
                 backlog_sql="SELECT count(*) FROM outbox WHERE sent_at IS NULL",
                 pending_sql="SELECT DISTINCT order_id::text FROM outbox WHERE sent_at IS NULL",
                 timeouts=Timeouts(delivery_s=10.0, session_s=45.0))


def cdc() -> TargetSpec:
    return _spec("cdc", (*_consumers(), COMPONENTS["order_service.commit_only"]), "connect", uses_connect=True,
                 timeouts=Timeouts(delivery_s=None, session_s=45.0))


def cdc_outbox() -> TargetSpec:
    return _spec("cdc_outbox", (*_consumers(), COMPONENTS["order_service.outbox"]), "connect", uses_connect=True,
                 timeouts=Timeouts(delivery_s=None, session_s=45.0))


class ReferenceTarget(SpecTarget):
    """``SpecTarget`` plus the direct service's publish queue and the cdc pipelines' Debezium connector."""

    @classmethod
    def build(cls, spec: TargetSpec, infra: Infra, ctx: RunContext) -> ReferenceTarget:
        return cls(spec, infra, ctx, load_domain(spec.domain))

    def event_topic(self) -> str:
        if self.spec.uses_connect:
            return self._capture().topic
        return super().event_topic()

    def _capture(self) -> Capture:
        table = "outbox" if self.spec.name == "cdc_outbox" else "orders"
        return Capture(self.ctx.run_id, self.database, self.topo, table)

    @property
    def capture(self) -> Capture | None:
        return self._capture() if self.spec.uses_connect else None

    def attach_schema_registry(self) -> None:
        # The schema_registry variant brings the registry to a pipeline whose spec does not declare one.
        super().attach_schema_registry()
        if self.schema_registry_url is None and self.ctx.variant == Variant.SCHEMA_REGISTRY.value:
            self.schema_registry_url = self.infra.ensure_schema_registry().base_url

    def observe(self) -> Mapping[str, list[Mapping[str, Scalar]]]:
        """Plus ``registry`` when the order service gates its schemas: the subject's versions and its refusals."""
        sources = dict(super().observe())
        if self.schema_registry_url is not None and self.ctx.variant == Variant.SCHEMA_REGISTRY.value:
            subject = f"{self.topic}-value"
            _, health = self._health()
            versions = RegistryClient(self.schema_registry_url).versions(subject)
            sources["registry"] = [{"subject": subject, "versions": ",".join(map(str, versions)),
                                    "refused": health.get("schema_refused")}]  # type: ignore[dict-item]
        return sources

    def prepare(self) -> None:
        if self.capture is not None:
            self.capture.create_publication()

    def started(self) -> None:
        if self.capture is not None:
            self.capture.register(self.infra.ensure_connect())

    def after_connect_restart(self) -> None:
        # The worker reads its connector back from the config topic and the task resumes from the
        # last flushed offset: readiness is the same as at first start.
        if self.capture is not None:
            self.capture.await_running(self.infra.ensure_connect())

    def stopping(self) -> None:
        if self.capture is not None:
            # Even if Connect is down (a crash fault that never healed), the slot must go.
            client = self.infra.connect_client if self.infra.connect_running else None
            self.capture.teardown(client)

    def _health(self) -> tuple[int, dict[str, object]]:
        conn = http.client.HTTPConnection(HOST, int(self.base_url.rsplit(":", 1)[1]), timeout=2)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    def publish_backlog(self) -> int:
        """Events committed at the source but not on the topic: the effect of a publish-link fault."""
        if self.spec.name == "direct":
            # What direct publish dropped is gone: only what it still holds counts as backlog.
            status, body = self._health()
            return int(body.get("publish_queue", 0)) if status == 200 else 1  # type: ignore[call-overload]
        if not self.spec.uses_connect:
            return super().publish_backlog()
        # Every version of every order is one event (one outbox row, for cdc_outbox).
        count = "count(*) FROM outbox" if self.spec.name == "cdc_outbox" else "coalesce(sum(version), 0) FROM orders"
        expected = int(self._sql(f"SELECT {count}")[0][0])  # type: ignore[call-overload]
        on_topic = sum(self.oracle.end_offsets(self.topic).values())
        if on_topic < expected:
            return expected - on_topic
        # Debezium redelivers after a crash, so a full count may hide a missing tail: count distinct events.
        distinct = {r["event_id"] for r in self.oracle.read_topic(self.topic) if r.get("event_id")}
        return max(0, expected - len(distinct))

