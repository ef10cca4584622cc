"""The run folder's history round-trips, and re-analysis reproduces the run's verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis import analyze, analyze_run_dir
from harness.checkers.base import Validity
from harness.errors import UsageError
from harness.history.ops import OpType
from harness.expect import expectations_from_json
from harness.history.store import HistoryWriter, load_histories


def _write_run(tmp_path: Path) -> Path:
    writer = HistoryWriter(tmp_path / "history.jsonl", run_id="r1", seed=7)
    rec = writer.recorder("direct")
    rec.record("client-0", OpType.INVOKE, "place", "o1", {"amount_cents": 100})
    rec.record("client-0", OpType.OK, "place", "o1", {"amount_cents": 100, "correlation_id": "c1"})
    rec.record("client-0", OpType.INVOKE, "pay", "o1", {"amount_cents": 100})
    rec.record("client-0", OpType.OK, "pay", "o1", {"amount_cents": 100})
    rec.observe("effects", [])
    rec.observe("consumers", [{"consumer": "payment"}])
    writer.close()
    (tmp_path / "run.json").write_text(json.dumps(
        {"expect": [{"pipeline": "direct", "invariant": "I1", "validity": "invalid"}]}))
    return tmp_path


def test_round_trip_keeps_every_op_and_observation(tmp_path: Path) -> None:
    _write_run(tmp_path)
    header, histories = load_histories(tmp_path / "history.jsonl")
    assert header["seed"] == 7
    h = histories["direct"]
    assert [(o.f, o.type) for o in h.ops] == [("place", OpType.INVOKE), ("place", OpType.OK),
                                             ("pay", OpType.INVOKE), ("pay", OpType.OK)]
    assert h.ops[1].value["correlation_id"] == "c1"
    assert h.observed("effects") == ()
    assert "effects" in h.observations


def test_reanalysis_gives_the_same_verdicts(tmp_path: Path) -> None:
    run = _write_run(tmp_path)
    _, histories = load_histories(run / "history.jsonl")
    live = analyze(histories, expectations_from_json([{"pipeline": "direct", "invariant": "I1", "validity": "invalid"}]))
    again = analyze_run_dir(run)
    assert [v.to_json() for v in live] == [v.to_json() for v in again]
    assert again[0].result("no-lost-effect").validity is Validity.INVALID  # type: ignore[union-attr]


def test_truncated_last_line_of_a_killed_run_is_tolerated(tmp_path: Path) -> None:
    run = _write_run(tmp_path)
    with (run / "history.jsonl").open("a") as fh:
        fh.write('{"pipeline": "direct", "op": {"ind')
    _, histories = load_histories(run / "history.jsonl")
    assert len(histories["direct"].ops) == 4


def test_foreign_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "history.jsonl").write_text('{"format": "other"}\n')
    with pytest.raises(UsageError, match="not a chaos-history"):
        load_histories(tmp_path / "history.jsonl")


def test_analyze_on_a_folder_that_is_not_a_run_says_so(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a run folder"):
        analyze_run_dir(tmp_path)


def test_reanalysis_applies_the_recovery_budget_of_the_run(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path / "history.jsonl", run_id="r2", seed=1)
    rec = writer.recorder("outbox")
    for f, t in (("inject", OpType.INVOKE), ("inject", OpType.OK), ("heal", OpType.INVOKE), ("heal", OpType.OK)):
        rec.record("nemesis", t, f, value={"id": 0, "fault": "outage", "target": "relay->kafka"})
    rec.record("probe", OpType.OK, "lag", value={"lag": 0, "backlog": 0})
    writer.close()
    meta = {"expect": [], "recovery_budget_s": 1e-9}
    (tmp_path / "run.json").write_text(json.dumps(meta))
    first = analyze_run_dir(tmp_path)[0].result("bounded-recovery")
    assert first is not None and first.counts["budget_s"] == 1e-9
    (tmp_path / "run.json").write_text(json.dumps({"expect": []}))
    second = analyze_run_dir(tmp_path)[0].result("bounded-recovery")
    assert second is not None and second.counts["budget_s"] is None and second.validity is Validity.VALID


def test_the_stored_history_is_the_live_one(tmp_path: Path) -> None:
    """`chaos analyze` reproduces verdicts exactly only if loading gives back exactly what the checkers saw."""
    writer = HistoryWriter(tmp_path / "history.jsonl", run_id="r3", seed=1)
    rec = writer.recorder("outbox")
    rec._t0 -= 1 / 3  # times with more digits than the file keeps
    rec.record("client-0", OpType.INVOKE, "place", "o1", {"amount_cents": 100})
    rec.record("probe", OpType.OK, "lag", value={"lag": 3, "backlog": 0})
    rec.observe("topic", [{"partition": 0, "offset": 0, "event_id": "e1", "payload": '{"a": 1}'}])
    writer.close()
    live = rec.history()
    _, loaded = load_histories(tmp_path / "history.jsonl")
    assert loaded["outbox"].ops == live.ops
    assert [dict(r) for r in loaded["outbox"].observed("topic")] == [dict(r) for r in live.observed("topic")]
