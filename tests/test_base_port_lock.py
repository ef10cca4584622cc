"""One run per base port: a second run is turned away at once naming the holder, and a port taken by
another program is named before anything starts. No Kafka needed: the lock is taken through its API,
and the port check runs before the infra would look for its installation.

How fast is measured in bench/base_port_lock.py (goals: 2 s for a refused run, 1 s to find a taken
port). Here the bounds are hang guards only: they fail on the old behaviour (60-90 s of waiting for
ports) but not when a second pytest worker or another session stretches wall time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config import Settings
from harness.errors import BasePortLocked, PortInUse
from harness.infra.lock import LEND_ENV, hold_base_port, holder_of
from harness.infra.ports import (HIGHEST_OFFSET, busy_ports, ensure_ports_free, ephemeral_range, layout,
                                 suggest_base_port)
from harness.wait import wait_for

# A refused command must not have waited for ports or started anything; seconds, generous on purpose.
HANG_GUARD_S = 15.0

# Below the ephemeral range (32768+), where client connections would take ports at random; another
# base port when something on this machine holds part of 27000's layout (a CI run once failed on a
# port 27001 that an earlier session had just released), so the tests never depend on it being free.
BASE = 27000 if not busy_ports(27000) else suggest_base_port(27000)


def _settings(tmp_path: Path, base: int = BASE) -> Settings:
    return Settings(home=tmp_path / "home", runs_dir=tmp_path / "runs", base_port=base)


def _env(tmp_path: Path, base: int = BASE) -> dict[str, str]:
    # Not the lent lock, and not xdist's worker id: a child pytest session would move to the worker's ports.
    env = {k: v for k, v in os.environ.items() if k != LEND_ENV and not k.startswith("PYTEST_XDIST")}
    return {**env, "CHAOS_HOME": str(tmp_path / "home"), "CHAOS_RUNS_DIR": str(tmp_path / "runs"),
            "CHAOS_BASE_PORT": str(base), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _chaos(tmp_path: Path, *args: str, base: int = BASE, extra_env: dict[str, str] | None = None
           ) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    # The timeout only bounds a broken lock, which would go on to start a real infra.
    done = subprocess.run([sys.executable, "-m", "harness.cli", *args], env={**_env(tmp_path, base), **(extra_env or {})},
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - t0


def test_second_run_on_a_held_base_port_exits_3_at_once_naming_the_holder(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with hold_base_port(settings, command="chaos run black_friday --seed 5"):
        done, elapsed = _chaos(tmp_path, "run", "black_friday", "--pipelines", "outbox", "--seed", "1")
    print(f"second run turned away in {elapsed:.2f} s")
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pid {os.getpid()}" in lines[0] and "chaos run black_friday --seed 5" in lines[0]
    assert "CHAOS_BASE_PORT=" in lines[0] and f"base port {BASE}" in lines[0]
    assert elapsed < HANG_GUARD_S
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir()), "the refused run wrote a folder"


def _holder_process(tmp_path: Path, base: int = BASE) -> subprocess.Popen[str]:
    code = ("import sys; from harness.config import Settings; from harness.infra.lock import acquire_base_port; "
            "acquire_base_port(Settings.from_env(), command='holder process'); print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(tmp_path, base), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_sibling_process_holding_the_lock_turns_a_run_away_and_its_death_frees_the_port(tmp_path: Path) -> None:
    holder = _holder_process(tmp_path)
    try:
        seen = holder_of(_settings(tmp_path))
        assert seen is not None and seen.pid == holder.pid and seen.command == "holder process"
        with pytest.raises(BasePortLocked, match=f"pid {holder.pid} \\(holder process\\)"):
            with hold_base_port(_settings(tmp_path)):
                pass
    finally:
        holder.kill()  # -9: no cleanup runs, the kernel drops the flock all the same
        holder.wait()
    with hold_base_port(_settings(tmp_path)) as me:
        assert me.pid == os.getpid()
    assert holder_of(_settings(tmp_path)) is None


def test_the_lock_is_reentrant_in_one_process_and_lent_only_to_children_that_were_told(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    code = ("from harness.config import Settings; from harness.infra.lock import hold_base_port\n"
            "with hold_base_port(Settings.from_env()) as h: print(h.pid)")
    other = "20000:a-pytest-session-lending-its-own-base-port"
    monkeypatch.setenv(LEND_ENV, other)  # restored afterwards, whatever this session lends itself
    with hold_base_port(settings, lend_to_children=True) as outer:
        with hold_base_port(settings) as inner:  # Infra.start inside a `chaos run`
            assert inner == outer
        assert os.environ[LEND_ENV] == f"{other},{BASE}:{outer.token}"
        lent = subprocess.run([sys.executable, "-c", code], env={**_env(tmp_path), LEND_ENV: os.environ[LEND_ENV]},
                              capture_output=True, text=True, timeout=30)
        assert lent.returncode == 0 and lent.stdout.strip() == str(os.getpid()), lent.stderr
        refused = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True,
                                 timeout=30)
        assert refused.returncode != 0 and "BasePortLocked" in refused.stderr
    assert os.environ[LEND_ENV] == other, "letting go of one base port took back the lending of another"
    assert holder_of(settings) is None


def test_infra_down_is_refused_while_a_run_holds_the_base_port(tmp_path: Path) -> None:
    holder = _holder_process(tmp_path)
    try:
        done, _ = _chaos(tmp_path, "infra", "down")
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 3 and f"pid {holder.pid}" in done.stderr


@pytest.fixture
def squatter() -> Iterator[subprocess.Popen[str]]:
    """Another program listening on the Postgres port of base port BASE."""
    proc = _listen(BASE + 1)
    yield proc
    proc.kill()
    proc.wait()


def _listen(port: int) -> subprocess.Popen[str]:
    code = ("import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', %d)); s.listen(); "
            "print('listening', flush=True); sys.stdin.read()" % port)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
    return proc


def test_a_port_taken_by_another_program_is_named_without_waiting(squatter: subprocess.Popen[str]) -> None:
    t0 = time.monotonic()
    with pytest.raises(PortInUse) as exc:
        ensure_ports_free(BASE)
    elapsed = time.monotonic() - t0
    print(f"busy port found and its holder named in {elapsed * 1000:.0f} ms")
    message = str(exc.value)
    assert f"port {BASE + 1} (PostgreSQL" in message and f"pid {squatter.pid}" in message
    assert "CHAOS_BASE_PORT=" in message
    assert elapsed < HANG_GUARD_S


def test_chaos_run_and_infra_up_report_the_taken_port_before_starting_anything(
        tmp_path: Path, squatter: subprocess.Popen[str]) -> None:
    for args in (("infra", "up"), ("run", "broker_outage", "--pipelines", "outbox", "--seed", "1")):
        done, elapsed = _chaos(tmp_path, *args)
        print(f"`chaos {' '.join(args)}` exited {done.returncode} after {elapsed:.2f} s")
        assert done.returncode == 3, done.stderr
        assert f"port {BASE + 1}" in done.stderr and f"pid {squatter.pid}" in done.stderr
        assert "not installed" not in done.stderr  # the check ran before the infra looked for anything
        assert elapsed < HANG_GUARD_S
    assert not (tmp_path / "home" / "infra" / str(BASE) / "logs").exists(), "something started"


def test_the_layout_is_every_port_of_the_topology() -> None:
    from harness.infra.topology import Topology

    topo = Topology(BASE)
    ports = [u.port for u in layout(BASE)]
    assert len(ports) == len(set(ports)) and min(ports) == BASE and max(ports) == BASE + HIGHEST_OFFSET
    fixed = (topo.toxiproxy_port, topo.postgres_port, topo.kafka_direct_port, topo.kafka_controller_port,
             topo.connect_rest_port)
    assert set(fixed) <= set(ports)
    assert busy_ports(BASE + 300) == ()  # a free range really reads as free


def test_a_port_of_our_own_leftover_says_to_run_infra_down(tmp_path: Path) -> None:
    from harness.infra import pids
    from harness.infra.process import ManagedProcess, ProcessSpec

    code = "import signal, socket; s = socket.socket(); s.bind(('127.0.0.1', %d)); s.listen(); signal.pause()" % (BASE + 80)
    proc = ManagedProcess(ProcessSpec("app", [sys.executable, "-c", code], tmp_path / "app.log")).start()
    try:
        wait_for(lambda: (bool(busy_ports(BASE)), "not listening yet"), timeout_s=10, what="the leftover to listen")
        with pytest.raises(PortInUse, match="chaos infra down"):
            ensure_ports_free(BASE)
    finally:
        proc.stop(grace_s=1)
    assert all(pid != proc.pid for _, pid in pids.running_started_here())



def test_a_base_port_among_the_ephemeral_ports_is_warned_about_and_one_below_them_suggested() -> None:
    low, high = ephemeral_range()
    # Ports up there come and go with every connection on the machine: take a layout that is free now.
    base = next(b for b in range(low + 4000, high - HIGHEST_OFFSET, 1000) if not busy_ports(b))
    proc = _listen(base + 2)
    try:
        with pytest.raises(PortInUse) as exc:
            ensure_ports_free(base)
    finally:
        proc.kill()
        proc.wait()
    message = str(exc.value)
    assert f"ephemeral ports {low}-{high}" in message
    suggested = int(message.rsplit("CHAOS_BASE_PORT=", 1)[1])
    assert suggested + HIGHEST_OFFSET < low or suggested > high


def test_a_pytest_session_on_a_held_base_port_exits_3_naming_the_holder(tmp_path: Path) -> None:
    (tmp_path / "test_uses_infra.py").write_text("def test_it(chaos_infra):\n    raise AssertionError('the test body ran')\n")
    with hold_base_port(_settings(tmp_path), command="chaos run black_friday"):
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                              env=_env(tmp_path), capture_output=True, text=True, timeout=60, cwd=tmp_path)
        elapsed = time.monotonic() - t0
    print(f"second pytest session turned away in {elapsed:.2f} s")
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"pid {os.getpid()} (chaos run black_friday)" in done.stdout + done.stderr
    assert "the test body ran" not in done.stdout


def test_a_port_held_only_by_a_closed_connection_is_waited_for_not_refused_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.infra.ports as ports

    # A layout free now: this test's own TIME_WAIT from a run a moment ago lingers for a minute.
    base = next(b for b in range(BASE + 500, BASE + 2000, 100) if not busy_ports(b))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.socket()  # a client whose local port is a port of the layout, closed first: TIME_WAIT
    client.bind(("127.0.0.1", base + 2))
    client.connect(server.getsockname())
    accepted, _ = server.accept()
    client.close()
    accepted.close()
    server.close()
    monkeypatch.setattr(ports, "TIME_WAIT_S", 1.0)  # the kernel's minute, shortened: the wait runs out
    t0 = time.monotonic()
    with pytest.raises(PortInUse, match="TIME_WAIT"):
        ensure_ports_free(base)
    assert time.monotonic() - t0 >= 0.9, "a port that frees itself was refused without waiting"
