"""I2 exactly-once-effect: no effect happens twice for one (consumer, effect kind, order).

Anomaly, named as in the report:
  duplicate-effect   two or more effect rows for one (consumer, kind, order); ``cause`` says
                     whether one event was applied twice (a redelivery the consumer did not
                     absorb) or distinct events drove the same step twice

What occurred is kept apart from what is allowed: delivering an event more than once is
at-least-once delivery, which every pipeline here is allowed. It is counted, not flagged:
  redelivered   extra copies of an event on the topic (same event_id at two offsets)
  absorbed      redelivered copies that caused no second effect (the consumer deduplicated)
  reapplied     processed-event records for an event a consumer had already applied
Money counts the amounts of the extra effects (``extra_cents``: charged twice).

Redelivery amplification: absorbed copies cost traffic even when no effect repeats, so
they are counted per fault window (a copy published within a window or ``MARGIN_S`` after
its heal) and outside any (``redelivered:outside``). Copies a duplicate fault injected are
the fault's, not the pipeline's (``injected_copies``). A target may declare a budget (the
``budgets`` observation, ``redelivery_ratio``: extra copies per distinct event); copies
outside crash recovery (kill, pause, restart, crash windows) above it are the anomaly
``amplified``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from harness.checkers._arrays import first_index, group_key, isin, source, unique
from harness.checkers._index import applied_index, clock_anchor_ms, effects_index, repeated, topic_index
from harness.checkers._sources import missing
from harness.checkers.anomaly import Anomaly, AnomalyKind
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chains
from harness.checkers.counts import DuplicateCounts
from harness.checkers.stats import CRASH_FAULTS, MARGIN_S, fault_windows
from harness.history.ops import History, Scalar
from harness.history.table import ABSENT

__all__ = ["ExactlyOnceEffect"]


@dataclass(frozen=True, slots=True)
class ExactlyOnceEffect:
    name: str = "exactly-once-effect"
    invariant: str | None = "I2"

    def check(self, history: History) -> CheckResult:
        unknown = missing(history, self.name, self.invariant, "effects")
        if unknown is not None:
            return unknown
        clean = _clean(history)
        if clean is not None:
            n_effects, n_steps, reapplied, topic = clean
            amp = _amplification(history, topic)
            if not amp.amplified:
                extra = sum(topic.redelivered.values())
                counts = DuplicateCounts(
                    effects=n_effects, steps=n_steps, duplicated=0, extra_effects=0, extra_cents=0,
                    redelivered=extra, absorbed=extra, reapplied=reapplied, amplification=amp.ratio,
                    injected_copies=amp.injected, amplification_counted=amp.counted,
                    amplification_counted_ratio=amp.counted_ratio, redelivery_budget=amp.budget,
                ).as_counts(**{"redelivered:outside": amp.outside, **amp.per_window})
                return CheckResult(self.name, self.invariant, Validity.VALID,
                                   f"{n_steps} effects, none twice; {extra} redelivered copies absorbed "
                                   f"(amplification {amp.ratio:.3f})", counts)
        effects = history.observed("effects")
        index = history.derived(effects_index)
        n_steps = index.steps
        per_step: Counter[tuple[object, object, object]] = Counter()  # (consumer, kind, order) -> effects
        if n_steps < len(effects):  # only then did some step take effect twice: find which
            per_step = Counter(zip(index.consumer, index.kind, index.order))
        duplicated = repeated(per_step)

        redelivered = history.derived(topic_index).redelivered  # event id -> extra copies
        distinct_applies = sum(len(mine.events) for mine in history.derived(applied_index).values())
        reapplied = len(history.observed("applied")) - distinct_applies

        dup_rows: dict[tuple[object, object, object], list[dict[str, Scalar]]] = {}
        if duplicated:
            for r, k in zip(effects, zip(index.consumer, index.kind, index.order)):
                if k in duplicated:
                    dup_rows.setdefault(k, []).append(dict(r))
        effect_events_duplicated = {row.get("event_id") for rows in dup_rows.values() for row in rows}
        absorbed = sum(n for e, n in redelivered.items() if e not in effect_events_duplicated)
        extra_cents = sum(int(row.get("amount_cents") or 0) for rows in dup_rows.values() for row in rows[1:])

        amp = _amplification(history, _copies(history))
        typed = DuplicateCounts(
            effects=len(effects), steps=n_steps, duplicated=len(duplicated),
            extra_effects=sum(per_step[k] - 1 for k in duplicated), extra_cents=extra_cents,
            redelivered=sum(redelivered.values()), absorbed=absorbed, reapplied=reapplied,
            amplification=amp.ratio, injected_copies=amp.injected, amplification_counted=amp.counted,
            amplification_counted_ratio=amp.counted_ratio, redelivery_budget=amp.budget)
        breakdown: dict[str, Scalar] = {f"duplicated:{c}": sum(1 for k in duplicated if k[0] == c)
                                        for c in sorted({str(k[0]) for k in duplicated})}
        breakdown["redelivered:outside"] = amp.outside
        breakdown.update(amp.per_window)
        counts = typed.as_counts(**breakdown)
        found = [Anomaly(AnomalyKind.DUPLICATE_EFFECT, str(order), str(consumer),
                         _str(dup_rows[(consumer, kind, order)][0].get("event_id")))
                 for consumer, kind, order in sorted(duplicated, key=lambda k: tuple(str(x) for x in k))]
        if amp.amplified:
            found.append(Anomaly(AnomalyKind.AMPLIFIED))
        if not found:
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               f"{n_steps} effects, none twice; {absorbed} redelivered copies absorbed "
                               f"(amplification {amp.ratio:.3f})", counts)
        if not duplicated:
            return CheckResult(self.name, self.invariant, Validity.INVALID,
                               f"{n_steps} effects, none twice, but redelivery is amplified: {amp.counted} copies "
                               f"outside crash recovery, {amp.counted_ratio:.3f} per event against a budget of "
                               f"{amp.budget}", counts,
                               ({"anomaly": AnomalyKind.AMPLIFIED.value, "copies": amp.counted, "budget": amp.budget},),
                               tuple(found))
        shown = sorted(duplicated, key=lambda k: tuple(str(x) for x in k))[:MAX_EXAMPLES]
        chains = order_chains(history, {str(k[2]) for k in shown})
        examples = []
        for consumer, kind, order in shown:
            rows = dup_rows[(consumer, kind, order)]
            same_event = len({r.get("event_id") for r in rows}) == 1
            examples.append({
                "anomaly": "duplicate-effect", "consumer": consumer, "kind": kind, "order_id": order,
                "times": len(rows), "cause": "one event applied twice (redelivery not absorbed)" if same_event
                else "distinct events drove the same step", "effects": rows[:MAX_EXAMPLES], "chain": chains[str(order)],
            })
        return CheckResult(self.name, self.invariant, Validity.INVALID,
                           f"{len(duplicated)} of {n_steps} steps took effect more than once "
                           f"({typed.extra_effects} extra, {extra_cents / 100:.2f} charged twice)", counts,
                           tuple(examples), tuple(found))


def _str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class _Amplification:
    ratio: float  # extra copies per distinct event
    injected: int
    outside: int  # copies outside any fault window
    per_window: dict[str, int]  # "redelivered:<fault>@<target>" -> copies within that window
    counted: int  # outside crash recovery and not injected
    counted_ratio: float
    budget: float | None
    amplified: bool


@dataclass(frozen=True, slots=True)
class _Copies:
    """The topic's redelivered copies: what amplification is computed from."""

    redelivered: Mapping[Scalar, int]  # event id -> extra copies of it
    distinct: int  # distinct event ids on the topic
    published: Mapping[Scalar, list[object]]  # redelivered event id -> the timestamp_ms of each copy, in topic order


