"""The target spec: both forms load, bad input is refused naming the field, and the runtime keeps its word.

Unit tests need no infrastructure; the ``chaos`` ones start a real (tiny) target.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.errors import SpecError, TargetError, UsageError
from harness.scenario import Scenario
from harness.target.registry import resolve_target
from harness.target.spec import ProcessDecl, TargetSpec, link_env_name
from harness.workload.rate import Constant

GO_EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "go_outbox" / "target.toml"

MINIMAL = '''
name = "mini"
domain = "orders"
entrypoint = "app"
publisher = "app"

[processes.app]
use = "reference:order_service.direct"

[processes."consumer.payment"]
use = "reference:consumer.payment"
'''


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "target.toml"
    path.write_text(text)
    return path


def test_the_go_example_loads_as_go_processes_and_links() -> None:
    spec = resolve_target(str(GO_EXAMPLE))
    assert spec.name == "go_outbox" and spec.publisher == "relay" and "mark_before_ack" in spec.variants
    assert "relay->kafka" in spec.links() and "consumer.notification->postgres" in spec.links()
    relay = spec.process("relay")
    assert relay.cwd == GO_EXAMPLE.parent and relay.crash_points == ("relay.after_publish",)
    app = spec.process("app")  # its own order service, declared as the reference one is
    assert app.command == ("bin/orders",) and app.ports == ("http",) and app.links == ("postgres",)
    assert app.crash_points == ("app.before_commit", "app.after_commit")
    # No process of the pipeline is Python: each is one of the example's Go binaries.
    assert {p.command[0] for p in spec.processes} == {"bin/orders", "bin/forwarder", "bin/consumer"}
    assert spec.origin == f"file {GO_EXAMPLE}"


def test_a_reused_component_brings_its_declaration(tmp_path: Path) -> None:
    spec = resolve_target(str(_write(tmp_path, MINIMAL)))
    app = spec.process("app")
    assert app.env["ORDER_SERVICE_MODE"] == "direct" and app.ports == ("http",)  # from reference:order_service.direct
    assert app.crash_points == ("app.before_commit", "app.after_commit")


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda t: t.replace('publisher = "app"', 'publisher = "app"\ncolour = "blue"'), "unknown key(s) colour"),
        (lambda t: t.replace('entrypoint = "app"\n', ""), "missing required key(s) entrypoint"),
        (lambda t: t.replace('use = "reference:consumer.payment"', 'use = "reference:consumer.payments"'),
         "no component 'consumer.payments'"),
        (lambda t: t.replace('use = "reference:consumer.payment"', 'command = ["x"]\nreplicas = 0'), "replicas=0"),
        (lambda t: t.replace('use = "reference:consumer.payment"', 'command = ["x"]\nlinks = ["redis"]'),
         "'redis' is not a service"),
        (lambda t: t.replace('use = "reference:consumer.payment"', 'command = ["x"]\nready = { log = "a", http = "b" }'),
         "exactly one of"),
        (lambda t: t.replace('publisher = "app"', 'publisher = "relay"'), "publisher 'relay'"),
        (lambda t: t.replace('domain = "orders"', "domain = 3"), "domain must be"),
        (lambda t: t + "\n[processes.app2]\ncommand = []\n", "command must be a non-empty list"),
        (lambda t: t + "\n[processes.kafka]\ncommand = [\"x\"]\n", "taken by the infrastructure"),
        (lambda t: t.replace('[processes.app]', '[processes.app]\nenv = { CHAOS_TOPIC = "x" }'), "CHAOS_* is the harness's"),
        (lambda t: t + "\n[timeouts]\ndelivery_s = -1\n", "timeouts.delivery_s"),
        (lambda t: "name = ", "not valid TOML"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_file_and_field(tmp_path: Path, edit: object, named: str) -> None:
    path = _write(tmp_path, edit(MINIMAL))  # type: ignore[operator]
    with pytest.raises(SpecError) as info:
        resolve_target(str(path))
    assert named in str(info.value) and str(path) in str(info.value)
    assert info.value.exit_code == 4


def test_every_ref_form_resolves_or_names_the_fix(tmp_path: Path) -> None:
    assert resolve_target("outbox").name == "outbox"
    assert resolve_target("targets.reference:cdc").origin == "built-in (targets.reference)"
    with pytest.raises(UsageError, match="available targets: cdc, cdc_outbox, direct, outbox"):
        resolve_target("kafka_streams")
    with pytest.raises(SpecError, match="cannot import module"):
        resolve_target("no_such_module:spec")
    with pytest.raises(SpecError, match="not a TargetSpec"):
        resolve_target("harness.target.spec:SERVICES")
    with pytest.raises(SpecError, match="does not exist"):
        resolve_target(str(tmp_path / "missing.toml"))
    with pytest.raises(UsageError, match="without spaces"):
        resolve_target(" outbox")


def test_link_variables_are_named_after_the_link() -> None:
    assert link_env_name("relay->kafka") == "CHAOS_LINK_RELAY_KAFKA"
    assert link_env_name("consumer.payment->postgres") == "CHAOS_LINK_CONSUMER_PAYMENT_POSTGRES"


def test_replicas_are_fault_targets_of_their_own() -> None:
    decl = ProcessDecl("consumer.payment", ("x",), links=("kafka",), consumer="payment", replicas=3)
    assert decl.replica_names() == ("consumer.payment", "consumer.payment#1", "consumer.payment#2")
    with pytest.raises(SpecError, match="cannot have replicas"):
        ProcessDecl("app", ("x",), ports=("http",), replicas=2)


def test_entrypoint_needs_an_http_port() -> None:
    with pytest.raises(SpecError, match="ports = \\[\"http\"\\]"):
        TargetSpec("t", "orders", (ProcessDecl("app", ("x",)),), entrypoint="app", publisher="app")


# ---- against real infrastructure -------------------------------------------------------------

TINY = Scenario(name="tiny", description="a few orders, no faults", pipelines=("outbox",), shape=Constant(5),
                duration_s=3, faults=(), drain_timeout_s=30)


def _leftovers(target: str) -> list[int]:
    """PIDs of processes whose environment names this target (a target process left behind)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if f"CHAOS_TARGET={target}\0".encode() in env:
            found.append(int(proc.name))
    return found


