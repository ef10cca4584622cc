"""I4 no-phantom: a request that failed left no trace; a request with an unknown outcome is all-or-nothing.

A client op that ended ``fail`` certainly did not happen (the service rolled back or
never got it); one that ended ``info`` may or may not have happened. Anomalies:
  phantom-order            a failed ``place`` left an order row behind
  phantom-event            a failed op's event is on the topic anyway
  phantom-effect           a failed op's effect happened anyway (a charge for a failed payment)
  committed-without-effect an unknown-outcome op committed (the order row or its event shows it)
                           but not every effect it requires happened
  committed-without-event  an unknown-outcome op committed (its order row shows it) but its event
                           never reached the topic: the publish half of "all" is missing. The only
                           evidence for a cancel (no consumer acts on it); judged when the topic
                           was observed
  effect-without-commit    an unknown-outcome op did not commit, yet some of its effects happened

An op counts as failed only when no retry of the same step on the same order ended ok or
info. Required effects come from the history's domain, restricted to consumers the target
runs; acknowledged ops are I1's business, not this checker's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.checkers._arrays import isin, op_arrays, source, unique
from harness.checkers._index import effects_index, ops_by_role, required_column, topic_index
from harness.checkers._sources import missing, pick, running_consumers
from harness.checkers.anomaly import Anomaly, AnomalyKind
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chains
from harness.history.observations import required_effects
from harness.history.frame import ABSENT_CODE, NONE
from harness.history.ops import History, OpType, Row

__all__ = ["EVENT_OF", "STATUS_AFTER", "NoPhantom"]

Outcomes = dict[tuple[str, str], set[OpType]]
"""(order, step) of each request that failed or ended unknown -> the outcomes of all its attempts."""
Evidence = tuple[dict[str, Row], dict[str, set[tuple[str, str]]], dict[str, set[str]]]
"""Of some orders: each one's order row, the (consumer, kind) of its effects, the types of its events on the topic."""

EVENT_OF = {"place": "order.created", "pay": "order.paid", "ship": "order.shipped", "cancel": "order.cancelled"}
"""The event a committed client op publishes."""
STATUS_AFTER = {"pay": frozenset({"paid", "shipped"}), "ship": frozenset({"shipped"}),
                 "cancel": frozenset({"cancelled", "canceled"})}
"""Order statuses that prove an op committed (place: the row exists at all)."""


