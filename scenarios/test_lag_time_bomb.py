"""A slow consumer under steady load: its lag grows, its threshold fires, the others stay quiet."""

from __future__ import annotations

import json

import pytest

from harness.runner import RunResult
from harness.testing import evidence
from scenarios._evidence import assert_faults_bit
from scenarios.lag_time_bomb import PIPELINE, SCENARIO

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


@pytest.fixture(scope="module")
def bomb(chaos_run) -> RunResult:  # type: ignore[no-untyped-def]
    return chaos_run(SCENARIO)


def test_the_slow_consumer_bit_and_nothing_was_lost(bomb: RunResult) -> None:
    assert_faults_bit(bomb, PIPELINE, faults=1)
    assert bomb.exit_code == 0, f"a slow consumer delays; it must not lose or duplicate\n{evidence(bomb)}"


def test_only_the_slow_group_breached_and_its_alert_is_complete(bomb: RunResult) -> None:
    alerts = {a.group: a for a in bomb.lag_alerts}
    assert set(alerts) == {"payment", "inventory", "fulfillment", "notification"}, alerts
    pay = alerts["payment"]
    assert pay.breached and pay.first_breach_s is not None, f"payment's lag never passed {pay.threshold}: {pay}"
    assert pay.peak > pay.threshold and pay.breached_for_s > 0, pay
    assert pay.cleared_at_s is not None and pay.cleared_at_s > pay.first_breach_s, f"payment never caught up: {pay}"
    assert pay.peak_partition is not None, pay
    assert [g for g, a in alerts.items() if a.breached] == ["payment"], alerts
    assert pay.peak == max(a.peak for a in alerts.values()), f"another group fell further behind than payment: {alerts}"


def test_alerts_reach_results_json_the_report_and_the_story(bomb: RunResult) -> None:
    doc = json.loads((bomb.run_dir / "results.json").read_text())
    rows = doc["pipelines"][0]["lag_alerts"]
    assert {r["group"] for r in rows if r["breached"]} == {"payment"}, rows
    assert 'id="lag-alerts-table"' in bomb.report_path.read_text(), "the report has no lag alert section"
    assert bomb.story is not None and bomb.story.claims[2].measured.startswith("payment at "), bomb.story
