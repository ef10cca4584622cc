"""The CLI's usage errors exit 4 and say what would have been valid."""

from __future__ import annotations

import pytest

from harness.cli import main


def test_unknown_scenario_exits_4_listing_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "cyber_monday"]) == 4
    err = capsys.readouterr().err
    assert "cyber_monday" in err and "black_friday" in err


def test_bad_option_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "black_friday", "--rate", "fast"])
    assert exc.value.code == 4


def test_unknown_pipeline_subset_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "black_friday", "--pipelines", "kafka-streams"]) == 4
    assert "kafka-streams" in capsys.readouterr().err