def _copies(history: History) -> _Copies:
    topic = history.derived(topic_index)
    extra = topic.redelivered
    published: dict[Scalar, list[object]] = {}
    if extra:
        for eid, row in zip(topic.event_id, history.observed("topic")):
            if eid in extra:
                published.setdefault(eid, []).append(row.get("timestamp_ms"))
    return _Copies(extra, len({e for e in topic.event_id if e is not None}), published)


def _clean(history: History) -> tuple[int, int, int, _Copies] | None:
    """(effects, steps, reapplied, the topic's copies) when the columns prove no step took effect twice;
    None when they do not, or cannot be read as arrays (then the Python path decides; see _arrays.py)."""
    effects = source(history, "effects")
    if effects is None:
        return None
    codes = [effects.str_codes(n, required=True) for n in ("consumer", "kind", "order_id")]
    if any(c is None for c in codes):
        return None
    steps = len(unique(group_key(*codes))) if effects.n else 0  # type: ignore[arg-type]
    if steps < effects.n:
        return None
    applied = source(history, "applied")
    reapplied = 0
    if applied is not None and applied.n:
        a_codes = [applied.str_codes(n, required=True) for n in ("consumer", "event_id", "order_id")]
        if any(c is None for c in a_codes):
            return None
        reapplied = applied.n - len(unique(group_key(a_codes[0], a_codes[1])))  # type: ignore[arg-type]
    topic = source(history, "topic")
    if topic is None:
        return effects.n, steps, reapplied, _Copies({}, 0, {})
    eid = topic.str_codes("event_id")
    if eid is None:
        return None
    named = eid >= 0
    distinct, first = first_index(eid[named])
    counts = np.diff(np.append(np.searchsorted(np.sort(eid[named]), distinct), int(named.sum())))
    at = topic.frame.pool.at
    redelivered = {at(c): n - 1 for c, n in zip(distinct[counts > 1].tolist(), counts[counts > 1].tolist())}
    published: dict[Scalar, list[object]] = {}
    if redelivered:
        stamp = topic.columns.get("timestamp_ms")
        pool = topic.frame.pool
        for i in np.flatnonzero(isin(eid, distinct[counts > 1])).tolist():
            ts = stamp.at(i, pool) if stamp is not None else None
            published.setdefault(at(int(eid[i])), []).append(None if ts is ABSENT else ts)
    return effects.n, steps, reapplied, _Copies(redelivered, len(distinct), published)


