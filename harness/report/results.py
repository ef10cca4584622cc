"""results.json: the machine-readable verdicts, measurements and scores of one run.

Format ``chaos-results``, versioned; the JSON Schema is ``templates/results.schema.json``
beside this module (``SCHEMA_PATH``) and a test validates every document against it.

  {
    "format": "chaos-results",
    "version": 3,                  # 2 added scenario, score_version, score and measurements;
                                   # 3 added anomalies (see "Migration" below) and score version 2
    "run_id": str, "scenario": str, "seed": int, "command": str (reproduces the run),
    "exit_code": 0|1|2,            # see README "Exit codes"
    "wall_s": number|null,         # null when re-rendered by `chaos report` without the original
    "score_version": int,          # harness.score.SCORE_VERSION
    "pipelines": [{
      "pipeline": str,
      "validity": "valid"|"invalid"|"unknown",        # what occurred, merged worst-first
      "outcome": "met"|"unexpected"|"inconclusive",   # against the scenario's expectations
      "reasons": [str],
      "summary": {accepted, lost, lost_cents, unknown_outcome, anomalies_explained, anomalies_unexplained},
      "anomalies": {explained, unexplained, by_kind: {KIND: {total, explained, expected}},
                    unexplained_examples: [{kind, entity?, consumer?, event_id?, how}], causes: {CAUSE: n}},
      "results": [{checker, invariant, validity, message, counts, examples,  # examples capped, each with "chain"
                   anomaly_counts: {KIND: n}, anomalies: [{kind, entity?, consumer?, event_id?}]}],  # first 500
      "score": {version, value (0-100|null), gate, why, penalties, unmeasured, reliability},
      "lag_alerts": [{pipeline, group, threshold, breached, first_breach_s, breached_for_s, cleared_at_s,
                      peak, peak_at_s, peak_partition, trend_per_s, projected_breach_s, samples}],
                                   # one per consumer group with a threshold (harness.lag_alerts)
      "measurements": {accepted_orders, lost_orders, lost_cents, duplicate_effects, duplicate_cents,
                       ordering_violations, recovery_s, recovered, peak_consumer_lag, peak_publish_backlog,
                       peak_lag, latency_kind, latency_p50_s, latency_p99_s, throughput_dip, fault_windows, ...}
    }],
    "story": {title, claims: [{what, article, measured}], note} | null   # a case study's numbers
  }

Numbers that could not be measured are null, never NaN.

Migration from version 2: nothing was removed or renamed. Version 3 adds the anomaly
blocks (per pipeline and per result) and new measurements (``shipped_before_paid``,
``acknowledged_then_missing``, ``dead_processes``, ``worst_group``, ``peak_lag_by_group``,
``offered_rate_outside``); ``peak_lag`` and ``throughput_dip`` now follow score version 2
(worst group during the faults; against the offered load), so compare scores only within
one ``score_version``. A stored run of any version is brought to version 3 by
``chaos report RUN_DIR``, which re-derives everything from its history; a run whose
run.json states expectations by invariant is re-judged leniently (harness/expect.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.lag_alerts import LagAlert
from harness.score import SCORE_VERSION, Measurements, Score
from harness.scoring import PipelineVerdict, exit_code
from harness.story import Story

__all__ = ["FORMAT", "SCHEMA_PATH", "VERSION", "finite", "results_document", "to_json_text"]

FORMAT = "chaos-results"
VERSION = 3
SCHEMA_PATH = Path(__file__).with_name("templates") / "results.schema.json"


def results_document(meta: Mapping[str, object], verdicts: tuple[PipelineVerdict, ...],
                     measurements: Mapping[str, Measurements], scores: Mapping[str, Score],
                     wall_s: float | None, lag_alerts: Sequence[LagAlert] = (),
                     story: Story | None = None) -> dict[str, object]:
    pipelines = []
    for v in verdicts:
        doc = v.to_json()
        doc["lag_alerts"] = [a.to_json() for a in lag_alerts if a.pipeline == v.pipeline]
        if v.pipeline in scores:
            doc["score"] = scores[v.pipeline].to_json()
        if v.pipeline in measurements:
            doc["measurements"] = measurements[v.pipeline].to_json()
        pipelines.append(doc)
    return {
        "format": FORMAT,
        "version": VERSION,
        "run_id": meta.get("run_id"),
        "scenario": meta.get("scenario"),
        "seed": meta.get("seed"),
        "command": meta.get("command"),
        "exit_code": exit_code(verdicts),
        "wall_s": round(wall_s, 2) if wall_s is not None else None,
        "score_version": SCORE_VERSION,
        "pipelines": pipelines,
        "story": story.to_json() if story is not None else None,
    }


def to_json_text(document: Mapping[str, object]) -> str:
    return json.dumps(finite(document), indent=2, allow_nan=False, default=str)


def finite(value: object) -> object:
    """NaN and infinity become null: strict JSON parsers reject them, and a checker might count one."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
