"""Score: the numbers derived from a pipeline's verdict and its history, and one resilience score.

Two steps, both pure functions of the stored run (so `chaos report RUN_DIR` gives the same
numbers as the run did):

  measure(history, verdict) -> Measurements   what it cost and how it behaved
  score(verdict, measurements) -> Score        one number, 0-100, with its terms

Vocabulary:
  safety gate       the safety invariants I1-I5 (loss, duplicates, order, phantoms, DLQ).
                    Any of them *invalid* makes the score 0, whatever else happened: a pipeline
                    that loses or double-charges money is not resilient, however fast it is.
                    The gate is then the only charge (``penalties == {"safety": 100}``): the
                    same lost orders are not charged again as recovery or dip.
  inconclusive      a result is unknown (vacuous run, a fault not injected): no score (None),
                    a pipeline cannot earn points in a test that never touched it.
  recovery time     seconds from the last heal until the pipeline caught up (I7's typed
                    counts when that checker ran; else the lag probes; else the drain probe).
                    Not recovered (drain timed out): the full penalty. Only what happens after
                    the last heal.
  lag               how deep the work piled up *during* the faults (up to the last heal), for
                    the worst consumer group: publish backlog (committed at the source, not yet
                    on the topic) plus that group's lag, at its peak. A pipeline with four
                    groups is judged by its slowest one, not by the sum. Normalised as seconds
                    of offered traffic (the worst depth divided by the rate at which requests
                    were offered outside faults). The drain after the heal is recovery's, not
                    charged twice.
  latency           end-to-end for acknowledged requests whose effects arrived (a lost order
                    has no latency: it is the gate's), else client latency (invoke -> ok); of
                    requests invoked outside the fault windows and the recovery after the last
                    heal (those waited behind the backlog: lag's and recovery's cost). All
                    requests when none was invoked outside.
  throughput dip    against the offered load, by invoke time: 1 - (share of requests offered
                    inside fault windows that were acknowledged) / (the same share outside).
                    A ramp offers more and acknowledges more alike: no dip. Requests that
                    failed or timed out are charged here only, never as latency.

The formula, score version 2 (README "Scoring" states the same, with a worked example):

  score = 0                                   if any of I1-I5 is invalid (or, when no I2
                                              checker ran, the effects show a duplicate)
        = None                                if any result is unknown
        = 100 - 40 * min(1, recovery_s / RECOVERY_BUDGET_S)      (not recovered: 40)
              - 20 * min(1, p99_latency_s / LATENCY_BUDGET_S)
              - 20 * clamp(throughput_dip, 0, 1)
              - 20 * min(1, worst_group_lag_s / LAG_BUDGET_S)
  rounded to one decimal. A term that could not be measured costs nothing and is listed in
  ``Score.unmeasured``. Measurements never change a verdict.

Version 1 (before 2026-12-06) summed lag over all groups and after the heal, measured the
dip by completion time against goodput outside faults, and read I2/I3 counts by names no
checker emitted (duplicates "not measured", ordering capped at the examples shown).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.checkers._index import clock_anchor_ms
from harness.checkers.base import CheckResult, Validity
from harness.checkers.counts import DuplicateCounts, LossCounts, OrderingCounts, RecoveryCounts, read
from harness.checkers.stats import fault_windows
from harness.history.observations import cause_of
from harness.history.ops import History, Op, OpType
from harness.scoring import PipelineVerdict

__all__ = [
    "LAG_BUDGET_S",
    "LATENCY_BUDGET_S",
    "RECOVERY_BUDGET_S",
    "SAFETY_INVARIANTS",
    "SCORE_VERSION",
    "Measurements",
    "Score",
    "Window",
    "measure",
    "score",
]

SCORE_VERSION = 2
"""Bumped whenever the formula changes, so scores of different versions are not compared."""

SAFETY_INVARIANTS = ("I1", "I2", "I3", "I4", "I5")
RECOVERY_BUDGET_S = 60.0
LATENCY_BUDGET_S = 10.0
LAG_BUDGET_S = 60.0
WEIGHTS: Mapping[str, float] = {"recovery": 40.0, "latency": 20.0, "throughput_dip": 20.0, "lag": 20.0}

Point = tuple[float, float | None]
"""(seconds since the pipeline started, value); None where a bucket has no sample."""


@dataclass(frozen=True, slots=True)
class Window:
    """A fault window on the pipeline's clock; ``end_s`` None when it was never healed."""

    label: str
    start_s: float
    end_s: float | None
    injected: bool


