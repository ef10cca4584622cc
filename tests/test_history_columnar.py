"""history.arrow, the columnar form of a history.jsonl: the same histories, value for value and type for type.

It is derived: built on the first load, used while it matches its jsonl, and rebuilt from the
jsonl when it does not (appended to, replaced, damaged), so it can never make a run read as
something its record does not say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.history.columnar import frame_of, history_of
from harness.history.ops import History, OpType
from harness.history.store import HistoryWriter, columnar_path, load_histories

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4))
rows = st.lists(st.dictionaries(st.sampled_from(["order_id", "seq", "event_id", "x"]), scalars, max_size=4),
                max_size=6)
op_types = st.sampled_from(list(OpType))


def _typed(history: History) -> tuple[object, ...]:
    """Everything a history holds, with each value's type, so 1, 1.0 and True stay apart."""
    ops = tuple((o.index, o.time_s, o.process, o.type, o.f, o.key, o.error,
                 tuple(sorted((k, type(v), repr(v)) for k, v in o.value.items()))) for o in history.ops)
    obs = {s: (len(o.rows), {name: tuple((type(v), repr(v)) for v in col)
                             for name, col in o.rows.raw_columns().items()})
           for s, o in history.observations.items()}
    return history.pipeline, ops, obs


def _write(path: Path, ops: list[tuple[OpType, str, str | None, dict[str, Any]]],
           observations: dict[str, list[dict[str, Any]]]) -> None:
    writer = HistoryWriter(path, run_id="r", seed=3)
    rec = writer.recorder("outbox")
    for type_, f, key, value in ops:
        rec.record("client-1" if f != "lag" else "probe", type_, f, key, value,
                   error="HTTP 503" if type_ is OpType.FAIL else None)
    for source, found in observations.items():
        rec.observe(source, found)
    writer.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(op_types, st.sampled_from(["place", "pay", "lag"]), st.none() | st.text(max_size=3),
                              st.dictionaries(st.sampled_from(["amount_cents", "lag", "note"]), scalars, max_size=2)),
                    max_size=6),
       topic=rows, effects=rows)
def test_the_columnar_form_holds_exactly_what_the_jsonl_holds(tmp_path_factory: Any, ops: Any, topic: Any,
                                                              effects: Any) -> None:
    path = tmp_path_factory.mktemp("h") / "history.jsonl"
    _write(path, ops, {"topic": topic, "effects": effects, "pending": []})
    header, plain = load_histories(path, columnar=False)
    assert not columnar_path(path).exists()
    load_histories(path)  # builds history.arrow
    assert columnar_path(path).exists()
    header2, columnar = load_histories(path)
    assert columnar["outbox"].frame is not None, "the second load reads the columnar file"
    assert header2 == header
    assert _typed(columnar["outbox"]) == _typed(plain["outbox"])
    assert columnar["outbox"] == plain["outbox"]


def test_rows_read_from_a_columnar_file_keep_their_fields_in_order(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    _write(path, [], {"topic": [{"partition": 0, "offset": 5, "key": None, "payload": "x"},
                                {"partition": 1, "offset": 6, "payload": "y", "undecodable": True}]})
    load_histories(path)
    _, got = load_histories(path)
    topic = got["outbox"].observed("topic")
    assert topic[1]["undecodable"] is True  # one column read first ...
    assert list(topic[0]) == ["partition", "offset", "key", "payload"]  # ... and the rows keep the stored order
    assert dict(topic[1]) == {"partition": 1, "offset": 6, "payload": "y", "undecodable": True}
    assert got["outbox"].column("topic", "key", "-") == (None, "-")


def test_an_appended_jsonl_makes_the_columnar_file_stale(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    _write(path, [(OpType.INVOKE, "place", "o1", {})], {})
    load_histories(path)
    with path.open("a") as fh:
        fh.write('{"pipeline":"outbox","op":{"index":1,"time":2.0,"process":"client-1","type":"ok","f":"place",'
                 '"key":"o1"}}\n')
    _, got = load_histories(path)
    assert [o.type for o in got["outbox"].ops] == [OpType.INVOKE, OpType.OK]
    _, again = load_histories(path)  # rebuilt from the jsonl, and used from then on
    assert again["outbox"].frame is not None and len(again["outbox"].ops) == 2


def test_a_damaged_columnar_file_is_rebuilt_from_the_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    _write(path, [(OpType.INVOKE, "place", "o1", {"amount_cents": 5})], {"effects": [{"order_id": "o1"}]})
    load_histories(path)
    columnar_path(path).write_bytes(b"ARROW1 but not really")
    _, got = load_histories(path)
    assert got["outbox"].ops[0].value == {"amount_cents": 5}
    assert got["outbox"].observed("effects")[0]["order_id"] == "o1"


def test_a_frame_made_in_memory_reads_back_as_the_history() -> None:
    from harness.testing import HistoryBuilder

    h = HistoryBuilder().consumers("payment").flow("o1", ("place", "pay")).build()
    again = history_of(h.pipeline, frame_of(h))
    assert _typed(again) == _typed(h)


def test_several_pipelines_share_one_pool_and_each_reads_back_whole(tmp_path: Path) -> None:
    """Strings first met in a later pipeline are in the file's pool too (a run of three pipelines)."""
    path = tmp_path / "history.jsonl"
    writer = HistoryWriter(path, run_id="r", seed=3)
    for n, pipeline in enumerate(("direct", "outbox", "cdc")):
        rec = writer.recorder(pipeline)
        rec.record(f"client-{n}", OpType.OK, "place", f"order-{pipeline}", {"correlation_id": f"c-{pipeline}"})
        rec.observe("effects", [{"order_id": f"order-{pipeline}", "consumer": "payment", "kind": f"k-{pipeline}"}])
    writer.close()
    _, plain = load_histories(path, columnar=False)
    load_histories(path)
    _, columnar = load_histories(path)
    assert all(h.frame is not None for h in columnar.values())
    for pipeline in ("direct", "outbox", "cdc"):
        assert _typed(columnar[pipeline]) == _typed(plain[pipeline])
        assert columnar[pipeline].frame.code(f"k-{pipeline}") >= 0  # type: ignore[union-attr]


# ---- against real infrastructure: a run writes history.arrow, and its analysis is the run's -------------

@pytest.mark.chaos
def test_a_run_folder_holds_its_history_as_columns_that_analyse_as_the_run_did(chaos_run) -> None:  # type: ignore[no-untyped-def]
    from harness.analysis import analyze_run_dir
    from harness.scenario import Scenario
    from harness.workload.rate import Constant

    run = chaos_run(Scenario(name="columnar", description="a few orders on the outbox, no faults",
                             pipelines=("outbox",), shape=Constant(4), duration_s=2, faults=(), drain_timeout_s=60))
    assert (run.run_dir / "history.arrow").exists(), "written at the end of the run, beside history.jsonl"
    _, histories = load_histories(run.run_dir / "history.jsonl")
    assert all(h.frame is not None for h in histories.values()), "chaos analyze maps history.arrow"
    again = analyze_run_dir(run.run_dir, histories)
    assert [[r.to_json() for r in v.results] for v in again] == \
        [[r.to_json() for r in v.results] for v in run.verdicts]
