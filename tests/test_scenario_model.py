"""Scenarios, fault specs and schedules: validated at construction, pure functions of the seed."""

from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.faults.schedule import FaultKind, FaultSpec, plan
from harness.scenario import load_scenario, scenario_names
from harness.workload.orders import plan_orders
from harness.workload.rate import Constant, RampHold, arrival_times


def test_same_seed_same_schedule_and_workload() -> None:
    specs = (FaultSpec(FaultKind.OUTAGE, "publisher->kafka", at=0.4, for_s=5, jitter=0.1),)
    assert plan(specs, 30, seed=42) == plan(specs, 30, seed=42)
    assert plan(specs, 30, seed=42) != plan(specs, 30, seed=43)
    assert plan_orders(Constant(10), 5, seed=1) == plan_orders(Constant(10), 5, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"target": "Nowhere->kafka"}, "FaultSpec.target"),
        ({"target": "relay->redis"}, "FaultSpec.target"),
        ({"for_s": -1}, "FaultSpec.for_s"),
        ({"at": 1.5}, "FaultSpec.at"),
    ],
)
def test_bad_fault_parameters_fail_at_construction_naming_the_field(kwargs: dict[str, object], names: str) -> None:
    base: dict[str, object] = {"kind": FaultKind.OUTAGE, "target": "relay->kafka", "at": 0.3, "for_s": 5}
    with pytest.raises(UsageError, match=names):
        FaultSpec(**{**base, **kwargs})  # type: ignore[arg-type]


def test_unknown_link_lists_the_valid_clients() -> None:
    # The form is checked at construction; whether the target has the link, when the run starts.
    from harness.capabilities import check_capabilities
    from harness.target.registry import resolve_target

    fault = FaultSpec(FaultKind.OUTAGE, "payments->kafka", at=0.3, for_s=5)
    with pytest.raises(UsageError, match="consumer.payment->kafka"):
        check_capabilities("t", (fault,), (), "correct", resolve_target("outbox"))


def test_arrivals_follow_the_rate_shape() -> None:
    assert len(arrival_times(Constant(10), 3)) == 30
    ramp = arrival_times(RampHold(start=2, peak=10, ramp_s=4), 8)
    assert 63 <= len(ramp) <= 64  # (2+10)/2*4 = 24 during the ramp, 4*10 = 40 at the peak
    with pytest.raises(UsageError):
        Constant(0)


def test_named_scenarios_load_and_unknown_names_list_the_valid_ones() -> None:
    assert {"black_friday", "broker_outage"} <= set(scenario_names())
    assert load_scenario("black_friday").name == "black_friday"
    with pytest.raises(UsageError, match="valid scenarios: .*black_friday"):
        load_scenario("cyber_monday")


def test_overrides_validate_rate_and_duration() -> None:
    s = load_scenario("black_friday")
    assert s.with_overrides(duration_s=30, rate=10).duration_s == 30
    with pytest.raises(UsageError, match="--rate"):
        s.with_overrides(rate=-1)


def test_recovery_budget_must_be_positive() -> None:
    from dataclasses import replace

    s = load_scenario("broker_outage")
    assert replace(s, recovery_budget_s=5.0).recovery_budget_s == 5.0
    with pytest.raises(UsageError, match="recovery_budget_s"):
        replace(s, recovery_budget_s=0)
