"""Traced back to sanity (the article's third case study): every effect back to its request, in one query.

"When a user reported that their profile update was not reflected in search results,
diagnosing the issue required checking logs across 6 services manually. The median time
to resolve these issues was about 4 hours. After implementing correlation IDs ... the same
class of issue took 15-20 minutes to diagnose."

The order service makes a correlation id for each request and every event and effect
carries it. Under faults (the payment consumer is SIGKILLed and restarted, so it
re-reads what it had not committed; the relay's link to Kafka is cut for 3 s) the
scenario asks, for every effect of every consumer, one query by its correlation id
(``harness.checkers.chain.correlation_trace``): does it reach the request that caused it,
the event on the topic, and the consumer's processed-event record? A single broken chain
fails the scenario (test_trace_to_sanity), beside I6 (trace-complete).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.checkers.chain import STAGES, Trace, correlation_trace, correlation_traces
from harness.faults.spec import FaultKind, FaultSpec
from harness.history.observations import cause_of
from harness.history.ops import History
from harness.scenario import Scenario
from harness.scoring import PipelineVerdict
from harness.story import Claim, Story
from harness.workload.rate import Constant

PIPELINE = "outbox"
_TIMED_QUERIES = 20  # single queries timed for the story (a measurement shown, never asserted)


@dataclass(frozen=True, slots=True)
class BrokenChain:
    consumer: str
    kind: str
    order_id: str
    correlation_id: str | None
    missing: str  # the first stage the query did not reach


def broken_chains(h: History) -> tuple[list[BrokenChain], int]:
    """Every effect whose correlation id does not lead back to its request, event and apply; and how many effects."""
    effects = h.observed("effects")
    causes = cause_of(h)
    traces = correlation_traces(h, {str(e["correlation_id"]) for e in effects if e.get("correlation_id")})
    broken = []
    for e in effects:
        cid = e.get("correlation_id")
        missing = _missing(e, traces.get(str(cid)) if cid else None, causes.get((str(e["consumer"]), str(e["kind"]))))
        if missing:
            broken.append(BrokenChain(str(e["consumer"]), str(e["kind"]), str(e["order_id"]),
                                      str(cid) if cid else None, missing))
    return broken, len(effects)


def _missing(effect: Mapping[str, object], trace: Trace | None, cause: str | None) -> str | None:
    if trace is None:
        return "correlation id"
    order = str(effect["order_id"])
    # The request: the client's op with this id for this order (the order row's id when the client never heard back).
    if not any(r.get("key") == order and (cause is None or r.get("f") == cause) for r in trace["request"]) and \
            not any(str(r.get("order_id")) == order for r in trace[STAGES["orders"]]):
        return "request"
    if not any(r.get("event_id") == effect.get("event_id") for r in trace[STAGES["topic"]]):
        return "event on topic"
    if not any(r.get("event_id") == effect.get("event_id") and r.get("consumer") == effect.get("consumer")
               for r in trace[STAGES["applied"]]):
        return "applied by consumer"
    return None


def story(histories: Mapping[str, History], verdicts: Sequence[PipelineVerdict]) -> Story:
    h = histories[PIPELINE]
    broken, effects = broken_chains(h)
    ids = sorted({str(e["correlation_id"]) for e in h.observed("effects") if e.get("correlation_id")})
    sample = ids[:: max(1, len(ids) // _TIMED_QUERIES)][:_TIMED_QUERIES]
    times, example = [], None
    for cid in sample:
        start = time.perf_counter()
        trace = correlation_trace(h, cid)
        times.append(time.perf_counter() - start)
        if example is None and trace[STAGES["effects"]]:
            example = (cid, trace)
    services = sorted({str(r["consumer"]) for r in h.observed("effects")})
    hops = ""
    if example is not None:
        cid, trace = example
        hops = (f"{cid[:12]}: {', '.join(sorted({str(r.get('f')) for r in trace['request']}))} request -> "
                f"{len(trace[STAGES['topic']])} event(s) -> applied by "
                f"{', '.join(sorted({str(r.get('consumer')) for r in trace[STAGES['applied']]}))} -> "
                f"{', '.join(sorted({str(r.get('kind')) for r in trace[STAGES['effects']]}))}")
    return Story(
        title="The migration that was traced back to sanity",
        claims=(
            Claim("where to look", "logs of 6 services, checked by hand",
                  f"one query per correlation id, across the order service, the relay and {len(services)} consumers"),
            Claim("time to diagnose", "about 4 hours; 15-20 minutes with correlation ids",
                  f"{statistics.median(times) * 1000:.0f} ms per query (median of {len(times)})" if times else "-"),
            Claim("effects traced to their request", "-", f"{effects - len(broken):,} of {effects:,}; "
                  f"{len(broken)} broken chain{'s' if len(broken) != 1 else ''}"),
            Claim("one chain", "the entire lifecycle of a request in a single view", hops or "-"),
        ),
        note="under faults: the payment consumer killed and restarted, a 3 s outage of the relay's link to Kafka",
    )


SCENARIO = Scenario(
    name="trace_to_sanity",
    description="Under faults, every effect is traced back to its request by its correlation id, in one query.",
    pipelines=(PIPELINE,),
    shape=Constant(20),
    duration_s=12,
    faults=(FaultSpec(FaultKind.KILL, "consumer.payment", at=0.25, for_s=2),
            FaultSpec(FaultKind.OUTAGE, "publisher->kafka", at=0.55, for_s=3)),
    drain_timeout_s=45,
    story=story,
)
