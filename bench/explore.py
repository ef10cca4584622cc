"""Benchmark: trials per minute of `chaos explore`, and how long finding and shrinking a planted defect take.

    CHAOS_BASE_PORT=27000 python bench/explore.py --budget 5m --find-budget 8m

Two sessions on one infra (attached if `chaos infra up` runs on the base port, else started
and stopped here):
  search   the correct ``--target`` over the whole catalogue for ``--budget``: trials per minute,
           trial wall times (nothing should be found: a finding is printed as a false alarm)
  find     ``--variant`` with ``--faults`` for ``--find-budget``, k=``--reruns``: time to the first
           confirmed failure, shrink time and steps, the minimal schedule
Prints one JSON line with the figures. Timing lives here, never in a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config import Settings  # noqa: E402
from harness.explore import ExploreOptions, ExploreResult, explore, parse_budget  # noqa: E402
from harness.infra.lock import hold_base_port  # noqa: E402
from harness.infra.stack import Infra  # noqa: E402


def _session(opts: ExploreOptions, settings: Settings, infra: Infra) -> ExploreResult:
    return explore(opts, settings, infra=infra, say=lambda line: print(line, file=sys.stderr, flush=True))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="outbox")
    ap.add_argument("--budget", default="5m", help="the search session on the correct target")
    ap.add_argument("--find-budget", default="8m", help="the find-and-shrink session on the broken variant")
    ap.add_argument("--variant", default="no_idempotency")
    ap.add_argument("--faults", default="kill,crash,duplicate,pause,restart")
    ap.add_argument("--reruns", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--skip-search", action="store_true")
    args = ap.parse_args()
    settings = Settings.from_env()
    out: dict[str, object] = {"target": args.target, "seed": args.seed}
    with hold_base_port(settings, lend_to_children=True):
        infra = Infra.attach(settings)
        owned = infra is None
        if infra is None:
            infra = Infra.start(settings, die_with_parent=False)
        try:
            if not args.skip_search:
                search = _session(ExploreOptions(target=args.target, budget_s=parse_budget(args.budget),
                                                 seed=args.seed), settings, infra)
                walls = [t.wall_s for t in search.trials]
                out["search"] = {
                    "budget_s": parse_budget(args.budget), "wall_s": round(search.wall_s, 1),
                    "trials": len(walls), "trials_per_minute": round(60 * len(walls) / search.wall_s, 2),
                    "trial_s_median": round(statistics.median(walls), 1) if walls else None,
                    "trial_s_max": round(max(walls), 1) if walls else None,
                    # The slowest kind of trial: the broker's restart and everyone reconnecting after it.
                    "broker_kill_trial_s": [round(t.wall_s, 1) for t in search.trials
                                            if any(f.target == "kafka" and f.kind.value in ("kill", "restart")
                                                   for f in t.schedule.faults)],
                    "errors": sum(1 for t in search.trials if t.error),
                    "inconclusive": sum(1 for t in search.trials if t.inconclusive and not t.error),
                    "false_alarms": sorted(k.value for k in search.search.kinds),
                }
            find = _session(ExploreOptions(target=args.target, budget_s=parse_budget(args.find_budget),
                                           seed=args.seed, variant=args.variant, faults=args.faults,
                                           reruns=args.reruns), replace(settings), infra)
            s = find.search
            out["find"] = {
                "variant": args.variant, "faults": args.faults, "k": args.reruns, "trials": len(find.trials),
                "found": sorted(k.value for k in s.kinds), "found_after_s": round(s.found_after_s, 1)
                if s.found_after_s is not None else None, "shrink_s": round(s.shrink_s, 1),
                "shrink_steps": s.shrink_steps, "stopped_by": s.stopped_by,
                "first": s.first.describe() if s.first else None, "minimal": s.best.describe() if s.best else None,
                "trials_per_minute": round(60 * len(find.trials) / find.wall_s, 2),
            }
        finally:
            if owned:
                (Infra.attach(settings, revive=True) or infra).stop()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
