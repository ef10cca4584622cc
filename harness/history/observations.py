"""The contract between targets and checkers: what a target reports after drain, and what it means.

A target's ``observe()`` returns rows per *source*; the runner stores them in the
history as Observations; checkers read them. Every target (the reference pipelines and
a user's own) reports these sources with these fields. Times are epoch milliseconds.

  orders   ground truth of the order service (what committed)
           order_id, customer, amount_cents, status, version, correlation_id
  topic    every record on the pipeline's event topic, read through the direct listener
           partition, offset, key, timestamp_ms, event_id, order_id, type, seq,
           correlation_id, schema_version, payload (the raw value as text, for schema
           checks), undecodable (true when the value is not a JSON object); and, only on
           records whose publisher sent the provenance headers (``harness.sdk.provenance``),
           outbox_id (the outbox row it was published from) and lsn (the WAL position it was
           captured from, as ``16/B374D848``). Histories written before these existed lack them
           and read as "no provenance recorded"
  applied  every event a consumer applied or deliberately skipped, in the consumer's own
           apply order (``position`` increases per consumer)
           consumer, position, event_id, order_id, type, seq, applied_at_ms
  effects  every side-effect row of every consumer (a duplicate effect is a second row)
           consumer, kind, order_id, event_id, correlation_id, amount_cents, applied_at_ms
  dlq      every record on every consumer's dead-letter topic, recognised by its content
           (``harness.deadletter``): the event from the value, the rest from whichever
           convention's headers it carries
           consumer, dlq_topic, partition, offset, key, event_id, order_id, type, reason,
           source_topic, source_partition, source_offset, convention (chaos, spring-kafka,
           kafka-connect, or none: no headers, reason unknown), headers (JSON text),
           dead_lettered_by (the consumer, group or connector the headers name, if any)
  consumers  one row per consumer the target runs: consumer (effects are required only
           of consumers that exist)
  domain   the domain pack's consumers: domain, consumer, subscribes (comma-separated event
           types), effect (the kind it writes)
  requires what each acknowledged client step requires: step, consumer, kind
  processes  every process of the target at the end: process, alive, returncode, log_tail
  pending  entities whose events still wait at the source after drain (the spec's backlog
           ids query): order_id; I1 counts them as pending, never as lost
  links    every declared link: link, connected (did any process ever connect through it)
  budgets  what the target declares it may spend (its spec's ``[budgets]``), one row:
           redelivery_ratio (extra copies per distinct event outside crash recovery; I2's
           ``amplified`` above it)
  drain    one row: drained (bool), nemesis_errors
  registry (the reference targets' schema_registry variant) one row: subject, versions (comma-
           separated, as the registry holds them), refused (events the producer wrote as v1
           because the registry refused their new schema)

The checkers read the domain (``subscriptions``, ``required_effects``) from the history
itself, so a stored run is judged by the domain it ran with. Histories written before
the domain was recorded were all of the reference order domain: ``SUBSCRIPTIONS`` and
``REQUIRED_EFFECTS`` below are that domain, used only when a history records none.

Client ops (f): ``place``, ``pay``, ``ship``, ``cancel``, keyed by order id; an ``ok``
carries the ``correlation_id`` the service made for that request.

Probe ops (process ``probe``), recorded by the runner through the oracle:
  lag      every 0.5 s during traffic and drain: ``ok`` with value {lag, backlog, lag:<consumer>
           ...} (records not yet committed by the consumers, events committed at the source and
           not yet on the topic, each group's own lag), or ``fail`` with the error when the sample could not be taken (I7)
  group_lag  with each lag sample, one per consumer group (key: the consumer): ``ok`` with value
           {phase ("traffic" or "drain"), total, p0, p1, ...} (records not yet committed, per
           partition); lag alerts read these (harness.lag_alerts)
  drain    ``ok`` once lag and backlog are both zero, ``info`` if the drain timed out
  clock    once, before traffic: {epoch_ms}, the anchor between run time and effect times
  connect_start  when this pipeline paid Kafka Connect's cold start: {cold_start_s}
  schema_registry_start  when this pipeline paid the schema registry's cold start: {cold_start_s}
  workload once, after traffic: {clients, max_start_late_s}: the client pool size and how far
           behind its planned arrival the latest order started (open-loop or not)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.history.ops import History

__all__ = ["REQUIRED_EFFECTS", "SOURCES", "SUBSCRIPTIONS", "cause_of", "required_effects", "subscriptions"]

SOURCES = ("orders", "topic", "applied", "effects", "dlq", "consumers", "domain", "requires", "processes", "pending",
           "links", "budgets", "drain")

SUBSCRIPTIONS: Mapping[str, frozenset[str]] = {
    # consumer -> the event types it acts on (others it may skip without recording)
    "payment": frozenset({"order.paid"}),
    "inventory": frozenset({"order.created"}),
    "fulfillment": frozenset({"order.paid", "order.shipped"}),
    "notification": frozenset({"order.created"}),
}

REQUIRED_EFFECTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    # an acknowledged client op -> the (consumer, effect kind) pairs it must cause exactly once
    "place": (("inventory", "reservation"), ("notification", "email")),
    "pay": (("payment", "charge"),),
    "ship": (("fulfillment", "shipment"),),
}


def subscriptions(history: History) -> Mapping[str, frozenset[str]]:
    """consumer -> the event types it acts on, as the history's domain declares them."""
    if "domain" not in history.observations:
        return SUBSCRIPTIONS
    return {str(r["consumer"]): frozenset(t for t in str(r.get("subscribes") or "").split(",") if t)
            for r in history.observed("domain")}


def required_effects(history: History) -> Mapping[str, tuple[tuple[str, str], ...]]:
    """client step -> the (consumer, effect kind) pairs it must cause exactly once."""
    if "requires" not in history.observations:
        return REQUIRED_EFFECTS
    out: dict[str, list[tuple[str, str]]] = {}
    for r in history.observed("requires"):
        out.setdefault(str(r["step"]), []).append((str(r["consumer"]), str(r["kind"])))
    return {step: tuple(pairs) for step, pairs in out.items()}


def cause_of(history: History) -> Mapping[tuple[str, str], str]:
    """(consumer, effect kind) -> the client step whose acknowledgement requires it."""
    return {pair: step for step, pairs in required_effects(history).items() for pair in pairs}
