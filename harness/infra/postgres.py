"""A throwaway PostgreSQL 15 cluster with logical WAL, as a real local process.

initdb and postgres refuse to run as root, so when the harness is root they run as
the `postgres` user, in a folder that user owns (under /tmp: a root-only home is not
traversable by it). fsync is off: the faults here kill processes, they do not cut power.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from harness.errors import InfraError
from harness.infra.process import ProcessSpec

__all__ = ["clear_stale_lock", "connect_direct", "data_dir", "initdb", "probe", "spec"]

HOST = "127.0.0.1"


def _run_as() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def data_dir(port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"chaos-harness-pg-{port}"


def initdb(bin_dir: Path, port: int, log: Path) -> Path:
    """Create a fresh cluster for ``port``, discarding any previous one."""
    root = data_dir(port)
    shutil.rmtree(root, ignore_errors=True)
    (root / "sock").mkdir(parents=True)
    user = _run_as()
    if user is not None:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise InfraError("running as root but there is no `postgres` user; apt-get install -y postgresql-15 creates it") from None
        for path in (root, root / "sock"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        result = subprocess.run(  # noqa: S603
            [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            stdout=fh, stderr=subprocess.STDOUT, user=user, timeout=120, check=False, cwd=root,
        )
    if result.returncode != 0:
        raise InfraError(f"initdb failed with exit {result.returncode}; see {log}")
    return root


def clear_stale_lock(port: int, dead_pid: int) -> None:
    """Remove postmaster.pid if it names ``dead_pid`` (killed, not yet reaped): it blocks a restart."""
    lock = data_dir(port) / "data" / "postmaster.pid"
    try:
        if lock.read_text().split("\n", 1)[0].strip() == str(dead_pid):
            lock.unlink()
    except FileNotFoundError:
        pass


def spec(bin_dir: Path, port: int, log: Path, die_with_parent: bool) -> ProcessSpec:
    root = data_dir(port)
    settings = {
        "listen_addresses": HOST,
        "port": str(port),
        "unix_socket_directories": str(root / "sock"),
        "wal_level": "logical",
        "max_replication_slots": "10",
        "max_wal_senders": "10",
        "max_connections": "300",
        "fsync": "off",
        "full_page_writes": "off",
        "shared_buffers": "128MB",
        "log_min_messages": "warning",
    }
    argv = [str(bin_dir / "postgres"), "-D", str(root / "data")]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return ProcessSpec(name="postgres", argv=argv, log_path=log, cwd=root, user=_run_as(), die_with_parent=die_with_parent)


def connect_direct(port: int, dbname: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
    """An oracle connection straight to Postgres (never through a proxy)."""
    return psycopg.connect(
        host=HOST, port=port, user="postgres", dbname=dbname, autocommit=autocommit, connect_timeout=3,
        options="-c statement_timeout=30000",
    )


def probe(port: int) -> tuple[bool, str]:
    with connect_direct(port) as conn:
        row = conn.execute("SHOW wal_level").fetchone()
    level = row[0] if row else "?"
    return level == "logical", f"wal_level={level}"
