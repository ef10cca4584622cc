"""Consumer-lag alerts: when each group's lag crossed its threshold, for how long, how high it went.

"Alert if the lag exceeds a threshold ... consumer lag is the single best early warning signal."
A scenario (``Scenario.lag_thresholds``) or a target (``TargetSpec.lag_thresholds``, TOML
``[lag_thresholds]``) names a threshold per consumer group, in records not yet committed;
``"*"`` is the threshold of every group not named, and the scenario's win where both name a group. The runner samples every
group's lag per partition every 0.5 s through traffic and drain (``group_lag`` probe ops);
this module turns those samples into one ``LagAlert`` per group with a threshold:

  first_breach_s       seconds after traffic started when the lag first went above the threshold
  breached_for_s       how long it stayed above, summed over every breach
  cleared_at_s         when it last came back under (None: still above at the last sample)
  peak, peak_at_s      the highest lag and when; peak_partition: the partition holding most of it
  trend_per_s          how fast the lag grew over ``TREND_WINDOW_S`` (least squares), as seen at the
                       last traffic sample before the first breach (or at the end of traffic)
  projected_breach_s   when the lag would cross the threshold at that trend, as projected from that
                       sample: the early warning (for a group that breached, compare first_breach_s)

A pure function of the history, like the checkers: an alert is a measurement, never a verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

from harness.errors import UsageError
from harness.history.ops import History, OpType

__all__ = ["ANY_GROUP", "TREND_WINDOW_S", "LagAlert", "LagSample", "LagThreshold", "lag_alerts", "lag_samples",
           "merge_thresholds", "thresholds_from_json"]

ANY_GROUP = "*"
TREND_WINDOW_S = 5.0  # the "current trend": long enough to smooth one slow batch, short enough to be current


@dataclass(frozen=True, slots=True)
class LagThreshold:
    """Alert when ``group``'s lag (records not yet committed) goes above ``max_lag``."""

    group: str  # a consumer of the target ("payment"), or "*" for every group not named
    max_lag: int

    def __post_init__(self) -> None:
        if not isinstance(self.group, str) or not (self.group == ANY_GROUP or self.group.replace("_", "").isalnum()):
            raise UsageError(f"LagThreshold.group={self.group!r} must be a consumer name such as payment, or '*'")
        if not isinstance(self.max_lag, int) or isinstance(self.max_lag, bool) or self.max_lag < 0:
            raise UsageError(f"LagThreshold.max_lag={self.max_lag!r} must be a whole number of records >= 0")

    def to_json(self) -> dict[str, object]:
        return {"group": self.group, "max_lag": self.max_lag}


def thresholds_from_json(rows: object) -> tuple[LagThreshold, ...]:
    """The thresholds run.json stored (``LagThreshold.to_json`` rows); none when absent."""
    if not isinstance(rows, list):
        return ()
    return tuple(LagThreshold(str(r["group"]), int(r["max_lag"])) for r in rows if isinstance(r, Mapping))


def merge_thresholds(scenario: Sequence[LagThreshold], target: Sequence[LagThreshold]) -> tuple[LagThreshold, ...]:
    """The target's thresholds with the scenario's in place of any group (or ``"*"``) both name."""
    named = {t.group for t in scenario}
    return (*scenario, *(t for t in target if t.group not in named))


@dataclass(frozen=True, slots=True)
class LagSample:
    time_s: float  # seconds since traffic started
    group: str
    total: int
    partitions: tuple[tuple[int, int], ...]  # (partition, lag)
    phase: str  # "traffic" or "drain"


