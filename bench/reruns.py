"""Wall time of one seed, run N times: does the same run take the same time?

Runs ``chaos run SCENARIO --pipelines P --seed S`` N times (default: the reorder scenario
on outbox, seed 31, 5 runs) on one infra (attached if `chaos infra up` is running, else
started here once and stopped at the end, so no run pays the infra's start), and prints
per run its wall time, exit code, verdicts and how long the run waited for the harness's
reorder interposer to catch up (the ``interposer-caught-up`` probe in its history), then
the median and each run's spread from it. The target: every run within +-20% of the
median, and no catch-up over 2 s. A shared machine (other jobs on the same cores) widens
the spread; say so with the numbers.

    python bench/reruns.py [--scenario reorder] [--pipelines outbox] [--seed 31] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.config import Settings
from harness.infra.stack import Infra

SPREAD_LIMIT = 0.20
CATCH_UP_LIMIT_S = 2.0


@dataclass(frozen=True, slots=True)
class Rerun:
    wall_s: float
    exit_code: int
    verdicts: str  # "outbox=invalid/met, ..."
    catch_up_s: float | None  # None: the run has no interposer
    run_dir: Path | None


def _run_dir(output: str) -> Path | None:
    for line in output.splitlines():
        if line.startswith("chaos: run folder "):
            return Path(line.removeprefix("chaos: run folder ").strip())
    return None


def _catch_up_s(run_dir: Path) -> float | None:
    waited = None
    with (run_dir / "history.jsonl").open() as fh:
        for line in fh:
            op = json.loads(line).get("op")
            if op and op["process"] == "probe" and op["f"] == "interposer-caught-up":
                waited = (waited or 0.0) + float(op["value"]["waited_s"])
    return waited


def _verdicts(run_dir: Path) -> str:
    results = json.loads((run_dir / "results.json").read_text())
    return ", ".join(f"{p['pipeline']}={p['validity']}/{p['outcome']}" for p in results["pipelines"])


def rerun(argv: list[str]) -> Rerun:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=os.environ.copy())  # noqa: S603
    wall = time.monotonic() - started
    run_dir = _run_dir(proc.stdout)
    if run_dir is None or not (run_dir / "results.json").exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        return Rerun(wall, proc.returncode, f"no results (exit {proc.returncode}): {tail}", None, run_dir)
    return Rerun(wall, proc.returncode, _verdicts(run_dir), _catch_up_s(run_dir), run_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="reorder")
    parser.add_argument("--pipelines", default="outbox")
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    settings = Settings.from_env()
    infra = Infra.attach(settings)
    started_here = infra is None
    if started_here:
        print(f"starting infra on base port {settings.base_port} for the reruns ...", flush=True)
        subprocess.run([sys.executable, "-m", "harness.cli", "infra", "up"], check=True, timeout=300)  # noqa: S603
    argv = [sys.executable, "-m", "harness.cli", "run", args.scenario, "--pipelines", args.pipelines,
            "--seed", str(args.seed)]
    print(f"{args.runs} x chaos run {args.scenario} --pipelines {args.pipelines} --seed {args.seed} "
          f"(load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus)", flush=True)
    runs: list[Rerun] = []
    try:
        for i in range(args.runs):
            r = rerun(argv)
            runs.append(r)
            catch = f"{r.catch_up_s:.2f} s" if r.catch_up_s is not None else "-"
            print(f"run {i + 1}: wall {r.wall_s:6.1f} s  exit {r.exit_code}  catch-up {catch:>7}  "
                  f"load {os.getloadavg()[0]:4.1f}  {r.verdicts}  {r.run_dir}", flush=True)
    finally:
        if started_here:
            subprocess.run([sys.executable, "-m", "harness.cli", "infra", "down"], timeout=120)  # noqa: S603

    median = statistics.median(r.wall_s for r in runs)
    spreads = [(r.wall_s - median) / median for r in runs]
    verdicts = {r.verdicts for r in runs}
    catch_ups = [r.catch_up_s for r in runs if r.catch_up_s is not None]
    print(f"median wall {median:.1f} s; spread vs median {', '.join(f'{s:+.0%}' for s in spreads)} "
          f"(max {max(abs(s) for s in spreads):.0%}, limit {SPREAD_LIMIT:.0%})")
    if catch_ups:
        print(f"interposer catch-up: max {max(catch_ups):.2f} s (limit {CATCH_UP_LIMIT_S:g} s)")
    print(f"verdicts: {'identical' if len(verdicts) == 1 else 'DIFFERENT'}: {' | '.join(sorted(verdicts))}")
    ok = (len(verdicts) == 1 and max(abs(s) for s in spreads) <= SPREAD_LIMIT
          and all(c <= CATCH_UP_LIMIT_S for c in catch_ups))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
