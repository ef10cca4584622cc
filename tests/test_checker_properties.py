"""Properties of the checkers over random histories: no false alarm, and each planted anomaly caught by its checker only.

A clean history is what a correct pipeline leaves behind: random orders, each step ok,
failed or unknown (and then committed or not), all four consumers or some of them,
absorbed redeliveries, events a consumer dead-lettered without owing an effect, a fault
with traffic inside it and a recovery within budget. Every checker must call it valid.

Then one anomaly of one kind is planted, and exactly the checker for that kind must
turn invalid, every other checker keeping its verdict: a checker that fires on another
checker's anomaly is a false alarm in disguise.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.checkers.base import Checker, Validity, run_checker
from harness.checkers.contract import SchemaContract
from harness.checkers.dlq import DlqAccounted
from harness.checkers.duplicates import ExactlyOnceEffect
from harness.checkers.loss import NoLostEffect
from harness.checkers.ordering import PerEntityOrder
from harness.checkers.phantom import NoPhantom
from harness.checkers.recovery import BoundedRecovery
from harness.checkers.stats import Stats
from harness.checkers.trace import TraceComplete
from harness.history.ops import History, OpType
from harness.testing import HistoryBuilder

BUDGET_S = 2.0
CHECKERS: tuple[Checker, ...] = (Stats(), NoLostEffect(), ExactlyOnceEffect(), PerEntityOrder(), NoPhantom(),
                                 DlqAccounted(), TraceComplete(), BoundedRecovery(budget_s=BUDGET_S), SchemaContract())
ALL = ("payment", "inventory", "fulfillment", "notification")
STEPS = ("place", "pay", "ship")

outcome = st.sampled_from([OpType.OK] * 6 + [OpType.FAIL, OpType.INFO])


@st.composite
def orders(draw: st.DrawFn) -> tuple[tuple[str, ...], dict[str, OpType], dict[str, bool]]:
    steps = STEPS[:draw(st.integers(1, 3))]
    outcomes = {s: draw(outcome) for s in steps}
    committed = {s: draw(st.booleans()) for s, o in outcomes.items() if o is OpType.INFO}
    return steps, outcomes, committed


@st.composite
def clean_builders(draw: st.DrawFn, consumers: tuple[str, ...] | None = None) -> HistoryBuilder:
    running = consumers or tuple(draw(st.lists(st.sampled_from(ALL), min_size=1, max_size=4, unique=True)))
    h = HistoryBuilder().consumers(*running)
    # Fixed orders every history has, so each kind of anomaly has somewhere to go.
    h.flow("full", STEPS, at=0.5, amount_cents=draw(st.integers(1, 10_000)))
    h.flow("failed", ("place",), outcomes={"place": OpType.FAIL})
    h.fault_window(1.0, 3.0)
    h.flow("unsure", ("place", "pay"), outcomes={"pay": OpType.INFO}, committed={"pay": True}, at=1.05)
    for i, (steps, outcomes, committed) in enumerate(draw(st.lists(orders(), max_size=8))):
        h.flow(f"o{i}", steps, outcomes=outcomes, committed=committed, at=1.1 + 0.2 * i,
               amount_cents=draw(st.integers(1, 10_000)), client=f"client-{i % 3}")
    events = [str(r["event_id"]) for r in h.observations["topic"]]
    for event_id in draw(st.lists(st.sampled_from(events), max_size=3)):
        h.redeliver(event_id)  # at-least-once delivery, absorbed by the consumers
    if "fulfillment" in running:
        # Fulfillment owes no effect for a paid event of an order that never ships: it may dead-letter it.
        unshipped = sorted({str(r["event_id"]) for r in h.observations["applied"]
                            if r["consumer"] == "fulfillment" and r["type"] == "order.paid"}
                           - {f"{r['order_id']}/2" for r in h.observations["topic"] if r["type"] == "order.shipped"})
        if unshipped and draw(st.booleans()):
            h.dead_letter("fulfillment", draw(st.sampled_from(unshipped)))
    heal = 3.0
    lag = draw(st.integers(1, 500))
    h.lag(heal + 0.1, lag, draw(st.integers(0, lag))).lag(heal + draw(st.floats(0.2, BUDGET_S)), 0, 0)
    return h


def verdicts(history: History) -> dict[str, Validity]:
    return {c.name: run_checker(c, history).validity for c in CHECKERS}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clean_builders())
def test_a_clean_history_is_valid_for_every_checker(h: HistoryBuilder) -> None:
    history = h.build()
    bad = {c.name: run_checker(c, history) for c in CHECKERS}
    bad = {n: f"{r.validity.value}: {r.message}" for n, r in bad.items() if r.validity is not Validity.VALID}
    assert not bad


# ---- anomalies, each planted on a clean history with all four consumers ------------------------------
def lose_an_effect(h: HistoryBuilder) -> None:
    h.observations["effects"].remove(next(e for e in h.observations["effects"] if e["order_id"] == "full"))


def duplicate_an_effect(h: HistoryBuilder) -> None:
    h.observations["effects"].append(dict(next(e for e in h.observations["effects"] if e["order_id"] == "full")))


def reorder_applies(h: HistoryBuilder) -> None:
    rows = [r for r in h.observations["applied"] if r["consumer"] == "fulfillment" and r["order_id"] == "full"]
    rows[0]["position"], rows[1]["position"] = rows[1]["position"], rows[0]["position"]


def phantom_effect(h: HistoryBuilder) -> None:
    h.effect("failed", "inventory", "reservation", correlation_id="failed/place", event_id="failed/1")


def partial_unknown_outcome(h: HistoryBuilder) -> None:
    h.observations["effects"] = [e for e in h.observations["effects"]
                                 if not (e["order_id"] == "unsure" and e["kind"] == "charge")]


def vanish_an_event(h: HistoryBuilder) -> None:
    """An event on the topic that the consumers owing it neither applied (no record, no effect) nor dead-lettered."""
    created = next(r for r in h.observations["topic"] if r["order_id"] == "full" and r["type"] == "order.created")
    last = max(int(r["offset"]) for r in h.observations["topic"] if r["partition"] == created["partition"])
    h.observations["topic"].append({**created, "event_id": "ghost/1", "order_id": "ghost", "key": "ghost",
                                    "offset": last + 1})


def unlist_an_applied_event(h: HistoryBuilder) -> None:
    """The consumer's own bookkeeping forgets an event whose effect is in the sink (a dedup table with retention)."""
    caused = {(e["consumer"], e["event_id"]) for e in h.observations["effects"]}
    row = next((r for r in h.observations["applied"] if (r["consumer"], r["event_id"]) in caused), None)
    if row is not None:  # planted after another anomaly took every such record away: nothing left to forget
        h.observations["applied"].remove(row)


