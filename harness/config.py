"""Where chaos-harness keeps things and which ports it uses; read when asked, never at import.

Environment:
  CHAOS_HOME       cache of installed components and the state of a running infra
                   (default ~/.cache/chaos-harness; never inside the repository)
  CHAOS_RUNS_DIR   where run folders go (default ./runs, git-ignored)
  CHAOS_BASE_PORT  first of the ports the local topology uses (default 20000); digits only,
                   and the whole layout must fit: 1024 <= B and B + its highest offset <= 65535
  CHAOS_SCHEMA_REGISTRY  the base URL of a Confluent-compatible schema registry of the user's own, used
                   instead of the harness's (Apicurio); `chaos run --schema-registry URL` says the same

A value with surrounding whitespace, a control character or nothing at all is refused rather
than trimmed: `CHAOS_BASE_PORT=" 23000"` is more likely a quoting mistake than a wish.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.infra.ports import HIGHEST_BASE_PORT, HIGHEST_OFFSET, LOWEST_BASE_PORT

__all__ = ["Settings", "env_path"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _env_text(name: str, default: str) -> str:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw or raw != raw.strip() or _CONTROL.search(raw):
        raise UsageError(f"{name}={raw!r} is empty or has surrounding whitespace or control characters; "
                         f"set it to a plain value (or unset it for the default, {default})")
    return raw


def env_path(name: str, default: str | Path) -> Path:
    """A path from the environment, refused (exit 4) when empty, padded or holding control characters."""
    return Path(_env_text(name, str(default))).expanduser()


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    runs_dir: Path
    base_port: int
    schema_registry: str | None = None  # a user's own registry (validated URL); None: the harness starts its own

    @classmethod
    def from_env(cls) -> Settings:
        home = env_path("CHAOS_HOME", Path.home() / ".cache" / "chaos-harness")
        runs = env_path("CHAOS_RUNS_DIR", "runs")
        raw_port = _env_text("CHAOS_BASE_PORT", "20000")
        # int() would take " 23000", "2_3000" and non-ASCII digits; a port is plain ASCII digits.
        if not re.fullmatch(r"[0-9]{1,5}", raw_port):
            raise UsageError(f"CHAOS_BASE_PORT={raw_port!r} is not a port number; set it to plain digits "
                             f"in {LOWEST_BASE_PORT}..{HIGHEST_BASE_PORT}, such as 20000")
        base_port = int(raw_port)
        if not LOWEST_BASE_PORT <= base_port <= HIGHEST_BASE_PORT:
            raise UsageError(f"CHAOS_BASE_PORT={base_port} is outside {LOWEST_BASE_PORT}..{HIGHEST_BASE_PORT}: "
                             f"the topology uses ports B..B+{HIGHEST_OFFSET}, which must lie in "
                             f"{LOWEST_BASE_PORT}..65535; pick a free range such as 20000")
        registry = os.environ.get("CHAOS_SCHEMA_REGISTRY")
        if registry is not None:
            from harness.infra.schema_registry import validate_registry_url

            registry = validate_registry_url(registry, "CHAOS_SCHEMA_REGISTRY")
        return cls(home=home.resolve(), runs_dir=runs.resolve(), base_port=base_port, schema_registry=registry)

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
