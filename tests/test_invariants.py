"""Checkers I2-I8 on hand-built histories: each anomaly caught and named, each clean history passed."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from harness.analysis import CHECKERS
from harness.checkers.base import Validity, run_checker
from harness.checkers.contract import SchemaContract
from harness.checkers.dlq import DlqAccounted
from harness.checkers.duplicates import ExactlyOnceEffect
from harness.checkers.ordering import PerEntityOrder
from harness.checkers.phantom import NoPhantom
from harness.checkers.recovery import BoundedRecovery
from harness.checkers.schemas import REGISTRY, Field, JsonType, Schema, compatibility_problems
from harness.checkers.trace import TraceComplete
from harness.history.ops import History, OpType
from harness.testing import HistoryBuilder

ALL = ("payment", "inventory", "fulfillment", "notification")


def shop(*consumers: str) -> HistoryBuilder:
    """Two complete orders through a pipeline running the given consumers (all four by default)."""
    h = HistoryBuilder().consumers(*(consumers or ALL))
    return h.flow("o1", ("place", "pay", "ship"), amount_cents=1200).flow("o2", ("place", "pay"), amount_cents=800)


def anomalies(result: object) -> list[str]:
    return [str(e["anomaly"]) for e in result.examples]  # type: ignore[attr-defined]


def test_a_clean_shop_is_valid_for_every_checker() -> None:
    h = shop().fault_window(1.0, 2.0).flow("o3", at=1.5).lag(2.5, 3).lag(3.0, 0).build()
    for checker in CHECKERS:
        result = run_checker(checker, h)
        assert result.validity is Validity.VALID, (checker.name, result.message)


# ---- I2 exactly-once-effect -------------------------------------------------------------------
def test_a_charge_taken_twice_is_a_duplicate_effect_with_its_chain() -> None:
    h = shop().effect("o2", "payment", "charge", 800, event_id="o2/2", correlation_id="o2/pay").build()
    result = ExactlyOnceEffect().check(h)
    assert result.validity is Validity.INVALID
    assert result.counts["duplicated"] == 1 and result.counts["extra_cents"] == 800
    (example,) = result.examples
    assert example["anomaly"] == "duplicate-effect" and example["order_id"] == "o2"
    assert "one event applied twice" in str(example["cause"])
    stages = {step["stage"] for step in example["chain"]}  # type: ignore[union-attr]
    assert {"pay ok", "committed", "event on topic", "applied by consumer", "effect"} <= stages


def test_redelivery_the_consumer_absorbed_is_counted_not_flagged() -> None:
    h = shop().redeliver("o2/2").redeliver("o1/1").build()
    result = ExactlyOnceEffect().check(h)
    assert result.validity is Validity.VALID
    assert result.counts["redelivered"] == 2 and result.counts["absorbed"] == 2


def test_two_distinct_events_for_one_step_are_a_duplicate_effect() -> None:
    h = shop().effect("o2", "payment", "charge", 800, event_id="o2/9", correlation_id="o2/pay").build()
    (example,) = ExactlyOnceEffect().check(h).examples
    assert "distinct events" in str(example["cause"])


def test_no_effects_observed_is_unknown() -> None:
    h = HistoryBuilder().order("o1").build()
    assert ExactlyOnceEffect().check(h).validity is Validity.UNKNOWN


# ---- I3 per-entity-order ----------------------------------------------------------------------
def test_events_applied_out_of_seq_order_are_nonmonotonic() -> None:
    h = shop()
    for row in h.observations["applied"]:  # fulfillment applies o1's shipped event before its paid event
        if row["consumer"] == "fulfillment" and row["order_id"] == "o1":
            row["position"] = {2: 20, 3: 10}[row["seq"]]  # type: ignore[index]
    result = PerEntityOrder().check(h.build())
    assert result.validity is Validity.INVALID
    assert sorted(anomalies(result)) == ["nonmonotonic-apply", "shipped-before-paid"]
    nonmono = next(e for e in result.examples if e["anomaly"] == "nonmonotonic-apply")
    assert nonmono["applied_first"]["seq"] == 3 and nonmono["applied_later"]["seq"] == 2  # type: ignore[index]


def test_a_shipment_without_the_paid_event_applied_is_shipped_before_paid() -> None:
    h = shop()
    h.observations["applied"] = [r for r in h.observations["applied"]
                                 if not (r["consumer"] == "fulfillment" and r["type"] == "order.paid")]
    result = PerEntityOrder().check(h.build())
    assert anomalies(result) == ["shipped-before-paid"]
    assert result.examples[0]["paid_applied"] is None


def test_gaps_in_seq_are_not_anomalies() -> None:
    h = HistoryBuilder().consumers("payment").flow("o1", ("place", "pay"))  # payment sees seq 2 only
    h.applied("payment", "o1", "order.created", 1, event_id="o1/1")  # and a skipped event recorded after it
    result = PerEntityOrder().check(h.build())
    assert result.validity is Validity.INVALID  # seq 1 after seq 2 is out of order, recorded or not
    h2 = HistoryBuilder().consumers("payment").flow("o1", ("place", "pay")).build()
    assert PerEntityOrder().check(h2).validity is Validity.VALID


def test_applied_rows_out_of_position_order_are_sorted_first() -> None:
    h = shop()
    h.observations["applied"].reverse()
    assert PerEntityOrder().check(h.build()).validity is Validity.VALID


def topic_row(h: HistoryBuilder, event_id: str) -> dict[str, object]:
    return next(r for r in h.observations["topic"] if r.get("event_id") == event_id)  # type: ignore[return-value]


def test_an_order_split_over_partitions_is_a_split_entity() -> None:
    h = shop()
    row = topic_row(h, "o1/3")
    row["partition"] = (int(row["partition"]) + 1) % 3  # type: ignore[call-overload]
    result = PerEntityOrder().check(h.build())
    assert anomalies(result) == ["split-entity"] and result.counts["split_entities"] == 1


def test_events_published_out_of_seq_order_are_nonmonotonic_publish() -> None:
    h = shop()
    first, second = topic_row(h, "o1/1"), topic_row(h, "o1/2")
    first["offset"], second["offset"] = second["offset"], first["offset"]
    result = PerEntityOrder().check(h.build())
    assert anomalies(result) == ["nonmonotonic-publish"]
    assert [r["seq"] for r in result.examples[0]["records"]] == [2, 1]  # type: ignore[index]


def test_a_redelivered_copy_behind_later_events_is_not_a_reordering() -> None:
    assert PerEntityOrder().check(shop().redeliver("o1/1").build()).validity is Validity.VALID


def test_carrying_on_past_a_dead_letter_applies_out_of_order() -> None:
    h = shop().dead_letter("fulfillment", "o1/2", reason="rejected by the database: DataError")
    shipment = next(e for e in h.observations["effects"] if e["kind"] == "shipment")
    h.observations["effects"].remove(shipment)  # keep shipped-before-paid out of it
    result = PerEntityOrder().check(h.build())
    assert anomalies(result) == ["applied-past-dead-letter"]
    assert result.examples[0]["dead_lettered"]["seq"] == 2  # type: ignore[index]


# ---- I4 no-phantom -----------------------------------------------------------------------------
def test_failed_place_with_a_reservation_is_a_phantom_effect() -> None:
    h = shop().flow("o9", ("place",), outcomes={"place": OpType.FAIL})
    h.effect("o9", "inventory", "reservation", correlation_id="x", event_id="o9/1")
    result = NoPhantom().check(h.build())
    assert result.validity is Validity.INVALID and anomalies(result) == ["phantom-effect"]
    assert result.examples[0]["effects"] == ["inventory:reservation"]


def test_failed_place_that_left_an_order_row_and_event_is_phantom() -> None:
    h = shop().flow("o9", ("place",), outcomes={"place": OpType.FAIL}, committed={"place": True})
    result = NoPhantom().check(h.build())
    assert {"phantom-order", "phantom-event", "phantom-effect"} <= set(anomalies(result))


def test_unknown_outcomes_all_or_nothing_are_valid() -> None:
    h = shop().flow("o3", ("place", "pay"), outcomes={"pay": OpType.INFO}, committed={"pay": True})
    h.flow("o4", ("place", "pay"), outcomes={"pay": OpType.INFO}, committed={"pay": False})
    result = NoPhantom().check(h.build())
    assert result.validity is Validity.VALID, result.message
    assert result.counts["unknown_committed"] == 1 and result.counts["unknown_absent"] == 1


def test_unknown_outcome_committed_without_its_effect_is_flagged() -> None:
    h = shop().flow("o3", ("place", "pay"), outcomes={"pay": OpType.INFO}, committed={"pay": True})
    h.observations["effects"] = [e for e in h.observations["effects"] if e["order_id"] != "o3" or e["kind"] != "charge"]
    result = NoPhantom().check(h.build())
    assert anomalies(result) == ["committed-without-effect"]
    assert result.examples[0]["missing"] == ["payment:charge"]


def test_unknown_cancel_committed_without_its_event_is_flagged() -> None:
    """A cancel requires no consumer effect: its event on the topic is the only other half of "all"."""
    h = shop().flow("o5", ("place", "cancel"), outcomes={"cancel": OpType.INFO}, committed={"cancel": True})
    assert NoPhantom().check(h.build()).validity is Validity.VALID  # committed and published: all
    h.observations["topic"] = [r for r in h.observations["topic"] if r["type"] != "order.cancelled"]
    result = NoPhantom().check(h.build())
    assert anomalies(result) == ["committed-without-event"] and result.counts["committed_without_event"] == 1
    assert result.examples[0]["event_type"] == "order.cancelled"


def test_unknown_outcome_not_committed_with_an_effect_is_flagged() -> None:
    h = shop().flow("o3", ("place", "pay"), outcomes={"pay": OpType.INFO}, committed={"pay": False})
    h.effect("o3", "payment", "charge", correlation_id="y")
    assert anomalies(NoPhantom().check(h.build())) == ["effect-without-commit"]


def test_a_failed_request_retried_successfully_is_not_a_phantom() -> None:
    h = shop()
    h.op("client-1", OpType.INVOKE, "pay", "o2").op("client-1", OpType.FAIL, "pay", "o2", error="HTTP 503")
    assert NoPhantom().check(h.build()).validity is Validity.VALID


# ---- I5 dlq-accounted --------------------------------------------------------------------------
def test_an_event_neither_applied_nor_dead_lettered_vanished() -> None:
    h = shop()
    h.observations["applied"] = [r for r in h.observations["applied"]
                                 if not (r["consumer"] == "notification" and r["order_id"] == "o2")]
    h.observations["effects"] = [e for e in h.observations["effects"]
                                 if not (e["consumer"] == "notification" and e["order_id"] == "o2")]
    result = DlqAccounted().check(h.build())
    assert result.validity is Validity.INVALID and anomalies(result) == ["vanished"]
    assert result.counts["vanished:notification"] == 1 and result.counts["vanished:payment"] == 0
    assert result.examples[0]["record"]["event_id"] == "o2/1"  # type: ignore[index]
    assert result.examples[0]["chain"]


def test_dead_lettered_with_a_reason_is_accounted_and_without_one_is_not() -> None:
    ok = shop().dead_letter("notification", "o2/1").build()
    result = DlqAccounted().check(ok)
    assert result.validity is Validity.VALID and result.counts["dead_lettered:notification"] == 1
    bad = shop().dead_letter("notification", "o2/1", reason="").build()
    assert anomalies(DlqAccounted().check(bad)) == ["dlq-without-reason"]


def test_undecodable_records_must_be_in_every_consumers_dlq() -> None:
    h = shop("payment", "inventory").topic("", "", 0, partition=0, offset=99, payload="not json", undecodable=True)
    h.dlq("payment", 0, 99, reason="undecodable: not JSON")
    result = DlqAccounted().check(h.build())
    assert result.counts["undecodable"] == 1
    assert result.counts["vanished:inventory"] == 1 and result.counts["vanished:payment"] == 0


def test_events_of_types_a_consumer_ignores_are_not_owed_to_it() -> None:
    h = HistoryBuilder().consumers("payment").flow("o1", ("place", "pay")).build()  # created is not payment's
    assert DlqAccounted().check(h).validity is Validity.VALID


def test_no_topic_observation_makes_dlq_and_schema_unknown() -> None:
    h = HistoryBuilder().order("o1").charge("o1").row("applied", consumer="payment", position=1, event_id="e",
                                                       order_id="o1", type="order.paid", seq=2, applied_at_ms=0)
    h.observations["dlq"] = []
    built = h.build()
    assert DlqAccounted().check(built).validity is Validity.UNKNOWN
    assert SchemaContract().check(built).validity is Validity.UNKNOWN
    assert "topic" in DlqAccounted().check(built).message


# ---- I6 trace-complete -------------------------------------------------------------------------
@pytest.mark.parametrize(("cid", "anomaly"), [(None, "missing-correlation-id"), ("someone-else", "foreign-correlation-id")])
def test_effects_that_cannot_be_traced_to_their_request(cid: str | None, anomaly: str) -> None:
    h = shop()
    next(e for e in h.observations["effects"] if e["kind"] == "charge")["correlation_id"] = cid
    result = TraceComplete().check(h.build())
    assert result.validity is Validity.INVALID and anomalies(result) == [anomaly]


def test_each_effect_is_traced_to_its_own_causing_request() -> None:
    h = shop()  # an email carrying the pay request's correlation id is foreign: email is caused by place
    next(e for e in h.observations["effects"] if e["kind"] == "email")["correlation_id"] = "o1/pay"
    result = TraceComplete().check(h.build())
    assert anomalies(result) == ["foreign-correlation-id"] and result.examples[0]["expected"] == ["o1/place"]


def test_unknown_outcome_effects_are_unverifiable_not_violations() -> None:
    h = shop().flow("o3", ("place", "pay"), outcomes={"pay": OpType.INFO}, committed={"pay": True})
    result = TraceComplete().check(h.build())
    assert result.validity is Validity.VALID and result.counts["unverifiable"] == 1


def test_place_with_unknown_outcome_is_traced_through_the_order_row() -> None:
    h = shop().flow("o3", ("place",), outcomes={"place": OpType.INFO}, committed={"place": True})
    next(e for e in h.observations["effects"] if e["order_id"] == "o3")["correlation_id"] = "other"
    assert anomalies(TraceComplete().check(h.build())) == ["foreign-correlation-id"]


def test_effects_nobody_could_trace_are_unknown() -> None:
    h = HistoryBuilder().order("o1").charge("o1").build()  # ok ops without correlation ids
    assert TraceComplete().check(h).validity is Validity.UNKNOWN


# ---- I7 bounded-recovery -----------------------------------------------------------------------
def recovered(*samples: tuple[float, int, int]) -> HistoryBuilder:
    h = shop().fault_window(1.0, 2.0)
    for at, lag, backlog in samples:
        h.lag(at, lag, backlog)
    return h


def test_recovery_time_is_measured_from_heal_to_first_zero_sample() -> None:
    h = recovered((1.5, 40, 9), (2.5, 12, 0), (3.25, 0, 0), (4.0, 0, 0)).build()
    result = BoundedRecovery(budget_s=5.0).check(h)
    assert result.validity is Validity.VALID and result.counts["recovery_s"] == 1.25
    assert result.counts["max_lag_after_heal"] == 12


def test_recovery_over_budget_is_invalid_with_the_samples() -> None:
    h = recovered((2.5, 12, 0), (9.0, 0, 0)).build()
    result = BoundedRecovery(budget_s=5.0).check(h)
    assert result.validity is Validity.INVALID and result.counts["recovery_s"] == 7.0
    assert anomalies(result) == ["slow-recovery"] and len(result.examples[0]["samples"]) == 2  # type: ignore[arg-type]


def test_a_process_dead_at_the_end_did_not_recover_whatever_the_lag_says() -> None:
    h = recovered((2.5, 0, 0)).row("processes", process="consumer.payment", alive=True, returncode=None, log_tail=None)
    assert BoundedRecovery().check(h.build()).validity is Validity.VALID
    h.row("processes", process="relay", alive=False, returncode=-9, log_tail="panic: boom")
    result = BoundedRecovery().check(h.build())
    assert result.validity is Validity.INVALID and "relay (exit -9)" in result.message
    assert anomalies(result)[0] == "did-not-recover" and result.examples[0]["log_tail"] == "panic: boom"


def test_backlog_counts_as_not_recovered() -> None:
    result = BoundedRecovery(budget_s=1.0).check(recovered((2.5, 0, 4), (4.0, 0, 0)).build())
    assert result.validity is Validity.INVALID and result.counts["recovery_s"] == 2.0


def test_never_recovered_is_invalid_and_not_watched_long_enough_is_unknown() -> None:
    never = recovered((2.5, 5, 0), (10.0, 3, 0)).build()
    assert anomalies(BoundedRecovery(budget_s=5.0).check(never)) == ["never-recovered"]
    assert BoundedRecovery().check(never).validity is Validity.INVALID
    short = recovered((2.5, 5, 0)).build()
    assert BoundedRecovery(budget_s=5.0).check(short).validity is Validity.UNKNOWN


def test_no_sample_after_heal_is_unknown_and_no_fault_is_valid() -> None:
    assert BoundedRecovery().check(recovered((1.5, 5, 0)).build()).validity is Validity.UNKNOWN
    assert BoundedRecovery().check(shop().lag(1.0, 0).build()).validity is Validity.VALID


def test_failed_samples_are_ignored_and_the_drain_probe_counts_as_zero() -> None:
    h = recovered((2.5, 5, 0)).lag(3.0, None, ok=False).op("probe", OpType.OK, "drain", at=4.0, state="done").build()
    result = BoundedRecovery(budget_s=5.0).check(h)
    assert result.validity is Validity.VALID and result.counts["recovery_s"] == 2.0
    assert result.counts["failed_samples"] == 1


# ---- I8 schema-contract ------------------------------------------------------------------------
def with_payload(payload: str | None, **row: object) -> HistoryBuilder:
    return shop().topic("o7", "order.created", 1, payload=payload, **row)  # type: ignore[arg-type]


def event(**changes: object) -> str:
    base = {"event_id": "x", "type": "order.created", "order_id": "o7", "seq": 1, "schema_version": 1,
            "correlation_id": "c", "occurred_at": "t", "customer": "k", "amount_cents": 5}
    base.update(changes)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


@pytest.mark.parametrize(("payload", "anomaly"), [
    ("not json", "undecodable"),
    ("[1, 2]", "undecodable"),
    (event(schema_version=...), "missing-schema-version"),
    (event(schema_version=7), "unregistered-version"),
    (event(schema_version="1"), "unregistered-version"),
    (event(customer=...), "invalid-event"),
    (event(amount_cents="5"), "invalid-event"),
    (event(seq=True), "invalid-event"),
    (event(amount_cents=5.5), "invalid-event"),
])
def test_events_that_break_the_contract(payload: str, anomaly: str) -> None:
    result = SchemaContract().check(with_payload(payload).build())
    assert result.validity is Validity.INVALID and anomalies(result) == [anomaly]
    assert result.examples[0]["payload"] == payload


def test_same_shape_is_judged_the_same_by_the_fast_path() -> None:
    h = shop()
    for i in range(3):
        h.topic("o8", "order.created", 1, payload=event(amount_cents=f"{i}"))
        h.topic("o8", "order.created", 1, payload=event(customer="k\\u00e9" * i))  # escapes take the slow path
    result = SchemaContract().check(h.build())
    assert result.counts["invalid_event"] == 3 and result.counts["version:1"] == 5 + 3  # 5 from shop(), 3 customers


def test_undeclared_fields_are_allowed_and_counted() -> None:
    result = SchemaContract().check(with_payload(event(discount=3)).build())
    assert result.validity is Validity.VALID and result.counts["undeclared_fields"] == 1


def test_records_without_their_raw_value_are_unvalidated() -> None:
    h = HistoryBuilder().row("topic", partition=0, offset=0, event_id="e", order_id="o", type="order.created", seq=1)
    result = SchemaContract().check(h.build())
    assert result.validity is Validity.UNKNOWN and result.counts["unvalidated"] == 1


V1 = REGISTRY[1]


def v2(**fields: Field) -> Schema:
    return Schema(2, MappingProxyType({**V1.fields, **fields}))


def test_a_new_version_may_add_optional_fields_only() -> None:
    assert compatibility_problems(V1, v2(coupon=Field(JsonType.STRING, required=False))) == []
    assert "adds required field 'coupon'" in compatibility_problems(V1, v2(coupon=Field(JsonType.STRING)))[0]
    assert "changes 'amount_cents'" in compatibility_problems(V1, v2(amount_cents=Field(JsonType.STRING)))[0]
    removed = Schema(2, MappingProxyType({k: f for k, f in V1.fields.items() if k != "customer"}))
    assert "removes field 'customer'" in compatibility_problems(V1, removed)[0]


def test_an_incompatible_registry_breaks_the_contract() -> None:
    registry = {1: V1, 2: v2(amount_cents=Field(JsonType.NUMBER))}
    result = SchemaContract(registry=registry).check(shop().build())
    assert result.validity is Validity.INVALID and anomalies(result) == ["incompatible-versions"]


def test_registered_versions_are_backward_compatible() -> None:
    versions = sorted(REGISTRY)
    for old, new in zip(versions, versions[1:]):
        assert compatibility_problems(REGISTRY[old], REGISTRY[new]) == []


def test_v1_is_the_event_of_the_domain() -> None:
    from dataclasses import fields

    from targets.domain import Event

    assert set(V1.fields) == {f.name for f in fields(Event)}
    types = {"str": JsonType.STRING, "int": JsonType.INTEGER}
    assert {k: f.type for k, f in V1.fields.items()} == {f.name: types[str(f.type)] for f in fields(Event)}


# ---- what today's skeleton pipelines report -------------------------------------------------------
def skeleton(lose: tuple[str, ...] = ()) -> History:
    """A broker-outage run as the walking skeleton reports it: payment consumer only, no lag probes."""
    h = HistoryBuilder().consumers("payment").flow("o0", at=0.5).fault_window(1.0, 3.0)
    for i in range(1, 6):
        h.flow(f"o{i}", at=1.0 + 0.3 * i)
    for order in lose:  # direct publish dropped the paid event: nothing downstream of it exists
        h.observations["topic"] = [r for r in h.observations["topic"] if r["event_id"] != f"{order}/2"]
        h.observations["applied"] = [r for r in h.observations["applied"] if r["event_id"] != f"{order}/2"]
        h.observations["effects"] = [r for r in h.observations["effects"] if r["event_id"] != f"{order}/2"]
    h.op("probe", OpType.OK, "drain", at=5.0, state="publish backlog 0, consumer lag 0")
    h.row("drain", drained=True, nemesis_errors=None)
    return h.build()


def test_skeleton_outbox_run_is_valid_everywhere_and_direct_breaks_only_i1() -> None:
    from harness.analysis import analyze
    from harness.checkers.anomaly import AnomalyKind
    from harness.expect import Expect
    from harness.scoring import Outcome, exit_code

    outbox, direct = analyze({"outbox": skeleton(), "direct": skeleton(lose=("o2", "o4"))},
                             (Expect("direct", (AnomalyKind.LOST_EFFECT,), "planted loss"),))
    assert {r.checker: r.validity for r in outbox.results} == {c.name: Validity.VALID for c in CHECKERS}, outbox.reasons
    assert {r.checker for r in direct.results if r.validity is not Validity.VALID} == {"no-lost-effect"}
    assert outbox.outcome is Outcome.MET and direct.outcome is Outcome.MET and exit_code((outbox, direct)) == 0
    assert outbox.result("bounded-recovery").counts["recovery_s"] == 2.0  # type: ignore[union-attr]


def test_the_chain_follows_correlation_ids_across_a_misfiled_effect() -> None:
    from harness.checkers.chain import order_chain

    h = shop().effect("o9", "payment", "charge", correlation_id="o2/pay").build()  # o2's payment, filed under o9
    chain = order_chain(h, "o2")
    misfiled = [s for s in chain if s.get("matched_by") == "correlation_id"]
    assert len(misfiled) == 1 and misfiled[0]["order_id"] == "o9" and misfiled[0]["stage"] == "effect"
    topic = [s for s in chain if s["stage"] == "event on topic"]
    assert topic and all("partition" in s and "offset" in s and "payload" not in s for s in topic)


def row_state(**changes: object) -> str:
    row = {"order_id": "o7", "customer": "k", "amount_cents": 5, "status": "paid", "version": 2,
           "correlation_id": "c", "created_at": "2026-11-26T20:00:00Z", "updated_at": "2026-11-26T20:00:01Z"}
    row.update(changes)
    return json.dumps({k: v for k, v in row.items() if v is not ...})


def test_cdc_row_states_validate_against_the_row_schema() -> None:
    result = SchemaContract().check(with_payload(row_state()).build())
    assert result.validity is Validity.VALID and result.counts["version:row-state"] == 1
    broken = SchemaContract().check(with_payload(row_state(amount_cents="5")).build())
    assert anomalies(broken) == ["invalid-event"]


def poisoned(published: int, on_topic: int) -> History:
    h = shop().fault_window(1.0, 2.0, effect=published, fault="poison", target="orders")
    for i in range(on_topic):
        h.topic("", "", 0, partition=0, offset=100 + i, payload='["not", "an", "event"]', undecodable=True)
    return h.build()


def test_poison_the_nemesis_published_is_the_faults_not_the_pipelines() -> None:
    result = SchemaContract().check(poisoned(published=2, on_topic=2))
    assert result.validity is Validity.VALID and result.counts["injected_poison"] == 2
    more = SchemaContract().check(poisoned(published=2, on_topic=3))
    assert more.validity is Validity.INVALID and more.counts["undecodable"] == 1
    # An event that claims an id is judged whatever the nemesis did.
    h = shop().fault_window(1.0, 2.0, effect=5, fault="poison", target="orders")
    h.topic("o7", "order.created", 1, payload=event(customer=...))
    assert anomalies(SchemaContract().check(h.build())) == ["invalid-event"]


def test_a_later_change_of_the_row_does_not_stand_in_for_an_unknown_place() -> None:
    h = shop()
    h.flow("o3", ("place",), outcomes={"place": OpType.INFO}, committed={"place": True})
    next(r for r in h.observations["orders"] if r["order_id"] == "o3").update(version=2, correlation_id="o3/other")
    result = TraceComplete().check(h.build())
    assert result.validity is Validity.VALID and result.counts["unverifiable"] == 2  # reservation and email


def test_partial_sources_decide_what_they_can() -> None:
    h = shop()
    del h.observations["effects"]
    assert PerEntityOrder().check(h.build()).validity is Validity.UNKNOWN
    for row in h.observations["applied"]:
        if row["consumer"] == "fulfillment" and row["order_id"] == "o1":
            row["position"] = {2: 20, 3: 10}[row["seq"]]  # type: ignore[index]
    assert PerEntityOrder().check(h.build()).validity is Validity.INVALID
    no_dlq = shop()
    del no_dlq.observations["dlq"]
    assert DlqAccounted().check(no_dlq.build()).validity is Validity.VALID  # everything was applied
    no_dlq.observations["applied"].pop()
    result = DlqAccounted().check(no_dlq.build())
    assert result.validity is Validity.UNKNOWN and result.counts["unaccounted"] == 1


def _acknowledged_without_effects(h: HistoryBuilder, order: str) -> HistoryBuilder:
    """An order placed and committed (its row is there) whose events reached no consumer."""
    h.op("client-0", OpType.INVOKE, "place", order, amount_cents=500)
    h.row("orders", order_id=order, customer="k", amount_cents=500, status="created", version=1,
          correlation_id=f"{order}/place")
    return h.op("client-0", OpType.OK, "place", order, amount_cents=500, correlation_id=f"{order}/place")


def test_events_still_waiting_at_the_source_are_pending_never_lost() -> None:
    from harness.checkers.loss import NoLostEffect

    h = _acknowledged_without_effects(shop(), "o3")
    assert NoLostEffect().check(h.build()).validity is Validity.INVALID
    h.row("pending", order_id="o3")
    result = NoLostEffect().check(h.build())
    assert result.validity is Validity.UNKNOWN and "pending at source: 1" in result.message
    assert result.counts["lost"] == 0 and result.counts["pending_at_source"] == 1
    assert anomalies(result) == ["pending-at-source"]


def test_required_effects_come_from_the_history_domain() -> None:
    """A target whose domain requires only a charge is not blamed for a missing reservation."""
    from harness.checkers.loss import NoLostEffect

    h = _acknowledged_without_effects(shop(), "o3")
    h.row("requires", step="pay", consumer="payment", kind="charge")
    assert NoLostEffect().check(h.build()).validity is Validity.VALID
