"""`chaos trace`: one order's chain as a tree of timed steps, as OpenTelemetry spans that reach an OTLP receiver."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from harness.cli import main
from harness.history.ops import OpType
from harness.history.store import HistoryWriter
from harness.testing import HistoryBuilder
from harness.tools.spans import export_spans
from harness.tools.trace import Stage, build_trace

ORDER = "0f8e2a4c-7b1d-4f7e-8a55-1c2b3d4e5f60"
EPOCH_MS = 1_796_523_174_000


def _history() -> HistoryBuilder:
    h = HistoryBuilder("outbox").consumers("payment", "inventory", "notification")
    h.op("probe", OpType.OK, "clock", at=0.0, epoch_ms=EPOCH_MS)
    h.flow(ORDER, steps=("place", "pay"), at=1.0)
    # Give the observation rows times after the requests (the builder leaves them at 0).
    for source, field in (("topic", "timestamp_ms"), ("applied", "applied_at_ms"), ("effects", "applied_at_ms")):
        for i, row in enumerate(h.observations[source]):
            h.observations[source][i] = {**row, field: EPOCH_MS + 1500 + 10 * i}
    # The inventory consumer dead-letters the created event instead of applying it.
    h.dead_letter("inventory", f"{ORDER}/1", reason="not applicable: out of stock")
    h.observations["effects"] = [r for r in h.observations["effects"] if r["consumer"] != "inventory"]
    return h


def test_the_chain_is_arranged_by_cause_with_gaps() -> None:
    trace = build_trace(_history().build(), ORDER, "run-1")
    root = trace.steps[0]
    assert root.stage is Stage.ORDER and root.parent is None
    requests = {s.name: s for s in trace.children(root.index)}
    assert set(requests) == {"place ok", "pay ok"}
    place = requests["place ok"]
    assert place.start_ms == EPOCH_MS + 1000  # invoke at run time 1.0 s, on the clock probe's epoch
    published = [s for s in trace.children(place.index) if s.stage is Stage.PUBLISH]
    assert len(published) == 1 and published[0].attributes["event_id"] == f"{ORDER}/1"
    assert published[0].gap_ms == pytest.approx(published[0].start_ms - place.end_ms)
    under = {s.stage: s for s in trace.children(published[0].index)}
    assert under[Stage.DEAD_LETTER].attributes["reason"] == "not applicable: out of stock"
    applied = [s for s in trace.children(published[0].index) if s.stage is Stage.APPLY]
    assert [s.attributes["consumer"] for s in applied] == ["notification"]
    assert [s.name for s in trace.children(applied[0].index)] == ["notification email"]
    pay_pub = [s for s in trace.children(requests["pay ok"].index) if s.stage is Stage.PUBLISH]
    charge = [e for a in trace.children(pay_pub[0].index) for e in trace.children(a.index)]
    assert [e.name for e in charge] == ["payment charge"]


class _Receiver(BaseHTTPRequestHandler):
    requests: list[ExportTraceServiceRequest] = []
    paths: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).requests.append(request)
        type(self).paths.append(self.path)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def otlp() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"requests": [], "paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _attrs(span: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in span.attributes:  # type: ignore[attr-defined]
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def test_spans_reach_an_otlp_receiver_with_the_chains_structure(otlp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, receiver = otlp
    trace = build_trace(_history().build(), ORDER, "run-1")
    exported = export_spans(trace, tmp_path / "spans.jsonl", url)
    assert receiver.paths == ["/v1/traces"]
    spans = [s for r in receiver.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == len(trace.steps) == exported.spans
    assert {s.trace_id.hex() for s in spans} == {ORDER.replace("-", "")}  # the order id is the trace id
    by_id = {s.span_id: s for s in spans}
    by_name = {s.name: s for s in spans}
    root = by_name[f"order {ORDER}"]
    assert root.parent_span_id == b""
    for step, span in zip(trace.steps, spans):
        assert span.name == step.name  # in step order: parents first
        parent = trace.steps[step.parent].name if step.parent is not None else None
        assert (by_id[span.parent_span_id].name if span.parent_span_id else None) == parent
        assert span.start_time_unix_nano == round(step.start_ms * 1_000_000)
    dead = by_name["inventory dead-lettered"]
    assert by_id[dead.parent_span_id].name.startswith("publish order.created")
    assert dead.status.code == dead.status.STATUS_CODE_ERROR
    assert _attrs(dead)["chaos.reason"] == "not applicable: out of stock"
    publish = by_id[dead.parent_span_id]
    assert _attrs(publish)["messaging.message.id"] == f"{ORDER}/1"
    assert _attrs(publish)["chaos.stage"] == "publish"
    assert by_id[publish.parent_span_id].name == "place ok"
    resource = {kv.key: kv.value.string_value for kv in receiver.requests[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "chaos-harness" and resource["chaos.pipeline"] == "outbox"
    lines = (tmp_path / "spans.jsonl").read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == [s.name for s in trace.steps]


def _run_folder(tmp_path: Path) -> Path:
    history = _history().build()
    folder = tmp_path / "run"
    writer = HistoryWriter(folder / "history.jsonl", run_id="r", seed=0)
    recorder = writer.recorder(history.pipeline)
    for op in history.ops:
        writer._write({"pipeline": history.pipeline, "op": op.to_json()})  # noqa: SLF001 - ops with their own times
    for source, obs in history.observations.items():
        recorder.observe(source, [dict(r) for r in obs.rows])
    writer.close()
    (folder / "run.json").write_text(json.dumps({"run_id": "r", "command": "chaos run x"}))
    return folder


def test_the_cli_traces_by_correlation_id_and_sends_spans(otlp, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    url, receiver = otlp
    folder = _run_folder(tmp_path)
    assert main(["trace", str(folder), "--correlation", f"{ORDER}/pay", "--otlp", url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["order_id"] == ORDER and out["otlp"] == f"{url}/v1/traces"
    assert Path(out["spans_file"]) == folder / "traces" / f"{ORDER}.jsonl"
    assert receiver.requests, "no spans reached the receiver"


@pytest.mark.parametrize("argv", [["--order", "no-such-order"], ["--correlation", "no-such-id"]])
def test_an_unknown_order_or_correlation_id_exits_4_with_one_line(tmp_path: Path, capsys, argv) -> None:  # type: ignore[no-untyped-def]
    folder = _run_folder(tmp_path)
    assert main(["trace", str(folder), *argv]) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not in" in err and f"--order {ORDER}" in err
