"""`chaos dlq` on a stored run folder: listing by content, selecting records, the ledger, and bad input (exit 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.deadletter import is_dead_letter_header
from harness.errors import UsageError
from harness.history.store import HistoryWriter
from harness.testing import HistoryBuilder
from harness.tools.dlq import ReplayLedger, from_run, replay, select

ORDER = "0f8e2a4c-7b1d-4f7e-8a55-1c2b3d4e5f60"
EVENT = json.dumps({"event_id": "e-paid", "type": "order.paid", "order_id": ORDER, "seq": 2,
                    "correlation_id": "c-1", "schema_version": 1})


def _folder(tmp_path: Path, h: HistoryBuilder) -> Path:
    history = h.build()
    folder = tmp_path / "run"
    writer = HistoryWriter(folder / "history.jsonl", run_id="r", seed=0)
    recorder = writer.recorder(history.pipeline)
    for source, obs in history.observations.items():
        recorder.observe(source, [dict(r) for r in obs.rows])
    writer.close()
    (folder / "run.json").write_text(json.dumps({"run_id": "r"}))
    return folder


def _with_dlq(tmp_path: Path) -> Path:
    h = HistoryBuilder("outbox").consumers("payment")
    h.row("dlq", consumer="payment", dlq_topic="dlq.payment.outbox.r", partition=0, offset=0, key=ORDER,
          payload=EVENT, event_id="e-paid", order_id=ORDER, type="order.paid", correlation_id="c-1",
          convention="spring-kafka", reason="java.lang.IllegalStateException: card declined",
          source_topic="orders.outbox.r", source_partition=2, source_offset=41,
          headers=json.dumps({"kafka_dlt-original-topic": "orders.outbox.r", "kafka_dlt-original-partition": "0x00000002",
                              "traceparent": "00-ab-cd-01"}))
    h.row("dlq", consumer="payment", dlq_topic="dlq.payment.outbox.r", partition=0, offset=1, key=None,
          payload=EVENT.replace("e-paid", "e-bare"), event_id="e-bare", order_id=ORDER, type="order.paid",
          convention="none", reason="unknown: the record carries no dead-letter headers", headers="{}")
    return _folder(tmp_path, h)


def test_list_reads_every_convention_from_the_run_folder(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = _with_dlq(tmp_path)
    assert main(["dlq", "list", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["ref"] for r in rows] == ["outbox/payment/0/0", "outbox/payment/0/1"]
    assert rows[0]["convention"] == "spring-kafka" and rows[0]["source_offset"] == 41
    assert rows[0]["headers"]["kafka_dlt-original-partition"] == "0x00000002"
    assert rows[1]["convention"] == "none" and rows[1]["reason"].startswith("unknown")
    assert main(["dlq", "show", str(folder), "outbox/payment/0/0"]) == 0
    assert "card declined" in capsys.readouterr().out


def test_replay_plan_drops_dead_letter_headers_and_needs_an_original_topic(tmp_path: Path) -> None:
    records = from_run(_with_dlq(tmp_path))
    headers = dict(records[0].headers)
    assert headers["kafka_dlt-original-partition"] == b"\x00\x00\x00\x02"  # hex in the history, bytes again
    assert [n for n in headers if not is_dead_letter_header(n)] == ["traceparent"]  # what a replay keeps
    with pytest.raises(UsageError, match="does not say its original topic.*--to TOPIC"):
        replay([records[1]], "127.0.0.1:1", ReplayLedger(tmp_path / "l.jsonl"))


def test_select_names_what_matches_nothing(tmp_path: Path) -> None:
    records = from_run(_with_dlq(tmp_path))
    assert select(records, ["outbox/payment/0/1"]) == [records[1]]
    assert select(records, event_ids=["e-paid"]) == [records[0]]
    assert select(records, everything=True) == records
    with pytest.raises(UsageError, match="ref nope.*e.g. outbox/payment/0/0"):
        select(records, ["nope"])
    with pytest.raises(UsageError, match="--all"):
        select(records)


def test_a_ledger_line_cut_short_leaves_the_earlier_state(tmp_path: Path) -> None:
    ledger = ReplayLedger(tmp_path / "ledger.jsonl")
    ledger.mark("d/0/1", "publishing", to="t")
    ledger.mark("d/0/1", "published", to="t/0/9")
    ledger.mark("d/0/2", "publishing", to="t")
    with ledger.path.open("a") as fh:
        fh.write('{"dlq":"d/0/2","sta')  # killed mid-write
    entries = ledger.entries()
    assert entries["d/0/1"]["state"] == "published" and entries["d/0/2"]["state"] == "publishing"


def test_a_run_folder_without_a_dlq_exits_4_with_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = _folder(tmp_path, HistoryBuilder("outbox").consumers("payment").flow(ORDER))
    # flow() records an empty dlq observation: drop it, as a run interrupted before observing would.
    lines = [line for line in (folder / "history.jsonl").read_text().splitlines() if '"observation":"dlq"' not in line]
    (folder / "history.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["dlq", "list", str(folder)]) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no dead-letter observation" in err


@pytest.mark.parametrize("argv", [["dlq", "list"], ["dlq", "list", "--topic", "t"], ["dlq", "show", "{run}"],
                                  ["dlq", "show", "{run}", "outbox/payment/9/9"], ["dlq", "replay", "{run}"],
                                  ["dlq", "list", "/no/such/folder"]])
def test_bad_dlq_usage_exits_4_with_one_line(tmp_path: Path, capsys, argv) -> None:  # type: ignore[no-untyped-def]
    folder = _with_dlq(tmp_path)
    assert main([a.format(run=folder) for a in argv]) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
