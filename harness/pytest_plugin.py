"""The chaos pytest plugin: options, markers, seed header and fixtures over the runner.

Registered through the ``pytest11`` entry point. Infrastructure starts once per test
session, and only when a test asks for it (no autouse): the ``chaos_infra`` fixture
attaches to an infra already running on the base port (`chaos infra up`) or starts
one and stops it at the end of the session.

Options (all under ``--chaos-``):
  --chaos-seed N        seed for every scenario run (default: random, printed in the header)
  --chaos-base-port N   base port of the local topology (default: CHAOS_BASE_PORT or 20000)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.config import Settings
from harness.infra.process import log_tail
from harness.runner import RunResult, new_seed, run_scenario
from harness.scenario import Scenario

__all__ = ["ScenarioRunner"]

_SEED = pytest.StashKey[int]()
_RUNS = pytest.StashKey[list[RunResult]]()

# Shown under a failed scenario test: the broker's side of what the run folder's logs show from the
# target's (a consumer group that never rejoined a restarted broker left no trace of why in the run).
INFRA_LOG_TAILS = (("kafka.log", 80),)

ScenarioRunner = Callable[..., RunResult]
"""``chaos_run(scenario, *, rate=None, duration_s=None, pipelines=None, target=(), variant=None) -> RunResult``.

``target`` is a name, module:attr or a path to a target.toml (or several): the run uses it instead
of the scenario's pipelines, exactly like ``chaos run SCENARIO --target SPEC``."""


XDIST_PORT_STRIDE = 200
DEFAULT_BASE_PORT = 20000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "chaos-harness")
    group.addoption("--chaos-seed", type=int, default=None, help="seed for scenario runs (default: random, printed)")
    group.addoption("--chaos-base-port", type=int, default=None, help="base port of the local topology")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: a scenario on real infrastructure (started once per session)")
    seed = config.getoption("--chaos-seed")
    config.stash[_SEED] = seed if seed is not None else new_seed()
    config.stash[_RUNS] = []
    port = config.getoption("--chaos-base-port")
    if port is not None:
        os.environ["CHAOS_BASE_PORT"] = str(port)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        # pytest -n N: each worker runs its own infrastructure, XDIST_PORT_STRIDE ports above the
        # last one (a topology spans B..B+99), so the workers never share a broker or a lock.
        base = int(os.environ.get("CHAOS_BASE_PORT") or DEFAULT_BASE_PORT)
        os.environ["CHAOS_BASE_PORT"] = str(base + XDIST_PORT_STRIDE * int(worker[2:]))


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.stash[_SEED]
    return f"chaos-harness: seed {seed} (reproduce with --chaos-seed {seed})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    runs = config.stash.get(_RUNS, [])
    if not runs:
        return
    from harness.report.terminal import print_summary
    from rich.console import Console

    terminalreporter.section("chaos-harness runs")
    console = Console(file=terminalreporter._tw._file, width=120, force_terminal=False)  # noqa: SLF001
    for result in runs:
        # The same summary `chaos run` prints: table with scores, reasons, run folder, report path.
        print_summary(result, console)


@pytest.fixture(scope="session")
def chaos_seed(pytestconfig: pytest.Config) -> int:
    return pytestconfig.stash[_SEED]


@pytest.fixture(scope="session")
def chaos_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for this session; run folders go under pytest's temporary directory."""
    base = Settings.from_env()
    return replace(base, runs_dir=tmp_path_factory.mktemp("chaos-runs"))


@pytest.fixture(scope="session")
def chaos_infra(chaos_settings: Settings) -> Iterator[object]:
    """Running Postgres, Kafka and Toxiproxy: attached if already up, else started for the session.

    The session holds the base port's lock until it ends (another run there exits 3 at once), and
    lends it to the processes it starts, so a test may drive `chaos run` on this infra as a child.
    """
    from harness.errors import BasePortLocked
    from harness.infra.lock import acquire_base_port, release_base_port
    from harness.infra.stack import Infra

    try:
        acquire_base_port(chaos_settings, lend_to_children=True)
    except BasePortLocked as exc:
        # The whole session, as `chaos run` would: every chaos test after this one would fail the same way.
        pytest.exit(f"chaos: BasePortLocked: {exc}", returncode=BasePortLocked.exit_code)
    try:
        infra = Infra.attach(chaos_settings)
        owned = infra is None
        if infra is None:
            infra = Infra.start(chaos_settings, logs_dir=chaos_settings.runs_dir / "infra-logs")
        try:
            yield infra
        finally:
            try:
                infra.heal_all()
            finally:
                if owned:
                    infra.stop()
    finally:
        release_base_port(chaos_settings)


@pytest.fixture(scope="session")
def chaos_run(chaos_infra: object, chaos_settings: Settings, chaos_seed: int, pytestconfig: pytest.Config) -> ScenarioRunner:
    """Run a scenario on the session's infra; the result carries verdicts, run folder and seed."""

    def run(scenario: Scenario, *, rate: float | None = None, duration_s: float | None = None,
            pipelines: tuple[str, ...] | None = None, target: str | tuple[str, ...] = (),
            variant: str | None = None) -> RunResult:
        scenario = scenario.with_overrides(duration_s=duration_s, rate=rate, pipelines=pipelines)
        if variant is not None:
            scenario = scenario.with_variant(variant)
        targets = (target,) if isinstance(target, str) else tuple(target)
        result = run_scenario(scenario, settings=chaos_settings, seed=chaos_seed, infra=chaos_infra,  # type: ignore[arg-type]
                              rate=rate, say=lambda line: None, targets=targets)
        pytestconfig.stash[_RUNS].append(result)
        return result

    return run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and "chaos_run" in getattr(item, "fixturenames", ()):
        runs = item.config.stash.get(_RUNS, [])
        if runs:
            report.sections.append(("chaos-harness", "\n".join(
                f"run folder {r.run_dir}\nreport: {r.report_path}\nreproduce: {r.command}" for r in runs[-3:])))
        logs = getattr(getattr(item, "funcargs", {}).get("chaos_infra"), "logs_dir", None)
        if isinstance(logs, Path):
            for name, lines in INFRA_LOG_TAILS:
                report.sections.append((f"chaos-harness infra: last {lines} lines of {logs / name}", log_tail(logs / name, lines)))
    return report
