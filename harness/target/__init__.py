"""The target border: how any pipeline, in any language, plugs into the harness.

  spec       ``TargetSpec`` and its parts (processes, readiness, stop, build, timeouts)
  toml       the declarative form of a spec, for pipelines in other languages
  registry   resolving ``--target`` (a name, module:attr, a .toml), domain packs, components
  domain     the ``Domain`` protocol: what a business means to the checkers
  protocol   the ``Target`` role the runner drives
  runtime    ``SpecTarget``: any spec as real OS processes on the infra
"""

from harness.target.domain import ConsumerDecl, DecodedEvent, Domain, DomainDecl, Requirement
from harness.target.protocol import Drain, RunContext, Target
from harness.target.spec import Build, ProcessDecl, Readiness, ReadyKind, StopSpec, TargetSpec, Timeouts

__all__ = [
    "Build", "ConsumerDecl", "DecodedEvent", "Domain", "DomainDecl", "Drain", "ProcessDecl", "Readiness", "ReadyKind",
    "Requirement", "RunContext", "StopSpec", "Target", "TargetSpec", "Timeouts",
]
