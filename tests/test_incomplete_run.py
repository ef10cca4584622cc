"""An interrupted or damaged run folder is inconclusive: `chaos analyze` and `chaos report` say
"incomplete run (stopped during PHASE)" and exit 2, and never replace an existing results.json with less."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import IncompleteRun
from harness.run_folder import Phase, read_phase, write_phase
from report_histories import synthetic_run

PREVIOUS = '{"format": "chaos-results", "note": "the results of the run as it finished"}\n'


@pytest.fixture
def finished_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "broker_outage-20261126-200000-beef"
    synthetic_run(run_dir, orders=60, duration_s=20, pipelines=("outbox",))
    (run_dir / "results.json").write_text(PREVIOUS)
    return run_dir


@pytest.mark.parametrize("command", ["analyze", "report"])
@pytest.mark.parametrize("phase", [Phase.RUNNING, Phase.CHECKING])
def test_an_interrupted_run_is_incomplete_exit_2_and_keeps_its_results(
        finished_run: Path, command: str, phase: Phase, capsys: pytest.CaptureFixture[str]) -> None:
    write_phase(finished_run, phase)
    assert main([command, str(finished_run)]) == 2
    err = capsys.readouterr().err
    assert f"incomplete run (stopped during {phase.value})" in err and "chaos run black_friday --seed" in err
    assert (finished_run / "results.json").read_text() == PREVIOUS
    assert not (finished_run / "report.html").exists()


@pytest.mark.parametrize("damage", [
    lambda h: h.write_text(h.read_text().replace('"pipeline"', '"pipe', 1) + "{}\n"),  # a bad line mid-file
    lambda h: h.write_bytes(b"\xff\xfe garbage\n" + h.read_bytes()),  # a header that is not JSON
    lambda h: h.write_text('{"format": "chaos-history", "version": 1}\n{"op": {}}\n'),  # JSON of the wrong shape
    lambda h: h.unlink(),
])
def test_a_damaged_history_is_incomplete_exit_2_and_keeps_its_results(
        finished_run: Path, damage: object, capsys: pytest.CaptureFixture[str]) -> None:
    damage(finished_run / "history.jsonl")  # type: ignore[operator]
    for command in ("report", "analyze"):
        assert main([command, str(finished_run)]) == 2
        err = capsys.readouterr().err
        assert "incomplete run (history unreadable" in err and "Traceback" not in err, err
    assert (finished_run / "results.json").read_text() == PREVIOUS


def test_a_run_folder_without_phase_or_results_is_incomplete(finished_run: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (finished_run / "phase").unlink()
    assert main(["analyze", str(finished_run)]) == 0  # written before folders kept a phase: results.json says done
    (finished_run / "results.json").unlink()
    assert main(["analyze", str(finished_run)]) == 2
    assert "stopped during an unknown phase" in capsys.readouterr().err


def test_a_renderer_that_fails_leaves_the_previous_results_whole(finished_run: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.report.outputs import rerender

    def broken(*args: object) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr("harness.report.outputs.render_report", broken)
    with pytest.raises(RuntimeError):
        rerender(finished_run)
    assert (finished_run / "results.json").read_text() == PREVIOUS
    assert sorted(p.name for p in finished_run.iterdir() if p.name.startswith(".")) == []


def test_a_complete_run_is_re_rendered(finished_run: Path) -> None:
    from harness.report.outputs import rerender

    out = rerender(finished_run)
    assert out.results_json.read_text() != PREVIOUS and out.report_html.exists()
    assert read_phase(finished_run) == "complete"


def test_incomplete_run_is_inconclusive_in_the_error_tree() -> None:
    assert IncompleteRun.exit_code == 2
