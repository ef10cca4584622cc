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


def test_targets_lists_where_each_came_from(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("direct", "outbox", "cdc_outbox")) and "chaos.targets" in out


def test_targets_shows_one_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "examples/go_outbox/target.toml"]) == 0
    out = capsys.readouterr().out
    assert "go_outbox" in out and "relay->kafka" in out and "relay.after_publish" in out


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["run", "broker_outage", "--target", "no/such/target.toml"], "does not exist"),
        (["run", "broker_outage", "--target", "kafka_streams"], "available targets"),
        (["run", "broker_outage", "--target", "outbox", "--target", "outbox"], "share a name"),
        (["run", "broker_outage", "--target", "outbox", "--pipelines", "outbox"], "not both"),
        (["run", "crash_points", "--target", "direct"], "process relay"),
        (["run", "broker_outage", "--target", "cdc", "--variant", "last_id"], "variant 'last_id'"),
        (["run", "no/such/scenario.py"], "does not exist"),
    ],
)
def test_a_run_that_cannot_work_exits_4_before_any_infrastructure(
        argv: list[str], named: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.infra.stack import Infra

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("infrastructure was touched before the run was refused")

    monkeypatch.setattr(Infra, "attach", refuse)
    monkeypatch.setattr(Infra, "start", refuse)
    assert main(argv) == 4
    assert named in capsys.readouterr().err


def test_a_scenario_module_from_outside_the_project_loads(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    from harness.scenario import load_scenario

    path = Path(str(tmp_path)) / "my_outage.py"
    path.write_text("from dataclasses import replace\nfrom scenarios.broker_outage import SCENARIO as BASE\n"
                    "SCENARIO = replace(BASE, name='my_outage', duration_s=30)\n")
    assert load_scenario(str(path)).name == "my_outage"
    (Path(str(tmp_path)) / "empty.py").write_text("X = 1\n")
    from harness.errors import UsageError

    with pytest.raises(UsageError, match="must define SCENARIO"):
        load_scenario(str(Path(str(tmp_path)) / "empty.py"))
