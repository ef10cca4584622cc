"""The Target role: a runnable system under test, as real OS processes.

A target declares its processes and links, starts them on given infra, and reads its
side effects and ground truth back for the checkers. The harness's ``SpecTarget`` runs
any ``TargetSpec`` this way (the reference pipelines included); a team may also bring a
class of its own through ``TargetSpec.runtime``. Everything the runner, the nemesis and
the checkers ask of a target is here: nothing is fetched with getattr.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.history.ops import Scalar
from harness.history.store import Recorder
from harness.infra.process import ManagedProcess
from harness.target.domain import DomainDecl
from harness.target.spec import TargetSpec
from harness.workload.base import Workload
from harness.workload.rate import RateShape

__all__ = ["Drain", "RunContext", "Target"]


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a target needs to know about the run it is part of."""

    run_id: str
    pipeline: str  # the target's name in this run
    logs_dir: Path
    seed: int
    interposed: bool = False  # publishers write to <topic>.interposer; the harness forwards (reorder faults)
    variant: str = "correct"  # a deliberate mistake the target declared it can make (CHAOS_VARIANT)


@dataclass(frozen=True, slots=True)
class Drain:
    """One observation of how far a target is from having processed everything."""

    publish_backlog: int  # events committed at the source and not yet on the topic
    consumer_lag: int  # records on the topic not yet committed by the consumers
    # consumer -> ((partition, lag), ...): the same lag per group and partition, for lag alerts
    # (harness.lag_alerts); empty when a target cannot tell.
    groups: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()
    # Records on the topic so far (the sum of its end offsets); None when a target cannot tell. Two
    # equal readings around the final observation show nothing was published while it was read.
    published: int | None = None

    @property
    def done(self) -> bool:
        return self.publish_backlog == 0 and self.consumer_lag == 0


class Target(Protocol):
    name: str
    spec: TargetSpec

    @property
    def base_url(self) -> str:
        """Where the workload sends its requests (the entrypoint's HTTP port)."""

    @property
    def topic(self) -> str:
        """The event topic consumers read (message faults write here, through the DIRECT listener)."""

    @property
    def group(self) -> str:
        """A consumer group whose committed offsets say what was "already delivered" (duplicate faults)."""

    @property
    def crashpoints_dir(self) -> Path:
        """The control folder of crash points and drift switches (CHAOS_CRASHPOINTS_DIR of every process)."""

    @property
    def domain(self) -> DomainDecl: ...

    def workload(self, recorder: Recorder, shape: RateShape, duration_s: float, seed: int) -> Workload:
        """The domain's traffic, aimed at this target's entrypoint."""

    def links(self) -> Sequence[str]:
        """Every link (``client->service``) this target's processes use."""

    def resolve_link(self, link: str) -> str:
        """Map a role link such as ``publisher->kafka`` to a concrete one (``relay->kafka``)."""

    def resolve_process(self, name: str) -> str:
        """Map a role name (``publisher``) to a process name; other names pass through."""

    def processes(self) -> Mapping[str, ManagedProcess]: ...

    def restart(self, name: str) -> None:
        """Start process ``name`` again (stopping what is left of it) and wait until it has recovered.

        Process faults (kill, restart, crash) heal through this: the target owns the spec.
        """

    def stop_process(self, name: str) -> None:
        """Stop process ``name`` cleanly, with its declared signal and grace (a ``restart`` fault)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def drain_state(self) -> Drain: ...

    def publish_backlog(self) -> int:
        """Events committed at the source and not yet on the topic; readable while the broker is down."""

    def observe(self) -> Mapping[str, list[Mapping[str, Scalar]]]:
        """Final ground truth and effects, read through the oracle (never through a proxy)."""
