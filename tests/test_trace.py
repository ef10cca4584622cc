"""`chaos trace`: one order's chain as a tree of timed steps, as OpenTelemetry spans that reach an OTLP receiver;
each published record with the outbox row or WAL position it came from (real pipelines at the end)."""

from __future__ import annotations

import gzip
import json
import re
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
from harness.history.store import HistoryWriter, load_histories
from harness.provenance import Provenance, pg_lsn, read_provenance
from harness.runner import RunResult
from harness.scenario import Scenario
from harness.sdk.provenance import provenance_headers
from harness.testing import HistoryBuilder, evidence
from harness.tools.spans import export_spans
from harness.tools.trace import Stage, Step, Trace, build_trace, find_trace, render_lines
from harness.workload.rate import Constant

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
    # Each effect shows its own row: the correlation id of the request that caused it.
    email = trace.children(applied[0].index)[0]
    assert email.attributes["correlation_id"] == f"{ORDER}/place", email.attributes
    assert charge[0].attributes["correlation_id"] == f"{ORDER}/pay", charge[0].attributes


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


# ---- provenance: the outbox row or WAL position of each published record -----------------------

def _with_provenance(**fields: int | str) -> HistoryBuilder:
    h = _history()
    h.observations["topic"] = [{**row, **fields} for row in h.observations["topic"]]
    return h


def _publishes(trace: Trace) -> list[Step]:
    return [s for s in trace.steps if s.stage is Stage.PUBLISH]


def test_a_publish_step_shows_its_outbox_row_in_text_json_and_spans(tmp_path: Path) -> None:
    trace = build_trace(_with_provenance(outbox_id=17).build(), ORDER, "run-1")
    assert [(s.attributes["outbox_id"], s.attributes["lsn"]) for s in _publishes(trace)] == [(17, None), (17, None)]
    lines = render_lines(trace)
    assert sum("outbox row 17" in line for line in lines) == 2, lines
    assert not any("not recorded" in line for line in lines), lines
    steps = json.loads(json.dumps(trace.to_json()))["steps"]
    assert [s["attributes"]["outbox_id"] for s in steps if s["stage"] == "publish"] == [17, 17]
    export_spans(trace, tmp_path / "spans.jsonl")
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    published = [s["attributes"] for s in spans if s["attributes"]["chaos.stage"] == "publish"]
    assert [a["chaos.outbox_id"] for a in published] == [17, 17]
    assert all("chaos.lsn" not in a for a in published)  # an unrecorded position is no attribute, not "None"


def test_a_publish_step_shows_its_wal_position(tmp_path: Path) -> None:
    trace = build_trace(_with_provenance(lsn="0/1A2B3C8").build(), ORDER, "run-1")
    assert {s.attributes["lsn"] for s in _publishes(trace)} == {"0/1A2B3C8"}
    assert sum("LSN 0/1A2B3C8" in line for line in render_lines(trace)) == 2
    export_spans(trace, tmp_path / "spans.jsonl")
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    assert [s["attributes"]["chaos.lsn"] for s in spans if s["attributes"]["chaos.stage"] == "publish"] == \
        ["0/1A2B3C8", "0/1A2B3C8"]


def _old_history_file(folder: Path, version: int) -> Path:
    """A run folder as an older chaos-harness wrote it: topic rows without outbox_id or lsn."""
    history = _history().build()
    folder.mkdir()
    lines = [{"format": "chaos-history", "version": version, "run_id": "old", "seed": 0}]
    lines += [{"pipeline": history.pipeline, "op": op.to_json()} for op in history.ops]
    if version == 1:  # observations as a dict per row
        lines += [{"pipeline": history.pipeline, "observation": source, "rows": [dict(r) for r in obs.rows]}
                  for source, obs in history.observations.items()]
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    if version == 2:
        from harness.history.store import encode_observation

        text += "".join(encode_observation(history.pipeline, source, [dict(r) for r in obs.rows]).decode() + "\n"
                        for source, obs in history.observations.items())
    (folder / "history.jsonl").write_text(text)
    (folder / "run.json").write_text(json.dumps({"run_id": "old", "command": "chaos run x"}))
    assert "outbox_id" not in text and "lsn" not in text
    return folder


