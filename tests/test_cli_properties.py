"""Whatever the command line and the environment say, `chaos` exits with a documented code and one
line, never a traceback: a property over argv and env (no infrastructure: a valid `run` reaches a
stand-in for the runner, which also checks that nothing out of bounds got that far)."""

from __future__ import annotations

import contextlib
import io
import math
import os
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.errors import InfraError
from harness.infra.ports import HIGHEST_BASE_PORT
from harness.options import DURATION_MAX_S, RATE_MAX, SEED_MAX
from harness.run_folder import Phase, write_phase
from report_histories import synthetic_run

DOCUMENTED = {0, 1, 2, 3, 4, 5, 130}
SCENARIOS = ["black_friday", "broker_outage", "poison_pill", "reorder"]
PIPELINES = ["direct", "outbox", "cdc", "cdc_outbox", "kafka-streams"]

_numbers = st.one_of(
    st.sampled_from(["1", "7", "30", "12.5", "0.25", "2e2"]),  # valid for every option
    st.sampled_from(["0", "-1", "1", "1.5", ".5", "5.", "3600", "3600.0001", "5000", "5000.5", "nan", "NaN", "inf",
                     "-inf", "1e12", "1e-400", "1e400", " 5", "5 ", "1_000", "\u0663", "0x10", "", "+5", "1e3",
                     str(SEED_MAX), str(SEED_MAX + 1), "1" * 5000, "5\x00"]),
    st.floats().map(repr), st.integers(min_value=-2**70, max_value=2**70).map(str), st.text(max_size=8),
)
_pipelines = st.one_of(
    st.lists(st.sampled_from([*PIPELINES, "", " outbox", "outbox "]), min_size=1, max_size=4).map(",".join),
    st.text(max_size=12),
)
_run = st.tuples(
    st.just("run"),
    st.one_of(st.sampled_from(SCENARIOS), st.sampled_from([" black_friday", "cyber_monday", "", "[bold]x[/y]"]),
              st.text(max_size=10)),
).flatmap(lambda head: st.lists(st.one_of(
    st.tuples(st.just("--seed"), _numbers), st.tuples(st.just("--duration"), _numbers),
    st.tuples(st.just("--rate"), _numbers), st.tuples(st.just("--pipelines"), _pipelines),
    st.tuples(st.sampled_from(["--bogus", "-x", "--seed=1", "--rate=-2"])),
), max_size=4).map(lambda opts: [*head, *(part for opt in opts for part in opt)]))


def _stored(folders: dict[str, Path]) -> st.SearchStrategy[list[str]]:
    paths = st.one_of(st.sampled_from([str(p) for p in folders.values()] + ["", " ", "/nonexistent/run", "a\x00b",
                                                                             "x" * 5000, "[red]x[/blue]"]),
                      st.text(max_size=16))
    return st.tuples(st.sampled_from(["analyze", "report"]), paths).map(list)


_other = st.one_of(
    st.tuples(st.just("infra"), st.one_of(st.sampled_from(["status", "down", "bogus", "UP", " down"]),
                                          st.text(max_size=6))).map(list),
    st.sampled_from([["scenarios"], ["faults"], [], ["--help"], ["run", "--help"], ["nope"], ["faults", "extra"]]),
    st.lists(st.text(max_size=10), max_size=4),
)
_base_port = st.one_of(st.none(), st.just("34000"), st.sampled_from(["34000", " 23000", "23000 ", "1023", "1024",
                                                   str(HIGHEST_BASE_PORT), str(HIGHEST_BASE_PORT + 1), "65535", "0", "-1", "2_3000", "\u0662\u0663\u0660\u0660\u0660",
                                                   "", "20000\n", "1e4"]),
                       # an environment holds neither NUL (the kernel's strings end there) nor lone surrogates
                       st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6))


def _folders(root: Path) -> dict[str, Path]:
    folders = {"empty": root / "empty", "file": root / "a-file"}
    folders["empty"].mkdir()
    folders["file"].write_text("not a folder")
    for name, phase in (("complete", Phase.COMPLETE), ("interrupted", Phase.RUNNING)):
        folders[name] = root / f"broker_outage-{name}"
        synthetic_run(folders[name], orders=20, duration_s=10, pipelines=("outbox",))
        write_phase(folders[name], phase)
    folders["damaged"] = root / "broker_outage-damaged"
    synthetic_run(folders["damaged"], orders=20, duration_s=10, pipelines=("outbox",))
    (folders["damaged"] / "history.jsonl").write_text('{"format": "chaos-history", "version": 1}\n[1]\n{}\n')
    return folders


