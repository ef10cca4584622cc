"""Benchmark: load and check a stored history of about 1,000,000 events, against a plain orjson parse.

    PYTHONPATH=. python bench/checkers_1m.py                # generate, then measure in fresh children
    PYTHONPATH=. python bench/checkers_1m.py --keep /tmp/h.jsonl --v1 --baseline /path/to/old/checkout
    PYTHONPATH=. python bench/checkers_1m.py --compare /tmp/h.jsonl   # again, on the kept file(s)

The history has the realistic shape of an outbox run with all four consumers: client ops
(place / pay / ship with a few failures and unknown outcomes), a fault window with lag
probes, and the final observations (order rows, topic records with their raw payloads,
processed-event records, effects, a few DLQ entries, redelivered copies). An "event" is
one op or one observation row. ``--poison N`` adds N undecodable records, dead-lettered by
every consumer (I8 invalid; I5 and I8 list them one by one); ``--lose N`` drops N effect rows
(I1 invalid: a checker that finds an anomaly runs its Python path to show the evidence).

The jsonl is generated first, then its columnar form (history.arrow, as a run writes it at
its end) is built once in a child (``columnar_build``, reported, not part of the headline).
A child process then loads the history the way `chaos analyze` does (``load_histories``:
the columnar file, memory-mapped) and runs all checkers, so peak RSS (``ru_maxrss``) is that
of analysing a stored run, not of generating one. Times are CPU seconds of that process
(``time.process_time``: honest on a shared machine) with wall-clock beside them; importing
numpy, pyarrow and the harness happens before the clock starts and is reported on its own
(``import_cpu_s``), as the reference's import of orjson is not timed either. Prints one
JSON line. Timing lives here, never in a pass/fail test.

The headline is ``events_per_cpu_s`` (events / CPU of load + check) and ``speed_vs_reference``:
the CPU time of a plain orjson parse of every line of the same history.jsonl (``reference``:
nothing built from it, the garbage collector off as in ``bulk``) divided by the CPU time of
loading and checking it; above 1, analysing the history costs less than merely parsing its
jsonl with orjson. Both are measured in this run, each in fresh children pinned to one
core, alternated ``--repeat`` times; each side keeps its fastest run, the least disturbed on
a shared machine. ``--v1`` also stores the same history in format 1 (a dict per row, FILE.v1)
and times the reference on it; ``--baseline DIR`` times an older checkout (its harness/ on
PYTHONPATH) loading and checking the same history.jsonl its own way: before and after, in one run.

``--measure PATH``, ``--reference PATH`` and ``--build PATH`` run one child's part; ``--compare
PATH`` runs the comparison on a history kept earlier with ``--keep`` (the generator draws uuid4s,
so regenerating gives a different, if equally shaped, file).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the harness is imported where it is measured, not at start
    from harness.history.ops import Scalar

CONSUMERS = ("payment", "inventory", "fulfillment", "notification")
SUBSCRIBED = {"order.created": ("inventory", "notification"), "order.paid": ("payment", "fulfillment"),
              "order.shipped": ("fulfillment",)}
EFFECTS = {"place": (("inventory", "reservation"), ("notification", "email")), "pay": (("payment", "charge"),),
           "ship": (("fulfillment", "shipment"),)}
EVENT = {"place": "order.created", "pay": "order.paid", "ship": "order.shipped"}
STATUS = {"place": "created", "pay": "paid", "ship": "shipped"}
EVENTS_PER_ORDER = 14.6  # measured average of the shape below; sizes the run


def generate(path: Path, events: int, seed: int, poison: int = 0, v1_path: Path | None = None, lose: int = 0) -> int:
    rng = random.Random(seed)
    orders_n = int(events / EVENTS_PER_ORDER)
    ops: list[str] = []
    rows: dict[str, list[dict[str, Scalar]]] = {s: [] for s in ("orders", "topic", "applied", "effects", "dlq")}
    offsets = [0, 0, 0]
    positions = dict.fromkeys(CONSUMERS, 0)
    t = 0.0
    t_ms = 1_780_000_000_000
    duration = orders_n / 1000  # a 1000 orders/s workload
    fault = (duration * 0.3, duration * 0.5)

    def op(process: str, type_: str, f: str, key: str | None = None, value: dict[str, object] | None = None,
           error: str | None = None) -> None:
        raw: dict[str, object] = {"index": len(ops), "time": round(t, 6), "process": process, "type": type_, "f": f}
        if key is not None:
            raw["key"] = key
        if value:
            raw["value"] = value
        if error:
            raw["error"] = error
        ops.append(json.dumps({"pipeline": "outbox", "op": raw}, separators=(",", ":")))

    fault_on = fault_off = False
    next_probe = 0.0
    for _ in range(orders_n):
        t += 1 / 1000
        t_ms += 1
        if not fault_on and t >= fault[0]:
            fault_on = True
            v = {"id": 0, "fault": "outage", "target": "relay->kafka"}
            op("nemesis", "invoke", "inject", value=v)
            op("nemesis", "ok", "inject", value=v)
        if fault_on and not fault_off and t >= fault[1]:
            fault_off = True
            v = {"id": 0, "fault": "outage", "target": "relay->kafka"}
            op("nemesis", "ok", "effect", value={**v, "observed": 500})
            op("nemesis", "invoke", "heal", value=v)
            op("nemesis", "ok", "heal", value=v)
        if t >= next_probe:
            lag = 0 if not fault_on or t > fault[1] + 2 else rng.randrange(1, 500)
            op("probe", "ok", "lag", value={"lag": lag, "backlog": lag // 2})
            next_probe = t + 0.5
        order = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        customer = f"customer-{rng.randrange(1000):03d}"
        amount = rng.randrange(500, 50_000)
        client = f"client-{rng.randrange(16)}"
        partition = hash(order) % 3
        steps = ["place", "pay", "ship"][:1 + (rng.random() < 0.9) * (1 + (rng.random() < 0.5))]
        row: dict[str, Scalar] | None = None
        for seq, step in enumerate(steps, start=1):
            value: dict[str, object] = {"amount_cents": amount, "customer": customer}
            op(client, "invoke", step, order, value)
            roll = rng.random()
            if roll < 0.02:
                op(client, "fail", step, order, value, error="HTTP 503: database unavailable")
                break
            cid = str(uuid.uuid4())
            unknown = roll < 0.03
            if unknown:
                op(client, "info", step, order, value, error="TimeoutError: timed out")
            else:
                op(client, "ok", step, order, {**value, "correlation_id": cid})
            if row is None:
                row = {"order_id": order, "customer": customer, "amount_cents": amount, "status": "created",
                       "version": 1, "correlation_id": cid}
                rows["orders"].append(row)
            else:
                row.update(status=STATUS[step], version=seq)
            event_id = str(uuid.uuid4())
            type_ = EVENT[step]
            payload = json.dumps({"event_id": event_id, "type": type_, "order_id": order, "seq": seq,
                                  "schema_version": 1, "correlation_id": cid,
                                  "occurred_at": "2026-11-26T20:09:52.123456+00:00", "customer": customer,
                                  "amount_cents": amount}, separators=(",", ":"))
            copies = 2 if rng.random() < 0.01 else 1  # a relay crash between publish and mark
            for _ in range(copies):
                rows["topic"].append({"partition": partition, "offset": offsets[partition], "key": order,
                                      "timestamp_ms": t_ms, "payload": payload, "event_id": event_id,
                                      "order_id": order, "type": type_, "seq": seq, "correlation_id": cid,
                                      "schema_version": 1})
                offsets[partition] += 1
            for consumer in SUBSCRIBED[type_]:
                positions[consumer] += 1
                rows["applied"].append({"consumer": consumer, "position": positions[consumer], "event_id": event_id,
                                        "order_id": order, "type": type_, "seq": seq, "applied_at_ms": t_ms + 3})
            for consumer, kind in EFFECTS[step]:
                rows["effects"].append({"consumer": consumer, "kind": kind, "order_id": order, "event_id": event_id,
                                        "correlation_id": cid, "amount_cents": amount, "applied_at_ms": t_ms + 3})
    # Poison records (not JSON), dead-lettered by every consumer with a reason. They break
    # the schema contract (I8) by design, so the default run has none.
    for i in range(poison):
        p = i % 3
        rows["topic"].append({"partition": p, "offset": offsets[p], "key": None, "timestamp_ms": t_ms,
                              "payload": "not json", "undecodable": True})
        for consumer in CONSUMERS:
            rows["dlq"].append({"consumer": consumer, "partition": 0, "offset": i, "key": None, "event_id": None,
                                "order_id": None, "type": None, "reason": "undecodable: not JSON",
                                "source_topic": "orders", "source_partition": p, "source_offset": offsets[p]})
        offsets[p] += 1
    # Lost effects (an acknowledged order's effect row gone): I1 finds them, and shows each on its Python path.
    for i in sorted(rng.sample(range(len(rows["effects"])), min(lose, len(rows["effects"]))), reverse=True):
        rows["effects"].pop(i)
    t += 1
    op("probe", "ok", "drain", value={"state": "publish backlog 0, consumer lag 0"})
    rows["consumers"] = [{"consumer": c} for c in CONSUMERS]
    rows["drain"] = [{"drained": True, "nemesis_errors": None}]
    for fmt, target in ((2, path), (1, v1_path)):
        if target is not None:
            _write(target, fmt, seed, ops, rows)
    return len(ops) + sum(len(r) for r in rows.values())


def _write(path: Path, fmt: int, seed: int, ops: list[str], rows: dict[str, list[dict[str, Scalar]]]) -> None:
    """The history as `chaos run` stores it: format 2 (observations by column) or the older format 1."""
    from harness.history.store import encode_observation

    with path.open("wb") as fh:
        header = {"format": "chaos-history", "version": fmt, "run_id": "bench", "seed": seed}
        fh.write(json.dumps(header).encode() + b"\n")
        fh.write("\n".join(ops).encode() + b"\n")
        for source, found in rows.items():
            if fmt == 2:
                fh.write(encode_observation("outbox", source, found) + b"\n")
            else:
                fh.write(json.dumps({"pipeline": "outbox", "observation": source, "rows": found},
                                    separators=(",", ":")).encode() + b"\n")


def reference(path: Path) -> dict[str, object]:
    """The yardstick: a plain orjson parse of every line of the same file, nothing built from it."""
    import gc

    import orjson

    gc.disable()  # as load_histories does (bulk): the parse alone, not the collector walking its result
    wall, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as fh:
        parsed = list(map(orjson.loads, fh))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"lines": len(parsed), "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def measure(path: Path) -> dict[str, object]:
    """Load the history the way `chaos analyze` does (from its columnar form, history.arrow beside it) and check it."""
    cpu = time.process_time()
    import numpy  # noqa: F401 - the libraries the load and the checks use, imported before timing them
    import pyarrow.compute  # noqa: F401

    from harness.analysis import CHECKERS, analyze
    from harness.checkers.base import run_checker
    from harness.history.ops import History
    from harness.history.store import bulk, load_histories
    import_cpu = time.process_time() - cpu

    wall, cpu = time.perf_counter(), time.process_time()
    _, histories = load_histories(path)
    load_wall, load_cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    (pipeline, history), = histories.items()
    events = len(history.ops) + sum(len(o.rows) for o in history.observations.values())

    wall, cpu = time.perf_counter(), time.process_time()
    (verdict,) = analyze(histories)  # exactly what `chaos analyze` runs (no expectations)
    check_wall, check_cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss_checked = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the per-checker pass below

    # Checkers share indexes derived from the history (History.derived); on a fresh History
    # each index is built again by the first checker that reads it, so the per-checker times
    # add up to a whole check instead of leaving the shared work out.
    frame = getattr(history, "frame", None)  # None: a checkout from before the columnar form (--baseline)
    if frame is not None:
        from harness.history.columnar import history_of

        fresh = history_of(pipeline, frame)
    else:
        fresh = History(history.pipeline, history.ops, history.observations)
    per_checker: dict[str, float] = {}
    with bulk():
        for checker in CHECKERS:
            start = time.process_time()
            run_checker(checker, fresh)
            per_checker[checker.name] = round(time.process_time() - start, 3)
    return {
        "events": events, "ops": len(history.ops),
        "loaded_from": "history.arrow (columnar)" if frame is not None else "history.jsonl",
        "cpu_s": round(load_cpu + check_cpu, 3), "wall_s": round(load_wall + check_wall, 3),
        "events_per_cpu_s": round(events / (load_cpu + check_cpu)),
        "rows": {s: len(o.rows) for s, o in history.observations.items()},
        "check_cpu_s": round(check_cpu, 3), "check_wall_s": round(check_wall, 3),
        "check_events_per_cpu_s": round(events / check_cpu),
        "load_cpu_s": round(load_cpu, 3), "load_wall_s": round(load_wall, 3),
        "load_events_per_cpu_s": round(events / load_cpu),
        "import_cpu_s": round(import_cpu, 3),
        "peak_rss_mib_after_load": round(rss_loaded / 1024),
        "peak_rss_mib": round(rss_checked / 1024),
        "per_checker_cpu_s": per_checker,
        "verdicts": {r.checker: r.validity.value for r in verdict.results},
        "python": sys.version.split()[0], "loadavg": os.getloadavg()[0],
    }


def build(path: Path) -> dict[str, object]:
    """Write the columnar form beside the jsonl, as a run's end (or the first `chaos analyze`) does."""
    from harness.history.store import columnar_path, load_histories

    columnar_path(path).unlink(missing_ok=True)
    wall, cpu = time.perf_counter(), time.process_time()
    load_histories(path)
    return {"build_cpu_s": round(time.process_time() - cpu, 3), "build_wall_s": round(time.perf_counter() - wall, 3),
            "columnar_mib": round(columnar_path(path).stat().st_size / 2**20),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _child(*args: str, code: Path | None = None) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(code or Path(__file__).resolve().parents[1])}
    # Pinned to one core, as the goal says; taskset is best effort where it exists.
    argv = [sys.executable, __file__, *args]
    if Path("/usr/bin/taskset").exists():
        argv = ["taskset", "-c", "0", *argv]
    return json.loads(subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout)  # type: ignore[no-any-return]


