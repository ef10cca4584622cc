"""Benchmark: the order service against Postgres running the same transaction, and the driver against a no-op.

    python bench/order_service.py --clients 32 --duration 10

Issue 14 asks for the service at >= 0.5x of pgbench running the same transaction in the
same run, and for the workload driver to offer >= 3x the service's rate against a no-op
endpoint, so the driver is never what limits a run. On its own Postgres (CHAOS_BASE_PORT+95,
holding the base port's lock) this measures, one after the other, each at ``--clients`` in
flight (pgbench clients, the driver's clients):

  pgbench   the service's own place-order statement (targets.order_service.place_sql), as a
            pgbench script run with -M prepared (the service's psycopg prepares it too)
  service   the real order service (python -m targets.order_service), place-only orders from
            the project's driver (harness.workload.orders), its history written to a file as
            in a run; orders/s is 2xx places over the window, offered far above capacity. Run
            twice: as it runs in a scenario (group commit: places that wait together commit in
            one transaction, targets.group_commit; ``orders_per_transaction`` says how many) and
            with ORDER_SERVICE_MAX_BATCH=1 (``one_transaction_per_order``: every order its own
            transaction, as each of pgbench's is)
  no-op     the same driver against a server that answers 201 at once (a raw asyncio protocol,
            the cheapest answer there is), the driver's ceiling

for outbox mode, and commit_only (the cdc pipeline's service) unless --modes says otherwise;
``--compare-root DIR`` also runs DIR's order service (an older checkout) in each mode;
``--go-service`` also builds and runs examples/go_outbox's order service (cmd/orders, Go, outbox
mode only) with the same driver and environment: what a compiled service reaches.
Prints one JSON line with the rates, their ratios and the CPU seconds each party used: the
machine may be shared, so CPU seconds say what a rate cost when wall time was contended.
``ratio_ceiling`` is the ratio a service would reach if its own code cost nothing, given what
the driver, Postgres and the service's sockets (kernel time) cost per order in the same window:
where it is below 0.5, no service with that exchange reaches 0.5x on this machine (one
transaction per order: 0.42-0.52 at stop 20, what made group commit the way to 0.5x).
Timing lives here, never in a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.config import Settings
from harness.errors import InfraError
from harness.history.ops import OpType
from harness.history.store import HistoryWriter
from harness.infra import postgres
from harness.infra.install import Installation
from harness.infra.lock import hold_base_port
from harness.infra.process import ManagedProcess, ProcessSpec
from harness.wait import wait_for
from harness.workload.orders import OrderWorkload, plan_orders
from harness.workload.rate import Constant
from targets.domain import SCHEMA_SQL, Event, EventType, event_id_for
from targets.order_service import place_sql

HOST = "127.0.0.1"
PG_OFFSET, SERVICE_OFFSET, NOOP_OFFSET = 95, 96, 97  # target-process ports of the base port's layout
DB = "bench"
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_split(pid: int) -> tuple[float, float]:
    """CPU of ``pid``'s tree, (user, kernel): itself, its reaped children, and its live children (Postgres's backends).

    Taken around a window, the difference is what the tree spent in it: a backend that lives
    through the window counts only its CPU inside it, one that exits counts through its parent.
    """
    def split(fields: list[str]) -> tuple[int, int]:
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        return utime + cutime, stime + cstime

    user, kernel = split(_stat(pid))
    for fields in _children(pid).values():
        u, k = split(fields)
        user, kernel = user + u, kernel + k
    return user / TICK, kernel / TICK


def _children(pid: int) -> dict[int, list[str]]:
    """``pid``'s live children and their /proc stat fields."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited while we looked: its parent counts it now
            if int(fields[1]) == pid:
                found[int(entry.name)] = fields
    return found


def _client_backend(pid: int) -> bool:
    """A backend serving a client over TCP (its title names the client's address), not one of Postgres's own workers."""
    try:
        return f"{HOST}(".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False  # gone already


