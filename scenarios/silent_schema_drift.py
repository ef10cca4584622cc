"""The silent schema drift (the article's debugging story): events consumed, then silently dropped.

"Events were being consumed but silently dropped because a schema change in the producer
did not match the consumer's expectations. There was no error log because the consumer's
deserialization caught the exception and logged it at DEBUG level." Two days to find.

Mid-run the order service renames ``amount_cents`` to ``amount`` (schema v2) for four
seconds. Three ways to meet it, one variant each:

  swallow_errors   (this scenario) every consumer catches the deserialization error, logs it
                   at DEBUG and moves on: the v2 events vanish, no dead-letter topic holds them,
                   and the orders they carried lose their effects
  correct          the reference consumers dead-letter each v2 event with the reason
                   (``undecodable: missing fields: amount_cents``): quarantined, replayable
  schema_registry  the order service registers its event schema (JSON Schema, BACKWARD) and
                   asks the registry before writing v2: the registry refuses it (HTTP 409),
                   the service keeps writing v1, and nothing is lost

``chaos run silent_schema_drift --variant correct`` / ``--variant schema_registry`` run
the other two; test_silent_schema_drift runs all three.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from harness.checkers.anomaly import AnomalyKind
from harness.faults.spec import FaultKind, FaultSpec, SchemaDrift
from harness.history.ops import History, Row
from harness.scenario import Expect, Leg, Scenario
from harness.scoring import PipelineVerdict
from harness.story import Claim, Story
from harness.workload.rate import Constant
from scenarios._stories import money

PIPELINE = "outbox"


def v2_on_topic(h: History) -> set[str]:
    return {str(r["event_id"]) for r in h.observed("topic") if r.get("schema_version") == 2 and r.get("event_id")}


def quarantined(h: History) -> dict[str, list[str]]:
    """consumer -> the reasons it dead-lettered v2 events with."""
    v2 = v2_on_topic(h)
    out: dict[str, list[str]] = {}
    for r in h.observed("dlq"):
        if str(r.get("event_id")) in v2:
            out.setdefault(str(r["consumer"]), []).append(str(r.get("reason") or ""))
    return out


def silently_dropped(h: History) -> int:
    """(consumer, v2 event) pairs the consumer neither applied nor dead-lettered: skipped without a trace."""
    v2 = v2_on_topic(h)
    consumers = {str(r["consumer"]) for r in h.observed("consumers")}
    seen = {(str(r["consumer"]), str(r["event_id"])) for src in ("applied", "dlq") for r in h.observed(src)
            if str(r.get("event_id")) in v2}
    return len(consumers) * len(v2) - len(seen)


def registry_row(h: History) -> Row | None:
    rows = h.observed("registry")
    return rows[0] if rows else None


def story(histories: Mapping[str, History], verdicts: Sequence[PipelineVerdict]) -> Story:
    h = histories[PIPELINE]
    v = next(v for v in verdicts if v.pipeline == PIPELINE)
    summary = v.summary()
    lost = f"{summary['lost']} orders lost effects ({money(int(summary['lost_cents']))})"
    v2 = v2_on_topic(h)
    dlq = quarantined(h)
    registry = registry_row(h)
    reasons = Counter(r for rs in dlq.values() for r in rs).most_common(1)
    if registry is not None:
        leg = "schema_registry"
    elif dlq:
        leg = "correct"
    else:
        leg = "swallow_errors"
    dropped = silently_dropped(h)
    return Story(
        title="The schema change that was silently dropped",
        claims=(
            Claim("events silently dropped", "consumed, caught at deserialization, logged at DEBUG",
                  f"{dropped} deliveries of {len(v2)} v2 events skipped without a trace; {lost}"
                  if leg == "swallow_errors" else f"{dropped}"),
            Claim("time to find it", "two days", "this run: the harness flags the lost effects and the unregistered "
                  "v2 (I1, I8)" if leg == "swallow_errors" else "-"),
            Claim("with a dead-letter queue", "failures kept for inspection and replay",
                  f"{sum(len(r) for r in dlq.values())} v2 deliveries quarantined by {len(dlq)} consumers, reason "
                  f"{reasons[0][0]!r}" if leg == "correct" and reasons
                  else "run `chaos run silent_schema_drift --variant correct`"),
            Claim("with a schema registry enforcing BACKWARD", "a breaking change is refused",
                  f"v2 refused at registration (HTTP 409); {registry.get('refused')} events written as v1; "
                  f"subject versions: {registry.get('versions')}; {len(v2)} v2 on the topic; {lost}"
                  if registry is not None else "run `chaos run silent_schema_drift --variant schema_registry`"),
        ),
        note=f"this run: variant {leg}",
    )


DLQ_EXPECT = (Expect(PIPELINE, (AnomalyKind.LOST_EFFECT,),
                     "the v1 consumers dead-letter v2 events: quarantined, not applied",
                     # An order created under v2 and paid under v1: payment dead-letters the first and
                     # applies the second, past the quarantined event (the DLQ is the place to replay it).
                     may=(AnomalyKind.APPLIED_PAST_DEAD_LETTER,)),
              Expect(PIPELINE, (AnomalyKind.UNREGISTERED_VERSION,),
                     "v2 is not a registered, compatible version: the schema-contract checker must say so"))
"""The correct (dead-letter) leg's expectations: the loss is visible and every v2 event is accounted for."""


SCENARIO = Scenario(
    name="silent_schema_drift",
    description="The producer renames a field for 4 s; consumers that swallow deserialization errors lose it silently.",
    pipelines=(PIPELINE,),
    shape=Constant(20),
    duration_s=10,
    faults=(FaultSpec(FaultKind.SCHEMA_DRIFT, "app", at=0.3, for_s=4, params=SchemaDrift("rename")),),
    variant="swallow_errors",
    expect=(Expect(PIPELINE, (AnomalyKind.LOST_EFFECT,),
                   "the consumers skip every v2 event at DEBUG level: the orders it carried never get their effects",
                   may=(AnomalyKind.VANISHED,)),
            Expect(PIPELINE, (AnomalyKind.UNREGISTERED_VERSION,),
                   "v2 is not a registered, compatible version: the schema-contract checker must say so")),
    legs=(Leg("correct", DLQ_EXPECT), Leg("schema_registry")),
    drain_timeout_s=45,
    story=story,
)