def compare(path: Path, v1_path: Path | None, repeat: int, baseline: Path | None = None) -> dict[str, object]:
    """Load+check and the orjson reference, each in fresh children, alternated ``repeat`` times.

    The machine is shared, so each side keeps its fastest run (the least disturbed) and the
    ratio is taken between those, measured in this same run."""
    runs: list[dict[str, object]] = []
    refs: list[dict[str, object]] = []
    refs_v1: list[dict[str, object]] = []
    olds: list[dict[str, object]] = []
    built = _child("--build", str(path))  # history.arrow, derived once (a run writes it at its end)
    for _ in range(repeat):
        refs.append(_child("--reference", str(path)))
        runs.append(_child("--measure", str(path)))
        if v1_path is not None:
            refs_v1.append(_child("--reference", str(v1_path)))
        if baseline is not None:
            olds.append(_child("--measure", str(path), code=baseline))
    best = min(runs, key=lambda r: r["cpu_s"])  # type: ignore[arg-type, return-value]
    ref = min(refs, key=lambda r: r["cpu_s"])  # type: ignore[arg-type, return-value]
    out: dict[str, object] = {**best, "file_mib": round(path.stat().st_size / 2**20)}
    out["reference"] = {**ref, "what": "orjson.loads of every line of the same file",
                        "events_per_cpu_s": round(best["events"] / ref["cpu_s"])}  # type: ignore[operator]
    # > 1: loading and checking the history costs less CPU than merely parsing its file with orjson.
    out["speed_vs_reference"] = round(ref["cpu_s"] / best["cpu_s"], 2)  # type: ignore[operator]
    out["columnar_build"] = {**built, "what": "history.jsonl -> history.arrow, once per run folder"}
    if refs_v1:
        ref1 = min(refs_v1, key=lambda r: r["cpu_s"])  # type: ignore[arg-type, return-value]
        out["reference_v1"] = {**ref1, "what": "orjson.loads of the same history stored as format 1 (a dict per row)",
                               "file_mib": round(v1_path.stat().st_size / 2**20)}  # type: ignore[union-attr]
        out["speed_vs_reference_v1"] = round(ref1["cpu_s"] / best["cpu_s"], 2)  # type: ignore[operator]
    if olds:
        old = min(olds, key=lambda r: r["cpu_s"])  # type: ignore[arg-type, return-value]
        out["baseline"] = {k: old[k] for k in ("cpu_s", "wall_s", "load_cpu_s", "check_cpu_s", "events_per_cpu_s",
                                               "peak_rss_mib", "verdicts")}
        out["baseline"]["what"] = f"{baseline} loading and checking the same history.jsonl"  # type: ignore[index]
        out["baseline_speed_vs_reference"] = round(ref["cpu_s"] / old["cpu_s"], 2)  # type: ignore[operator]
        out["speedup_vs_baseline"] = round(old["cpu_s"] / best["cpu_s"], 2)  # type: ignore[operator]
        out["same_verdicts_as_baseline"] = old["verdicts"] == best["verdicts"]
    out["samples_cpu_s"] = {"load_and_check": [r["cpu_s"] for r in runs], "reference": [r["cpu_s"] for r in refs],
                            "reference_v1": [r["cpu_s"] for r in refs_v1], "baseline": [r["cpu_s"] for r in olds]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--poison", type=int, default=0, help="undecodable records to add (each breaks I8)")
    parser.add_argument("--lose", type=int, default=0, help="effect rows to drop (each breaks I1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the fastest of each is compared")
    parser.add_argument("--v1", action="store_true",
                        help="also time the reference on the same history stored as format 1 (a dict per row)")
    parser.add_argument("--keep", type=Path, help="write the generated history here and keep it (FILE.v1 beside it with --v1)")
    parser.add_argument("--measure", type=Path, help="only load and check this kept history (the child's part)")
    parser.add_argument("--reference", type=Path, help="only parse this file with orjson (the reference child's part)")
    parser.add_argument("--build", type=Path, help="only write the columnar form of this history (a child's part)")
    parser.add_argument("--compare", type=Path, help="compare load+check with the reference on this kept history")
    parser.add_argument("--baseline", type=Path,
                        help="an older checkout whose load+check of the same history.jsonl to time too")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    if args.reference:
        print(json.dumps(reference(args.reference)))
        return
    if args.build:
        print(json.dumps(build(args.build)))
        return
    if args.compare:
        v1 = Path(f"{args.compare}.v1")
        print(json.dumps(compare(args.compare, v1 if v1.exists() else None, args.repeat, args.baseline)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "history.jsonl"
        v1_path = Path(f"{path}.v1") if args.v1 else None
        t0 = time.perf_counter()
        generate(path, args.events, args.seed, args.poison, v1_path, args.lose)
        gen_s = time.perf_counter() - t0
        result = compare(path, v1_path, args.repeat, args.baseline)
        result["generate_s"] = round(gen_s, 1)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