def _amplification(history: History, topic: _Copies) -> _Amplification:
    """The topic's extra copies per fault window; amplified when the copies outside crash recovery
    exceed the target's declared budget."""
    extra = topic.redelivered
    distinct = topic.distinct
    windows = [w for w in fault_windows(history) if w.injected]
    injected: set[str] = set()
    for w in windows:
        if w.fault == "duplicate" and w.touched:
            injected |= w.touched
    anchor = clock_anchor_ms(history)
    copies: dict[Scalar, list[float]] = {  # event id -> publish times (run s) of all its copies
        eid: [(ts - anchor) / 1000 if anchor is not None and isinstance(ts, (int, float)) else float("nan")
              for ts in stamps]
        for eid, stamps in topic.published.items()}
    per_window: dict[str, int] = {}
    outside = in_crash = n_injected = 0
    for eid, times in copies.items():
        for t in sorted(times)[1:]:  # the first copy is the delivery; the rest are redeliveries
            if str(eid) in injected:
                n_injected += 1
                continue
            hit = [w for w in windows if w.start_s <= t <= (w.end_s if w.end_s is not None else float("inf")) + MARGIN_S]
            for w in hit:
                label = f"redelivered:{w.fault}@{w.target}"
                per_window[label] = per_window.get(label, 0) + 1
            if not hit:
                outside += 1
            if any(w.fault in CRASH_FAULTS for w in hit):
                in_crash += 1
    counted = sum(extra.values()) - n_injected - in_crash
    budget = next((float(r["redelivery_ratio"]) for r in history.observed("budgets")  # type: ignore[arg-type]
                   if isinstance(r.get("redelivery_ratio"), (int, float))), None)
    return _Amplification(
        ratio=round(sum(extra.values()) / distinct, 4) if distinct else 0.0, injected=n_injected, outside=outside,
        per_window=per_window, counted=counted, counted_ratio=round(counted / distinct, 4) if distinct else 0.0,
        budget=budget, amplified=budget is not None and distinct > 0 and counted / distinct > budget)