@dataclass(frozen=True, slots=True)
class Measurements:
    pipeline: str
    accepted_orders: int | None = None
    lost_orders: int | None = None
    lost_cents: int | None = None
    duplicate_effects: int | None = None
    duplicate_cents: int | None = None
    duplicates_source: str = "not measured"  # "I2" or "effects"
    ordering_violations: int | None = None  # every ordering anomaly I3 counted
    shipped_before_paid: int | None = None  # of those, shipments before payment
    acknowledged_then_missing: int | None = None  # requests answered 2xx that the service did not keep
    dead_processes: int | None = None  # processes of the target dead at the end (not recovered)
    recovery_s: float | None = None
    recovered: bool | None = None  # False: the pipeline never caught up (drain timed out)
    recovery_source: str = "not measured"  # "I7", "lag probes", "drain"
    peak_consumer_lag: int | None = None
    peak_publish_backlog: int | None = None
    peak_lag: int | None = None  # the worst group's peak of publish backlog + its lag, up to the last heal
    peak_lag_s: float | None = None  # peak_lag in seconds of offered traffic
    worst_group: str | None = None  # the group whose lag was deepest ("all" when probes were not per group)
    peak_lag_by_group: Mapping[str, int] = field(default_factory=dict)
    latency_kind: str = "none"  # "end-to-end", "client" or "none"
    latency_p50_s: float | None = None
    latency_p99_s: float | None = None
    ok_rate_in_faults: float | None = None  # acknowledged share of the requests offered inside fault windows
    ok_rate_outside: float | None = None  # ... and outside them
    offered_rate_outside: float | None = None  # requests offered per second outside fault windows
    throughput_dip: float | None = None
    bucket_s: float = 1.0
    windows: tuple[Window, ...] = ()
    # Time series for the report's charts, one point per bucket (or per probe for lag).
    throughput: tuple[Point, ...] = ()  # ok client ops per second
    errors: tuple[Point, ...] = ()  # fail + info client ops per second
    latency_p50: tuple[Point, ...] = ()  # seconds, by invoke time
    latency_p99: tuple[Point, ...] = ()
    consumer_lag: tuple[Point, ...] = ()  # records, per probe
    publish_backlog: tuple[Point, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The headline numbers (no series): what results.json keeps."""
        return {
            "accepted_orders": self.accepted_orders, "lost_orders": self.lost_orders, "lost_cents": self.lost_cents,
            "duplicate_effects": self.duplicate_effects, "duplicate_cents": self.duplicate_cents,
            "duplicates_source": self.duplicates_source, "ordering_violations": self.ordering_violations,
            "shipped_before_paid": self.shipped_before_paid, "acknowledged_then_missing": self.acknowledged_then_missing,
            "dead_processes": self.dead_processes,
            "recovery_s": _r(self.recovery_s), "recovered": self.recovered, "recovery_source": self.recovery_source,
            "peak_consumer_lag": self.peak_consumer_lag, "peak_publish_backlog": self.peak_publish_backlog,
            "peak_lag": self.peak_lag, "peak_lag_s": _r(self.peak_lag_s), "worst_group": self.worst_group,
            "peak_lag_by_group": dict(self.peak_lag_by_group), "latency_kind": self.latency_kind,
            "latency_p50_s": _r(self.latency_p50_s), "latency_p99_s": _r(self.latency_p99_s),
            "ok_rate_in_faults": _r(self.ok_rate_in_faults), "ok_rate_outside": _r(self.ok_rate_outside),
            "offered_rate_outside": _r(self.offered_rate_outside),
            "throughput_dip": _r(self.throughput_dip),
            "fault_windows": [{"label": w.label, "start_s": _r(w.start_s), "end_s": _r(w.end_s), "injected": w.injected}
                              for w in self.windows],
        }


@dataclass(frozen=True, slots=True)
class Score:
    pipeline: str
    value: float | None  # 0-100; None when inconclusive
    gate: str  # "passed", "failed", "inconclusive"
    why: str  # one line: which invariant closed the gate, or what was unknown
    penalties: Mapping[str, float] = field(default_factory=dict)
    unmeasured: tuple[str, ...] = ()
    reliability: float | None = None  # fraction of acknowledged orders that got every effect

    def to_json(self) -> dict[str, object]:
        return {"version": SCORE_VERSION, "value": self.value, "gate": self.gate, "why": self.why,
                "penalties": {k: round(v, 2) for k, v in self.penalties.items()},
                "unmeasured": list(self.unmeasured), "reliability": _r(self.reliability, 4)}


# ---- measuring ----------------------------------------------------------------------------


def measure(history: History, verdict: PipelineVerdict | None = None) -> Measurements:
    """Everything the score and the report's charts need, from one pipeline's history."""
    results = verdict.results if verdict is not None else ()
    client = [op for op in history.ops if op.process.startswith("client")]
    completions = [op for op in client if op.type is not OpType.INVOKE]
    windows = tuple(Window(f"{w.fault}@{w.target}", w.start_s, w.end_s, w.injected) for w in fault_windows(history))
    span_end = max((op.time_s for op in history.ops), default=0.0)
    bucket = _bucket_size(span_end)

    loss = read(_by_invariant(results, "I1"), LossCounts)
    accepted = loss.acknowledged_orders if loss else None
    lost, lost_cents = (loss.lost, loss.lost_cents) if loss else (None, None)
    dup, dup_cents, dup_source = _duplicates(history, _by_invariant(results, "I2"))
    ordering, shipped_early = _ordering_violations(_by_invariant(results, "I3"))
    acked_missing = loss.acknowledged_then_missing if loss else None
    i7 = read(_by_invariant(results, "I7"), RecoveryCounts)
    dead = i7.dead_processes if i7 else None

    ok_ops = [op for op in completions if op.type is OpType.OK]
    throughput = _rate_series((op.time_s for op in ok_ops), bucket, span_end)
    errors = _rate_series((op.time_s for op in completions if op.type is not OpType.OK), bucket, span_end)
    in_rate, out_rate, offered_out, dip = _dip(client, windows)

    kind, samples = _latency_samples(history, client)
    lat50, lat99 = _latency_series(samples, bucket, span_end)

    probes = [op for op in history.ops if op.process == "probe" and op.f == "lag" and op.type is OpType.OK]
    consumer = tuple((round(op.time_s, 3), _num(op.value.get("lag"))) for op in probes)
    backlog = tuple((round(op.time_s, 3), _num(op.value.get("backlog"))) for op in probes)
    totals = [(op.time_s, (_num(op.value.get("lag")) or 0) + (_num(op.value.get("backlog")) or 0))
              for op in probes]
    peak_consumer = _peak(v for _, v in consumer)
    peak_backlog = _peak(v for _, v in backlog)
    by_group = _peak_lag_by_group(probes, windows)
    worst = max(by_group, key=lambda g: (by_group[g], g)) if by_group else None
    peak_lag = by_group[worst] if worst is not None else None
    peak_lag_s = peak_lag / offered_out if peak_lag is not None and offered_out else None

    recovery_s, recovered, recovery_source = _recovery(history, _by_invariant(results, "I7"), windows, totals)
    # Latency is normal operation's: a request invoked while a fault held the pipeline (or while it
    # caught up after the last heal) waited behind the backlog, which lag and recovery already charge.
    disturbed = _merged(windows, span_end)
    if disturbed and recovered is not False:
        disturbed[-1] = (disturbed[-1][0], disturbed[-1][1] + (recovery_s or 0.0))
    elif disturbed:
        disturbed[-1] = (disturbed[-1][0], span_end)
    calm = [lat for t, lat in samples if not any(s <= t <= e for s, e in disturbed)] or [lat for _, lat in samples]
    p50, p99 = _quantile(calm, 0.5), _quantile(calm, 0.99)
    if dead:  # a process that is dead at the end has not recovered, however quickly the lag drained
        recovered = False

    return Measurements(
        pipeline=history.pipeline, accepted_orders=accepted, lost_orders=lost, lost_cents=lost_cents,
        duplicate_effects=dup, duplicate_cents=dup_cents, duplicates_source=dup_source,
        ordering_violations=ordering, shipped_before_paid=shipped_early, acknowledged_then_missing=acked_missing,
        dead_processes=dead, recovery_s=recovery_s, recovered=recovered, recovery_source=recovery_source,
        peak_consumer_lag=peak_consumer, peak_publish_backlog=peak_backlog, peak_lag=peak_lag, peak_lag_s=peak_lag_s,
        worst_group=worst, peak_lag_by_group=by_group,
        latency_kind=kind, latency_p50_s=p50, latency_p99_s=p99, ok_rate_in_faults=in_rate, ok_rate_outside=out_rate,
        offered_rate_outside=offered_out,
        throughput_dip=dip, bucket_s=bucket, windows=windows, throughput=throughput, errors=errors,
        latency_p50=lat50, latency_p99=lat99, consumer_lag=consumer, publish_backlog=backlog,
    )


def _by_invariant(results: Sequence[CheckResult], invariant: str) -> CheckResult | None:
    return next((r for r in results if r.invariant == invariant), None)


def _num(value: object) -> float | None:
    """A count read defensively: checkers written by others may leave a key out or make it None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _peak(values: Iterable[float | None]) -> int | None:
    present = [v for v in values if v is not None]
    return int(max(present)) if present else None


def _duplicates(history: History, i2: CheckResult | None) -> tuple[int | None, int | None, str]:
    """Duplicate effects and the money charged twice: I2's typed counts when it ran, else counted from the effects."""
    counts = read(i2, DuplicateCounts) if i2 is not None and i2.validity is not Validity.UNKNOWN else None
    if counts is not None:
        return counts.extra_effects, counts.extra_cents, "I2"
    if "effects" not in history.observations:
        return None, None, "not measured"
    seen: set[tuple[object, object, object]] = set()
    n = cents = 0
    for row in history.observed("effects"):
        key = (row.get("consumer"), row.get("kind"), row.get("order_id"))
        if key in seen:
            n += 1
            if row.get("kind") == "charge":
                cents += int(_num(row.get("amount_cents")) or 0)
        seen.add(key)
    return n, cents, "effects"


def _ordering_violations(i3: CheckResult | None) -> tuple[int | None, int | None]:
    """Every ordering anomaly I3 counted (not only the examples it shows), and how many of them are
    shipments before payment (the article's story)."""
    c = read(i3, OrderingCounts) if i3 is not None and i3.validity is not Validity.UNKNOWN else None
    if c is None:
        return None, None
    return (c.nonmonotonic + c.shipped_before_paid + c.applied_past_dead_letter + c.split_entities
            + c.nonmonotonic_publish), c.shipped_before_paid


def _peak_lag_by_group(probes: Sequence[Op], windows: Sequence[Window]) -> dict[str, int]:
    """Each group's peak of publish backlog + its lag, over the probes up to the last heal (the depth the
    faults dug; the drain after the heal is recovery's). Probes that report ``lag:<group>`` give one
    entry per group; older ones only the sum over groups, reported as the group "all"."""
    healed = [w.end_s for w in windows if w.end_s is not None]
    until = max(healed) if healed else float("inf")
    peaks: dict[str, int] = {}
    for op in probes:
        if op.time_s > until:
            continue
        backlog = _num(op.value.get("backlog")) or 0
        groups = {k.split(":", 1)[1]: _num(v) for k, v in op.value.items() if k.startswith("lag:")}
        if not groups:
            groups = {"all": _num(op.value.get("lag"))}
        for group, lag in groups.items():
            if lag is not None:
                peaks[group] = max(peaks.get(group, 0), int(backlog + lag))
    return peaks


def _bucket_size(span_s: float) -> float:
    """1 s buckets, coarser for long runs so a chart never has more than ~600 points."""
    return 1.0 if span_s <= 600 else math.ceil(span_s / 600)


def _rate_series(times: Iterable[float], bucket: float, span_end: float) -> tuple[Point, ...]:
    n = int(span_end // bucket) + 1
    counts = [0] * n
    for t in times:
        counts[min(n - 1, max(0, int(t // bucket)))] += 1
    return tuple((round(i * bucket, 3), round(c / bucket, 3)) for i, c in enumerate(counts))


def _merged(windows: Sequence[Window], horizon: float) -> list[tuple[float, float]]:
    spans = sorted((w.start_s, w.end_s if w.end_s is not None else horizon) for w in windows if w.injected)
    out: list[tuple[float, float]] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _dip(client: Sequence[Op], windows: Sequence[Window]) -> tuple[float | None, float | None, float | None,
                                                                    float | None]:
    """(acknowledged share inside faults, the share outside, offered requests/s outside, dip), by invoke time.

    Against the offered load: the workload is open-loop (every planned request is sent on time), so
    a ramp raises offered and acknowledged requests together and is no dip; what the faults cost is
    the share of offered requests that were not acknowledged.
    """
    invokes = [op for op in client if op.type is OpType.INVOKE]
    if not invokes:
        return None, None, None, None
    start = min(op.time_s for op in invokes)
    end = max(op.time_s for op in invokes)
    spans = [(max(s, start), min(e, end)) for s, e in _merged(windows, end)]
    spans = [(s, e) for s, e in spans if e > s]
    opened: dict[tuple[str, str, str | None], float] = {}
    offered: list[tuple[float, bool]] = []  # (invoke time, acknowledged)
    for op in client:
        k = (op.process, op.f, op.key)
        if op.type is OpType.INVOKE:
            opened[k] = op.time_s
        elif k in opened:
            offered.append((opened.pop(k), op.type is OpType.OK))
    offered.extend((t, False) for t in opened.values())  # never completed: not acknowledged
    inside = [ok for t, ok in offered if any(s <= t <= e for s, e in spans)]
    outside = [ok for t, ok in offered if not any(s <= t <= e for s, e in spans)]
    inside_s = sum(e - s for s, e in spans)
    outside_s = (end - start) - inside_s
    in_share = sum(inside) / len(inside) if inside else None
    out_share = sum(outside) / len(outside) if outside else None
    offered_out = len(outside) / outside_s if outside and outside_s > 0 else None
    dip = 1 - in_share / out_share if in_share is not None and out_share else None
    return in_share, out_share, offered_out, dip


def _latency_samples(history: History, client: Sequence[Op]) -> tuple[str, list[tuple[float, float]]]:
    """(kind, [(invoke time, latency seconds)]): end-to-end where possible, else client latency."""
    client_lat: list[tuple[float, float]] = []
    acked: dict[tuple[str, str | None], float] = {}
    pending: dict[tuple[str, str, str | None], float] = {}
    for op in client:
        k = (op.process, op.f, op.key)
        if op.type is OpType.INVOKE:
            pending[k] = op.time_s
        elif k in pending:
            t0 = pending.pop(k)
            if op.type is OpType.OK:
                client_lat.append((t0, op.time_s - t0))
                acked.setdefault((op.f, op.key), t0)
    anchor = clock_anchor_ms(history)
    produced_by = cause_of(history)
    if anchor is not None:
        first: dict[tuple[object, object, object], float] = {}
        for row in history.observed("effects"):
            at = _num(row.get("applied_at_ms"))
            f = produced_by.get((str(row.get("consumer")), str(row.get("kind"))))
            if at is None or f is None:
                continue
            key = (row.get("consumer"), row.get("kind"), row.get("order_id"))
            first[key] = min(first.get(key, at), at)
        e2e = []
        for (consumer, kind, order), at in first.items():
            acked_at = acked.get((produced_by[(str(consumer), str(kind))], str(order)))
            if acked_at is not None:
                e2e.append((acked_at, max(0.0, (at - anchor) / 1000 - acked_at)))
        if e2e:
            return "end-to-end", sorted(e2e)
    if client_lat:
        return "client", sorted(client_lat)
    return "none", []


def _quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile: the smallest value with at least q of the samples at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _latency_series(samples: Sequence[tuple[float, float]], bucket: float, span_end: float) -> tuple[tuple[Point, ...], tuple[Point, ...]]:
    n = int(span_end // bucket) + 1
    buckets: list[list[float]] = [[] for _ in range(n)]
    for t, lat in samples:
        buckets[min(n - 1, max(0, int(t // bucket)))].append(lat)
    p50 = tuple((round(i * bucket, 3), _r(_quantile(b, 0.5), 4)) for i, b in enumerate(buckets))
    p99 = tuple((round(i * bucket, 3), _r(_quantile(b, 0.99), 4)) for i, b in enumerate(buckets))
    return p50, p99


def _recovery(history: History, i7: CheckResult | None, windows: Sequence[Window],
              totals: Sequence[tuple[float, float]]) -> tuple[float | None, bool | None, str]:
    drain = [op for op in history.ops if op.process == "probe" and op.f == "drain" and op.type is not OpType.INVOKE]
    drained = drain[-1].type is OpType.OK if drain else None
    counts = read(i7, RecoveryCounts) if i7 is not None and i7.validity is not Validity.UNKNOWN else None
    if counts is not None and counts.recovery_s is not None:
        return counts.recovery_s, drained is not False, "I7"
    healed = [w.end_s for w in windows if w.end_s is not None]
    if not healed:
        return None, drained, "not measured"
    last_heal = max(healed)
    first_fault = min(w.start_s for w in windows)
    baseline = max((v for t, v in totals if t < first_fault), default=0.0)
    for t, v in totals:
        if t > last_heal and v <= baseline:
            return t - last_heal, True, "lag probes"
    if drained:
        return max(0.0, drain[-1].time_s - last_heal), True, "drain"
    if drained is False:
        return None, False, "drain"
    return None, None, "not measured"


def _r(value: float | None, digits: int = 3) -> float | None:
    return round(value, digits) if value is not None and math.isfinite(value) else None


# ---- scoring --------------------------------------------------------------------------------


def score(verdict: PipelineVerdict, m: Measurements) -> Score:
    """The resilience score of one pipeline; see the module docstring for the formula."""
    reliability = None
    if m.accepted_orders and m.lost_orders is not None:
        reliability = 1 - m.lost_orders / m.accepted_orders
    broken = [r for r in verdict.results if r.invariant in SAFETY_INVARIANTS and r.validity is Validity.INVALID]
    # The gate is the only charge when it closes: the lost or doubled orders behind it are not charged
    # again as recovery, dip or lag.
    gate = {"safety": 100.0}
    if broken:
        names = ", ".join(f"{r.invariant} {r.checker}" for r in broken)
        return Score(verdict.pipeline, 0.0, "failed", f"safety gate: {names} broke", gate, reliability=reliability)
    if m.duplicates_source == "effects" and m.duplicate_effects:
        # No I2 checker ran, but the effects show money taken twice: that closes the gate all the same.
        return Score(verdict.pipeline, 0.0, "failed",
                     f"safety gate: {m.duplicate_effects} duplicate effects in the observed effects (I2 not checked)",
                     gate, reliability=reliability)
    unknown = [r for r in verdict.results if r.validity is Validity.UNKNOWN]
    if unknown:
        names = ", ".join(r.invariant or r.checker for r in unknown)
        return Score(verdict.pipeline, None, "inconclusive", f"unknown: {names}", reliability=reliability)

    penalties: dict[str, float] = {}
    unmeasured: list[str] = []
    if m.recovered is False:
        penalties["recovery"] = WEIGHTS["recovery"]
    elif m.recovery_s is not None:
        penalties["recovery"] = WEIGHTS["recovery"] * min(1.0, m.recovery_s / RECOVERY_BUDGET_S)
    else:
        unmeasured.append("recovery")
    if m.latency_p99_s is not None:
        penalties["latency"] = WEIGHTS["latency"] * min(1.0, m.latency_p99_s / LATENCY_BUDGET_S)
    else:
        unmeasured.append("latency")
    if m.throughput_dip is not None:
        penalties["throughput_dip"] = WEIGHTS["throughput_dip"] * min(1.0, max(0.0, m.throughput_dip))
    else:
        unmeasured.append("throughput_dip")
    if m.peak_lag_s is not None:
        penalties["lag"] = WEIGHTS["lag"] * min(1.0, m.peak_lag_s / LAG_BUDGET_S)
    else:
        unmeasured.append("lag")
    value = round(max(0.0, 100.0 - sum(penalties.values())), 1)
    checked = ", ".join(r.invariant for r in verdict.results if r.invariant in SAFETY_INVARIANTS) or "none"
    return Score(verdict.pipeline, value, "passed", f"safety invariants checked and held: {checked}",
                 penalties, tuple(unmeasured), reliability)
