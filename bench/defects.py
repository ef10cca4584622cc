"""Benchmark: does `chaos explore` find each planted defect of tests/defects, with the right kind, and how fast?

    CHAOS_BASE_PORT=24000 python bench/defects.py --budget 10m --seed 20261206 [--only NAME,NAME] [--faults KINDS]

Each ``tests/defects/NAME.patch`` is one small mistake a developer could make in the reference
consumers, relay or order service (its header says which anomaly kind it should produce and
why it is realistic). For each, this copies the repository's tracked files as they are now
(uncommitted edits included: ``git stash create``) into a temporary folder, applies the patch
there (``git apply``) and runs ``chaos explore --target T --budget B --seed S`` from that copy
as a child (PYTHONPATH = the copy, so the trials' target processes run the patched code; a
timeout of the budget plus a trial's worst case). Then it records: found or not, the kinds
found, whether the expected kind is among them, the time and trial count to the first
confirmed failure, the shrink time, and the minimal schedule.

Isolation: every defect gets a CHAOS_HOME of its own whose ``install`` links to the real cache
and whose ``infra`` is shared by the session, so one infra (started here with `chaos infra up`,
stopped at the end) serves every defect while Hypothesis's example database stays per defect:
a patched tree explores as variant ``correct``, and its failures must not replay into (or
from) the real correct pipeline's database.

Prints a table and writes JSON (``--json``, default ``runs/defects-<stamp>.json``) after each
defect, so an interrupted session keeps what finished. Timing lives here, never in a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFECTS_DIR = ROOT / "tests" / "defects"
SLACK_S = 420.0  # past the budget: a trial that started runs to its end (<= 20 s + faults + 180 s), then shrinking writes out
_HEADER = re.compile(r"# (defect|target|where|kind|mistake|realistic|needs): (.*)")

__all__ = ["Defect", "Finding", "read_defects"]


@dataclass(frozen=True, slots=True)
class Defect:
    """One planted defect: its patch and what its header says about it."""

    name: str
    patch: Path
    target: str  # the pipeline explore runs on
    where: str  # the file the patch changes
    kind: str  # the AnomalyKind value it should produce
    mistake: str
    realistic: str
    needs: str  # which fault (or none) exposes it


@dataclass(frozen=True, slots=True)
class Finding:
    defect: str
    where: str
    expected: str
    found: bool
    right_kind: bool
    kinds: tuple[str, ...]
    found_after_s: float | None  # explore's clock: the first confirmed failure (k reruns included)
    trials_to_first: int | None  # trials run up to and including the first that showed an anomaly
    trials: int
    shrink_s: float | None
    stopped_by: str | None
    minimal: str | None
    wall_s: float
    exit_code: int | None
    note: str  # why not found, or what went wrong
    session: str | None
    seen: tuple[str, ...] = ()  # every kind any trial showed, confirmed or not (a flaky sighting k reruns rejected)
    expected_first_trial: int | None = None  # the first trial that showed the expected kind, confirmed or not


def read_defects(folder: Path = DEFECTS_DIR) -> list[Defect]:
    """Every ``*.patch`` in ``folder`` with its header; a header missing a field raises ValueError naming it."""
    out = []
    for patch in sorted(folder.glob("*.patch")):
        fields: dict[str, str] = {}
        for line in patch.read_text().splitlines():
            if line.startswith("diff --git"):
                break
            m = _HEADER.fullmatch(line)
            if m:
                fields[m.group(1)] = m.group(2).strip()
        missing = [f for f in ("defect", "target", "where", "kind", "mistake", "realistic", "needs") if not fields.get(f)]
        if missing:
            raise ValueError(f"{patch}: header lacks {', '.join(missing)}; start the file with '# FIELD: text' lines")
        if fields["defect"] != patch.stem:
            raise ValueError(f"{patch}: '# defect: {fields['defect']}' must be the file's name, {patch.stem}")
        out.append(Defect(patch.stem, patch, fields["target"], fields["where"], fields["kind"], fields["mistake"],
                          fields["realistic"], fields["needs"]))
    return out


def copy_tree(dest: Path) -> None:
    """The repository's tracked files as they are now (uncommitted edits included) into ``dest``."""
    stash = subprocess.run(["git", "stash", "create"], cwd=ROOT, capture_output=True, text=True, check=True,
                           timeout=60).stdout.strip()
    archive = subprocess.run(["git", "archive", "--format=tar", stash or "HEAD"], cwd=ROOT, capture_output=True,
                             check=True, timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=120)


