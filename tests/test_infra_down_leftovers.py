"""`chaos infra down` stops every process the harness started and nobody stopped: those of a harness
killed with -9, and the children of a process killed with -9; never a process that merely got a
recorded pid again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from harness.config import Settings
from harness.infra import pids
from harness.infra.process import ManagedProcess, ProcessSpec, pid_alive
from harness.wait import wait_for

BASE = 34000


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CHAOS_HOME": str(tmp_path / "home"), "CHAOS_RUNS_DIR": str(tmp_path / "runs"),
            "CHAOS_BASE_PORT": str(BASE), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _settings(tmp_path: Path) -> Settings:
    return Settings(home=(tmp_path / "home").resolve(), runs_dir=tmp_path / "runs", base_port=BASE)


# A stand-in for the harness: records into the base port's pid folder as an Infra handle makes it,
# starts a process meant to outlive it and a process group, prints their pids, and waits to be killed.
_HARNESS = """
import json, signal, sys
from harness.config import Settings
from harness.infra import pids
from harness.infra.process import ManagedProcess, ProcessSpec
settings = Settings.from_env()
pids.record_into(settings.pids_dir)
log = settings.state_dir / "logs"
sleeper = ManagedProcess(ProcessSpec("sleeper", ["sleep", "1000"], log / "sleeper.log", die_with_parent=False)).start()
group = ManagedProcess(ProcessSpec("group", ["sh", "-c", "sleep 1001 & sleep 1002 & wait"], log / "group.log",
                                   die_with_parent=False)).start()
print(json.dumps({"sleeper": sleeper.pid, "group": group.pid}), flush=True)
signal.pause()
"""


def _children_of_group(pgid: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(proc.name))
    return out


def test_infra_down_stops_orphans_of_a_harness_killed_with_9_and_children_of_a_killed_leader(tmp_path: Path) -> None:
    harness = subprocess.Popen([sys.executable, "-c", _HARNESS], env=_env(tmp_path), stdout=subprocess.PIPE, text=True)
    assert harness.stdout is not None
    started = json.loads(harness.stdout.readline())
    sleeper, leader = started["sleeper"], started["group"]
    wait_for(lambda: (len(_children_of_group(leader)) == 3, _children_of_group(leader)), timeout_s=10,
             what="the group's two sleeps to start")
    members = [p for p in _children_of_group(leader) if p != leader]
    try:
        harness.kill()  # the harness dies -9: no finally, no stop
        harness.wait()
        os.kill(leader, signal.SIGKILL)  # and the group's leader too: its children lose their parent
        wait_for(lambda: (not pid_alive(leader), "leader alive"), timeout_s=5, what="the leader to die")
        assert pid_alive(sleeper) and all(pid_alive(p) for p in members), "nothing left over: the test proves nothing"
        assert len(list(_settings(tmp_path).pids_dir.glob("*.json"))) == 2

        down = subprocess.run([sys.executable, "-m", "harness.cli", "infra", "down"], env=_env(tmp_path),
                              capture_output=True, text=True, timeout=60)
        assert down.returncode == 0, down.stderr
        print(down.stdout)
        assert f"sleeper (pid {sleeper})" in down.stdout
        for member in members:
            assert f"pid {member}" in down.stdout
        for pid in (sleeper, *members):
            assert not pid_alive(pid), f"pid {pid} survived `chaos infra down`"
        assert list(_settings(tmp_path).pids_dir.glob("*.json")) == [], "records of stopped processes remain"
    finally:
        for pid in (sleeper, *members):
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_recorded_pid_now_held_by_another_program_is_left_alone(tmp_path: Path) -> None:
    folder = _settings(tmp_path).pids_dir
    stranger = subprocess.Popen(["sleep", "1000"])  # not started by the harness: no mark in its environ
    try:
        for ticks in (pids.start_ticks(stranger.pid), 1):  # the right start time, then a wrong one
            pids.note_started(pids.PidRecord(stranger.pid, stranger.pid, "relay", ("sleep", "1000"), pids.new_mark(),
                                             ticks, 1), folder)
            left = pids.stop_leftovers(folder)
            assert left.stopped == () and left.not_stopped == ()
            assert stranger.poll() is None, "a process that only shares a recorded pid was killed"
            assert list(folder.glob("*.json")) == []  # the stale record is cleared
    finally:
        stranger.kill()
        stranger.wait()


def test_managed_process_records_its_start_and_forgets_it_at_stop(tmp_path: Path) -> None:
    folder = tmp_path / "pids"
    # As a holder of a base port lock would: innermost wins, even inside a pytest session that
    # holds the lock of its own infra (the session's records must not receive this test's).
    pids.holding(folder, True)
    try:
        proc = ManagedProcess(ProcessSpec("sleeper", ["sleep", "1000"], tmp_path / "s.log")).start()
        record = json.loads((folder / f"{proc.pid}.json").read_text())
        assert record["pid"] == record["pgid"] == proc.pid and record["name"] == "sleeper"
        assert record["argv"] == ["sleep", "1000"] and record["start_ticks"] == pids.start_ticks(proc.pid)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert f"{pids.MARK_ENV}={record['mark']}".encode() in environ
        assert ("sleeper", proc.pid) in pids.running_started_here()
        proc.stop(grace_s=2)
        assert not (folder / f"{proc.pid}.json").exists()
        assert ("sleeper", proc.pid) not in pids.running_started_here()
    finally:
        pids.holding(folder, False)


def test_stopping_an_infra_stops_what_a_child_run_started_on_it(tmp_path: Path) -> None:
    """A service started on demand by another process on the same infra (a test's `chaos run` starting
    Connect) is in the base port's pid records, not in this handle: stopping the infra stops it too."""
    from harness.infra.lock import hold_base_port
    from harness.infra.stack import Infra

    settings = _settings(tmp_path)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    (tmp_path / "logs").mkdir()
    # As an infra's owner does (a run, a pytest session): hold the base port, so records go to its pid
    # folder even inside a pytest session that holds a base port of its own.
    with hold_base_port(settings, command="test"):
        infra = Infra(settings, {}, tmp_path / "logs", owned=True)
        started = ManagedProcess(ProcessSpec(name="connect", argv=[sys.executable, "-c", "import time; time.sleep(120)"],
                                             log_path=tmp_path / "logs" / "connect.log")).start()
        pid = started.pid
        assert pid is not None and pid_alive(pid)
        assert [r.pid for r in pids.records(settings.pids_dir)] == [pid]
        infra.stop()
        wait_for(lambda: (not pid_alive(pid), f"pid {pid} alive"), timeout_s=10, what="the child's Connect to be stopped")
    assert pids.records(settings.pids_dir) == []
