"""An exception the harness did not plan for exits 5 "internal error" with one line and the path of a
crash log holding the traceback; never 1, which means "an invariant broke"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main


def test_an_unwritable_runs_folder_exits_5_with_one_line_and_a_crash_log(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.write_text("a file where the runs folder should be")
    env = {**os.environ, "CHAOS_HOME": str(tmp_path / "home"), "CHAOS_RUNS_DIR": str(runs), "CHAOS_BASE_PORT": "34000",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "broker_outage", "--pipelines", "outbox",
                           "--seed", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 5, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and "Traceback" not in done.stderr, done.stderr
    logs = list((tmp_path / "home" / "crashes").glob("chaos-crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "broker_outage" in text


def test_an_unexpected_exception_in_any_command_is_5_not_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CHAOS_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path / "home"))

    def broken(console: object) -> int:
        raise ZeroDivisionError("a bug in the catalogue")

    monkeypatch.setattr("harness.cli._faults", broken)
    assert main(["faults"]) == 5
    err = capsys.readouterr().err
    assert "internal error (ZeroDivisionError: a bug in the catalogue)" in err and "Traceback" not in err
    assert len(list(tmp_path.glob("chaos-crash-*.log"))) == 1