@pytest.mark.chaos
def test_a_link_no_process_uses_is_refused_after_the_run(chaos_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The outbox-mode order service never talks to Kafka: declaring that link makes faults on it no-ops.
    text = MINIMAL.replace('use = "reference:order_service.direct"',
                           'use = "reference:order_service.outbox"\nlinks = ["postgres", "kafka"]')
    text = text.replace('publisher = "app"', 'publisher = "relay"') + '\n[processes.relay]\nuse = "reference:relay"\n'
    with pytest.raises(SpecError, match="app->kafka"):
        chaos_run(TINY, target=str(_write(tmp_path, text)))


@pytest.mark.chaos
def test_a_readiness_check_that_never_passes_fails_with_the_log_tail_and_leaves_nothing(
        chaos_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "quiet.py"
    script.write_text("import time\nprint('booting, never ready', flush=True)\nwhile True:\n    time.sleep(1)\n")
    text = MINIMAL + f'\n[processes.sidecar]\ncommand = ["{sys.executable}", "quiet.py"]\n' \
                     'ready = { log = "ready now", timeout_s = 3 }\n'
    with pytest.raises(TargetError, match="booting, never ready") as info:
        chaos_run(TINY, target=str(_write(tmp_path, text)))
    assert "sidecar" in str(info.value) and "ready check" in str(info.value)
    assert _leftovers("mini") == [], "a process of the failed target was left running"


@pytest.mark.chaos
def test_a_command_that_is_not_found_is_a_spec_error(chaos_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = MINIMAL + '\n[processes.sidecar]\ncommand = ["bin/not-built-yet"]\n'
    with pytest.raises(SpecError, match="bin/not-built-yet' was not found"):
        chaos_run(TINY, target=str(_write(tmp_path, text)))



@pytest.mark.chaos
def test_a_replica_of_a_consumer_group_is_a_fault_target_of_its_own(chaos_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two members of one payment group share the partitions; killing the second rebalances, loses nothing."""
    from harness.checkers.base import Validity
    from harness.faults.spec import FaultKind, FaultSpec
    from harness.testing import evidence
    from scenarios._evidence import history

    text = MINIMAL.replace('use = "reference:order_service.direct"', 'use = "reference:order_service.outbox"')
    text = text.replace('publisher = "app"', 'publisher = "relay"')
    text = text.replace('use = "reference:consumer.payment"', 'use = "reference:consumer.payment"\nreplicas = 2')
    text += '\n[processes.relay]\nuse = "reference:relay"\n\n[backlog]\nsql = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"\n'
    scenario = Scenario(name="replica_kill", description="kill the second member of the payment group",
                        pipelines=("outbox",), shape=Constant(10), duration_s=10, drain_timeout_s=45,
                        faults=(FaultSpec(FaultKind.KILL, "consumer.payment#1", at=0.3, for_s=2),))
    result = chaos_run(scenario, target=str(_write(tmp_path, text)))
    stats = result.verdict("mini").result("stats")
    assert stats is not None and int(stats.counts.get("ops_during:kill@consumer.payment#1") or 0) > 0, evidence(result)
    loss = result.verdict("mini").result("no-lost-effect")
    assert loss is not None and loss.validity is Validity.VALID, evidence(result)
    processes = {str(r["process"]): r["alive"] for r in history(result, "mini").observed("processes")}
    assert processes.get("consumer.payment") is True and processes.get("consumer.payment#1") is True, processes


def test_the_link_monitor_counts_only_connections_made_after_it_started() -> None:
    """A socket through the port from before (an earlier target's, lingering in TIME_WAIT) proves nothing."""
    import socket

    from harness.infra.topology import Link, Service
    from harness.target.links import LinkMonitor

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    early = socket.create_connection(("127.0.0.1", port))
    try:
        link = Link("relay", Service.KAFKA, port, port)
        monitor = LinkMonitor([link])
        monitor.sample()
        assert monitor.seen == set(), "a connection from before the monitor counted"
        late = socket.create_connection(("127.0.0.1", port))
        monitor.sample()
        late.close()
        assert monitor.stop() == [] and monitor.seen == {"relay->kafka"}
    finally:
        early.close()
        server.close()


def test_lag_thresholds_load_from_toml_and_a_bad_one_names_its_group(tmp_path: Path) -> None:
    from harness.lag_alerts import LagThreshold

    spec = resolve_target(str(_write(tmp_path, MINIMAL + '\n[lag_thresholds]\npayment = 500\n"*" = 5000\n')))
    assert spec.lag_thresholds == (LagThreshold("payment", 500), LagThreshold("*", 5000))
    with pytest.raises(SpecError, match="lag_thresholds.payment"):
        resolve_target(str(_write(tmp_path, MINIMAL + '\n[lag_thresholds]\npayment = -1\n')))
