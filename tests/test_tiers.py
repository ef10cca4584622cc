"""The suite's tiers (conftest.py): a bare `pytest` leaves the extended modules out, naming them runs them.

CI's ten minutes for the README's test command rest on this selection; a change that made a bare
`pytest` collect everything again, or made a named file silently run nothing, fails here. Runs on
a miniature suite with this repository's conftest.py, not on the real one (no infrastructure).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makeini("""
        [pytest]
        testpaths = tier_suite
        markers =
            extended: runs after the core tier
    """)
    # Not a package, and module names no other test module has: the real suite's `tests` package and
    # its modules are already imported in this process.
    tests = pytester.mkdir("tier_suite")
    (tests / "test_tier_example_core.py").write_text("def test_unit():\n    pass\n")
    (tests / "test_tier_example_slow.py").write_text(
        "import pytest\npytestmark = pytest.mark.extended\n\ndef test_sweep():\n    pass\n")
    return pytester


def _ran(result: pytest.HookRecorder) -> set[str]:
    passed, skipped, failed = result.listoutcomes()
    assert not skipped and not failed
    return {r.nodeid.rsplit("::", 1)[-1] for r in passed}


def test_a_bare_pytest_runs_the_core_tier_only(suite: pytest.Pytester) -> None:
    result = suite.inline_run()
    assert _ran(result) == {"test_unit"}
    assert len(result.getcalls("pytest_deselected")[0].items) == 1


def test_tier_extended_runs_only_the_marked_modules(suite: pytest.Pytester) -> None:
    assert _ran(suite.inline_run("--tier", "extended")) == {"test_sweep"}


def test_naming_a_file_runs_it_whatever_its_tier(suite: pytest.Pytester) -> None:
    assert _ran(suite.inline_run("tier_suite/test_tier_example_slow.py")) == {"test_sweep"}
    assert _ran(suite.inline_run("tier_suite")) == {"test_unit", "test_sweep"}


def test_tier_all_runs_both(suite: pytest.Pytester) -> None:
    assert _ran(suite.inline_run("--tier", "all")) == {"test_unit", "test_sweep"}


def test_every_extended_module_of_this_repository_is_a_real_file() -> None:
    # The marker is set in each module; a module that lost it would slip back into the core tier's
    # ten minutes unnoticed, so the list here is the one the README describes.
    marked = {p.relative_to(ROOT).as_posix() for d in ("tests", "scenarios") for p in (ROOT / d).glob("test_*.py")
              if "pytest.mark.extended" in p.read_text()}
    assert {"tests/test_explore_quality.py", "scenarios/test_go_example.py", "tests/test_interrupt.py"} <= marked
