"""Interrupting `chaos run` in the middle of a fault leaves no process, no disabled proxy, no toxic and
no paused process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.infra.stack import Infra
from harness.infra.toxiproxy import ToxiproxyClient
from harness.testing import leftover_processes
from harness.wait import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.extended]


def _start_run(tmp_path: Path, base_port: int, log_name: str,
               scenario: str = "broker_outage") -> tuple[subprocess.Popen[bytes], Path]:
    env = {**os.environ, "CHAOS_RUNS_DIR": str(tmp_path), "CHAOS_BASE_PORT": str(base_port)}
    log = (tmp_path / log_name).open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", scenario, "--pipelines", "outbox", "--seed", "5"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    return proc, tmp_path / log_name


def _await_fault_injected(tmp_path: Path, proc: subprocess.Popen[bytes], log: Path,
                          scenario: str = "broker_outage", faults: int = 1) -> Path:
    def observe() -> tuple[bool, object]:
        assert proc.poll() is None, f"chaos run exited early with {proc.returncode}:\n{log.read_text()[-2000:]}"
        for history in tmp_path.glob(f"{scenario}-*/history.jsonl"):
            text = history.read_text()
            injected, healed = text.count('"type":"ok","f":"inject"'), text.count('"type":"invoke","f":"heal"')
            if injected >= faults and healed == 0:
                return True, history.parent
            assert healed == 0, f"a fault healed before all {faults} were active; the test proves nothing"
        return False, "not every fault is injected yet"

    return wait_for(observe, timeout_s=120, what=f"{faults} fault(s) to be injected", interval_s=0.1,
                    evidence=lambda: log.read_text()[-2000:])


def _run_id(run_dir: Path) -> str:
    return run_dir.name.split("-", 1)[1]


def test_sigint_mid_fault_on_shared_infra_heals_and_stops_targets(chaos_infra: Infra, tmp_path: Path) -> None:
    proc, log = _start_run(tmp_path, chaos_infra.settings.base_port, "chaos-run.log")
    try:
        run_dir = _await_fault_injected(tmp_path, proc, log)
        assert not chaos_infra.toxiproxy.proxies()["relay_to_kafka"].enabled, "the fault is not active at interrupt"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 130, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    proxies = chaos_infra.toxiproxy.proxies()
    assert all(p.enabled and not p.toxics for p in proxies.values()), f"proxies left broken: {proxies}"
    assert leftover_processes(run_id=_run_id(run_dir)) == []
    assert chaos_infra.status() and all(s.alive for s in chaos_infra.status()), "the shared infra was harmed"
    # The folder says where the run stopped, and re-checking it is inconclusive, not "I7 invalid".
    assert (run_dir / "phase").read_text().strip() == "running"
    assert main(["analyze", str(run_dir)]) == 2


def test_sigterm_mid_fault_with_own_infra_leaves_no_process(chaos_infra: Infra, tmp_path: Path) -> None:
    port = chaos_infra.settings.base_port + 1000  # a second, private topology beside the session's
    proc, log = _start_run(tmp_path, port, "chaos-run-own.log")
    try:
        run_dir = _await_fault_injected(tmp_path, proc, log)
        assert not ToxiproxyClient(f"http://127.0.0.1:{port}").proxies()["relay_to_kafka"].enabled
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 130, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    fragments = (f"chaos-harness-pg-{port + 1}", f"/infra/{port}/", f"-port {port}")
    assert leftover_processes(run_id=_run_id(run_dir), fragments=fragments) == []


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_sigint_mid_toxic_and_pauses_restores_proxies_toxics_and_processes(chaos_infra: Infra, tmp_path: Path) -> None:
    """Outage + latency toxic + SIGSTOPped consumer and Postgres, all active, then Ctrl-C."""
    proc, log = _start_run(tmp_path, chaos_infra.settings.base_port, "chaos-run-mix.log", scenario="fault_mix")
    try:
        run_dir = _await_fault_injected(tmp_path, proc, log, scenario="fault_mix", faults=4)
        proxies = chaos_infra.toxiproxy.proxies()
        assert not proxies["relay_to_kafka"].enabled, "the outage is not active at interrupt"
        assert proxies["consumer.payment_to_kafka"].toxics, "the latency toxic is not active at interrupt"
        pg = Infra.attach(chaos_infra.settings)
        assert pg is not None and _state(pg.processes["postgres"].pid or 0) == "T", "postgres is not paused"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    proxies = chaos_infra.toxiproxy.proxies()
    assert all(p.enabled and not p.toxics for p in proxies.values()), f"proxies left broken: {proxies}"
    infra = Infra.attach(chaos_infra.settings)
    assert infra is not None, "the shared infra did not survive"
    stopped = {n: p.pid for n, p in infra.processes.items() if _state(p.pid or 0) == "T"}
    assert not stopped, f"processes left paused (SIGSTOP) after the interrupt: {stopped}"
    assert leftover_processes(run_id=_run_id(run_dir)) == []
    assert all(s.alive for s in infra.status()), "the shared infra was harmed"


def test_sigkill_after_connect_was_restarted_by_a_fault_leaves_no_process(chaos_infra: Infra, tmp_path: Path) -> None:
    """kill -9 of the harness cannot run any cleanup: only PR_SET_PDEATHSIG stands between a dead
    harness and orphans. The Connect worker restarted by the nemesis (after its own kill fault,
    from a nemesis thread) must be tied to the harness like every process started on the main thread."""
    port = chaos_infra.settings.base_port + 1200  # a private topology: this run owns its infra
    env = {**os.environ, "CHAOS_RUNS_DIR": str(tmp_path), "CHAOS_BASE_PORT": str(port)}
    log = tmp_path / "chaos-run-kill9.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "connect_crash", "--seed", "5"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        def restarted() -> tuple[bool, object]:
            assert proc.poll() is None, f"chaos run exited early with {proc.returncode}:\n{log.read_text()[-2000:]}"
            for history in tmp_path.glob("connect_crash-*/history.jsonl"):
                if '"type":"ok","f":"heal"' in history.read_text():
                    return True, history.parent
            return False, "the Connect worker has not been restarted yet"

        run_dir = wait_for(restarted, timeout_s=180, what="the nemesis to restart Kafka Connect", interval_s=0.2,
                           evidence=lambda: log.read_text()[-2000:])
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    fragments = (f"chaos-harness-pg-{port + 1}", f"/infra/{port}/", f"-port {port}")
    wait_for(lambda: (not (left := leftover_processes(run_id=_run_id(run_dir), fragments=fragments)), left),
             timeout_s=30, what="every process of the killed run to exit", interval_s=0.2)