def _stand_in_runner(scenario: object, *, settings: object, seed: int, rate: float | None, **_: object) -> object:
    # Whatever reaches the runner must be in bounds: that is what validation promises.
    assert 0 <= seed <= SEED_MAX
    assert rate is None or (math.isfinite(rate) and 0 < rate <= RATE_MAX)
    duration = scenario.duration_s  # type: ignore[attr-defined]
    assert math.isfinite(duration) and 0 < duration <= max(DURATION_MAX_S, duration)
    names = scenario.pipelines  # type: ignore[attr-defined]
    assert len(names) == len(set(names)) and all(n == n.strip() and n for n in names)
    return SimpleNamespace(exit_code=0)


def test_every_argv_and_environment_exits_with_a_documented_code_and_no_traceback(tmp_path: Path) -> None:
    folders = _folders(tmp_path)
    home, runs = tmp_path / "home", tmp_path / "runs"
    codes: list[int] = []
    reached: list[object] = []

    def runner(scenario: object, **kwargs: object) -> object:
        reached.append(scenario)
        return _stand_in_runner(scenario, **kwargs)  # type: ignore[arg-type]

    @settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(argv=st.one_of(_run, _stored(folders), _other), base_port=_base_port,
           bad_home=st.sampled_from([None] * 7 + ["", " /tmp/x", "/tmp/\x01x"]))
    # Always, besides what is drawn: a valid run, an interrupted and a damaged folder, the issue's inf.
    @example(argv=["run", "broker_outage", "--pipelines", "outbox", "--seed", "1"], base_port=None, bad_home=None)
    @example(argv=["analyze", str(folders["interrupted"])], base_port=None, bad_home=None)
    @example(argv=["report", str(folders["damaged"])], base_port=None, bad_home=None)
    @example(argv=["run", "black_friday", "--rate", "inf"], base_port=None, bad_home=None)
    def check(argv: list[str], base_port: str | None, bad_home: str | None) -> None:
        env = {"CHAOS_HOME": bad_home if bad_home is not None else str(home), "CHAOS_RUNS_DIR": str(runs)}
        if base_port is not None:
            env["CHAOS_BASE_PORT"] = base_port
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, env), contextlib.ExitStack() as stack:
            if base_port is None:
                os.environ.pop("CHAOS_BASE_PORT", None)
            stack.enter_context(mock.patch("harness.runner.run_scenario", runner))
            stack.enter_context(mock.patch("harness.report.terminal.print_summary", lambda result, console: None))
            # `infra up` may be drawn (st.text finds "up"): it reaches Infra.start, which here
            # fails as infrastructure would (exit 3) rather than starting anything.
            stack.enter_context(mock.patch("harness.infra.stack.Infra.start",
                                           side_effect=InfraError("stand-in: property examples start no infra")))
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: --help (0) and bad usage (4)
                code = exc.code if isinstance(exc.code, int) else 0
        codes.append(code)
        shown = f"argv={argv!r} env={env!r}\nstdout: {out.getvalue()[-800:]}\nstderr: {err.getvalue()[-800:]}"
        assert code in DOCUMENTED, shown
        assert code != 5, f"an input the validation let through crashed the CLI: {shown}"
        assert "Traceback" not in out.getvalue() + err.getvalue(), shown
        if code == 4:
            assert len(err.getvalue().strip().splitlines()) == 1, f"bad usage takes one line: {shown}"

    check()
    print(f"{len(codes)} argv examples, {len(reached)} reached the runner; exit codes seen: "
          + ", ".join(f"{c}: {codes.count(c)}" for c in sorted(set(codes))))
    assert len(codes) >= 1000
    assert {0, 2, 4} <= set(codes) and reached, "the strategies never reached a valid run or an incomplete folder"


@pytest.mark.parametrize("argv", [
    ["run", "black_friday", "--rate", "inf"], ["run", "black_friday", "--rate", "nan"],
    ["run", "black_friday", "--duration", "1e12"], ["run", "black_friday", "--pipelines", "outbox,outbox"],
    ["run", "black_friday", "--pipelines", "outbox, cdc"], ["run", "black_friday", "--seed", str(2**63)],
    ["run", "black_friday", "--duration", "0"], ["run", "black_friday", "--rate", "5001"],
])
def test_the_issue_s_bad_inputs_exit_4_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 4
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("port", [" 23000", "23000 ", "1023", str(HIGHEST_BASE_PORT + 1), "2_3000",
                                  "\u0662\u0663\u0660\u0660\u0660", ""])
def test_bad_base_ports_exit_4(port: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CHAOS_BASE_PORT", port)
    assert main(["scenarios"]) == 4
    err = capsys.readouterr().err
    assert "CHAOS_BASE_PORT" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("port", ["1024", str(HIGHEST_BASE_PORT)])
def test_the_extreme_base_ports_whose_layout_fits_are_accepted(port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.config import Settings

    monkeypatch.setenv("CHAOS_BASE_PORT", port)
    assert Settings.from_env().base_port == int(port)
