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


def _row_types(rows: object) -> list[dict[str, tuple[type, object]]]:
    return [{k: (type(v), v) for k, v in r.items()} for r in rows]  # type: ignore[attr-defined]


def test_observations_round_trip_by_column_with_types_and_absent_fields(tmp_path: Path) -> None:
    """Format 2 stores columns (strings that repeat as a dictionary): every value keeps its type, and a
    row that lacked a field still lacks it (not None)."""
    rows = [{"order_id": "o1", "n": 1, "flag": True, "x": None},
            {"order_id": "o1", "n": 1.5, "flag": 1},
            {"order_id": "o2", "n": None, "flag": False, "x": "s"},
            {"order_id": "o1", "flag": "1", "x": "s"}]
    writer = HistoryWriter(tmp_path / "history.jsonl", run_id="r", seed=1)
    rec = writer.recorder("outbox")
    rec.observe("topic", rows)
    rec.observe("dlq", [])
    writer.close()
    line = (tmp_path / "history.jsonl").read_text().splitlines()[1]
    assert '"columns"' in line and '"dict":["o1","o2"]' in line  # the order ids as a dictionary
    _, loaded = load_histories(tmp_path / "history.jsonl")
    topic = loaded["outbox"].observed("topic")
    assert _row_types(topic) == _row_types(rows)
    assert "n" not in topic[3] and loaded["outbox"].column("topic", "n", "-") == (1, 1.5, None, "-")
    assert loaded["outbox"].observed("dlq") == () and "dlq" in loaded["outbox"].observations


def test_a_history_of_format_1_still_loads(tmp_path: Path) -> None:
    """Run folders written before observations were stored by column: `chaos analyze` must still read them."""
    rows = [{"consumer": "payment", "kind": "charge", "order_id": "o1", "amount_cents": 100},
            {"consumer": "payment", "kind": "charge", "order_id": "o1"}]
    lines = [{"format": "chaos-history", "version": 1, "run_id": "old", "seed": 3},
             {"pipeline": "direct", "op": {"index": 0, "time": 0.5, "process": "client-0", "type": "invoke",
                                           "f": "pay", "key": "o1", "value": {"amount_cents": 100}}},
             {"pipeline": "direct", "op": {"index": 1, "time": 1, "process": "client-0", "type": "ok", "f": "pay",
                                           "key": "o1", "value": {"amount_cents": 100, "tags": [1, 2]}}},
             {"pipeline": "direct", "observation": "effects", "rows": rows}]
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    header, loaded = load_histories(tmp_path / "history.jsonl")
    h = loaded["direct"]
    assert header["run_id"] == "old"
    assert [(o.index, o.time_s, o.type, o.key) for o in h.ops] == [(0, 0.5, OpType.INVOKE, "o1"), (1, 1.0, OpType.OK, "o1")]
    assert h.ops[1].value == {"amount_cents": 100, "tags": [1, 2]}
    assert h.observed("effects") == rows and h.column("effects", "amount_cents", 0) == (100, 0)


@pytest.mark.parametrize("damage", [
    lambda line: line.replace('"codes":[0,0', '"codes":[0,7', 1),  # a code outside the dictionary
    lambda line: line.replace('"n":2', '"n":3', 1),  # columns shorter than the rows
    lambda line: line.replace('"columns"', '"kolumns"', 1),  # neither columns nor rows
])
def test_a_damaged_observation_line_is_refused_even_as_the_last_line(tmp_path: Path, damage: object) -> None:
    writer = HistoryWriter(tmp_path / "history.jsonl", run_id="r", seed=1)
    writer.recorder("outbox").observe("effects", [{"consumer": "payment", "kind": "charge"}] * 2)
    writer.close()
    header, line = (tmp_path / "history.jsonl").read_text().splitlines()
    damaged = damage(line)  # type: ignore[operator]
    assert damaged != line
    (tmp_path / "history.jsonl").write_text(f"{header}\n{damaged}\n")
    with pytest.raises(UsageError, match="corrupt"):
        load_histories(tmp_path / "history.jsonl")


def test_values_json_cannot_hold_round_trip_as_version_1_wrote_them(tmp_path: Path) -> None:
    """NaN is written as NaN (and read back), anything else JSON cannot hold as its text."""
    writer = HistoryWriter(tmp_path / "history.jsonl", run_id="r", seed=1)
    rec = writer.recorder("outbox")
    rec.record("probe", OpType.OK, "lag", value={"lag": float("nan"), "at": Path("/x")})  # type: ignore[dict-item]
    rec.record("probe", OpType.OK, "lag", value={"lag": 1})
    rec.observe("topic", [{"offset": float("inf"), "payload": b"raw"}])  # type: ignore[list-item]
    writer.close()
    _, loaded = load_histories(tmp_path / "history.jsonl")
    ops = loaded["outbox"].ops
    assert ops[0].value["lag"] != ops[0].value["lag"] and ops[0].value["at"] == "/x" and ops[1].value == {"lag": 1}
    assert dict(loaded["outbox"].observed("topic")[0]) == {"offset": float("inf"), "payload": "b'raw'"}
