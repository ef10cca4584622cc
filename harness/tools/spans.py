"""A trace as OpenTelemetry spans: to a JSON-lines file, and to an OTLP/HTTP endpoint when given.

One span per step of ``harness.tools.trace.Trace``, with the same parent/child structure, so the
chain opens in Jaeger (or any OTLP backend) as one trace. The trace id is the order id (a UUID is
exactly 128 bits; any other id is hashed into one), so exporting the same order twice lands in the
same trace rather than a second one. Span kinds follow the messaging conventions: a request is a
SERVER span, a publish a PRODUCER span, an apply or dead-letter a CONSUMER span. A step's other
attributes become ``chaos.<name>``: a publish span's ``chaos.outbox_id`` or ``chaos.lsn`` says which
outbox row or WAL position the record came from (absent when the publisher did not say).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from opentelemetry import trace as otel
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import IdGenerator, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness.errors import InfraError, UsageError
from harness.tools.trace import Stage, Trace

__all__ = ["SpanExport", "export_spans", "otlp_traces_url", "to_spans"]

_KINDS = {Stage.ORDER: otel.SpanKind.INTERNAL, Stage.REQUEST: otel.SpanKind.SERVER,
          Stage.COMMIT: otel.SpanKind.INTERNAL, Stage.PUBLISH: otel.SpanKind.PRODUCER,
          Stage.APPLY: otel.SpanKind.CONSUMER, Stage.EFFECT: otel.SpanKind.INTERNAL,
          Stage.DEAD_LETTER: otel.SpanKind.CONSUMER}

# History field -> span attribute (semantic-convention names where one exists).
_ATTRS = {"partition": "messaging.kafka.destination.partition", "offset": "messaging.kafka.message.offset",
          "key": "messaging.kafka.message.key", "event_id": "messaging.message.id",
          "consumer": "messaging.consumer.group.name", "dlq_topic": "messaging.destination.name"}
OTLP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class SpanExport:
    spans: int
    file: Path | None
    otlp: str | None


class _OrderIds(IdGenerator):
    """The trace id from the order id; span ids from a seeded generator (same order, same ids)."""

    def __init__(self, order_id: str) -> None:
        try:
            self.trace_id = uuid.UUID(order_id).int
        except ValueError:
            self.trace_id = int.from_bytes(hashlib.sha256(order_id.encode()).digest()[:16], "big")
        self.trace_id = self.trace_id or 1  # 0 is the invalid trace id
        self._rng = random.Random(self.trace_id)  # noqa: S311 - ids, not secrets

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1


def _ns(ms: float) -> int:
    return int(round(ms * 1_000_000))


def to_spans(trace: Trace) -> Sequence[ReadableSpan]:
    """The trace's steps as finished SDK spans, parents before children."""
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": "chaos-harness", "chaos.run_id": trace.run_id,
                                "chaos.pipeline": trace.pipeline})
    provider = TracerProvider(resource=resource, id_generator=_OrderIds(trace.order_id), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("harness.tools.trace")
    live: dict[int, otel.Span] = {}
    for step in trace.steps:  # parents come first
        attrs: dict[str, str | int | float | bool] = {"chaos.stage": step.stage.value, "chaos.order_id": trace.order_id,
                                                      "chaos.timed": step.timed}
        if step.gap_ms is not None:
            attrs["chaos.gap_ms"] = round(step.gap_ms, 3)
        for name, value in step.attributes.items():
            if value is not None:
                attrs[_ATTRS.get(name, f"chaos.{name}")] = value
        if step.stage in (Stage.PUBLISH, Stage.DEAD_LETTER, Stage.APPLY):
            attrs["messaging.system"] = "kafka"
        context = otel.set_span_in_context(live[step.parent]) if step.parent is not None else None
        span = tracer.start_span(step.name, context=context, kind=_KINDS[step.stage], attributes=attrs,
                                 start_time=_ns(step.start_ms))
        if step.stage is Stage.DEAD_LETTER:
            span.set_status(otel.Status(otel.StatusCode.ERROR, str(step.attributes.get("reason") or "dead-lettered")))
        live[step.index] = span
    # Children end before parents, as a tracer would see them.
    for step in reversed(trace.steps):
        live[step.index].end(end_time=_ns(max(step.end_ms, step.start_ms)))
    provider.shutdown()
    return _in_step_order(memory.get_finished_spans(), live)


def _in_step_order(spans: Sequence[ReadableSpan], live: dict[int, otel.Span]) -> list[ReadableSpan]:
    order = {span.get_span_context().span_id: i for i, span in live.items()}
    return sorted(spans, key=lambda s: order.get(s.context.span_id, 0))


class _Last(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage().splitlines()[0] if record.getMessage() else self.last


def otlp_traces_url(url: str) -> str:
    """``--otlp URL`` as the exporter's endpoint: a bare collector address gets OTLP/HTTP's ``/v1/traces``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise UsageError(f"--otlp {url!r} is not an http(s) URL; give the collector's OTLP/HTTP address, "
                         "e.g. http://127.0.0.1:4318 (Jaeger's OTLP/HTTP port)")
    return url if parts.path not in ("", "/") else url.rstrip("/") + "/v1/traces"


def export_spans(trace: Trace, file: Path | None, otlp: str | None = None) -> SpanExport:
    """Write the trace's spans as JSON lines to ``file`` (replaced) and send them to ``otlp`` when given."""
    spans = to_spans(trace)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        with file.open("w", encoding="utf-8") as fh:
            for span in spans:
                fh.write(json.dumps(json.loads(span.to_json(indent=None)), separators=(",", ":")) + "\n")
    endpoint = None
    if otlp is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_traces_url(otlp)
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=OTLP_TIMEOUT_S)
        # The exporter logs each retry to stderr; the one-line error below says it instead, with the last cause.
        log = logging.getLogger("opentelemetry.exporter.otlp.proto.http")
        causes = _Last()
        log.addHandler(causes)
        log.propagate = False
        try:
            result = exporter.export(spans)
        finally:
            exporter.shutdown()
            log.removeHandler(causes)
            log.propagate = True
        if result is not SpanExportResult.SUCCESS:
            kept = f"; the spans are in {file}" if file is not None else ""
            cause = f" (last error: {causes.last[:160]})" if causes.last else ""
            raise InfraError(f"the OTLP endpoint {endpoint} did not accept the {len(spans)} spans within "
                             f"{OTLP_TIMEOUT_S:.0f}s{cause}; is a collector listening there "
                             f"(Jaeger: OTLP/HTTP on 4318)?{kept}")
    return SpanExport(len(spans), file, endpoint)
