"""The run folder's outputs rendered from hand-built histories (no Kafka): results.json against its
schema, junit.xml test cases, report.html size, escaping and self-containment, `chaos report`,
and the terminal summary the CLI and the pytest plugin print."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from harness.analysis import analyze_run_dir
from harness.cli import main
from harness.report.outputs import Outputs, rerender
from harness.report.results import SCHEMA_PATH
from report_histories import HOSTILE, HOSTILE_ATTR, HOSTILE_JSON, synthetic_run

MAX_REPORT_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def black_friday(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    """A black_friday-sized run: 2000 orders (4000 client requests) and ~4000 topic records per pipeline, 3 pipelines."""
    run_dir = tmp_path_factory.mktemp("bf") / "black_friday-synthetic"
    synthetic_run(run_dir, orders=2000, duration_s=60, hostile=True)
    return rerender(run_dir)


def test_report_for_a_black_friday_sized_run_is_under_5_mb(black_friday: Outputs) -> None:
    size = black_friday.report_html.stat().st_size
    print(f"report.html for 3 pipelines x 2000 orders: {size / 1024:.0f} KiB ({black_friday.report_html})")
    assert size < MAX_REPORT_BYTES


def test_results_json_validates_against_its_schema(black_friday: Outputs) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema missing: pip install -e '.[test]'")
    doc = json.loads(black_friday.results_json.read_text())
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(doc, schema)
    assert doc["format"] == "chaos-results" and doc["version"] == 3
    assert [p["pipeline"] for p in doc["pipelines"]] == ["direct", "outbox", "cdc"]
    direct = doc["pipelines"][0]
    assert direct["score"]["value"] == 0 and direct["measurements"]["lost_orders"] > 0


def test_junit_has_one_case_per_pipeline_and_result_and_parses(black_friday: Outputs) -> None:
    root = ET.parse(black_friday.junit_xml).getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"black_friday.direct", "black_friday.outbox", "black_friday.cdc"}
    for v in black_friday.verdicts:
        cases = suites[f"black_friday.{v.pipeline}"].findall("testcase")
        assert [c.get("name") for c in cases] == [f"{r.invariant} {r.checker}" if r.invariant else r.checker
                                                  for r in v.results]
    # direct is *expected* to break I1: that case passes; nothing failed or was skipped in this run.
    direct_i1 = next(c for c in suites["black_friday.direct"] if c.get("name") == "I1 no-lost-effect")
    assert direct_i1.find("failure") is None and "expected: lost-effect, acknowledged-then-missing" in (direct_i1.findtext("system-out") or "")
    assert root.get("failures") == "0" and int(root.get("tests") or 0) == sum(len(v.results) for v in black_friday.verdicts)


def test_junit_marks_unexpected_as_failure_and_unknown_as_skipped(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    synthetic_run(run_dir, orders=200, duration_s=30, pipelines=("direct", "outbox"))
    meta = json.loads((run_dir / "run.json").read_text())
    meta["expect"] = []  # direct now breaks I1 unexpectedly
    meta["faults"] = []
    (run_dir / "run.json").write_text(json.dumps(meta))
    out = rerender(run_dir)
    root = ET.parse(out.junit_xml).getroot()
    failure = root.find(".//testsuite[@name='black_friday.direct']/testcase[@name='I1 no-lost-effect']/failure")
    assert failure is not None and "unexpected lost-effect" in (failure.get("message") or "")
    assert root.get("failures") == "1"


def test_renderers_do_not_change_verdicts(black_friday: Outputs) -> None:
    again = analyze_run_dir(black_friday.run_dir)
    assert again == black_friday.verdicts
    doc = json.loads(black_friday.results_json.read_text())
    assert [(p["validity"], p["outcome"]) for p in doc["pipelines"]] == [
        (v.validity.value, v.outcome.value) for v in black_friday.verdicts]


def test_chaos_analyze_prints_the_verdicts_and_scores_of_the_run(black_friday: Outputs) -> None:
    import io

    from rich.console import Console

    from harness.cli import _analyze

    out = io.StringIO()
    _analyze(black_friday.run_dir, Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    header = next([c.strip() for c in line.split("┃")[1:-1]] for line in lines if "┃ pipeline" in line)
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line.count("│") > 3]
    score_column = {row[0]: row[header.index("score")] for row in cells}
    assert score_column == {s.pipeline: f"{s.value:g}" for s in black_friday.scores}, out.getvalue()


def test_report_is_self_contained_and_escapes_untrusted_text(black_friday: Outputs) -> None:
    page = black_friday.report_html.read_text()
    # Nothing loaded from anywhere: no external src/href, and a CSP that forbids network outright.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "default-src &#x27;none&#x27;" in page and "@import" not in page
    # The hostile payloads are present only as escaped text.
    for raw in (HOSTILE, HOSTILE_ATTR, HOSTILE_JSON):
        assert raw not in page
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;" in page
    # Exactly two script elements: the JSON data block and the report's own script.
    assert len(re.findall(r"<script\b", page)) == 2
    data = re.search(r'<script type="application/json" id="chaos-results">(.*?)</script>', page, re.S)
    assert data is not None and "</" not in data.group(1) and "<!--" not in data.group(1)
    assert json.loads(data.group(1))["scenario"] == "black_friday"


def test_report_has_table_charts_violations_chain_and_reproduce_command(black_friday: Outputs) -> None:
    page = black_friday.report_html.read_text()
    assert 'id="comparison-table"' in page
    for p in ("direct", "outbox", "cdc"):
        for kind in ("throughput", "latency", "lag"):
            assert f'id="chart-{p}-{kind}"' in page
    assert page.count('class="fault"') >= 9  # each chart shades the outage
    assert 'id="v-direct-I1"' in page and "Event chain of order" in page
    assert "chaos run black_friday --seed 20261126" in page
    assert "4.3.1" in page  # versions from run.json


def test_chaos_report_rerenders_a_stored_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "black_friday-x"
    synthetic_run(run_dir, orders=100, duration_s=30, pipelines=("direct", "outbox"))
    assert not (run_dir / "report.html").exists()
    assert main(["report", str(run_dir)]) == 0  # direct's loss is expected
    out = capsys.readouterr().out
    for name in ("report.html", "junit.xml", "results.json"):
        assert (run_dir / name).exists() and name in out


def test_chaos_report_on_a_folder_that_is_not_a_run_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 4
    assert "run.json" in capsys.readouterr().err


def test_summary_with_score_and_report_path_in_cli_and_pytest_plugin(black_friday: Outputs) -> None:
    from harness.pytest_plugin import _RUNS, pytest_terminal_summary
    from harness.report.terminal import print_summary
    from harness.runner import RunResult

    result = RunResult("x", black_friday.run_dir, 7, "chaos run black_friday --seed 7", black_friday.verdicts, 1.0,
                       black_friday.scores)
    buf = io.StringIO()
    print_summary(result, Console(file=buf, width=140))
    text = buf.getvalue()
    assert "score" in text and "safety gate" in text
    assert f"report:     {black_friday.report_html}" in text

    sections: list[str] = []
    plugin_out = io.StringIO()
    reporter = SimpleNamespace(section=sections.append, _tw=SimpleNamespace(_file=plugin_out))
    config = SimpleNamespace(stash={_RUNS: [result]})
    pytest_terminal_summary(reporter, 0, config)  # type: ignore[arg-type]
    assert sections == ["chaos-harness runs"]
    assert str(black_friday.report_html) in plugin_out.getvalue() and "score" in plugin_out.getvalue()


def _worst_case_verdicts(histories: dict, n_checkers: int = 8):  # type: ignore[no-untyped-def]
    """Every invariant broken on every pipeline, each with 5 examples of 40-step chains carrying 2000-char payloads."""
    from types import MappingProxyType

    from harness.analysis import analyze
    from harness.checkers.base import CheckResult, Validity
    from harness.scoring import judge

    base = analyze(histories)
    payload = ("<b>x</b>" * 250)[:2000]
    verdicts = []
    for v in base:
        extra = tuple(
            CheckResult(f"checker-{i}", f"I{i}", Validity.INVALID, f"planted violation {i}",
                        MappingProxyType({"violations": 5, "duplicate_cents": 100}),
                        tuple({"order_id": f"o{j}", "reason": payload,
                               "chain": [{"time": k, "stage": "event on topic", "payload": payload} for k in range(40)]}
                              for j in range(5)))
            for i in range(2, 2 + n_checkers - 1))
        verdicts.append(judge(v.pipeline, v.results + extra))
    return tuple(verdicts)


def test_report_stays_under_5_mb_when_every_invariant_breaks_with_long_payloads(tmp_path: Path) -> None:
    from harness.report.outputs import write_outputs

    run_dir = tmp_path / "worst"
    histories = synthetic_run(run_dir, orders=2000, duration_s=60)
    out = write_outputs(run_dir, histories, _worst_case_verdicts(histories))
    size = out.report_html.stat().st_size
    print(f"worst-case report.html: {size / 1024:.0f} KiB; results.json {out.results_json.stat().st_size / 1024:.0f} KiB")
    assert size < MAX_REPORT_BYTES
    assert json.loads(out.results_json.read_text())["exit_code"] == 1
    ET.parse(out.junit_xml)


_TEXT = st.text(st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    [HOSTILE, HOSTILE_ATTR, HOSTILE_JSON, "\x00\x1b[31m", "\u2028", "]]>", "--><!--", "&amp;"])
_VALUE = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | _TEXT


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=_TEXT, counts=st.dictionaries(_TEXT, _VALUE, max_size=4),
       example=st.dictionaries(_TEXT, _VALUE | st.lists(_VALUE, max_size=3), max_size=4),
       step=st.dictionaries(_TEXT, _VALUE, max_size=4))
def test_any_checker_text_renders_escaped_and_every_output_parses(tmp_path: Path, message: str, counts: dict,
                                                                   example: dict, step: dict) -> None:
    from types import MappingProxyType

    from harness.checkers.base import CheckResult, Validity
    from harness.report.outputs import write_outputs
    from harness.scoring import judge
    from harness.testing import HistoryBuilder

    history = HistoryBuilder("outbox").order("o1").charge("o1").build()
    result = CheckResult("planted", "I2", Validity.INVALID, message, MappingProxyType(counts),
                         ({**example, "chain": [step]},))
    verdict = judge("outbox", (result,))
    run_dir = tmp_path / "prop"
    run_dir.mkdir(exist_ok=True)
    meta = {"scenario": message, "seed": 1, "command": message, "description": message, "expect": []}
    out = write_outputs(run_dir, {"outbox": history}, (verdict,), meta=meta)
    page = out.report_html.read_text()
    assert len(re.findall(r"<script\b", page)) == 2
    data = re.search(r'<script type="application/json" id="chaos-results">(.*?)</script>', page, re.S)
    assert data is not None and "<" not in data.group(1)
    json.loads(data.group(1))
    json.loads(out.results_json.read_text())  # strict JSON: NaN became null
    ET.parse(out.junit_xml)
    for raw in (HOSTILE, HOSTILE_ATTR, HOSTILE_JSON):
        assert raw not in page


def test_live_progress_shows_phase_rate_faults_and_lag() -> None:
    from harness.report.terminal import LiveProgress
    from harness.runner import Progress

    buf = io.StringIO()
    with LiveProgress(Console(file=buf, width=160, force_terminal=False)) as live:
        live(Progress("outbox", "traffic", 3.0, ok=10))
        # "done" lines stay on screen after the live display ends.
        live(Progress("outbox", "done", 9.0, ok=90, faults_active=("outage@relay->kafka",), lag=42, rate=12.5))
    text = buf.getvalue()
    for part in ("outbox", "done", "ok 90", "12.5/s", "outage@relay->kafka", "lag 42"):
        assert part in text, (part, text)


def test_junit_skips_unknown_results(tmp_path: Path) -> None:
    from harness.analysis import analyze
    from harness.checkers.loss import NoLostEffect
    from harness.checkers.stats import Stats
    from harness.report.outputs import write_outputs
    from harness.testing import HistoryBuilder

    # A fault window with no traffic inside it: stats is unknown (vacuous), so its case is skipped.
    history = HistoryBuilder("outbox").order("o1", at=0.5).fault_window(5.0, 6.0).charge("o1").build()
    verdicts = analyze({"outbox": history}, (), (Stats(), NoLostEffect()))  # skeleton-shaped: no topic records
    out = write_outputs(tmp_path, {"outbox": history}, verdicts, meta={"scenario": "vacuous", "expect": []})
    root = ET.parse(out.junit_xml).getroot()
    skipped = root.find(".//testcase[@name='stats']/skipped")
    assert skipped is not None and "unknown" in (skipped.get("message") or "")
    assert root.get("skipped") == "1" and root.get("failures") == "0"
    doc = json.loads(out.results_json.read_text())
    assert doc["exit_code"] == 2 and doc["pipelines"][0]["score"]["value"] is None
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema missing: pip install -e '.[test]'")
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))


def test_the_report_shows_anomalies_explained_and_unexplained_and_the_redelivery_absorbed(black_friday: Outputs) -> None:
    page = black_friday.report_html.read_text()
    direct = next(v for v in black_friday.verdicts if v.pipeline == "direct")
    table = re.search(r'<table class=results id="anomalies-direct">(.*?)</table>', page, re.S)
    assert table is not None and "lost-effect" in table.group(1)
    assert f"{direct.explained} explained, {direct.unexplained} unexplained" in page
    for v in black_friday.verdicts:
        assert f'id="amplification-{v.pipeline}"' in page, f"no redelivery line for {v.pipeline}"
    doc = json.loads(black_friday.results_json.read_text())
    tallies = {p["pipeline"]: p["anomalies"] for p in doc["pipelines"]}
    assert tallies["direct"]["explained"] + tallies["direct"]["unexplained"] == sum(
        t.total for t in direct.tallies) > 0
