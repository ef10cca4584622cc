"""Ctrl-C during a run's cleanup: the second one says cleanup is still running and does not cut it short,
the third forces an exit; the last line says which processes were stopped and which were not.

`chaos run` runs here with a stand-in runner (no infrastructure) that starts one real process, waits
to be interrupted, then cleans up only when the test says so: the test decides when each signal lands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from harness.infra.process import pid_alive
from harness.wait import wait_for

BASE = 34000

_RUN = """
import sys, threading
from pathlib import Path
from types import SimpleNamespace
from unittest import mock
from harness.cli import main
from harness.config import Settings
from harness.infra import pids
from harness.infra.process import ManagedProcess, ProcessSpec
from harness.wait import wait_for

go, mode = Path(sys.argv[1]), sys.argv[2]

def run_scenario(scenario, **kwargs):
    pids.record_into(Settings.from_env().pids_dir)  # as an Infra handle does
    proc = ManagedProcess(ProcessSpec("sleeper", ["sleep", "1000"], go.parent / "sleeper.log",
                                      die_with_parent=mode == "stop")).start()
    try:  # announced inside the try: a Ctrl-C right after the announcement must reach the finally
        print("running", proc.pid, flush=True)
        threading.Event().wait(60)
    finally:
        print("cleaning up", flush=True)
        wait_for(lambda: (go.exists(), "not yet"), timeout_s=60, what="the test to let cleanup end", interval_s=0.02)
        if mode == "stop":
            proc.stop(grace_s=2)
    return SimpleNamespace(exit_code=0)

with mock.patch("harness.runner.run_scenario", run_scenario), \\
        mock.patch("harness.report.terminal.print_summary", lambda result, console: None):
    sys.exit(main(["run", "broker_outage", "--pipelines", "outbox", "--seed", "1"]))
"""


class _Run:
    def __init__(self, tmp_path: Path, mode: str) -> None:
        self.go = tmp_path / "go"
        self.err = tmp_path / "stderr.log"
        self.env = {**os.environ, "CHAOS_HOME": str(tmp_path / "home"), "CHAOS_RUNS_DIR": str(tmp_path / "runs"),
                    "CHAOS_BASE_PORT": str(BASE), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-c", _RUN, str(self.go), mode], env=self.env,
                                         stdout=subprocess.PIPE, stderr=err, text=True)
        self.child = int(self.await_line("running").split()[1])

    def await_line(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line {prefix!r}; exit {self.proc.wait()}: {self.err.read_text()}")

    def stderr_says(self, text: str) -> None:
        wait_for(lambda: (text in self.err.read_text(), self.err.read_text()), timeout_s=10, what=f"stderr to say {text!r}")

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def finish(self) -> int:
        return self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if pid_alive(self.child):
            os.kill(self.child, signal.SIGKILL)


def test_a_second_ctrl_c_during_cleanup_says_so_and_cleanup_goes_on(tmp_path: Path) -> None:
    run = _Run(tmp_path, "stop")
    try:
        run.interrupt()
        run.await_line("cleaning up")
        run.interrupt()
        run.stderr_says("cleanup is still running")
        assert run.proc.poll() is None and pid_alive(run.child), "the second Ctrl-C cut the cleanup short"
        run.go.touch()
        assert run.finish() == 130
        err = run.err.read_text()
        assert "cleanup finished: the one process it started was stopped" in err, err
        assert not pid_alive(run.child)
        assert "Traceback" not in err
    finally:
        run.close()


def test_a_third_ctrl_c_forces_exit_and_names_what_is_still_running(tmp_path: Path) -> None:
    run = _Run(tmp_path, "stop")
    try:
        run.interrupt()
        run.await_line("cleaning up")
        run.interrupt()
        run.stderr_says("cleanup is still running")
        run.interrupt()
        assert run.finish() == 130
        err = run.err.read_text()
        assert "forced exit" in err and f"sleeper (pid {run.child})" in err and "still running" in err, err
        assert f"CHAOS_BASE_PORT={BASE} chaos infra down" in err
    finally:
        run.close()


def test_the_last_line_does_not_claim_a_process_stopped_that_was_not(tmp_path: Path) -> None:
    run = _Run(tmp_path, "leave")  # a cleanup that leaves its process running, as a failed stop would
    try:
        run.interrupt()
        run.await_line("cleaning up")
        run.go.touch()
        assert run.finish() == 130
        err = run.err.read_text()
        assert f"1 of the 1 processes it started is still running: sleeper (pid {run.child})" in err, err
        assert pid_alive(run.child)
        down = subprocess.run([sys.executable, "-m", "harness.cli", "infra", "down"], env=run.env,
                              capture_output=True, text=True, timeout=60)
        assert down.returncode == 0 and f"sleeper (pid {run.child})" in down.stdout, down.stdout + down.stderr
        assert not pid_alive(run.child)
    finally:
        run.close()
