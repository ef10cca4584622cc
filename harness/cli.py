"""`chaos`: the command line, a thin layer over the runner, the infra and the analysis.

Exit codes: 0 all expectations met, 1 an anomaly the scenario did not expect (or an
expected one no injected fault explains, or an expected break that did not happen), 2 inconclusive (vacuous, or a fault not injected, or an incomplete run folder),
3 infrastructure failed (or the base port is taken), 4 bad usage or bad scenario,
5 internal error (a crash log holds the traceback). 130 when interrupted (after healing
and cleaning up; a second Ctrl-C does not cut the cleanup short, a third does).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

from harness import options
from harness.config import Settings
from harness.errors import ChaosError, InternalError, UsageError
from harness.infra.lock import hold_base_port

__all__ = ["main"]


_STRICT = {
    "seed": (options.seed, "0..2**63-1"),
    "duration": (options.duration, "0 < S <= 3600"),
    "rate": (options.rate, "0 < R <= 5000"),
    "pipelines": (options.pipelines, "each named once, no spaces"),
    "run_dir": (options.run_dir, None),
}
"""Option (by dest) -> its strict parser in harness/options.py and the bounds its help shows."""


class _Parser(argparse.ArgumentParser):
    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        # Every option with one of these names gets its strict, bounded parser, in whichever
        # subcommand declares it: int() and float() alone take " 5", "1_000", "nan" and "inf".
        action = super().add_argument(*args, **kwargs)
        if action.dest in _STRICT:
            action.type, bounds = _STRICT[action.dest]
            if bounds and action.help:
                action.help += f"; {bounds}"
        return action

    def error(self, message: str) -> NoReturn:  # argparse exits 2; bad usage is 4 here
        # One line, no usage block: the message says what is valid, and --help has the rest.
        self.exit(4, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="chaos", description="Chaos and failure-mode tests for event-driven pipelines.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    infra = sub.add_parser("infra", help="install, start, inspect or stop Postgres, Kafka and Toxiproxy")
    infra.add_argument("action", choices=("install", "up", "status", "down"))

    run = sub.add_parser("run", help="run a named scenario against its pipelines, or against --target")
    run.add_argument("scenario", help="scenario name, e.g. black_friday (see `chaos scenarios`), or a path to a "
                                      "scenario module (.py) that defines SCENARIO")
    run.add_argument("--seed", type=int, help="seed for the workload and fault schedule (default: random, printed)")
    run.add_argument("--duration", type=float, help="seconds of traffic per pipeline (default: the scenario's)")
    run.add_argument("--rate", type=float, help="peak orders per second (default: the scenario's)")
    run.add_argument("--pipelines", help="comma-separated subset of the scenario's pipelines, e.g. outbox")
    run.add_argument("--target", action="append", default=[], metavar="SPEC",
                     help="run against this target instead of the scenario's pipelines: a name (`chaos targets`), "
                          "module:attr, or a path to a target.toml; repeat to compare several in one report")
    run.add_argument("--variant", help="a deliberate mistake the targets declare they can make (default: the "
                                       "scenario's, usually correct)")
    run.add_argument("--schema-registry", metavar="URL",
                     help="use this Confluent-compatible schema registry (its base URL) instead of starting the "
                          "harness's own; overrides CHAOS_SCHEMA_REGISTRY")

    analyze = sub.add_parser("analyze", help="re-run the checkers on a stored run folder")
    analyze.add_argument("run_dir", type=Path)

    report = sub.add_parser("report", help="re-render report.html, results.json and junit.xml from a stored run folder")
    report.add_argument("run_dir", type=Path, help="a folder written by `chaos run` (holds run.json and history.jsonl)")

    trace = sub.add_parser("trace", help="the whole chain of one order in a run folder, with times and gaps; "
                                         "exported as OpenTelemetry spans")
    trace.add_argument("run_dir", type=Path, help="a folder written by `chaos run`")
    which = trace.add_mutually_exclusive_group(required=True)
    which.add_argument("--order", metavar="ID", help="the order id")
    which.add_argument("--correlation", metavar="ID", help="a correlation id one of the order's requests got")
    trace.add_argument("--pipeline", help="the pipeline, when the run has the order in several")
    trace.add_argument("--json", action="store_true", help="print the trace as JSON")
    trace.add_argument("--spans", type=Path, metavar="FILE",
                       help="where to write the spans as JSON lines (default: RUN_DIR/traces/ORDER.jsonl)")
    trace.add_argument("--otlp", metavar="URL", help="also send the spans to this OTLP/HTTP endpoint, "
                                                     "e.g. http://127.0.0.1:4318 (Jaeger)")

    dlq = sub.add_parser("dlq", help="list, show or replay dead-lettered records of a run folder or a live topic")
    dlq.add_argument("action", choices=("list", "show", "replay"))
    dlq.add_argument("items", nargs="*", metavar="RUN_DIR|REF",
                     help="a run folder, then refs (`list` prints them); with --topic, only refs")
    dlq.add_argument("--bootstrap", metavar="HOST:PORT",
                     help="the broker (default: this base port's direct listener, for replay)")
    dlq.add_argument("--topic", help="a live dead-letter topic to read instead of a run folder (needs --bootstrap)")
    dlq.add_argument("--pipeline", help="only this pipeline of the run folder")
    dlq.add_argument("--domain", default="orders", help="domain pack that decodes a live topic's events (default orders)")
    dlq.add_argument("--json", action="store_true", help="print JSON")
    dlq.add_argument("--all", action="store_true", help="replay every record")
    dlq.add_argument("--event", action="append", default=[], metavar="ID", help="replay the record of this event id")
    dlq.add_argument("--dry-run", action="store_true", help="say what would be replayed; publish nothing")
    dlq.add_argument("--to", metavar="TOPIC", help="replay to this topic instead of each record's original one")
    dlq.add_argument("--ledger", type=Path, metavar="FILE", help="the replay ledger (default: RUN_DIR/dlq-replays.jsonl, "
                                                                 "or CHAOS_HOME/dlq-replays/ for a live topic)")

    explore = sub.add_parser("explore", help="generate fault schedules over the whole catalogue, shrink a failure to "
                                             "a minimal scenario module that `chaos run` reproduces")
    explore.add_argument("--target", default="outbox", metavar="SPEC",
                         help="the target: a name (`chaos targets`), module:attr or a target.toml (default outbox)")
    explore.add_argument("--budget", default="10m", help="wall time to explore and shrink, e.g. 10m, 90s (default 10m)")
    explore.add_argument("--seed", type=int, help="seed of the whole session (default: random, printed)")
    explore.add_argument("--faults", metavar="KINDS", help="comma-separated fault kinds (`chaos faults`; default all)")
    explore.add_argument("--out", type=Path, metavar="DIR", help="where the found scenario module goes "
                                                                 "(default: the session folder)")
    explore.add_argument("--variant", default="correct", help="a deliberate mistake of the target to look for")
    explore.add_argument("--reruns", type=int, default=3, metavar="K",
                         help="runs a schedule must fail in, each, to count as failing (default 3)")

    sub.add_parser("scenarios", help="list the named scenarios")
    targets = sub.add_parser("targets", help="list the available targets and where each came from")
    targets.add_argument("spec", nargs="?", help="show one target's processes, links and crash points "
                                                 "(a name, module:attr or a .toml path)")
    sub.add_parser("faults", help="list every fault kind with its target and parameters (and defaults)")
    return p


def _infra_down_hint() -> str:
    port = os.environ.get("CHAOS_BASE_PORT")
    return f"`{'CHAOS_BASE_PORT=' + port + ' ' if port else ''}chaos infra down` stops them"


def main(argv: list[str] | None = None) -> int:
    from harness.interrupts import InterruptPolicy

    # Ctrl-C and SIGTERM: the first interrupts, the second leaves the cleanup alone, the third forces.
    policy = InterruptPolicy(_infra_down_hint)
    try:
        return _main(argv)
    finally:
        policy.restore()  # main() is also called in-process (tests): leave the caller's handlers as they were


def _print_error(err: Console, exc: ChaosError) -> None:
    # Escaped: a message quotes user input, and "[x]" in it is not rich markup. Soft-wrapped: one line
    # stays one line in a log, whatever the terminal's width.
    # Bad input takes one line: characters that end a line (\n, \x85, \u2028 in a quoted path) are shown
    # escaped, not obeyed. Other errors may carry evidence on lines of their own (a log tail).
    text = str(exc)
    if isinstance(exc, UsageError):
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    err.print(f"[bold red]chaos: {type(exc).__name__}:[/bold red] {escape(text)}", markup=True, highlight=False,
              soft_wrap=True)


def _internal_error(err: Console, exc: Exception, argv: list[str] | None) -> int:
    from harness.crash import write_crash_log

    log = write_crash_log(exc, list(sys.argv[1:] if argv is None else argv))
    where = f"traceback in {log}" if log else "no folder was writable for its traceback"
    cause = (str(exc).splitlines() or [""])[0][:200]
    _print_error(err, InternalError(f"internal error ({type(exc).__name__}: {cause}); {where}; "
                                    "please report it with that file"))
    return InternalError.exit_code


def _main(argv: list[str] | None) -> int:
    console = Console()
    if not console.is_terminal:
        # Logs and CI get the whole table rather than 80 columns of wrapped cells.
        console = Console(width=120)
    err = Console(stderr=True)
    try:
        parser = _parser()
        args, extra = parser.parse_known_args(argv)
        if extra:
            # `chaos dlq replay --topic T 0/12`: argparse hands refs after an option back as extras.
            if args.command == "dlq" and not any(e.startswith("-") for e in extra):
                args.items += extra
            else:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
        settings = Settings.from_env()
        if args.command == "infra":
            return _infra(args.action, settings, console)
        if args.command == "run":
            return _run(args, settings, console)
        if args.command == "analyze":
            return _analyze(args.run_dir, console)
        if args.command == "report":
            return _report(args.run_dir, console)
        if args.command == "trace":
            return _trace(args, console)
        if args.command == "dlq":
            return _dlq(args, settings, console)
        if args.command == "explore":
            return _explore(args, settings, console)
        if args.command == "faults":
            return _faults(console)
        if args.command == "targets":
            return _targets(args.spec, console)
        if args.command == "scenarios":
            from harness.scenario import load_scenario, scenario_names

            for name in scenario_names():
                console.print(f"[bold]{name}[/bold]: {load_scenario(name).description}")
            return 0
    except ChaosError as exc:
        _print_error(err, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        from harness.interrupts import what_is_still_running

        # Reached only once every finally has run; say what that achieved, not what it should have.
        err.print(f"chaos: interrupted; cleanup finished: {what_is_still_running(_infra_down_hint())}",
                  highlight=False, soft_wrap=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - anything unplanned is exit 5 with a crash log, never 1
        return _internal_error(err, exc, argv)
    return 4


def _infra(action: str, settings: Settings, console: Console) -> int:
    from harness.infra.install import install
    from harness.infra.stack import Infra

    if action == "install":
        t0 = time.monotonic()
        install(settings, report=console.print)
        console.print(f"installed in {time.monotonic() - t0:.1f}s under {settings.install_dir}")
        return 0
    if action == "up":
        existing = Infra.attach(settings)
        if existing is not None:
            console.print(f"infra already running on base port {settings.base_port}")
            return 0
        t0 = time.monotonic()
        infra = Infra.start(settings, die_with_parent=False)
        console.print(f"infra ready in {time.monotonic() - t0:.1f}s; logs in {infra.logs_dir}")
        _print_status(infra, console)
        return 0
    if action == "down":
        return _infra_down(settings, console)
    attached = Infra.attach(settings)
    if attached is None:
        console.print(f"no infra running on base port {settings.base_port} (start it with `chaos infra up`)")
        return 3
    healthy = _print_status(attached, console)
    return 0 if healthy else 3


def _infra_down(settings: Settings, console: Console) -> int:
    """Stop the infra and every process a pid record still names (leftovers of runs killed with -9)."""
    from harness.infra.stack import Infra, stop_leftovers

    # Under the lock: a run in progress on this base port is turned away rather than pulled out from under.
    with hold_base_port(settings):
        infra = Infra.attach(settings)
        if infra is not None:
            infra.stop()
            console.print("infra stopped and its data removed")
        left = stop_leftovers(settings)
    if left.stopped:
        console.print(f"stopped {len(left.stopped)} left-over process(es): {', '.join(left.stopped)}",
                      highlight=False, soft_wrap=True)
    if left.not_stopped:
        console.print(f"could not stop: {', '.join(left.not_stopped)}", highlight=False, soft_wrap=True)
        return 3
    if infra is None and not left.stopped:
        console.print(f"no infra running on base port {settings.base_port} (start it with `chaos infra up`)")
    return 0


def _print_status(infra: object, console: Console) -> bool:
    from rich.table import Table

    table = Table("service", "pid", "healthy", "detail")
    statuses = infra.status()  # type: ignore[attr-defined]
    for s in statuses:
        table.add_row(s.name, str(s.pid), "yes" if s.alive else "[red]no[/red]", s.detail)
    console.print(table)
    topo = infra.topology  # type: ignore[attr-defined]
    console.print(f"kafka direct (oracle) {topo.kafka_direct}, postgres {topo.postgres_port}, "
                  f"toxiproxy {topo.toxiproxy_url}, target process ports from {topo.process_ports[0]}")
    return all(s.alive for s in statuses)


def _faults(console: Console) -> int:
    from rich.table import Table

    from harness.faults.spec import INFRA_PROCESSES, SERVICES, TOPICS, TargetType, catalogue, param_defaults

    table = Table("fault", "targets", "parameters (defaults)", "what it does", title="chaos fault catalogue")
    for info in catalogue():
        params = ", ".join(f"{n}={v!r}" for n, v in param_defaults(info.params)) or "-"
        table.add_row(info.kind.value, info.target.value, params, info.summary)
    console.print(table)
    links = f"CLIENT->SERVICE, CLIENT a process of the target or publisher; SERVICE in {', '.join(SERVICES)}"
    console.print(f"[bold]{TargetType.LINK.value}[/bold]: {links}", highlight=False)
    console.print(f"[bold]{TargetType.PROCESS.value}[/bold]: {', '.join(INFRA_PROCESSES)}, publisher, or a process "
                  "of the target (`chaos targets NAME` lists them)", highlight=False)
    console.print(f"[bold]{TargetType.TOPIC.value}[/bold]: {', '.join(TOPICS)} (the pipeline's event topic)", highlight=False)
    console.print("In a scenario: FaultSpec(FaultKind.LATENCY, 'relay->kafka', at=0.3, for_s=5, "
                  "params=Latency(latency_ms=800))", highlight=False)
    return 0


def _targets(ref: str | None, console: Console) -> int:
    from rich.table import Table

    from harness.target.registry import available_targets, resolve_target

    if ref is None:
        table = Table("target", "from", title="chaos targets (or give --target module:attr | path/to/target.toml)")
        for info in available_targets():
            table.add_row(info.name, info.origin)
        console.print(table)
        return 0
    spec = resolve_target(ref)
    console.print(f"[bold]{spec.name}[/bold] ({spec.origin}); domain {spec.domain}, entrypoint {spec.entrypoint}, "
                  f"publisher {spec.publisher}, variants {', '.join(spec.variants)}", highlight=False)
    table = Table("process", "command", "services", "replicas", "crash points", "consumer")
    for p in spec.processes:
        exe = Path(p.command[0]).name if Path(p.command[0]).is_absolute() else p.command[0]  # a full path says little
        command = " ".join([exe, *p.command[1:]])
        table.add_row(p.name, command, ", ".join(p.links), str(p.replicas), ", ".join(p.crash_points), p.consumer or "")
    console.print(table)
    console.print(f"links: {', '.join(spec.links())}", highlight=False)
    return 0


def _run(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from dataclasses import replace

    from harness.report.terminal import LiveProgress, print_summary
    from harness.runner import new_seed, resolve_targets, run_scenario
    from harness.scenario import load_scenario

    if args.schema_registry is not None:
        from harness.infra.schema_registry import validate_registry_url

        settings = replace(settings, schema_registry=validate_registry_url(args.schema_registry))
    scenario = load_scenario(args.scenario)
    if args.variant is not None:
        scenario = scenario.with_variant(args.variant)
    if args.target and args.pipelines:
        raise UsageError("give either --pipelines (a subset of the scenario's) or --target, not both")
    pipelines = None
    if args.pipelines:
        pipelines = tuple(p.strip() for p in args.pipelines.split(",") if p.strip())
        unknown = [p for p in pipelines if p not in scenario.pipelines]
        if unknown:
            raise UsageError(f"--pipelines {args.pipelines!r}: {', '.join(unknown)} not in scenario {scenario.name} "
                             f"(its pipelines: {', '.join(scenario.pipelines)})")
    scenario = scenario.with_overrides(duration_s=args.duration, rate=args.rate, pipelines=pipelines)
    seed = args.seed if args.seed is not None else new_seed()
    # Bad targets and missing capabilities exit 4 before anything else, even while another run holds the port.
    resolve_targets(scenario, tuple(args.target))
    # One run per base port for the run's whole life, attached or not: see harness/infra/lock.py.
    with hold_base_port(settings), LiveProgress(console) as live:
        # soft_wrap: the seed line, run folder and report path stay on one line, so they can be copied.
        result = run_scenario(scenario, settings=settings, seed=seed, rate=args.rate, progress=live,
                              say=lambda line: console.print(line, soft_wrap=True, highlight=False),
                              targets=tuple(args.target),
                              scenario_ref=args.scenario if args.scenario != scenario.name else None)
    print_summary(result, console)
    return result.exit_code


def _explore(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from harness.explore import ExploreOptions, explore, parse_budget, prepare
    from harness.runner import new_seed

    opts = ExploreOptions(target=args.target, budget_s=parse_budget(args.budget),
                          seed=args.seed if args.seed is not None else new_seed(), faults=args.faults, out=args.out,
                          variant=args.variant, reruns=args.reruns)
    prepare(opts)  # bad input exits 4 before the lock, even while another run holds the port
    # Lent: every trial is a `chaos run` child on this session's infra.
    with hold_base_port(settings, lend_to_children=True):
        result = explore(opts, settings, say=lambda line: console.print(line, soft_wrap=True, highlight=False,
                                                                        markup=False))
    return result.exit_code


def _analyze(run_dir: Path, console: Console) -> int:
    from harness.analysis import analyze_run_dir
    from harness.report.terminal import summary_table
    from harness.run_folder import load_finished_run
    from harness.score import measure, score
    from harness.scoring import exit_code

    _, histories = load_finished_run(run_dir)  # an interrupted or damaged run is inconclusive: exit 2
    verdicts = analyze_run_dir(run_dir, histories)
    scores = [score(v, measure(histories[v.pipeline], v)) for v in verdicts if v.pipeline in histories]
    console.print(summary_table(verdicts, title=f"re-analysed {run_dir.name}", scores=scores))
    for v in verdicts:
        for reason in v.reasons:
            console.print(f"  [bold]{v.pipeline}[/bold]: {reason}")
    return exit_code(verdicts)


def _report(run_dir: Path, console: Console) -> int:
    from harness.report.outputs import rerender
    from harness.report.terminal import summary_table
    from harness.scoring import exit_code

    out = rerender(run_dir)
    console.print(summary_table(out.verdicts, title=f"re-rendered {run_dir.name}", scores=out.scores))
    for s in out.scores:
        console.print(f"  score {s.pipeline}: {s.why}", highlight=False)
    # soft_wrap: paths stay on one line, so they can be copied.
    console.print(f"results: {out.results_json}\njunit:   {out.junit_xml}\nreport:  {out.report_html}",
                  soft_wrap=True, highlight=False)
    return exit_code(out.verdicts)


def _trace(args: argparse.Namespace, console: Console) -> int:
    import json

    from harness.tools.spans import export_spans, otlp_traces_url
    from harness.tools.trace import find_trace, render_lines

    if args.otlp is not None:
        otlp_traces_url(args.otlp)  # a bad URL is exit 4 before the history is read
    trace = find_trace(args.run_dir, order_id=args.order, correlation_id=args.correlation, pipeline=args.pipeline)
    spans_file = args.spans or args.run_dir / "traces" / f"{trace.order_id}.jsonl"
    exported = export_spans(trace, spans_file, args.otlp)
    if args.json:
        print(json.dumps({**trace.to_json(), "spans_file": str(spans_file), "otlp": exported.otlp}, indent=1))
        return 0
    for line in render_lines(trace):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    sent = f"; sent to {exported.otlp}" if exported.otlp else ""
    console.print(f"{exported.spans} spans in {spans_file}{sent}", highlight=False, soft_wrap=True, markup=False)
    return 0


def _dlq(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    import json

    from harness.tools import dlq

    items = list(args.items)
    if args.topic is not None:
        if args.bootstrap is None:
            raise UsageError("--topic reads a live broker: give its address with --bootstrap HOST:PORT")
        from harness.target.registry import load_domain

        records = dlq.from_broker(args.bootstrap, args.topic, load_domain(args.domain))
        ledger_path = args.ledger or settings.home / "dlq-replays" / f"{args.bootstrap.replace(':', '_')}-{args.topic}.jsonl"
    else:
        if not items:
            raise UsageError("give a run folder (`chaos dlq list runs/NAME`) or a live topic (--bootstrap HOST:PORT "
                             "--topic DLQ_TOPIC)")
        try:
            run_dir = options.run_dir(items.pop(0))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(str(exc)) from None
        records = dlq.from_run(run_dir, args.pipeline)
        ledger_path = args.ledger or run_dir / "dlq-replays.jsonl"
    if args.action == "list":
        if items:
            raise UsageError(f"`chaos dlq list` takes no refs (got {' '.join(items)}); use `chaos dlq show REF`")
        if args.json:
            print(json.dumps([r.to_json() for r in records], indent=1))
            return 0
        _print_dlq(records, console)
        return 0
    if args.action == "show":
        if not items:
            raise UsageError("`chaos dlq show` needs a REF from `chaos dlq list`")
        chosen = dlq.select(records, items)
        if args.json:
            print(json.dumps([r.to_json(value=True) for r in chosen], indent=1))
            return 0
        for r in chosen:
            for name, value in r.to_json(value=True).items():
                console.print(f"{name:>16}: {value}", highlight=False, soft_wrap=True, markup=False)
            console.print("")
        return 0
    chosen = dlq.select(records, items, everything=args.all, event_ids=args.event)
    from harness.infra.topology import Topology

    bootstrap = args.bootstrap or Topology(settings.base_port).kafka_direct
    outcomes = dlq.replay(chosen, bootstrap, dlq.ReplayLedger(ledger_path), dry_run=args.dry_run, to=args.to)
    if args.json:
        print(json.dumps([{"ref": o.ref, "action": o.action.value, "destination": o.destination,
                           "event_id": o.event_id, "detail": o.detail} for o in outcomes], indent=1))
        return 0
    for o in outcomes:
        console.print(f"{o.action.value:>12}  {o.ref} -> {o.destination}: {o.detail}", highlight=False,
                      soft_wrap=True, markup=False)
    if not args.dry_run:
        console.print(f"ledger: {ledger_path}", highlight=False, soft_wrap=True, markup=False)
    return 0


def _print_dlq(records: list[Any], console: Console) -> None:
    from rich.table import Table

    table = Table("ref", "consumer", "event", "order", "type", "reason", "headers", "original", "correlation id",
                  title=f"{len(records)} dead-lettered record(s)")
    for r in records:
        table.add_row(r.ref, r.consumer or "", r.event_id or "", r.order_id or "", r.type or "", r.reason[:80],
                      r.convention, r.source, r.correlation_id or "")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
