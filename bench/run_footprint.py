"""Benchmark: wall time and peak memory (summed RSS of the whole process tree) of a `chaos run`.

    python bench/run_footprint.py black_friday --seed 20261126

Runs the CLI as a child, with its own infra (stop `chaos infra up` first, or the run
attaches to it and the infra's memory is not counted), and samples /proc every 0.5 s.
Prints one JSON line with the figures. Timing lives here, never in a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _tree_rss_kib(root: int) -> tuple[int, int]:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            status = (proc / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pid = int(proc.name)
        parents[pid] = int(stat[1])
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[pid] = int(line.split()[1])
    total = count = 0
    for pid in rss:
        p = pid
        while p > 1:
            if p == root:
                total += rss[pid]
                count += 1
                break
            p = parents.get(p, 0)
    return total, count


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?", default="black_friday")
    ap.add_argument("--seed", default="20261126")
    args, rest = ap.parse_known_args()
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", args.scenario, "--seed", args.seed, *rest],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    peak = peak_procs = 0
    while proc.poll() is None:
        total, count = _tree_rss_kib(proc.pid)
        if total > peak:
            peak, peak_procs = total, count
        time.sleep(0.5)  # sampling period of a measurement, not a wait for a condition
    print(json.dumps({"scenario": args.scenario, "seed": args.seed, "exit_code": proc.returncode,
                      "wall_s": round(time.monotonic() - t0, 1), "peak_rss_mib": round(peak / 1024),
                      "processes_at_peak": peak_procs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