@pytest.mark.parametrize("version", [1, 2])
def test_an_old_history_without_provenance_traces_and_says_it_has_none(tmp_path: Path, capsys, version: int) -> None:  # type: ignore[no-untyped-def]
    folder = _old_history_file(tmp_path / "run", version)
    trace = find_trace(folder, order_id=ORDER)
    assert [(s.attributes["outbox_id"], s.attributes["lsn"]) for s in _publishes(trace)] == [(None, None)] * 2
    assert main(["trace", str(folder), "--order", ORDER]) == 0
    out = capsys.readouterr().out
    assert out.count("source position not recorded") == 2 and "no outbox row id or WAL position recorded" in out
    assert main(["trace", str(folder), "--order", ORDER, "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert [(s["attributes"]["outbox_id"], s["attributes"]["lsn"]) for s in steps if s["stage"] == "publish"] == \
        [(None, None)] * 2


@pytest.mark.parametrize(("headers", "fields"), [
    ([("chaos-outbox-id", b"42")], {"outbox_id": 42}),
    ([("chaos-outbox-id", b"7f1c-uuid")], {"outbox_id": "7f1c-uuid"}),
    ([("chaos-lsn", b"27439048")], {"lsn": "0/1A2AFC8"}),  # Debezium's decimal source.lsn
    ([("chaos-lsn", b"16/b374d848")], {"lsn": "16/B374D848"}),  # Postgres's text form, as pg_lsn prints it
    ([("chaos-lsn", b"mysql-bin.000003:154")], {"lsn": "mysql-bin.000003:154"}),  # another log: kept as text
    ([("chaos-outbox-id", b"3"), ("chaos-lsn", str(2**32 + 1).encode()), ("chaos-outbox-id", b"4")],
     {"outbox_id": 3, "lsn": "1/1"}),
    ([("event_id", b"e-1"), ("chaos-lsn", None), ("chaos-outbox-id", b" ")], {}),
    (None, {}),
])
def test_provenance_headers_are_read_and_normalised(headers, fields) -> None:  # type: ignore[no-untyped-def]
    assert read_provenance(headers).fields() == fields


def test_the_sdk_writes_what_the_oracle_reads() -> None:
    headers = [(k, v.encode()) for k, v in provenance_headers(outbox_id=9, lsn=2**33).items()]
    assert read_provenance(headers) == Provenance(9, "2/0")
    assert pg_lsn(0) == "0/0" and pg_lsn(2**64 - 1) == "FFFFFFFF/FFFFFFFF"
    with pytest.raises(ValueError, match="not a WAL position"):
        pg_lsn(-1)


# ---- against real infrastructure: the reference pipelines send them -----------------------------

_PG_LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
TINY = Scenario(name="trace_provenance", description="a few orders, no faults: provenance headers on each record",
                pipelines=("direct", "outbox", "cdc", "cdc_outbox"), shape=Constant(4), duration_s=2, faults=(),
                drain_timeout_s=60)


@pytest.fixture(scope="module")
def provenance_run(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(TINY)


def _traced(run: RunResult, pipeline: str, capsys) -> tuple[dict[str, object], list[dict[str, object]], str]:  # type: ignore[no-untyped-def]
    """The first placed order's trace: (--json output, its spans, the text output)."""
    h = load_histories(run.run_dir / "history.jsonl")[1][pipeline]
    order = next(op.key for op in h.client_ops() if op.f == "place" and op.type is OpType.OK)
    argv = ["trace", str(run.run_dir), "--order", str(order), "--pipeline", pipeline]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    spans = [json.loads(line) for line in Path(out["spans_file"]).read_text().splitlines()]
    assert main(argv) == 0
    return out, spans, capsys.readouterr().out


def _publish_attrs(out: dict[str, object], spans: list[dict[str, object]]) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    steps = [s["attributes"] for s in out["steps"] if s["stage"] == "publish"]  # type: ignore[attr-defined, index]
    span_attrs = [s["attributes"] for s in spans if s["attributes"]["chaos.stage"] == "publish"]  # type: ignore[index]
    assert steps and len(steps) == len(span_attrs), (out, spans)
    return steps, span_attrs  # type: ignore[return-value]


@pytest.mark.chaos
@pytest.mark.extended  # one run of all four pipelines: after the core tier (conftest.py)
@pytest.mark.parametrize("pipeline", ["outbox", "cdc_outbox"])
def test_an_outbox_runs_trace_shows_each_records_outbox_row(provenance_run: RunResult, pipeline: str, capsys) -> None:  # type: ignore[no-untyped-def]
    out, spans, text = _traced(provenance_run, pipeline, capsys)
    steps, span_attrs = _publish_attrs(out, spans)
    ids = [s["outbox_id"] for s in steps]
    assert all(type(i) is int and i > 0 for i in ids), (ids, evidence(provenance_run))
    assert [a["chaos.outbox_id"] for a in span_attrs] == ids
    assert all(f"outbox row {i}" in text for i in ids), text
    # One outbox row per event: every record of one event carries its row's id, and no other event's.
    topic = load_histories(provenance_run.run_dir / "history.jsonl")[1][pipeline].observed("topic")
    rows_of: dict[object, set[object]] = {}
    for r in topic:
        rows_of.setdefault(r["event_id"], set()).add(r.get("outbox_id"))
    assert all(len(ids) == 1 and None not in ids for ids in rows_of.values()), rows_of
    assert len({next(iter(i)) for i in rows_of.values()}) == len(rows_of)


@pytest.mark.chaos
@pytest.mark.extended  # one run of all four pipelines: after the core tier (conftest.py)
def test_a_cdc_runs_trace_shows_each_records_wal_position(provenance_run: RunResult, capsys) -> None:  # type: ignore[no-untyped-def]
    out, spans, text = _traced(provenance_run, "cdc", capsys)
    steps, span_attrs = _publish_attrs(out, spans)
    lsns = [s["lsn"] for s in steps]
    assert all(isinstance(x, str) and _PG_LSN.fullmatch(x) for x in lsns), (lsns, evidence(provenance_run))
    assert [a["chaos.lsn"] for a in span_attrs] == lsns
    assert all(f"LSN {x}" in text for x in lsns), text
    # One order's changes commit one after another: their WAL positions grow with seq.
    by_seq = sorted((s["seq"], int(x.split("/")[0], 16) << 32 | int(x.split("/")[1], 16)) for s, x in zip(steps, lsns))
    assert [p for _, p in by_seq] == sorted(p for _, p in by_seq), by_seq


@pytest.mark.chaos
@pytest.mark.extended  # one run of all four pipelines: after the core tier (conftest.py)
def test_a_direct_runs_trace_says_it_has_no_source_position(provenance_run: RunResult, capsys) -> None:  # type: ignore[no-untyped-def]
    out, spans, text = _traced(provenance_run, "direct", capsys)
    steps, span_attrs = _publish_attrs(out, spans)
    assert [(s["outbox_id"], s["lsn"]) for s in steps] == [(None, None)] * len(steps)
    assert not any("chaos.outbox_id" in a or "chaos.lsn" in a for a in span_attrs)
    assert "no outbox row id or WAL position recorded" in text
