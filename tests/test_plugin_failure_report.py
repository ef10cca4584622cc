"""A failed scenario test shows where to look: its run folder and the tail of the session broker's log.

The run folder holds the target's logs; the broker's side of a failure (a group that never rejoined
a restarted broker) is only in the session infra's kafka.log, so the failure report carries its tail.
Runs on a miniature suite whose chaos_infra is a stand-in with a logs folder (no infrastructure).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.pytest_plugin import INFRA_LOG_TAILS

pytest_plugins = ["pytester"]


def test_a_failed_scenario_test_carries_the_tail_of_the_broker_log(pytester: pytest.Pytester, tmp_path: Path) -> None:
    logs = tmp_path / "infra-logs"
    logs.mkdir()
    (logs / "kafka.log").write_text("".join(f"line {i}\n" for i in range(500)) + "GroupCoordinator: group g stuck\n")
    pytester.makeconftest(f"""
import types
import pytest

@pytest.fixture(scope="session")
def chaos_infra():
    return types.SimpleNamespace(logs_dir=__import__("pathlib").Path({str(logs)!r}))
""")
    pytester.makepyfile(test_plugin_example_scenario="""
def test_scenario(chaos_run):
    assert False, "the fault had no effect"

def test_unit():
    assert False
""")
    result = pytester.inline_run("-p", "no:cacheprovider")
    reports = {r.nodeid.rsplit("::", 1)[-1]: r for r in result.getreports("pytest_runtest_logreport") if r.when == "call"}
    (lines,) = [n for name, n in INFRA_LOG_TAILS if name == "kafka.log"]
    sections = dict(reports["test_scenario"].sections)
    tail = sections[f"chaos-harness infra: last {lines} lines of {logs / 'kafka.log'}"]
    assert tail.splitlines()[-1] == "GroupCoordinator: group g stuck" and len(tail.splitlines()) == lines
    assert not any("chaos-harness" in title for title, _ in reports["test_unit"].sections)  # not a scenario test
