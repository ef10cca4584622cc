"""The explore quality tier: on real infrastructure, explore finds a planted defect and nothing on the correct pipeline.

Kept short for CI (one budget-bounded trial per explore): the same session seed and the
same fault kinds draw the same first schedule for both variants, so the pair is a
differential test: duplicates re-published into the topic charge twice when the
consumers skip their processed-events check (``no_idempotency``), and never when they
keep it. The found schedule is written as a scenario module, and `chaos run` on that
module shows the same anomaly kind. Shrinking itself is tested without infrastructure
(tests/test_explore.py); trials per minute and shrink times are measured in
bench/explore.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis import analyze_run_dir
from harness.checkers.anomaly import AnomalyKind
from harness.config import Settings
from harness.explore import ExploreOptions, explore

pytestmark = pytest.mark.chaos

SEED = 12
FAULTS = "duplicate"


def _chaos(args: list[str], runs_dir: Path, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAOS_RUNS_DIR": str(runs_dir), "CHAOS_BASE_PORT": str(settings.base_port),
           "CHAOS_HOME": str(settings.home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_explore_finds_the_planted_defect_and_chaos_run_reproduces_it(
        chaos_infra: object, chaos_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "found"
    found = _chaos(["explore", "--target", "outbox", "--variant", "no_idempotency", "--faults", FAULTS,
                    "--budget", "5s", "--seed", str(SEED), "--reruns", "1", "--out", str(out)],
                   tmp_path / "explore", chaos_settings)
    log = found.stdout + found.stderr
    assert found.returncode == 1, f"explore found nothing on no_idempotency (exit {found.returncode}):\n{log[-3000:]}"
    assert "trial 1 seed" in log and "FOUND duplicate-effect" in log, log[-3000:]
    modules = list(out.glob("explore_outbox_no_idempotency_*.py"))
    assert len(modules) == 1, log[-3000:]
    command = next(line for line in log.splitlines() if "reproduce with: chaos run" in line)
    seed = command.split("--seed ")[1].split()[0]

    rerun = _chaos(["run", str(modules[0]), "--seed", seed], tmp_path / "rerun", chaos_settings)
    assert rerun.returncode == 1, f"`chaos run` on the found module did not fail:\n{rerun.stdout[-3000:]}"
    run_dir = next((tmp_path / "rerun").glob("*/run.json")).parent
    verdict = analyze_run_dir(run_dir)[0]
    assert AnomalyKind.DUPLICATE_EFFECT in {t.kind for t in verdict.tallies}, verdict.reasons


def test_explore_raises_nothing_on_the_correct_pipeline(chaos_infra: object, chaos_settings: Settings,
                                                        tmp_path: Path) -> None:
    from dataclasses import replace

    lines: list[str] = []
    result = explore(ExploreOptions(target="outbox", faults=FAULTS, budget_s=5, seed=SEED, reruns=1),
                     replace(chaos_settings, runs_dir=tmp_path), infra=chaos_infra, say=lines.append)
    log = "\n".join(lines)
    assert result.trials and all(t.error is None for t in result.trials), log
    assert not result.found and result.exit_code == 0, log
    # The same first schedule as the broken variant's: the faults were there, the defect was not.
    assert "duplicate@events" in result.trials[0].schedule.describe()