@dataclass(frozen=True, slots=True)
class LagAlert:
    pipeline: str
    group: str
    threshold: int
    samples: int
    breached: bool
    first_breach_s: float | None
    breached_for_s: float
    cleared_at_s: float | None
    peak: int
    peak_at_s: float | None
    peak_partition: int | None
    trend_per_s: float | None
    projected_breach_s: float | None

    def to_json(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> str:
        """One line for the terminal and the report."""
        trend = f", trend {self.trend_per_s:+.1f}/s" if self.trend_per_s is not None else ""
        if self.breached:
            held = (f"back under at {self.cleared_at_s:.1f}s" if self.cleared_at_s is not None
                    else "still above at the end")
            part = f" (partition {self.peak_partition})" if self.peak_partition is not None else ""
            return (f"{self.group}: ALERT lag > {self.threshold} from {self.first_breach_s:.1f}s for "
                    f"{self.breached_for_s:.1f}s, peak {self.peak}{part} at {self.peak_at_s:.1f}s, {held}{trend}"
                    f"{self._projection()}")
        return f"{self.group}: ok (peak {self.peak} <= {self.threshold}){trend}{self._projection()}"

    def _projection(self) -> str:
        return (f", the trend projected a breach at {self.projected_breach_s:.1f}s"
                if self.projected_breach_s is not None else "")


def lag_samples(history: History) -> tuple[LagSample, ...]:
    """Every per-group sample of ``history``, timed from the first client operation."""
    clients = history.client_ops()
    t0 = min((op.time_s for op in clients), default=0.0)
    out = []
    for op in history.ops:
        if op.process != "probe" or op.f != "group_lag" or op.type is not OpType.OK or op.key is None:
            continue
        parts = tuple(sorted((int(k[1:]), int(v)) for k, v in op.value.items()  # type: ignore[arg-type]
                             if k.startswith("p") and k[1:].isdigit() and v is not None))
        out.append(LagSample(round(op.time_s - t0, 3), op.key, int(op.value.get("total") or 0),  # type: ignore[arg-type]
                             parts, str(op.value.get("phase") or "traffic")))
    return tuple(out)


def _threshold_for(group: str, thresholds: Sequence[LagThreshold]) -> LagThreshold | None:
    named = [t for t in thresholds if t.group == group]
    return named[0] if named else next((t for t in thresholds if t.group == ANY_GROUP), None)


def _trend(samples: Sequence[LagSample]) -> float | None:
    """Least-squares slope (records per second) of the last TREND_WINDOW_S of ``samples``."""
    if not samples:
        return None
    window = [s for s in samples if s.time_s >= samples[-1].time_s - TREND_WINDOW_S]
    if len(window) < 3:
        return None
    n = len(window)
    mean_t = sum(s.time_s for s in window) / n
    mean_y = sum(s.total for s in window) / n
    var = sum((s.time_s - mean_t) ** 2 for s in window)
    if var == 0:
        return None
    return round(sum((s.time_s - mean_t) * (s.total - mean_y) for s in window) / var, 2)


def _alert(pipeline: str, group: str, threshold: int, samples: Sequence[LagSample]) -> LagAlert:
    first = cleared = None
    above_s = 0.0
    for i, s in enumerate(samples):
        above = s.total > threshold
        if above and first is None:
            first = s.time_s
        if above and i + 1 < len(samples):
            above_s += samples[i + 1].time_s - s.time_s
        if not above and i > 0 and samples[i - 1].total > threshold:
            cleared = s.time_s
    if samples and samples[-1].total > threshold:
        cleared = None
    peak = max(samples, key=lambda s: s.total) if samples else None
    peak_partition = max(peak.partitions, key=lambda pn: pn[1])[0] if peak and peak.partitions and peak.total else None
    # The trend as an operator watching would have seen it: up to the last traffic sample before the breach.
    seen = [s for s in samples if s.phase == "traffic" and (first is None or s.time_s < first)]
    trend = _trend(seen)
    projected = None
    if trend is not None and trend > 0 and seen and seen[-1].total <= threshold:
        projected = round(seen[-1].time_s + (threshold - seen[-1].total) / trend, 1)
    return LagAlert(pipeline=pipeline, group=group, threshold=threshold, samples=len(samples), breached=first is not None,
                    first_breach_s=first, breached_for_s=round(above_s, 2), cleared_at_s=cleared,
                    peak=peak.total if peak else 0, peak_at_s=peak.time_s if peak else None,
                    peak_partition=peak_partition, trend_per_s=trend, projected_breach_s=projected)


def lag_alerts(pipeline: str, history: History, thresholds: Iterable[LagThreshold]) -> tuple[LagAlert, ...]:
    """One alert record per sampled group that has a threshold, in group order (breached or not)."""
    thresholds = tuple(thresholds)
    if not thresholds:
        return ()
    by_group: dict[str, list[LagSample]] = {}
    for s in lag_samples(history):
        by_group.setdefault(s.group, []).append(s)
    out = []
    for group in sorted(by_group):
        t = _threshold_for(group, thresholds)
        if t is not None:
            out.append(_alert(pipeline, group, t.max_lag, sorted(by_group[group], key=lambda s: s.time_s)))
    return tuple(out)
