"""A domain pack: what a pipeline's business is, as far as the checkers need to know.

The harness's checkers speak one vocabulary (entities, client steps, events, effects);
a domain pack maps a business onto it: which consumers exist and which event types each
acts on, which effect each acknowledged client step requires of which consumer, which
effects carry money, how an event is decoded, and how the effects are read back from
the sink, and what one customer does (the workload: the requests, their steps and entities).
The reference order domain is one pack (``chaos.domains`` entry point ``orders``); a team
with its own business brings its own object satisfying ``Domain``.

The pack's declaration is written into every history (the ``domain`` observation), so a
stored run is re-checked against the domain it ran with, not against today's code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from harness.history.ops import Scalar

if TYPE_CHECKING:
    from harness.history.store import Recorder
    from harness.workload.base import Workload
    from harness.workload.rate import RateShape

__all__ = ["ConsumerDecl", "DecodedEvent", "Domain", "DomainDecl", "Requirement", "SqlReader"]


@dataclass(frozen=True, slots=True)
class ConsumerDecl:
    """A consumer of the domain: the event types it acts on and the effect it writes."""

    name: str
    subscribes: frozenset[str]
    effect: str


@dataclass(frozen=True, slots=True)
class Requirement:
    """An acknowledged client step ``step`` requires effect ``kind`` of ``consumer``, exactly once."""

    step: str
    consumer: str
    kind: str


@dataclass(frozen=True, slots=True)
class DomainDecl:
    """What the checkers need to know of a domain; stored in the history as rows."""

    name: str
    consumers: tuple[ConsumerDecl, ...]
    requirements: tuple[Requirement, ...]

    def consumer(self, name: str) -> ConsumerDecl | None:
        return next((c for c in self.consumers if c.name == name), None)


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """The fields of one event every checker reads; ``None`` where the event lacks one."""

    event_id: str | None
    entity_id: str | None
    type: str | None
    seq: int | None
    correlation_id: str | None
    schema_version: int | None


SqlReader = Callable[[str], Sequence[tuple[object, ...]]]
"""Runs one query against the pipeline's database through the oracle (never a proxy)."""


class Domain(Protocol):
    """A domain pack (see the module docstring)."""

    @property
    def decl(self) -> DomainDecl: ...

    @property
    def schema_sql(self) -> str:
        """The tables every pipeline of this domain starts with (the harness creates one database per run)."""

    def decode(self, raw: bytes | None) -> DecodedEvent:
        """Decode one record value; ValueError naming what is wrong when it is not an event."""

    def observe(self, sql: SqlReader) -> Mapping[str, list[Mapping[str, Scalar]]]:
        """The sink's ground truth after drain: the ``entities``/``orders``, ``applied`` and ``effects`` sources."""

    def workload(self, base_url: str, recorder: Recorder, shape: RateShape, duration_s: float,
                 seed: int) -> Workload:
        """What the customers of this domain do, at ``shape`` for ``duration_s``, all drawn from ``seed``."""
