"""How fast a held or taken base port is refused: the figures issue 14 names (2 s, 1 s).

    python bench/base_port_lock.py [--repeat 5] [--base 27500]

No infrastructure needed. Measures, ``--repeat`` times each, median and max:

  held    a second `chaos run` on a base port whose lock another process holds: wall time
          from spawning the CLI to its exit 3 (includes the interpreter's start and imports)
  taken   `ensure_ports_free` on a layout where another program listens on one port: the
          time to find the port and name its holder
  cli     `chaos infra up` on that taken layout: spawn to exit 3

Goals: held and cli <= 2 s, taken <= 1 s. The tests in tests/test_base_port_lock.py assert
the behaviour (exit code, the holder named, nothing started) with only a hang guard, since
a loaded machine (a second pytest worker, other sessions) stretches wall time; this bench is
where the figures are measured and printed. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.config import Settings
from harness.errors import PortInUse
from harness.infra.lock import LEND_ENV, hold_base_port
from harness.infra.ports import ensure_ports_free

ROOT = Path(__file__).resolve().parents[1]


def _env(home: Path, base: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != LEND_ENV and not k.startswith("PYTEST_XDIST")}
    return {**env, "CHAOS_HOME": str(home / "home"), "CHAOS_RUNS_DIR": str(home / "runs"),
            "CHAOS_BASE_PORT": str(base), "PYTHONPATH": str(ROOT)}


def _cli(home: Path, base: int, *args: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness.cli", *args], env=_env(home, base),
                          capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 3:
        raise SystemExit(f"`chaos {' '.join(args)}` exited {done.returncode}, not 3:\n{done.stderr[-2000:]}")
    return elapsed


def _summary(samples: list[float], goal_s: float) -> dict[str, object]:
    return {"median_s": round(statistics.median(samples), 3), "max_s": round(max(samples), 3),
            "goal_s": goal_s, "samples_s": [round(s, 3) for s in samples]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--base", type=int, default=27500, help="a free base port below the ephemeral range")
    args = parser.parse_args()
    held: list[float] = []
    taken: list[float] = []
    cli: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = Settings(home=home / "home", runs_dir=home / "runs", base_port=args.base)
        with hold_base_port(settings, command="bench/base_port_lock.py"):
            for _ in range(args.repeat):
                held.append(_cli(home, args.base, "run", "black_friday", "--pipelines", "outbox", "--seed", "1"))
        code = ("import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', %d)); s.listen(); "
                "print('listening', flush=True); sys.stdin.read()" % (args.base + 1))
        squatter = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert squatter.stdout is not None and squatter.stdout.readline().strip() == "listening"
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                try:
                    ensure_ports_free(args.base)
                except PortInUse:
                    taken.append(time.perf_counter() - t0)
                else:
                    raise SystemExit("the taken port was not found")
                cli.append(_cli(home, args.base, "infra", "up"))
        finally:
            squatter.kill()
            squatter.wait()
    print(json.dumps({"held_run_refused": _summary(held, 2.0), "taken_port_found": _summary(taken, 1.0),
                      "infra_up_refused": _summary(cli, 2.0), "loadavg": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