def foreign_trace(h: HistoryBuilder) -> None:
    next(e for e in h.observations["effects"] if e["order_id"] == "full")["correlation_id"] = "someone-else"


def slow_recovery(h: HistoryBuilder) -> None:
    h.ops = [op for op in h.ops if not (op.process == "probe" and op.value.get("lag") == 0)]
    h.lag(3.0 + BUDGET_S + 1.0, 0, 0)


def break_schema(h: HistoryBuilder) -> None:
    row = h.observations["topic"][0]
    row["payload"] = str(row["payload"]).replace('"customer":', '"client":')


def split_an_order(h: HistoryBuilder) -> None:
    row = next(r for r in h.observations["topic"] if r.get("event_id") == "full/3")
    row["partition"] = (int(row["partition"]) + 1) % 3  # type: ignore[call-overload]


def publish_out_of_order(h: HistoryBuilder) -> None:
    first, second = (next(r for r in h.observations["topic"] if r.get("event_id") == e) for e in ("full/1", "full/2"))
    first["offset"], second["offset"] = second["offset"], first["offset"]


def untraced(h: HistoryBuilder) -> None:
    next(e for e in h.observations["effects"] if e["order_id"] == "full")["correlation_id"] = None


def dead_letter_without_reason(h: HistoryBuilder) -> None:
    h.dead_letter("notification", "full/1", reason="")


