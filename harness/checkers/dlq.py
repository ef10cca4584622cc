"""I5 dlq-accounted: every event on the topic was applied or sits in a dead-letter queue with a reason.

For every record on the pipeline's topic and every consumer the target runs:
  - a decodable record of a type the consumer subscribes to (the history's domain declares it) must be in
    that consumer's processed-event records (applied or deliberately skipped) or in its DLQ;
  - an undecodable record (not a JSON object, or without ``event_id`` / ``type``) must be in
    every consumer's DLQ: no consumer can know it was not its business.
A DLQ entry matches by event id, or by its source partition and offset.

Anomalies:
  vanished            the record is neither applied nor dead-lettered by a consumer that owed it
  dlq-without-reason  the record was dead-lettered with an empty reason
  bookkeeping-disagrees  the consumer's processed-event records (its own bookkeeping, e.g. a
                      dedup table with retention) do not list the record, yet the harness
                      sees the effect that record caused in the sink: applied, and the
                      target's claim is wrong, not the event lost
The processed-event records are the target's claim; effects in the sink and records on
the topics are what the harness observes itself, and where they disagree, the
observation wins and the disagreement is reported as such.
Counts are kept per consumer (``vanished:payment`` ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.checkers._arrays import isin, source, unique
from harness.checkers._index import applied_index, column, effects_index, topic_index
from harness.checkers._sources import missing, pick, running_consumers
from harness.checkers.anomaly import Anomaly, AnomalyKind
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chains
from harness.history.observations import subscriptions
from harness.history.ops import History

__all__ = ["DlqAccounted"]

_RECORD_FIELDS = ("partition", "offset", "key", "event_id", "order_id", "type", "seq", "timestamp_ms")


@dataclass(frozen=True, slots=True)
class DlqAccounted:
    name: str = "dlq-accounted"
    invariant: str | None = "I5"

    def check(self, history: History) -> CheckResult:
        unknown = missing(history, self.name, self.invariant, "topic", "applied", "consumers")
        if unknown is not None:
            return unknown
        consumers = running_consumers(history)
        subscribed = subscriptions(history)
        known = [c for c in consumers if c in subscribed]

        debts = _debts_fast(history, known, subscribed)
        applied = {c: mine.events for c, mine in history.derived(applied_index).items()} if debts is None else {}
        dlq_event: dict[tuple[object, object], object] = {}
        dlq_pos: dict[tuple[object, object, object], object] = {}
        for r in history.observed("dlq"):
            reason = r.get("reason")
            if r.get("event_id") is not None:
                dlq_event.setdefault((r["consumer"], r["event_id"]), reason)
            if r.get("source_offset") is not None:
                dlq_pos.setdefault((r["consumer"], r.get("source_partition"), r["source_offset"]), reason)
        if debts is None:
            debts = _debts(history, known, subscribed, applied)

        topic = history.observed("topic")
        per = {c: {"owed": 0, "applied": 0, "dead_lettered": 0, "vanished": 0, "unlisted_applied": 0} for c in known}
        found: list[Anomaly] = []
        unlisted: list[dict[str, object]] = []
        vanished: list[dict[str, object]] = []
        no_reason: list[dict[str, object]] = []
        n_no_reason = 0
        undecodable = len(debts.bad)
        bad_set = set(debts.bad)
        for c in known:
            owed, unapplied = debts.owed[c], debts.unapplied[c]
            tally = per[c]
            tally["owed"] = owed
            tally["applied"] = owed - len(unapplied)
            for i in sorted(unapplied):
                rec = topic[i]
                eid = None if i in bad_set else rec["event_id"]
                if eid is not None and (c, eid) in dlq_event:
                    reason = dlq_event[(c, eid)]
                else:
                    reason = dlq_pos.get((c, rec.get("partition"), rec.get("offset")), _ABSENT)
                if reason is _ABSENT and eid is not None and debts.caused(c, i, eid):
                    tally["unlisted_applied"] += 1
                    found.append(Anomaly(AnomalyKind.BOOKKEEPING_DISAGREES, _str(rec.get("order_id")), c, str(eid)))
                    if len(unlisted) < MAX_EXAMPLES:
                        unlisted.append({"anomaly": AnomalyKind.BOOKKEEPING_DISAGREES.value, "consumer": c,
                                         "claim": "not in the consumer's processed-event records",
                                         "observed": "its effect is in the sink", "record": _record(rec)})
                    continue
                if reason is _ABSENT:
                    tally["vanished"] += 1
                    found.append(Anomaly(AnomalyKind.VANISHED, _str(rec.get("order_id")), c, _str(eid)))
                    if len(vanished) < MAX_EXAMPLES:
                        vanished.append({"anomaly": "vanished", "consumer": c, "record": _record(rec)})
                    continue
                tally["dead_lettered"] += 1
                if not reason:
                    n_no_reason += 1
                    found.append(Anomaly(AnomalyKind.DLQ_WITHOUT_REASON, _str(rec.get("order_id")), c, _str(eid)))
                    if len(no_reason) < MAX_EXAMPLES:
                        no_reason.append({"anomaly": "dlq-without-reason", "consumer": c, "record": _record(rec)})

        counts: dict[str, int] = {"records": len(topic), "undecodable": undecodable,
                                  "owed": sum(t["owed"] for t in per.values()),
                                  "applied": sum(t["applied"] for t in per.values()),
                                  "dead_lettered": sum(t["dead_lettered"] for t in per.values()),
                                  "vanished": sum(t["vanished"] for t in per.values()), "dlq_without_reason": n_no_reason,
                                  "unlisted_applied": sum(t["unlisted_applied"] for t in per.values()),
                                  "consumers_without_policy": len(consumers) - len(known)}
        for c, tally in per.items():
            for k, n in tally.items():
                counts[f"{k}:{c}"] = n
        if counts["vanished"] and "dlq" not in history.observations:
            # Without the dead-letter topics, unapplied records may be dead-lettered or vanished: cannot tell.
            counts["unaccounted"] = counts.pop("vanished")
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               f"{counts['unaccounted']} records were not applied, and without a dlq observation "
                               "there is no telling whether they were dead-lettered", counts)
        if not found:
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               f"all {counts['owed']} records owed to {len(known)} consumer(s) accounted for: "
                               f"{counts['applied']} applied, {counts['dead_lettered']} dead-lettered with a reason", counts)
        examples = pick(vanished, no_reason, unlisted, limit=MAX_EXAMPLES)
        chains = order_chains(history, {str(x["record"]["order_id"]) for x in examples  # type: ignore[index]
                                        if x["record"].get("order_id") is not None})  # type: ignore[union-attr, attr-defined]
        for x in examples:
            order = x["record"].get("order_id")  # type: ignore[union-attr, attr-defined]
            x["chain"] = chains.get(str(order), []) if order is not None else []
        by_consumer = ", ".join(f"{c} {t['vanished']}" for c, t in per.items() if t["vanished"])
        claims = (f"; {counts['unlisted_applied']} records applied (their effects are in the sink) that the "
                  "consumers' own processed-event records do not list" if counts["unlisted_applied"] else "")
        return CheckResult(self.name, self.invariant, Validity.INVALID,
                           f"{counts['vanished']} records vanished ({by_consumer or 'none'}); "
                           f"{n_no_reason} dead-lettered without a reason{claims}", counts, tuple(examples),
                           tuple(found))


_ABSENT = object()


@dataclass(frozen=True, slots=True)
class _Debts:
    """What the topic owes each consumer, and what it paid."""

    bad: list[int]  # undecodable records (not an event): owed to every consumer
    owed: dict[str, int]  # consumer -> records owed to it
    unapplied: dict[str, list[int]]  # consumer -> the owed records it has no processed-event record of, in order
    caused: Callable[[str, int, object], bool]  # (consumer, record, its event id): is its effect in the sink?


def _debts(history: History, known: list[str], subscribed: Mapping[str, frozenset[str]],
           applied: Mapping[Any, frozenset[Any]]) -> _Debts:
    # Sort the records by type once; then each consumer's debt is a set lookup per record it is owed.
    by_type: dict[object, tuple[list[int], list[object]]] = {}  # type -> (record indexes, event ids)
    bad: list[int] = []  # undecodable records: owed to every consumer
    index = history.derived(topic_index)
    for i, (eid, type_, undecodable) in enumerate(zip(index.event_id, index.type, index.undecodable)):
        if eid is None or type_ is None or undecodable:
            bad.append(i)
        else:
            group = by_type.get(type_)
            if group is None:
                group = by_type[type_] = ([], [])
            group[0].append(i)
            group[1].append(eid)
    effects = history.derived(effects_index)
    # (consumer, event id) of every effect in the sink: the harness's own evidence that an event was applied.
    caused = set(zip(effects.consumer, column(history.observed("effects"), "event_id")))
    owed: dict[str, int] = {}
    unapplied: dict[str, list[int]] = {}
    for c in known:
        done = applied.get(c, frozenset())
        owed[c] = len(bad)
        mine = list(bad)
        for t in sorted(subscribed[c]):
            indexes, eids = by_type.get(t, ((), ()))
            owed[c] += len(indexes)
            mine.extend(i for i, e in zip(indexes, eids) if e not in done)
        unapplied[c] = sorted(mine)
    return _Debts(bad, owed, unapplied, lambda c, i, eid: (c, eid) in caused)


def _debts_fast(history: History, known: list[str], subscribed: Mapping[str, frozenset[str]]) -> _Debts | None:
    """As ``_debts``, on the columns: only the unapplied records are listed one by one (None when the
    history has no frame, or its columns cannot be read as arrays; see _arrays.py)."""
    topic, applied, effects = source(history, "topic"), source(history, "applied"), source(history, "effects")
    if topic is None or applied is None or (effects is None) == ("effects" in history.observations):
        return None
    a_consumer, a_event, a_order = (applied.str_codes(n, required=True) for n in ("consumer", "event_id", "order_id"))
    eid, type_ = topic.str_codes("event_id"), topic.str_codes("type")
    undecodable = topic.columns.get("undecodable")
    if undecodable is not None and (undecodable.kind != "bool"):
        return None
    e_consumer = effects.str_codes("consumer", required=True) if effects is not None else np.zeros(0, np.int32)
    e_kind = effects.str_codes("kind", required=True) if effects is not None else np.zeros(0, np.int32)
    e_order = effects.str_codes("order_id", required=True) if effects is not None else np.zeros(0, np.int32)
    e_event = effects.str_codes("event_id") if effects is not None else np.zeros(0, np.int32)
    if (a_consumer is None or a_event is None or a_order is None or eid is None or type_ is None
            or e_consumer is None or e_kind is None or e_order is None or e_event is None):
        return None
    broken = (eid < 0) | (type_ < 0)
    if undecodable is not None:
        broken |= (undecodable.values != 0) & (undecodable.mask == 0 if undecodable.mask is not None else True)
    bad = np.flatnonzero(broken)
    code = topic.frame.code
    owed: dict[str, int] = {}
    unapplied: dict[str, list[int]] = {}
    for c in known:
        mine = ~broken & isin(type_, np.array([code(t) for t in subscribed[c]], dtype=np.int64))
        owed[c] = len(bad) + int(np.count_nonzero(mine))
        done = isin(eid, a_event[a_consumer == code(c)])
        unapplied[c] = np.union1d(bad, np.flatnonzero(mine & ~done)).tolist()
    effect_events: dict[str, npt.NDArray[Any]] = {}

    def caused(c: str, i: int, _: object) -> bool:
        if c not in effect_events:
            effect_events[c] = unique(e_event[e_consumer == code(c)])
        return bool(isin(eid[i:i + 1], effect_events[c])[0])

    return _Debts(bad.tolist(), owed, unapplied, caused)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _record(rec: object) -> dict[str, object]:
    return {f: rec.get(f) for f in _RECORD_FIELDS}  # type: ignore[attr-defined]