def _env(copy: Path, home: Path, runs: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(copy), "CHAOS_HOME": str(home), "CHAOS_RUNS_DIR": str(runs),
            "COLUMNS": "200"}


def _home(base: Path, name: str, real_home: Path, infra_dir: Path) -> Path:
    home = base / "homes" / name
    home.mkdir(parents=True, exist_ok=True)
    for link, to in (("install", real_home / "install"), ("infra", infra_dir)):
        if not (home / link).exists():
            (home / link).symlink_to(to)
    return home


def run_one(d: Defect, *, budget: str, budget_s: float, seed: int, reruns: int, base: Path, real_home: Path,
            infra_dir: Path, faults: str | None = None) -> Finding:
    def failed(note: str, wall: float = 0.0, code: int | None = None, session: str | None = None) -> Finding:
        return Finding(d.name, d.where, d.kind, False, False, (), None, None, 0, None, None, None, wall, code, note,
                       session)

    copy = Path(tempfile.mkdtemp(prefix=f"defect-{d.name}-", dir=base))
    copy_tree(copy)
    applied = subprocess.run(["git", "apply", str(d.patch)], cwd=copy, capture_output=True, text=True, timeout=60)
    if applied.returncode != 0:
        return failed(f"patch does not apply: {applied.stderr.strip()[:200]}")
    home = _home(base, d.name, real_home, infra_dir)
    runs = base / "runs" / d.name
    env = _env(copy, home, runs)
    # The trials' processes must import the patched copy, not the editable install.
    where = subprocess.run([sys.executable, "-c", "import targets.relay as m; print(m.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True, timeout=60).stdout.strip()
    if not where.startswith(str(copy)):
        return failed(f"the copy's targets are not the ones imported ({where or 'nothing'})")
    argv = [sys.executable, "-m", "harness.cli", "explore", "--target", d.target, "--budget", budget,
            "--seed", str(seed), "--reruns", str(reruns), "--out", str(runs / "found")]
    if faults is not None:
        argv += ["--faults", faults]
    print(f"== {d.name} ({d.where}, expect {d.kind}): {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    started = time.monotonic()
    with (base / f"{d.name}.log").open("wb") as log:
        child = subprocess.Popen(argv, cwd=copy, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            code: int | None = child.wait(timeout=budget_s + SLACK_S)
        except subprocess.TimeoutExpired:
            child.terminate()  # SIGTERM: explore heals, keeps finished trials and writes explore.json
            try:
                code = child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
    wall = time.monotonic() - started
    return summarize(d, runs, reruns, wall, code, base / f"{d.name}.log")


def summarize(d: Defect, runs: Path, reruns: int, wall: float | None, code: int | None, log: Path) -> Finding:
    """The finding of ``d`` from its explore session under ``runs`` (its explore.json and trials.jsonl)."""
    summaries = sorted(runs.glob("explore-*/explore.json"))
    if not summaries:
        return Finding(d.name, d.where, d.kind, False, False, (), None, None, 0, None, None, None, wall or 0.0, code,
                       f"explore wrote no summary (exit {code}); see {log}", None)
    summary = json.loads(summaries[-1].read_text())
    wall = wall if wall is not None else summary["wall_s"]
    session = str(summaries[-1].parent)
    trials = [json.loads(line) for line in (summaries[-1].parent / "trials.jsonl").read_text().splitlines() if line]
    first = next((t["trial"] for t in trials if t["found"]), None)
    expected_first = next((t["trial"] for t in trials if d.kind in t["found"]), None)
    seen = tuple(sorted({k for t in trials for k in t["found"]}))
    errors = sum(1 for t in trials if t.get("error"))
    kinds = tuple(summary["found"])
    found = bool(kinds)
    note = "" if found else f"nothing confirmed in {summary['trials']} trials" + (
        f" ({errors} ended without a verdict)" if errors else "") + (
        f"; seen but not confirmed {reruns}/{reruns}: {', '.join(seen)}" if seen else "")
    if found and d.kind not in kinds:
        note = f"found, but not {d.kind}"
    return Finding(d.name, d.where, d.kind, found, d.kind in kinds, kinds, summary["found_after_s"], first,
                   summary["trials"], summary["shrink_s"] if found else None, summary["stopped_by"], summary["minimal"],
                   round(wall, 1), code, note, session, seen, expected_first)


def table(findings: list[Finding]) -> str:
    rows = ["| defect | where | expected kind | found? | kind found | time to find | trials to first | shrink |",
            "|---|---|---|---|---|---|---|---|"]
    for f in findings:
        found = ("yes" if f.right_kind else "other kind") if f.found else "no"
        after = f"{f.found_after_s:.0f} s" if f.found_after_s is not None else "-"
        shrink = f"{f.shrink_s:.0f} s" if f.shrink_s is not None else "-"
        rows.append(f"| `{f.defect}` | {f.where} | {f.expected} | {found} | {', '.join(f.kinds) or '-'} | {after} "
                    f"| {f.trials_to_first or '-'} of {f.trials} | {shrink} |")
    return "\n".join(rows)


def main() -> int:
    from harness.config import Settings
    from harness.explore import parse_budget

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--budget", default="10m", help="explore's budget per defect (default 10m)")
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--reruns", type=int, default=3, help="k: runs a schedule must fail in to count (default 3)")
    ap.add_argument("--faults", help="explore's --faults for every defect (default: the whole catalogue)")
    ap.add_argument("--only", help="comma-separated defect names, run in that order (default: every patch in tests/defects)")
    ap.add_argument("--json", type=Path, help="where the results go (default runs/defects-<stamp>.json)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copies and homes")
    ap.add_argument("--rescan", type=Path, metavar="WORKDIR",
                    help="run nothing: rebuild the table and JSON from the explore sessions of an earlier work folder")
    args = ap.parse_args()
    budget_s = parse_budget(args.budget)
    defects = read_defects()
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {d.name for d in defects})
        if unknown:
            print(f"unknown defect(s) {', '.join(unknown)}; known: {', '.join(d.name for d in defects)}", file=sys.stderr)
            return 4
        defects = [next(d for d in defects if d.name == n) for n in wanted]  # in the order given
    settings = Settings.from_env()
    if args.rescan is not None:
        rescanned = [summarize(d, args.rescan / "runs" / d.name, args.reruns, None, None, args.rescan / f"{d.name}.log")
                     for d in defects if (args.rescan / "runs" / d.name).is_dir()]
        if args.json:
            args.json.write_text(json.dumps({"rescan": str(args.rescan), "reruns": args.reruns,
                                             "defects": [asdict(x) for x in rescanned]}, indent=1))
        print(table(rescanned))
        return 0
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = args.json or settings.runs_dir / f"defects-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="chaos-defects-"))
    infra_dir = base / "infra"
    infra_dir.mkdir()
    infra_home = _home(base, "_infra", settings.home, infra_dir)
    infra_env = {**os.environ, "CHAOS_HOME": str(infra_home), "PYTHONPATH": str(ROOT)}
    print(f"bench/defects: {len(defects)} defect(s), budget {args.budget} each, seed {args.seed}, k={args.reruns}; "
          f"work folder {base}; results {out}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "harness.cli", "infra", "up"], env=infra_env, check=True, timeout=600)
    findings: list[Finding] = []
    try:
        for d in defects:
            findings.append(run_one(d, budget=args.budget, budget_s=budget_s, seed=args.seed, reruns=args.reruns,
                                    base=base, real_home=settings.home, infra_dir=infra_dir, faults=args.faults))
            f = findings[-1]
            said = "FOUND " + ", ".join(f.kinds) if f.found else "not found"
            after = f" after {f.found_after_s:.0f}s" if f.found_after_s is not None else ""
            print(f"== {d.name}: {said}{after}" + (f" ({f.note})" if f.note else ""), file=sys.stderr, flush=True)
            out.write_text(json.dumps({"budget": args.budget, "seed": args.seed, "reruns": args.reruns, "faults": args.faults,
                                       "base_port": settings.base_port, "started": stamp,
                                       "defects": [asdict(x) for x in findings]}, indent=1))
    finally:
        subprocess.run([sys.executable, "-m", "harness.cli", "infra", "down"], env=infra_env, timeout=300)
        if not args.keep:
            shutil.rmtree(base / "homes", ignore_errors=True)
            for copy in base.glob("defect-*"):
                shutil.rmtree(copy, ignore_errors=True)
    print(table(findings))
    print(f"results: {out}; logs and explore sessions: {base}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
