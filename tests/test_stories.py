"""Scenario legs pick the expectations of the variant asked for; a story that fails becomes a note."""

from __future__ import annotations

import pytest

from harness.checkers.anomaly import AnomalyKind
from harness.errors import UsageError
from harness.scenario import Expect, Leg, Scenario
from harness.story import Claim, Story, story_from_json, tell
from harness.workload.rate import Constant

_BROKEN = (Expect("outbox", (AnomalyKind.DUPLICATE_EFFECT,), "no idempotency"),)


def _scenario(**kw: object) -> Scenario:
    return Scenario(name="s", description="d", pipelines=("outbox",), shape=Constant(1), duration_s=1, faults=(),
                    variant="no_idempotency", expect=_BROKEN, **kw)  # type: ignore[arg-type]


def test_with_variant_takes_the_legs_expectations_or_keeps_the_scenarios() -> None:
    s = _scenario(legs=(Leg("correct"),))
    assert s.with_variant("correct").expect == () and s.with_variant("correct").variant == "correct"
    assert s.with_variant("no_idempotency") is s
    assert s.with_variant("auto_commit").expect == _BROKEN  # no leg declared: the scenario's own


@pytest.mark.parametrize("legs", [(("correct", ()),), ("correct",), (Leg("correct"), Leg("correct"))])
def test_malformed_legs_are_refused_when_the_scenario_is_built(legs: object) -> None:
    with pytest.raises(UsageError, match="legs"):
        _scenario(legs=legs)


@pytest.mark.parametrize("variant, expect", [("Correct", ()), ("correct", ("not an Expect",)), ("correct", [])])
def test_a_malformed_leg_is_refused_naming_what_is_wrong(variant: object, expect: object) -> None:
    with pytest.raises(UsageError, match="Leg"):
        Leg(variant, expect)  # type: ignore[arg-type]


def test_a_story_round_trips_and_a_failing_one_becomes_a_note() -> None:
    story = Story("t", (Claim("customers charged twice", "23", "17"),), "note")
    assert story_from_json(story.to_json()) == story

    def broken(histories: object, verdicts: object) -> Story:
        raise KeyError("outbox")

    told = tell(broken, {}, ())  # type: ignore[arg-type]
    assert told is not None and told.claims == () and "KeyError" in told.note
    assert tell(None, {}, ()) is None