def _backends_reaped(postmaster: int, before: set[int]) -> None:
    """Until the backends that pgbench's clients had are gone and reaped (their CPU then counts in the
    postmaster's, where _cpu_split reads it): measured earlier, an exited backend's CPU was in neither."""
    def reaped() -> tuple[bool, str]:
        extra = [p for p in set(_children(postmaster)) - before if _client_backend(p)]
        return not extra, f"{len(extra)} client backends still there: {sorted(extra)[:8]}"

    wait_for(reaped, timeout_s=15, what="pgbench's backends reaped by the postmaster")


def _cpu_s(pid: int) -> float:
    return sum(_cpu_split(pid))


def _self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


# -- pgbench ---------------------------------------------------------------------------------------

def _pgbench_script(outbox: bool, one_statement: bool = False) -> str:
    """The service's statement with pgbench values, sent the way the service sends it.

    The outbox service opens a transaction whose BEGIN leaves with the statement (one round trip,
    libpq's pipeline mode) and commits in a second round trip (the late_commit window), so pgbench
    does the same: ``\\startpipeline`` BEGIN + the statement, then COMMIT. ``one_statement`` sends the
    statement alone, autocommitted: the cheapest form of the same writes, what the commit_only
    service sends (its one statement is its transaction) and a floor for the outbox one.
    """
    sample = Event(event_id_for("00000000-0000-4000-8000-000000000000", 1), EventType.CREATED.value,
                   "00000000-0000-4000-8000-000000000000", 1, 1, "00000000-0000-4000-8000-000000000000",
                   "2026-01-01T00:00:00.000000+00:00", "customer-001", 12345).encode().decode()
    values = ["gen_random_uuid()", "'customer-' || :customer", ":amount", "gen_random_uuid()"]
    if outbox:  # the outbox row: its event id, seq, type and an event of the service's size
        values += ["gen_random_uuid()", "1", f"'{EventType.CREATED.value}'", "'" + sample.replace("'", "''") + "'"]
    sql = place_sql(outbox)
    for value in values:
        sql = sql.replace("%s", value, 1)
    assert "%s" not in sql
    head = "\\set amount random(500, 49999)\n\\set customer random(100, 999)\n"
    if outbox and not one_statement:
        return head + "\\startpipeline\nBEGIN;\n" + sql + ";\n\\endpipeline\nCOMMIT;\n"
    return head + sql + ";\n"


