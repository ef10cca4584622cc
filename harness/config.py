"""Where chaos-harness keeps things and which ports it uses; read when asked, never at import.

Environment:
  CHAOS_HOME       cache of installed components and the state of a running infra
                   (default ~/.cache/chaos-harness; never inside the repository)
  CHAOS_RUNS_DIR   where run folders go (default ./runs, git-ignored)
  CHAOS_BASE_PORT  first of the ports the local topology uses (default 20000)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    runs_dir: Path
    base_port: int

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("CHAOS_HOME", Path.home() / ".cache" / "chaos-harness")).expanduser()
        runs = Path(os.environ.get("CHAOS_RUNS_DIR", "runs")).expanduser()
        raw_port = os.environ.get("CHAOS_BASE_PORT", "20000")
        try:
            base_port = int(raw_port)
        except ValueError:
            raise UsageError(f"CHAOS_BASE_PORT={raw_port!r} is not a number; set it to a free port such as 20000") from None
        if not 1024 <= base_port <= 65000:
            raise UsageError(f"CHAOS_BASE_PORT={base_port} is outside 1024..65000; pick a free range such as 20000")
        return cls(home=home.resolve(), runs_dir=runs.resolve(), base_port=base_port)

    @property
    def install_dir(self) -> Path:
        return self.home / "install"

    @property
    def state_dir(self) -> Path:
        """Data and pid state of the infra started by `chaos infra up` (one per base port)."""
        return self.home / "infra" / str(self.base_port)

    @property
    def pids_dir(self) -> Path:
        """Pid records of every process the harness started for this base port (harness/infra/pids.py)."""
        return self.state_dir / "pids"
