"""Under faults every effect leads back to its request in one query; one broken chain fails the scenario."""

from __future__ import annotations

import pytest

from harness.checkers.base import Validity
from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit, history
from scenarios.trace_to_sanity import PIPELINE, SCENARIO, broken_chains

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def traced(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


def test_the_faults_bit(traced: RunResult) -> None:
    assert_faults_bit(traced, PIPELINE, faults=2)


def test_every_effect_is_traced_back_to_its_request(traced: RunResult) -> None:
    broken, effects = broken_chains(history(traced, PIPELINE))
    assert effects > 0, evidence(traced)
    assert broken == [], f"{len(broken)} of {effects} chains broken, e.g. {broken[:3]}\n{evidence(traced)}"
    i6 = traced.verdict(PIPELINE).result("trace-complete")
    assert i6 is not None and i6.validity is Validity.VALID, evidence(traced)
    assert traced.exit_code == 0, evidence(traced)
    assert traced.story is not None and traced.story.claims[2].measured == f"{effects:,} of {effects:,}; 0 broken chains"


def test_a_broken_chain_is_found(traced: RunResult) -> None:
    """The check can fail: the same history with one effect's correlation id replaced shows one broken chain."""
    from dataclasses import replace

    from harness.history.ops import Observation, Table

    h = history(traced, PIPELINE)
    effects = [dict(row) for row in h.observed("effects")]
    effects[0] = {**effects[0], "correlation_id": "not-a-request"}
    tampered = replace(h, observations={**h.observations, "effects": Observation("effects", Table.from_rows(effects))})
    broken, _ = broken_chains(tampered)
    assert [b.missing for b in broken] == ["request"], broken
