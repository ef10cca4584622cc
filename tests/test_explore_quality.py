"""The explore quality tier: on real infrastructure, explore finds every planted defect and nothing on the correct pipelines.

Kept short for CI: fixed seeds, k=1, and a trial count instead of a wall-time budget, so a
slow machine runs the same trials as a fast one. Each broken variant is looked for with
the fault kinds of the sweep pattern that opens its window (harness/explore/sweep.py),
which puts that pattern first; with every kind (`chaos explore` without --faults) the
sweep reaches each of them within its first seven trials (README, "Explore").

  variant          --faults      sweep pattern     found as
  no_idempotency   duplicate     redelivery        duplicate-effect (and `chaos run` on the written module)
  keyless          duplicate     redelivery        split-entity (no fault needed: load alone scatters orders)
  swallow_errors   poison        poison            vanished
  auto_commit      outage,kill   stalled crash     lost-effect
  mark_before_ack  crash         publisher crash   lost-effect
  last_id          latency       late commits      never-recovered (skipped rows wait in the outbox for good)

The correct pipelines run the same patterns (a pattern is the same trial whichever kinds
are asked for) and must raise nothing: outbox the first four, the entrypoint's crash
points, late commits and the consumer crashes, cdc a kill of its Connect
worker (Debezium re-sends what it had not flushed; consumers dedupe), direct a crash at
each of its order service's crash points, whose losses its design explains
(harness/explore/design.py). Shrinking is tested without infrastructure
(tests/test_explore.py); trials per minute and find times are measured in bench/explore.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.analysis import analyze_run_dir
from harness.checkers.anomaly import AnomalyKind
from harness.config import Settings
from harness.explore import ExploreOptions, ExploreResult, explore
from harness.explore.design import BEST_EFFORT_LOSS
from harness.explore.strategy import INHERENT
from harness.faults.spec import FaultKind

pytestmark = [pytest.mark.chaos, pytest.mark.extended]

SEED = 12
K = AnomalyKind


def _chaos(args: list[str], runs_dir: Path, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAOS_RUNS_DIR": str(runs_dir), "CHAOS_BASE_PORT": str(settings.base_port),
           "CHAOS_HOME": str(settings.home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _explore(target: str, variant: str, faults: str, trials: int, infra: object, settings: Settings,
             tmp_path: Path) -> tuple[ExploreResult, str]:
    lines: list[str] = []
    result = explore(ExploreOptions(target=target, variant=variant, faults=faults, budget_s=600, seed=SEED, reruns=1,
                                    max_trials=trials, out=tmp_path / "found"),
                     replace(settings, runs_dir=tmp_path / "runs"), infra=infra, say=lines.append)
    return result, "\n".join(lines)


def test_explore_finds_the_planted_defect_and_chaos_run_reproduces_it(
        chaos_infra: object, chaos_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "found"
    found = _chaos(["explore", "--target", "outbox", "--variant", "no_idempotency", "--faults", "duplicate",
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


@pytest.mark.parametrize(("variant", "faults", "kind"), [
    ("keyless", "duplicate", K.SPLIT_ENTITY),
    ("swallow_errors", "poison", K.VANISHED),
    ("auto_commit", "outage,kill", K.LOST_EFFECT),
    ("mark_before_ack", "crash", K.LOST_EFFECT),
    ("last_id", "latency", K.NEVER_RECOVERED),
])
def test_explore_finds_each_broken_variant_in_its_first_trial(
        variant: str, faults: str, kind: AnomalyKind, chaos_infra: object, chaos_settings: Settings,
        tmp_path: Path) -> None:
    result, log = _explore("outbox", variant, faults, 1, chaos_infra, chaos_settings, tmp_path)
    assert len(result.trials) == 1 and result.trials[0].error is None, log
    assert result.found and kind in result.search.kinds, f"{variant}: expected {kind.value}\n{log}"
    assert result.module is not None and result.module.exists()


@pytest.mark.parametrize(("target", "faults", "trials", "patterns"), [
    # the variants' own patterns, on the pipeline they break
    ("outbox", "duplicate,poison,outage,kill,crash", 5, ("redelivery", "poison", "stalled crash", "publisher crash",
                                                         "entrypoint crash")),
    # the patterns aimed at defects no shipped variant has (tests/defects): consumers killed, one of them slowed
    ("outbox", "latency,kill", 2, ("late commits", "consumer crashes")),
    # an order's paid and shipped swapped: a correct consumer dead-letters the early step, never skips it
    ("outbox", "reorder", 1, ("swapped steps",)),
    # poison while every dead-letter topic refuses writes: a correct consumer waits for its DLQ
    ("outbox", "poison,dlq_refused", 2, ("poison", "refused dead letters")),
    ("cdc", "kill", 1, ("publisher kill",)),
    ("direct", "crash", 1, ("publisher crash",)),
])
def test_explore_raises_nothing_on_the_correct_pipelines(
        target: str, faults: str, trials: int, patterns: tuple[str, ...], chaos_infra: object,
        chaos_settings: Settings, tmp_path: Path) -> None:
    result, log = _explore(target, "correct", faults, trials, chaos_infra, chaos_settings, tmp_path)
    assert len(result.trials) == trials and all(t.error is None for t in result.trials), log
    ran = [line.split("sweep: ", 1)[1] for line in log.splitlines() if "chaos explore: sweep: " in line]
    assert tuple(ran) == patterns, log
    assert not result.found and result.exit_code == 0, f"a false alarm on the correct {target} pipeline:\n{log}"
    if target == "direct":
        # Not vacuous: the crash after commit did lose the order's event, and only its design explained it.
        run_dir = result.trials[0].run_dir
        assert run_dir is not None
        shown = {t.kind for t in analyze_run_dir(run_dir)[0].tallies}
        assert shown and shown <= BEST_EFFORT_LOSS, shown
    if faults == "reorder":
        # Not vacuous: the swap reached a consumer (what a swap does, and nothing else, was shown).
        run_dir = result.trials[0].run_dir
        assert run_dir is not None
        shown = {t.kind for t in analyze_run_dir(run_dir)[0].tallies}
        assert shown and shown <= INHERENT[FaultKind.REORDER], shown