@dataclass(frozen=True, slots=True)
class NoPhantom:
    name: str = "no-phantom"
    invariant: str | None = "I4"

    def check(self, history: History) -> CheckResult:
        unknown = missing(history, self.name, self.invariant, "orders", "effects")
        if unknown is not None:
            return unknown
        gathered = _gather_fast(history)
        if gathered is None:
            gathered = _gather(history)
        outcomes, evidence = gathered
        fail, info, ok = OpType.FAIL, OpType.INFO, OpType.OK
        failed = [k for k, types in outcomes.items() if types == {fail}]
        unsure = [k for k, types in outcomes.items() if info in types and ok not in types]
        counts: dict[str, int] = {"failed_ops": len(failed), "unknown_ops": len(unsure), "unknown_committed": 0,
                                  "unknown_absent": 0, "phantom_order": 0, "phantom_event": 0, "phantom_effect": 0,
                                  "committed_without_effect": 0, "committed_without_event": 0,
                                  "effect_without_commit": 0}
        if not failed and not unsure:
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               "no request failed or ended unknown, so none could leave a phantom", counts)

        orders = {o for o, _ in failed} | {o for o, _ in unsure}
        rows, effects, events = evidence(orders)
        consumers = set(running_consumers(history))
        topic_seen = "topic" in history.observations

        found: dict[str, list[dict[str, object]]] = {}
        every: list[Anomaly] = []

        def flag(anomaly: str, order: str, f: str, outcome: str, **detail: object) -> None:
            counts[anomaly.replace("-", "_")] += 1
            every.append(Anomaly(AnomalyKind(anomaly), str(order)))
            bucket = found.setdefault(anomaly, [])
            if len(bucket) < MAX_EXAMPLES:
                bucket.append({"anomaly": anomaly, "order_id": order, "op": f, "outcome": outcome, **detail})

        requires = required_effects(history)
        for order, f in failed:
            done = effects.get(order, set())
            if f == "place" and order in rows:
                flag("phantom-order", order, f, "fail", row=dict(rows[order]))
            if EVENT_OF.get(f) in events.get(order, ()):
                flag("phantom-event", order, f, "fail", event_type=EVENT_OF[f])
            phantom = sorted(f"{c}:{k}" for c, k in requires.get(f, ()) if (c, k) in done)
            if phantom:
                flag("phantom-effect", order, f, "fail", effects=phantom)

        for order, f in unsure:
            row = rows.get(order)
            if f == "place":
                committed = row is not None
            else:
                committed = (row is not None and row.get("status") in STATUS_AFTER.get(f, ())) \
                    or EVENT_OF.get(f) in events.get(order, ())
            done = effects.get(order, set())
            required = [(c, k) for c, k in requires.get(f, ()) if c in consumers]
            present = sorted(f"{c}:{k}" for c, k in required if (c, k) in done)
            absent = sorted(f"{c}:{k}" for c, k in required if (c, k) not in done)
            if committed:
                counts["unknown_committed"] += 1
                if absent:
                    flag("committed-without-effect", order, f, "info", missing=absent, present=present)
                if topic_seen and f in EVENT_OF and EVENT_OF[f] not in events.get(order, ()):
                    flag("committed-without-event", order, f, "info", event_type=EVENT_OF[f])
            else:
                counts["unknown_absent"] += 1
                stray = sorted(f"{c}:{k}" for c, k in requires.get(f, ()) if (c, k) in done)
                if stray:
                    flag("effect-without-commit", order, f, "info", effects=stray)
                elif f == "place" and EVENT_OF[f] in events.get(order, ()):
                    flag("phantom-event", order, f, "info", event_type=EVENT_OF[f])

        anomalies = sum(counts[k] for k in ("phantom_order", "phantom_event", "phantom_effect",
                                            "committed_without_effect", "committed_without_event",
                                            "effect_without_commit"))
        if not anomalies:
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               f"{len(failed)} failed requests left nothing; {len(unsure)} unknown outcomes are "
                               f"all-or-nothing ({counts['unknown_committed']} committed, {counts['unknown_absent']} absent)",
                               counts)
        examples = pick(*found.values(), limit=MAX_EXAMPLES)
        chains = order_chains(history, {str(x["order_id"]) for x in examples})
        for x in examples:
            x["chain"] = chains[str(x["order_id"])]
        summary = ", ".join(f"{n} {k.replace('_', '-')}" for k, n in counts.items()
                            if n and k not in ("failed_ops", "unknown_ops", "unknown_committed", "unknown_absent"))
        return CheckResult(self.name, self.invariant, Validity.INVALID, summary, counts, tuple(examples), tuple(every))


def _gather(history: History) -> tuple[Outcomes, Callable[[set[str]], Evidence]]:
    """The doubtful requests' outcomes, and how to read the evidence about their orders, from the ops and rows."""
    fail, info = OpType.FAIL, OpType.INFO
    ops = history.derived(ops_by_role)
    # Few requests fail or end unknown: find those first, then whether a retry of theirs succeeded.
    doubtful = {(op.key, op.f) for op in (*ops.client[fail], *ops.client[info]) if op.key is not None}
    doubtful_keys = {key for key, _ in doubtful}  # a cheap first test for the many ops that are fine
    outcomes: Outcomes = {}  # in the order of each request's first outcome
    if doubtful:
        for op in ops.completions:
            if op.key in doubtful_keys and (op.key, op.f) in doubtful:
                outcomes.setdefault((op.key, op.f), set()).add(op.type)  # type: ignore[arg-type]

    def evidence(orders: set[str]) -> Evidence:
        order_rows = history.observed("orders")  # found by column: a row view only for a doubtful order
        rows = {o: order_rows[i] for i, o in enumerate(required_column(order_rows, "order_id")) if o in orders}
        effects: dict[str, set[tuple[str, str]]] = {}  # order -> (consumer, kind) of its effects
        for (consumer, kind), applied_to in history.derived(effects_index).orders_of.items():
            for o in orders & applied_to:
                effects.setdefault(str(o), set()).add((str(consumer), str(kind)))
        events: dict[str, set[str]] = {}  # order -> types of its events on the topic
        topic = history.derived(topic_index)
        for entity, type_ in zip(topic.order_id, topic.type):
            if entity in orders:
                events.setdefault(str(entity), set()).add(str(type_))
        return rows, effects, events

    return outcomes, evidence


