"""Benchmark: Debezium end-to-end lag of the cdc pipeline at a steady rate, no faults.

    python bench/cdc_lag.py --rate 40 --duration 20 --seed 1

Runs a fault-free cdc scenario on the infra already running on CHAOS_BASE_PORT (or its
own), then measures from the stored history, per event (first delivery only):
  capture lag   Kafka record timestamp (Connect's producer) - the row's commit time (updated_at)
  effect lag    the consumer's effect row time - the row's commit time
Prints one JSON line with p50/p99 of each and Connect's cold start if this run paid it.
Timing lives here, never in a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from statistics import quantiles

from harness.config import Settings
from harness.history.store import load_histories
from harness.infra.stack import Infra
from harness.runner import run_scenario
from harness.scenario import Scenario
from harness.workload.rate import Constant


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def _pcts(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"n": len(values)}
    q = quantiles(values, n=100)
    return {"n": len(values), "p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1), "max_ms": round(max(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    settings = Settings.from_env()
    infra = Infra.attach(settings) or Infra.start(settings)
    owned = not infra.connect_running and infra.owned
    try:
        scenario = Scenario(name="cdc_lag", description="steady cdc traffic, no faults", pipelines=("cdc",),
                            shape=Constant(args.rate), duration_s=args.duration, faults=())
        result = run_scenario(scenario, settings=settings, seed=args.seed, infra=infra, say=lambda s: None)
        _, histories = load_histories(result.run_dir / "history.jsonl")
        h = histories["cdc"]
        commit: dict[str, float] = {}
        capture: list[float] = []
        for r in h.observed("topic"):
            event_id = r.get("event_id")
            if not event_id or event_id in commit:
                continue
            commit[str(event_id)] = _ms(json.loads(str(r["payload"]))["updated_at"])
            capture.append(float(r["timestamp_ms"]) - commit[str(event_id)])  # type: ignore[arg-type]
        effect = [float(r["applied_at_ms"]) - commit[str(r["event_id"])]  # type: ignore[arg-type]
                  for r in h.observed("effects") if str(r["event_id"]) in commit]
        print(json.dumps({"rate": args.rate, "duration_s": args.duration, "run_dir": str(result.run_dir),
                          "connect_cold_start_s": infra.connect_cold_start_s,
                          "capture_lag": _pcts(capture), "effect_lag": _pcts(effect)}))
    finally:
        if owned:
            infra.stop()


if __name__ == "__main__":
    main()
