"""An on-demand service a child run restarted is adopted, not started a second time.

Explore's trials and a test's `chaos run` are children on the session's infra: one that kills
Kafka Connect and restarts it at heal leaves the new worker running and recorded in the state
file, while the session's handle still holds the dead one. Starting another then failed on the
taken REST port (exit 2), and every later cdc run of the session found no Connect (seen in CI:
connect_crash "kill@connect: injection failed"). No Kafka needed: the services are stand-in
processes and the state file is written as a child run writes it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import Settings
from harness.infra import stack
from harness.infra.process import ManagedProcess, ProcessSpec


def _sleeper(tmp_path: Path, name: str) -> ManagedProcess:
    return ManagedProcess(ProcessSpec(name, [sys.executable, "-c", "import time; time.sleep(60)"],
                                      tmp_path / f"{name}.log")).start()


@pytest.fixture
def infra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> stack.Infra:
    monkeypatch.setattr(stack, "record_into", lambda _dir: None)  # no pid records for stand-ins
    settings = Settings(home=tmp_path / "home", runs_dir=tmp_path / "runs", base_port=27700)
    settings.state_dir.mkdir(parents=True)
    return stack.Infra(settings, {}, tmp_path, owned=True)


def _record(infra: stack.Infra, name: str, proc: ManagedProcess) -> None:
    entry = {"pid": proc.pid, "log": str(proc.spec.log_path), "argv": list(proc.spec.argv), "env": {},
             "cwd": None, "user": None, "die_with_parent": False}
    (infra.settings.state_dir / stack._STATE).write_text(json.dumps({"processes": {name: entry}}))


def test_a_worker_a_child_run_restarted_is_adopted(infra: stack.Infra, tmp_path: Path) -> None:
    dead = _sleeper(tmp_path, "connect")
    dead.kill()
    infra.processes["connect"] = dead  # the session's handle: killed by a child run's fault
    restarted = _sleeper(tmp_path, "connect-again")  # the child's heal started this one
    try:
        _record(infra, "connect", restarted)
        assert not infra.connect_running
        assert infra._adopt_recorded("connect")
        assert infra.connect_running and infra.processes["connect"].pid == restarted.pid
    finally:
        restarted.kill()


def test_nothing_is_adopted_when_the_recorded_one_is_ours_or_dead(infra: stack.Infra, tmp_path: Path) -> None:
    ours = _sleeper(tmp_path, "connect")
    try:
        infra.processes["connect"] = ours
        _record(infra, "connect", ours)
        assert not infra._adopt_recorded("connect")  # the same process: nothing to take over
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        stand_in = ManagedProcess.adopt(ProcessSpec("connect", ["x"], tmp_path / "x.log"), gone.pid)
        _record(infra, "connect", stand_in)
        assert not infra._adopt_recorded("connect")  # recorded, but no longer alive
        assert infra.processes["connect"] is ours
    finally:
        ours.kill()


def test_heal_all_takes_over_what_a_child_restarted_instead_of_starting_another(
        infra: stack.Infra, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = _sleeper(tmp_path, "kafka")
    dead.kill()
    infra.processes["kafka"] = dead
    restarted = _sleeper(tmp_path, "kafka-again")
    started: list[str] = []
    monkeypatch.setattr(infra, "restart", started.append)
    monkeypatch.setattr(infra.toxiproxy, "reset", lambda: None)  # no Toxiproxy here
    try:
        _record(infra, "kafka", restarted)
        infra.heal_all()
        assert started == [] and infra.processes["kafka"].pid == restarted.pid
    finally:
        restarted.kill()


def test_the_worker_holding_connects_port_is_adopted_when_the_state_file_no_longer_names_it(
        infra: stack.Infra, tmp_path: Path) -> None:
    from harness.infra.ports import MARK_ENV

    dead = _sleeper(tmp_path, "connect")
    dead.kill()
    infra.processes["connect"] = dead
    port = infra.topology.connect_rest_port
    code = ("import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', %d)); s.listen(); "
            "print('listening', flush=True); sys.stdin.read()" % port)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**__import__("os").environ, MARK_ENV: "1"})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "listening"
        (infra.settings.state_dir / stack._STATE).write_text(json.dumps({"processes": {}}))  # a child's view
        assert infra._adopt_recorded("connect")
        assert infra.processes["connect"].pid == holder.pid and infra.connect_running
    finally:
        holder.kill()
        holder.wait()