def _gather_fast(history: History) -> tuple[Outcomes, Callable[[set[str]], Evidence]] | None:
    """As ``_gather``, reading only the doubtful requests' ops and their orders' rows from the columns
    (None when the history has none, or they cannot be read as arrays; see _arrays.py)."""
    ops = op_arrays(history)
    orders_src, effects_src = source(history, "orders"), source(history, "effects")
    topic_src = source(history, "topic")
    if ops is None or orders_src is None or effects_src is None or (topic_src is None) == ("topic" in
                                                                                        history.observations):
        return None
    order_id = orders_src.str_codes("order_id", required=True)
    e_consumer, e_kind, e_order = (effects_src.str_codes(n, required=True) for n in ("consumer", "kind", "order_id"))
    t_order = topic_src.str_codes("order_id") if topic_src is not None else np.zeros(0, dtype=np.int32)
    t_type = topic_src.str_codes("type") if topic_src is not None else np.zeros(0, dtype=np.int32)
    if order_id is None or e_consumer is None or e_kind is None or e_order is None or t_order is None \
            or t_type is None:
        return None
    t_type = np.where(t_type == ABSENT_CODE, NONE, t_type)  # a record without a type reads as None, as by column
    doubtful_at = np.flatnonzero((ops.fail | ops.info) & (ops.key >= 0))
    made = ops.ops_at(doubtful_at)
    doubtful = {(op.key, op.f) for op in made}
    code_of = {op.key: c for op, c in zip(made, ops.key[doubtful_at].tolist())}  # every doubtful order's code
    outcomes: Outcomes = {}
    if doubtful:
        completed = np.flatnonzero((ops.ok | ops.fail | ops.info) & isin(ops.key, ops.key[doubtful_at]))
        for op in ops.ops_at(completed):
            if (op.key, op.f) in doubtful:
                outcomes.setdefault((op.key, op.f), set()).add(op.type)  # type: ignore[arg-type]
    pool = ops.frame.pool

    def evidence(orders: set[str]) -> Evidence:
        codes = np.array(sorted(code_of[o] for o in orders), dtype=np.int64)
        order_rows = history.observed("orders")
        at_rows, at_effects, at_events = (np.flatnonzero(isin(c, codes)) for c in (order_id, e_order, t_order))
        used = unique(np.concatenate([order_id[at_rows], e_order[at_effects], e_consumer[at_effects],
                                      e_kind[at_effects], t_order[at_events], t_type[at_events]]))
        text = dict(zip(used.tolist(), pool.take(used)))  # the strings involved, taken from the pool at once
        rows = {text[c]: order_rows[i] for i, c in zip(at_rows.tolist(), order_id[at_rows].tolist())}
        effects: dict[str, set[tuple[str, str]]] = {}
        for o, c, k in zip(e_order[at_effects].tolist(), e_consumer[at_effects].tolist(), e_kind[at_effects].tolist()):
            effects.setdefault(str(text[o]), set()).add((str(text[c]), str(text[k])))
        events: dict[str, set[str]] = {}
        for o, t in zip(t_order[at_events].tolist(), t_type[at_events].tolist()):
            events.setdefault(str(text[o]), set()).add(str(text[t]))
        return rows, effects, events

    return outcomes, evidence
