"""The public API is curated: every name in harness.__all__ resolves, and the list is pinned."""

from __future__ import annotations

import pytest

import harness

PINNED = {
    "ChaosError", "CheckResult", "Checker", "Expect", "FaultKind", "FaultSpec", "History", "Infra",
    "ProcessDecl", "RunResult", "Scenario", "Settings", "Target", "TargetSpec", "Validity", "analyze_run_dir",
    "load_scenario", "run_scenario",
}


def test_all_is_pinned() -> None:
    assert set(harness.__all__) == PINNED, "a change to the public API must be deliberate: update PINNED too"


@pytest.mark.parametrize("name", sorted(PINNED))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(harness, name) is not None


def test_unknown_name_says_what_exists() -> None:
    with pytest.raises(AttributeError, match="public names"):
        harness.nope  # noqa: B018