def poison_dead_lettered(h: HistoryBuilder) -> None:
    h.topic("", "", 0, partition=0, offset=1000, payload="\x00garbage", undecodable=True)
    for consumer in ALL:
        h.dlq(consumer, 0, 1000, reason="undecodable: not JSON")


PLANTED: dict[str, tuple[str, Callable[[HistoryBuilder], None]]] = {
    # anomaly -> (the checker that must catch it, how to plant it)
    "lost-effect": ("no-lost-effect", lose_an_effect),
    "duplicate-effect": ("exactly-once-effect", duplicate_an_effect),
    "nonmonotonic-apply": ("per-entity-order", reorder_applies),
    "split-entity": ("per-entity-order", split_an_order),
    "nonmonotonic-publish": ("per-entity-order", publish_out_of_order),
    "phantom-effect": ("no-phantom", phantom_effect),
    "committed-without-effect": ("no-phantom", partial_unknown_outcome),
    "vanished": ("dlq-accounted", vanish_an_event),
    "bookkeeping-disagrees": ("dlq-accounted", unlist_an_applied_event),
    "dlq-without-reason": ("dlq-accounted", dead_letter_without_reason),
    "foreign-correlation-id": ("trace-complete", foreign_trace),
    "missing-correlation-id": ("trace-complete", untraced),
    "slow-recovery": ("bounded-recovery", slow_recovery),
    "invalid-event": ("schema-contract", break_schema),
    "undecodable": ("schema-contract", poison_dead_lettered),
}


@pytest.mark.parametrize("anomaly", sorted(PLANTED))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=clean_builders(consumers=ALL))
def test_a_planted_anomaly_is_caught_by_exactly_its_checker(anomaly: str, h: HistoryBuilder) -> None:
    before = verdicts(h.build())
    assert set(before.values()) == {Validity.VALID}, before
    checker, plant = PLANTED[anomaly]
    plant(h)
    history = h.build()
    after = verdicts(history)
    changed = {name: v.value for name, v in after.items() if v is not before[name]}
    assert changed == {checker: "invalid"}
    result = run_checker(next(c for c in CHECKERS if c.name == checker), history)
    assert anomaly in {e.get("anomaly") for e in result.examples}, result.examples


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(clean_builders(consumers=ALL), st.lists(st.sampled_from(sorted(PLANTED)), min_size=1, max_size=4, unique=True))
def test_stored_and_reanalysed_verdicts_are_the_live_ones(tmp_path_factory, h: HistoryBuilder,  # type: ignore[no-untyped-def]
                                                          planted: list[str]) -> None:
    """What `chaos analyze` prints equals what the run printed, examples and chains included."""
    import json

    from harness.analysis import analyze, checkers
    from harness.history.store import HistoryWriter, load_histories

    for anomaly in planted:
        PLANTED[anomaly][1](h)
    live_history = h.build()
    folder = tmp_path_factory.mktemp("run")
    writer = HistoryWriter(folder / "history.jsonl", run_id="r", seed=0)
    recorder = writer.recorder(live_history.pipeline)
    for op in live_history.ops:
        writer._write({"pipeline": live_history.pipeline, "op": op.to_json()})
    for source, obs in live_history.observations.items():
        recorder.observe(source, [dict(r) for r in obs.rows])
    writer.close()
    _, stored = load_histories(folder / "history.jsonl")
    live = analyze({live_history.pipeline: live_history}, (), checkers(BUDGET_S))
    again = analyze(stored, (), checkers(BUDGET_S))
    assert json.dumps([v.to_json() for v in again]) == json.dumps([v.to_json() for v in live])
