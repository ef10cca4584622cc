"""The run folder's history round-trips, and re-analysis reproduces the run's verdicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.analysis import analyze, analyze_run_dir
from harness.checkers.base import Validity
from harness.errors import UsageError
from harness.history.ops import Op, OpType
from harness.expect import expectations_from_json
from harness.history.store import HistoryWriter, load_histories
from harness.wait import wait_for


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
    rec._t0_ns -= 333_333_333  # times with more digits than the file keeps
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


_CHILD = """
import sys
import threading
from pathlib import Path
from harness.history.ops import Op, OpType
from harness.history.store import HistoryWriter

writer = HistoryWriter(Path(sys.argv[1]), run_id="killed", seed=1)
rec = writer.recorder("outbox")
for i in range(int(sys.argv[2])):
    rec.record(f"client-{i % 7}", OpType.INVOKE, "place", f"o{i}", {"amount_cents": i, "customer": "c\\u00e9"})
    rec.record(f"client-{i % 7}", OpType.OK, "place", f"o{i}", {"amount_cents": i, "correlation_id": None})
if sys.argv[3] == "hang":
    print("recorded", flush=True)
    sys.stdin.read()  # until killed: the writer is never closed
"""


def _child(path: Path, n: int, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(n), mode], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _expected_ops(n: int) -> list[tuple[str, str, object]]:
    return [(op, f"o{i}", i) for i in range(n) for op in ("invoke", "ok")]


def _ops_of(path: Path) -> list[tuple[str, str, object]]:
    _, histories = load_histories(path, columnar=False)
    return [(op.type.value, op.key, op.value["amount_cents"]) for op in histories["outbox"].ops]  # type: ignore[misc]


def test_a_run_killed_with_minus_9_keeps_every_op_recorded_before_the_last_flush(tmp_path: Path) -> None:
    """Op lines are batched (FLUSH_INTERVAL_S), not flushed one by one: a run killed with -9 after its ops
    were recorded still has every one of them on disk, as whole lines, without ever closing the writer."""
    path = tmp_path / "history.jsonl"
    child = _child(path, 5000, "hang")
    try:
        assert child.stdout is not None and child.stdout.readline() == "recorded\n"
        lines = wait_for(lambda: ((n := path.read_bytes().count(b"\n")) == 1 + 2 * 5000, n), timeout_s=30,
                         what="the writer's flusher to write every recorded op", interval_s=0.02)
        assert lines == 1 + 2 * 5000
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert path.read_bytes().endswith(b"\n")  # killed after the flush: every line is whole
    assert _ops_of(path) == _expected_ops(5000)


def test_a_run_that_exits_without_closing_its_writer_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    child = _child(path, 3000, "exit")
    assert child.wait(timeout=60) == 0
    assert _ops_of(path) == _expected_ops(3000)


def test_op_lines_are_the_json_modules_own(tmp_path: Path) -> None:
    """The fast encoder writes what json.dumps would; odd values still go the json module's way."""
    writer = HistoryWriter(tmp_path / "history.jsonl", run_id="r", seed=1)
    rec = writer.recorder("direct")
    values: list[dict[str, object]] = [{"amount_cents": 1, "customer": "c\u00e9\u4e2d", "correlation_id": None},
                                       {"ratio": 0.1, "ok": True, "lag": 3}, {"lone": "\ud800"}, {}]
    ops = [rec.record("client-0", OpType.OK, "place", "k\n\"", v) for v in values]  # type: ignore[arg-type]
    rec.record("nemesis", OpType.INFO, "heal", error="boom")
    writer.close()
    lines = (tmp_path / "history.jsonl").read_bytes().splitlines()[1:]
    for op, line in zip(ops, lines):
        assert json.loads(line) == {"pipeline": "direct", "op": op.to_json()}
        assert Op.from_json(op.to_json()) == op
    with pytest.raises(ValueError, match="closed"):
        rec.record("client-0", OpType.INVOKE, "place", "late")


def test_ops_recorded_from_many_threads_while_the_flusher_writes_are_each_written_once_in_order(tmp_path: Path) -> None:
    """The flusher takes each recorder's new ops while clients, the nemesis and probes go on recording:
    every op reaches the file exactly once, in its pipeline's order, and an observation line comes
    after every op recorded before it."""
    writer = HistoryWriter(tmp_path / "history.jsonl", run_id="r", seed=1)
    recorders = [writer.recorder("direct"), writer.recorder("outbox")]
    per_thread = 3000

    def client(n: int) -> None:
        rec = recorders[n % 2]
        for i in range(per_thread):
            value: dict[str, object] = {"i": i, "lag": 0.5} if i % 97 == 0 else {"i": i}  # some go the json way
            rec.record(f"client-{n}", OpType.INVOKE, "place", f"o{n}-{i}", value)  # type: ignore[arg-type]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorders[0].observe("effects", [{"order_id": "o0-0"}])
    writer.close()
    lines = (tmp_path / "history.jsonl").read_bytes().splitlines()[1:]
    observation = next(i for i, line in enumerate(lines) if b'"observation"' in line)
    assert observation == len(lines) - 1  # recorded after every op: written after them
    _, loaded = load_histories(tmp_path / "history.jsonl", columnar=False)
    for rec in recorders:
        stored = loaded[rec.pipeline].ops
        assert [op.index for op in stored] == list(range(2 * per_thread))
        assert stored == rec.history().ops


def test_a_value_json_cannot_encode_at_all_is_kept_as_text_and_the_ops_after_it_are_written(tmp_path: Path) -> None:
    """Op lines are made on the flusher thread now: an op no encoder takes must not cost the batch it is in."""
    writer = HistoryWriter(tmp_path / "history.jsonl", run_id="r", seed=1)
    rec = writer.recorder("outbox")
    rec.record("client-0", OpType.INVOKE, "place", "o1", {"amount_cents": 1})
    rec.record("probe", OpType.OK, "lag", value={("a", 1): 2})  # type: ignore[dict-item]
    rec.record("client-0", OpType.OK, "place", "o1", {"amount_cents": 1})
    writer.close()
    _, loaded = load_histories(tmp_path / "history.jsonl")
    ops = loaded["outbox"].ops
    assert [op.index for op in ops] == [0, 1, 2] and ops[1].value == {"('a', 1)": "2"}
