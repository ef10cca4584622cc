"""Interrupting `chaos run` in the middle of a fault leaves no process and no disabled proxy behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.infra.stack import Infra
from harness.infra.toxiproxy import ToxiproxyClient
from harness.testing import leftover_processes
from harness.wait import wait_for

pytestmark = pytest.mark.chaos


def _start_run(tmp_path: Path, base_port: int, log_name: str) -> tuple[subprocess.Popen[bytes], Path]:
    env = {**os.environ, "CHAOS_RUNS_DIR": str(tmp_path), "CHAOS_BASE_PORT": str(base_port)}
    log = (tmp_path / log_name).open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "broker_outage", "--pipelines", "outbox", "--seed", "5"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    return proc, tmp_path / log_name


def _await_fault_injected(tmp_path: Path, proc: subprocess.Popen[bytes], log: Path) -> Path:
    def observe() -> tuple[bool, object]:
        assert proc.poll() is None, f"chaos run exited early with {proc.returncode}:\n{log.read_text()[-2000:]}"
        for history in tmp_path.glob("broker_outage-*/history.jsonl"):
            if '"f":"inject"' in history.read_text() and '"type":"ok","f":"inject"' in history.read_text():
                return True, history.parent
        return False, "no injected fault in the history yet"

    return wait_for(observe, timeout_s=120, what="the outage to be injected", interval_s=0.2,
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