def run_pgbench(bin_dir: Path, port: int, clients: int, duration_s: float, script_text: str, name: str,
                work: Path) -> dict[str, float]:
    script = work / f"{name}.sql"
    script.write_text(script_text)
    before = _self_children_cpu()
    out = subprocess.run(  # noqa: S603
        [str(bin_dir / "pgbench"), "-h", HOST, "-p", str(port), "-U", "postgres", "-n", "-M", "prepared",
         "-c", str(clients), "-j", "2", "-T", str(int(duration_s)), "-f", str(script), DB],
        capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if out.returncode != 0:
        raise InfraError(f"pgbench failed ({out.returncode}): {out.stderr[-2000:]}")
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if match is None:
        raise InfraError(f"no tps in pgbench's output: {out.stdout[-2000:]}")
    return {"tps": float(match.group(1)), "cpu_s": round(_self_children_cpu() - before, 2)}


def _self_children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


# -- the no-op endpoint ----------------------------------------------------------------------------

_NOOP_ANSWER = (b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\r\n"
                b'{"order_id":"x","correlation_id":"c-0000"}')
assert len(_NOOP_ANSWER.split(b"\r\n\r\n", 1)[1]) == 42


class _Noop(asyncio.Protocol):
    """Answers every request with 201 as soon as its Content-Length body is in: nothing cheaper serves HTTP."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        answers = 0
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            match = re.search(rb"(?i)content-length:\s*(\d+)", self.buf[:end])
            size = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buf) < size:
                break
            self.buf = self.buf[size:]
            answers += 1
        if answers:
            self.transport.write(_NOOP_ANSWER * answers)  # type: ignore[attr-defined]


def serve_noop(port: int) -> None:
    import uvloop

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(_Noop, HOST, port, backlog=1024)
        await server.serve_forever()

    uvloop.run(serve())


# -- the driver ------------------------------------------------------------------------------------

def drive(port: int, clients: int, duration_s: float, offered: float, seed: int, work: Path, name: str) -> dict[str, float]:
    """Place-only orders offered at ``offered``/s for ``duration_s`` from ``clients`` clients; 2xx places per second."""
    plan = plan_orders(Constant(offered), duration_s, seed)
    writer = HistoryWriter(work / f"{name}.jsonl", name, seed)
    recorder = writer.recorder(name)
    workload = OrderWorkload(f"http://{HOST}:{port}", recorder, plan, concurrency=clients, lifecycle=False)
    stop = threading.Event()
    timer = threading.Timer(duration_s, stop.set)  # offered far above capacity: the window ends the run
    cpu = _self_cpu_s()
    t0 = time.monotonic()
    timer.start()
    try:
        workload.run(stop, t0)
    finally:
        timer.cancel()
        writer.close()
    cpu = _self_cpu_s() - cpu
    ops = recorder.history().ops
    done = [op for op in ops if op.type is not OpType.INVOKE]
    ok = [op for op in done if op.type is OpType.OK]
    span = max(op.time_s for op in done) - min(op.time_s for op in ops) if done else float("nan")
    return {"per_s": round(len(ok) / span, 1), "ok": len(ok), "not_ok": len(done) - len(ok), "window_s": round(span, 2),
            "driver_cpu_s": round(cpu, 2)}


# -- processes -------------------------------------------------------------------------------------

@contextmanager
def _process(spec: ProcessSpec, port: int, ready_path: str | None) -> Iterator[ManagedProcess]:
    proc = ManagedProcess(spec).start()
    try:
        def up() -> tuple[bool, str]:
            if not proc.alive():
                raise InfraError(f"{spec.name} exited: {proc.tail()}")
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            try:
                conn.request("GET", ready_path or "/")
                conn.getresponse().read()
            finally:
                conn.close()
            return True, "answering"

        if ready_path is not None:
            wait_for(up, timeout_s=30, what=f"{spec.name} answering on {port}", evidence=proc.tail,
                     fatal=(InfraError,))
        yield proc
    finally:
        proc.stop(grace_s=5)


def _service_spec(mode: str, pg_port: int, port: int, work: Path, root: str, max_batch: int | None = None) -> ProcessSpec:
    env = {"CHAOS_PIPELINE": "bench", "CHAOS_PG_DSN": f"host={HOST} port={pg_port} user=postgres dbname={DB}",
           "CHAOS_TOPIC": "orders", "CHAOS_HTTP_PORT": str(port), "ORDER_SERVICE_MODE": mode, "PYTHONPATH": root}
    if max_batch is not None:
        env["ORDER_SERVICE_MAX_BATCH"] = str(max_batch)
    # cwd too: ``python -m`` puts the working directory first on sys.path, ahead of PYTHONPATH, so
    # without it --compare-root ran this checkout's service a second time.
    return ProcessSpec(name=f"order_service.{mode}", argv=[sys.executable, "-m", "targets.order_service"],
                       log_path=work / f"service_{mode}_{Path(root).name}.log", env=env, cwd=Path(root))


def serve_and_drive(mode: str, root: str, pg_port: int, service_port: int, pg: ManagedProcess, args: argparse.Namespace,
                    work: Path, max_batch: int | None = None) -> dict[str, float]:
    """The order service from checkout ``root`` in ``mode`` (``max_batch``: its ORDER_SERVICE_MAX_BATCH), warmed up,
    then driven for the window."""
    spec = _service_spec(mode, pg_port, service_port, work, root, max_batch)
    return _serve_and_drive_spec(spec, mode, service_port, pg, args, work)


def _serve_and_drive_spec(spec: ProcessSpec, mode: str, service_port: int, pg: ManagedProcess, args: argparse.Namespace,
                          work: Path) -> dict[str, float]:
    """The service ``spec`` runs, warmed up, then driven for the window; its CPU and Postgres's in the window."""
    with _process(spec, service_port, "/health") as svc:
        drive(service_port, args.clients, 2.0, args.offer, args.seed + 1, work, f"warm_{mode}")
        pg_cpu, (svc_user, svc_kernel) = _cpu_s(pg.pid or 0), _cpu_split(svc.pid or 0)
        served = drive(service_port, args.clients, args.duration, args.offer, args.seed, work, mode)
        user, kernel = _cpu_split(svc.pid or 0)
        served["service_cpu_s"] = round(user - svc_user + kernel - svc_kernel, 2)
        served["service_kernel_cpu_s"] = round(kernel - svc_kernel, 2)
        served["postgres_cpu_s"] = round(_cpu_s(pg.pid or 0) - pg_cpu, 2)
        grouped = _group_commit(service_port)
        if grouped is not None:  # over warm-up and window together: how many orders a transaction carried
            served["orders_per_transaction"] = round(grouped["writes"] / max(grouped["batches"], 1), 1)
    return served


def _group_commit(port: int) -> dict[str, int] | None:
    """The service's group commit figures from its /health (None: off, or a service that has none, as the Go one)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", "/health")
        health = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    grouped = health.get("group_commit") if isinstance(health, dict) else None
    return grouped if isinstance(grouped, dict) else None


# -- the Go order service (examples/go_outbox/cmd/orders) -------------------------------------------

GO_EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "go_outbox"
GO_MODES = ("outbox",)  # the Go service ports the outbox mode only


def build_go_service(work: Path) -> Path:
    """``go build`` of the Go order service into ``work``; its binary."""
    out = work / "go-bin"
    built = subprocess.run(["go", "build", "-o", f"{out}/", "./cmd/orders"], cwd=GO_EXAMPLE,  # noqa: S603, S607
                           capture_output=True, text=True, timeout=600, check=False)
    if built.returncode != 0:
        raise InfraError(f"go build of {GO_EXAMPLE}/cmd/orders failed ({built.returncode}): {built.stderr[-2000:]}; "
                         "is Go 1.26 on PATH?")
    return out / "orders"


def serve_and_drive_go(binary: Path, mode: str, pg_port: int, service_port: int, pg: ManagedProcess,
                       args: argparse.Namespace, work: Path) -> dict[str, float]:
    """The Go order service, with the Python service's environment, driven as serve_and_drive drives that one."""
    python = _service_spec(mode, pg_port, service_port, work, os.getcwd())
    spec = replace(python, name=f"go_orders.{mode}", argv=[str(binary)], log_path=work / f"service_{mode}_go.log",
                   cwd=GO_EXAMPLE)
    return _serve_and_drive_spec(spec, mode, service_port, pg, args, work)


def ceiling(served: dict[str, float], pgbench_tps: float) -> float:
    """The ratio a service would reach if its own code cost nothing: only the driver, Postgres and the
    service's kernel time (its sockets: the HTTP exchange and its Postgres round trips) left to pay.

    Every party shares the machine's cores, so a rate costs its CPU per order: this bounds what any
    service with this exchange (one request; BEGIN + statement, COMMIT per order, or per batch
    with group commit) can reach here, at the costs measured in the same window (Postgres costs less per transaction at higher rates, so it
    is an estimate, not a proof).
    """
    outside_s = served["driver_cpu_s"] + served["postgres_cpu_s"] + served["service_kernel_cpu_s"]
    rate = (os.cpu_count() or 1) * max(served["ok"], 1) / max(outside_s, 1e-9)
    return round(rate / pgbench_tps, 3)


def service_entry(served: dict[str, float], pgbench_tps: float) -> dict[str, object]:
    """Another service run's figures beside the reference run's: its rate, its ratio to pgbench, its CPU per order."""
    ok = max(served["ok"], 1)
    return {
        "per_s": served["per_s"], "ok": served["ok"], "not_ok": served["not_ok"], "window_s": served["window_s"],
        "ratio": round(served["per_s"] / pgbench_tps, 3), "ratio_ceiling": ceiling(served, pgbench_tps),
        "service_cpu_s": served["service_cpu_s"], "service_kernel_cpu_s": served["service_kernel_cpu_s"], "postgres_cpu_s": served["postgres_cpu_s"],
        "driver_cpu_s": served["driver_cpu_s"],
        "cpu_us_per_order": {
            "service_path": round((served["driver_cpu_s"] + served["service_cpu_s"] + served["postgres_cpu_s"]) / ok * 1e6),
            "service_alone": round(served["service_cpu_s"] / ok * 1e6),
            "service_kernel": round(served["service_kernel_cpu_s"] / ok * 1e6),
            "postgres": round(served["postgres_cpu_s"] / ok * 1e6),
            "driver": round(served["driver_cpu_s"] / ok * 1e6),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32, help="pgbench clients = the driver's clients")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds each measurement runs")
    parser.add_argument("--offer", type=float, default=60000.0, help="orders/s the driver is asked for (above capacity)")
    parser.add_argument("--modes", default="outbox,commit_only")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compare-root", help="also run the service of this checkout (e.g. /work/main), same driver")
    parser.add_argument("--go-service", action="store_true",
                        help="also build and run examples/go_outbox's Go order service (outbox mode), same driver")
    parser.add_argument("--noop-server", type=int, help=argparse.SUPPRESS)  # internal: be the no-op endpoint
    args = parser.parse_args()
    if args.noop_server:
        serve_noop(args.noop_server)
        return
    settings = Settings.from_env()
    base = settings.base_port
    pg_port, service_port, noop_port = base + PG_OFFSET, base + SERVICE_OFFSET, base + NOOP_OFFSET
    bin_dir = Installation.paths(settings).postgres_bin
    work = Path(tempfile.mkdtemp(prefix="bench-order-service-"))
    result: dict[str, Any] = {"clients": args.clients, "duration_s": args.duration, "cpus": os.cpu_count(),
                              "loadavg_before": os.getloadavg()[0]}
    go_binary = build_go_service(work) if args.go_service else None
    with hold_base_port(settings, command="bench/order_service.py"):
        postgres.initdb(bin_dir, pg_port, work / "postgres.log")
        with _process(postgres.spec(bin_dir, pg_port, work / "postgres.log", die_with_parent=True), pg_port, None) as pg:
            wait_for(lambda: postgres.probe(pg_port), timeout_s=30, what="postgres up", evidence=pg.tail)
            with postgres.connect_direct(pg_port) as conn:
                conn.execute(f"CREATE DATABASE {DB}")
            with postgres.connect_direct(pg_port, DB) as conn:
                conn.execute(SCHEMA_SQL)  # type: ignore[arg-type]

            def truncate() -> None:
                with postgres.connect_direct(pg_port, DB) as c:
                    c.execute("TRUNCATE orders, outbox")
                    c.execute("CHECKPOINT")

            noop = ProcessSpec(name="noop", argv=[sys.executable, __file__, "--noop-server", str(noop_port)],
                               log_path=work / "noop.log", env={"PYTHONPATH": os.getcwd()})

            def against_noop(name: str) -> dict[str, float]:
                with _process(noop, noop_port, "/") as noop_proc:
                    drive(noop_port, args.clients, 1.0, args.offer, args.seed, work, f"warm_{name}")
                    before = _cpu_s(noop_proc.pid or 0)
                    rate = drive(noop_port, args.clients, args.duration, args.offer, args.seed, work, name)
                    rate["server_cpu_s"] = round(_cpu_s(noop_proc.pid or 0) - before, 2)
                    rate["driver_cpu_us_per_request"] = round(rate["driver_cpu_s"] / rate["ok"] * 1e6)
                    return rate

            # Before and after the services: the other sessions on the machine come and go, and the
            # driver's rate is compared with the mean of the two.
            result["noop_before"] = against_noop("noop_before")
            for mode in args.modes.split(","):
                outbox = mode == "outbox"
                def pgbench(one_statement: bool) -> dict[str, float]:
                    truncate()
                    resident = set(_children(pg.pid or 0))  # the postmaster's own workers, before pgbench connects
                    pg_cpu = _cpu_s(pg.pid or 0)
                    name = f"{mode}_{'one_statement' if one_statement else 'exchange'}"
                    bench = run_pgbench(bin_dir, pg_port, args.clients, args.duration,
                                        _pgbench_script(outbox, one_statement), name, work)
                    _backends_reaped(pg.pid or 0, resident)
                    bench["postgres_cpu_s"] = round(_cpu_s(pg.pid or 0) - pg_cpu, 2)
                    return bench

                bench = pgbench(one_statement=False)  # the reference: what the service sends, as it sends it
                floor = pgbench(one_statement=True) if outbox else None
                truncate()
                served = serve_and_drive(mode, os.getcwd(), pg_port, service_port, pg, args, work)
                # The same service with group commit off: every order its own transaction, as pgbench's are.
                truncate()
                alone = serve_and_drive(mode, os.getcwd(), pg_port, service_port, pg, args, work, max_batch=1)
                txns = bench["tps"] * args.duration
                entry: dict[str, Any] = {
                    "pgbench": bench, "service": served, "ratio": round(served["per_s"] / bench["tps"], 3),
                    # What no service code could beat here: see ceiling().
                    "ratio_ceiling": ceiling(served, bench["tps"]),
                    # The same writes as one autocommitted statement: no transaction round trip to wait for.
                    **({"pgbench_one_statement": floor,
                        "ratio_one_statement": round(served["per_s"] / floor["tps"], 3)} if floor else {}),
                    # CPU each path spent per order (client + server + Postgres): what a rate costs
                    # whatever share of the machine the other sessions left it.
                    "cpu_us_per_order": {
                        "pgbench_path": round((bench["cpu_s"] + bench["postgres_cpu_s"]) / txns * 1e6),
                        "service_path": round((served["driver_cpu_s"] + served["service_cpu_s"] + served["postgres_cpu_s"])
                                              / served["ok"] * 1e6),
                        "service_alone": round(served["service_cpu_s"] / served["ok"] * 1e6),
                        "service_kernel": round(served["service_kernel_cpu_s"] / served["ok"] * 1e6),
                        "postgres": round(served["postgres_cpu_s"] / served["ok"] * 1e6),
                        "driver": round(served["driver_cpu_s"] / served["ok"] * 1e6),
                    },
                    "one_transaction_per_order": service_entry(alone, bench["tps"]),
                }
                result[mode] = entry
                if args.compare_root:
                    # Another checkout's service (e.g. the threaded one on main), same driver, same run.
                    truncate()
                    other = serve_and_drive(mode, args.compare_root, pg_port, service_port, pg, args, work)
                    entry["compared"] = {"root": args.compare_root, "per_s": other["per_s"], "ok": other["ok"],
                                         "not_ok": other["not_ok"], "ratio": round(other["per_s"] / bench["tps"], 3),
                                         "service_cpu_us_per_order": round(other["service_cpu_s"] / max(other["ok"], 1) * 1e6)}
                if go_binary is not None and mode in GO_MODES:
                    # The Go service (examples/go_outbox), same driver, same Postgres, same run.
                    truncate()
                    go = serve_and_drive_go(go_binary, mode, pg_port, service_port, pg, args, work)
                    entry["go"] = service_entry(go, bench["tps"])
            result["noop_after"] = against_noop("noop_after")
    noop_rate = (float(result["noop_before"]["per_s"]) + float(result["noop_after"]["per_s"])) / 2
    result["noop_mean_per_s"] = round(noop_rate, 1)
    for figures in (result[mode] for mode in args.modes.split(",")):
        figures["driver_over_service"] = round(noop_rate / figures["service"]["per_s"], 2)
        if "go" in figures:
            figures["go"]["driver_over_service"] = round(noop_rate / figures["go"]["per_s"], 2)
    result["loadavg_after"] = os.getloadavg()[0]
    print(json.dumps(result))
    # Kept when the bench failed (its logs are the evidence); a finished one leaves nothing behind.
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(postgres.data_dir(pg_port), ignore_errors=True)


if __name__ == "__main__":
    main()
