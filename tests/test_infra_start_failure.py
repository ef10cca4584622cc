"""A failed start shows the failing service's log tail and leaves nothing running."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from harness.config import Settings
from harness.errors import InfraError
from harness.infra.install import Installation
from harness.infra.ports import suggest_base_port
from harness.infra.stack import Infra
from harness.testing import leftover_processes

pytestmark = pytest.mark.chaos

FAKE_POSTGRES = """#!/bin/sh
echo "FATAL:  fake postgres refuses to start (planted by the test)"
exit 1
"""


@pytest.fixture
def broken_postgres_bin() -> Path:
    # Outside pytest's root-only tmp dir: the postgres user must be able to run these.
    folder = Path(tempfile.mkdtemp(prefix="chaos-fake-pg-"))
    folder.chmod(0o755)
    for name, body in (("initdb", "#!/bin/sh\nexit 0\n"), ("postgres", FAKE_POSTGRES)):
        path = folder / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_failed_start_raises_with_log_tail_and_cleans_up(
    broken_postgres_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Installation.locate(Settings.from_env())  # the real Kafka and Toxiproxy must be installed
    # A layout free right now (outside the ephemeral range if one is): the start must get as far as Postgres.
    port = suggest_base_port(Settings.from_env().base_port + 1500)
    monkeypatch.setenv("CHAOS_PG_BIN", str(broken_postgres_bin))
    monkeypatch.setenv("CHAOS_BASE_PORT", str(port))
    settings = Settings.from_env()
    with pytest.raises(InfraError) as exc:
        Infra.start(settings, logs_dir=tmp_path / "logs")
    message = str(exc.value)
    assert "postgres exited" in message and "fake postgres refuses to start" in message, message
    fragments = (f"chaos-harness-pg-{port + 1}", f"/infra/{port}/", f"-port {port}")
    assert leftover_processes(fragments=fragments) == []
    assert not (settings.state_dir / "state.json").exists()
    assert os.environ["CHAOS_PG_BIN"] == str(broken_postgres_bin)
