"""The Target role: a runnable system under test, as real OS processes.

A target declares its processes and links, starts them on given infra, and reads its
side effects and ground truth back for the checkers. The reference pipelines in
``targets/`` implement it, and so can a user's own system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.history.ops import Scalar
from harness.infra.process import ManagedProcess

__all__ = ["Drain", "RunContext", "Target"]


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a target needs to know about the run it is part of."""

    run_id: str
    pipeline: str
    logs_dir: Path
    seed: int
    interposed: bool = False  # publishers write to <topic>.interposer; the harness forwards (reorder faults)


@dataclass(frozen=True, slots=True)
class Drain:
    """One observation of how far a target is from having processed everything."""

    publish_backlog: int  # events committed at the source and not yet on the topic
    consumer_lag: int  # records on the topic not yet committed by the consumers

    @property
    def done(self) -> bool:
        return self.publish_backlog == 0 and self.consumer_lag == 0


class Target(Protocol):
    name: str

    @property
    def base_url(self) -> str: ...

    def links(self) -> Sequence[str]:
        """Every link (``client->service``) this target's processes use."""

    def resolve_link(self, link: str) -> str:
        """Map a role link such as ``publisher->kafka`` to a concrete one (``relay->kafka``)."""

    def processes(self) -> Mapping[str, ManagedProcess]: ...

    def restart(self, name: str) -> None:
        """Start process ``name`` again (stopping what is left of it) and wait until it is ready.

        Process faults (kill, restart, crash) heal through this: the target owns the spec.
        """

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def drain_state(self) -> Drain: ...

    def observe(self) -> Mapping[str, list[Mapping[str, Scalar]]]:
        """Final ground truth and effects, read through the oracle (never through a proxy)."""
