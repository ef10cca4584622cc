"""Lag alerts from hand-built samples: first breach, duration, peak, clearing and the projected breach."""

from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.history.ops import History, OpType
from harness.lag_alerts import LagThreshold, lag_alerts, lag_samples, thresholds_from_json
from harness.testing import HistoryBuilder


def _history(series: dict[str, list[int]], drain_from: int | None = None) -> History:
    """One sample per group every 0.5 s (traffic starts at 0), the way the runner records them."""
    b = HistoryBuilder()
    b.op("client-0", OpType.INVOKE, "place", "o1", at=0.0)
    length = max(len(v) for v in series.values())
    for i in range(length):
        for group, values in series.items():
            if i < len(values):
                phase = "drain" if drain_from is not None and i >= drain_from else "traffic"
                b.op("probe", OpType.OK, "group_lag", group, at=0.5 * i + 0.001, phase=phase, total=values[i],
                     p0=values[i] - values[i] // 3, p1=values[i] // 3)
    return b.build()


def test_a_growing_group_breaches_peaks_clears_and_its_trend_projected_the_breach() -> None:
    h = _history({"payment": [0, 10, 20, 30, 40, 60, 80, 100, 120, 60, 0, 0], "inventory": [0] * 12}, drain_from=9)
    alerts = {a.group: a for a in lag_alerts("outbox", h, (LagThreshold("payment", 50), LagThreshold("*", 50)))}
    pay, inv = alerts["payment"], alerts["inventory"]
    assert pay.breached and pay.first_breach_s == pytest.approx(2.5, abs=0.01)
    assert pay.breached_for_s == pytest.approx(2.5, abs=0.01)  # samples at 2.5 .. 4.5 were above; 5.0 is not
    assert pay.cleared_at_s == pytest.approx(5.0, abs=0.01)
    assert (pay.peak, pay.peak_partition) == (120, 0) and pay.peak_at_s == pytest.approx(4.0, abs=0.01)
    # Before the breach the lag grew 10 records per 0.5 s: 20/s from 40 at 2.0 s projects 50 at 2.5 s.
    assert pay.trend_per_s == pytest.approx(20.0) and pay.projected_breach_s == pytest.approx(2.5)
    assert not inv.breached and inv.first_breach_s is None and inv.projected_breach_s is None and inv.peak == 0


def test_a_group_still_above_at_the_end_has_not_cleared() -> None:
    h = _history({"payment": [0, 100, 200, 300]})
    (pay,) = lag_alerts("outbox", h, (LagThreshold("payment", 50),))
    assert pay.breached and pay.cleared_at_s is None and pay.breached_for_s == pytest.approx(1.0, abs=0.01)
    assert "still above at the end" in pay.describe()


def test_without_thresholds_there_are_no_alerts_and_groups_without_one_are_skipped() -> None:
    h = _history({"payment": [0, 100], "inventory": [0, 100]})
    assert lag_alerts("outbox", h, ()) == ()
    assert [a.group for a in lag_alerts("outbox", h, (LagThreshold("payment", 1),))] == ["payment"]
    assert {s.group for s in lag_samples(h)} == {"payment", "inventory"}
    assert lag_samples(h)[-1].partitions == ((0, 67), (1, 33))


def test_thresholds_are_checked_and_round_trip_through_run_json() -> None:
    with pytest.raises(UsageError, match="max_lag"):
        LagThreshold("payment", -1)
    with pytest.raises(UsageError, match="consumer name"):
        LagThreshold("pay ment", 5)
    t = (LagThreshold("payment", 5), LagThreshold("*", 7))
    assert thresholds_from_json([x.to_json() for x in t]) == t


def test_the_scenarios_thresholds_win_over_the_targets_for_a_group_both_name() -> None:
    from harness.lag_alerts import merge_thresholds

    scenario = (LagThreshold("payment", 10),)
    target = (LagThreshold("payment", 500), LagThreshold("*", 5000))
    assert merge_thresholds(scenario, target) == (LagThreshold("payment", 10), LagThreshold("*", 5000))
