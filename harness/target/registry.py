"""Where targets, domain packs and reusable components come from, and how a ``--target`` is resolved.

  a name          an entry point of the ``chaos.targets`` group (the reference pipelines
                  register ``direct``, ``outbox``, ``cdc``, ``cdc_outbox`` from this project's
                  pyproject.toml; a user's package registers its own the same way)
  module:attr     a ``TargetSpec``, or a callable returning one
  a .toml path    the declarative form (harness.target.toml)

Domain packs (``chaos.domains``, or ``module:attr``) and reusable components
(``chaos.components``: ``use = "reference:consumer.payment"`` names the group entry
``reference`` and the component ``consumer.payment`` in it) resolve the same way. The
harness imports none of them by name: it only knows these groups.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path

from harness.errors import SpecError, UsageError
from harness.target.domain import Domain
from harness.target.spec import ProcessDecl, TargetSpec

__all__ = ["TargetInfo", "available_targets", "component", "load_domain", "resolve_target"]

TARGETS_GROUP = "chaos.targets"
DOMAINS_GROUP = "chaos.domains"
COMPONENTS_GROUP = "chaos.components"


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """One target `chaos targets` lists: its name and where it came from."""

    name: str
    origin: str


def _import(ref: str, what: str) -> object:
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"{what} {ref!r}: cannot import module {module_name!r} ({exc}); is it installed or on PYTHONPATH?") from None
    try:
        obj: object = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise SpecError(f"{what} {ref!r}: module {module_name} has no attribute {attr!r}") from None
    return obj


def _entry(group: str, name: str) -> object | None:
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    return None


def _as_spec(obj: object, ref: str, origin: str) -> TargetSpec:
    if callable(obj) and not isinstance(obj, TargetSpec):
        obj = obj()
    if not isinstance(obj, TargetSpec):
        raise SpecError(f"target {ref!r} is a {type(obj).__name__}, not a TargetSpec (or a callable returning one); "
                        "see docs/target-spec.md")
    return replace(obj, origin=origin) if obj.origin == "python" else obj


def resolve_target(ref: str) -> TargetSpec:
    """A ``--target`` value (name, module:attr, or path to a .toml) as a validated spec."""
    if ref != ref.strip() or not ref:
        raise UsageError(f"--target {ref!r}: give a target name, module:attr or a path to a .toml, without spaces")
    if ref.endswith(".toml") or "/" in ref:
        from harness.target.toml import load_toml

        return load_toml(Path(ref))
    if ":" in ref:
        return _as_spec(_import(ref, "target"), ref, f"python {ref}")
    obj = _entry(TARGETS_GROUP, ref)
    if obj is None:
        valid = ", ".join(t.name for t in available_targets()) or "none installed"
        raise UsageError(f"unknown target {ref!r}; available targets: {valid}; or give module:attr or a .toml path")
    return _as_spec(obj, ref, f"entry point {TARGETS_GROUP}")


def available_targets() -> list[TargetInfo]:
    out = []
    for ep in sorted(entry_points(group=TARGETS_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "?"
        out.append(TargetInfo(ep.name, f"entry point {TARGETS_GROUP} ({ep.value}, package {dist})"))
    return out


def load_domain(ref: str) -> Domain:
    obj = _import(ref, "domain") if ":" in ref else _entry(DOMAINS_GROUP, ref)
    if obj is None:
        valid = ", ".join(sorted(ep.name for ep in entry_points(group=DOMAINS_GROUP))) or "none installed"
        raise SpecError(f"unknown domain {ref!r}; installed domain packs: {valid}; or give module:attr")
    if callable(obj) and not hasattr(obj, "decl"):
        obj = obj()
    if not all(hasattr(obj, a) for a in ("decl", "schema_sql", "decode", "observe")):
        raise SpecError(f"domain {ref!r} is a {type(obj).__name__}, which lacks decl/schema_sql/decode/observe; "
                        "see harness.target.domain.Domain")
    return obj  # type: ignore[return-value]


def component(ref: str) -> ProcessDecl:
    """``group:name`` -> a reusable process declaration from the ``chaos.components`` group."""
    group, sep, name = ref.partition(":")
    registry = _entry(COMPONENTS_GROUP, group) if sep else None
    if registry is None:
        valid = ", ".join(sorted(ep.name for ep in entry_points(group=COMPONENTS_GROUP))) or "none installed"
        raise SpecError(f"use = {ref!r}: write GROUP:COMPONENT with GROUP one of {valid}")
    components: Mapping[str, ProcessDecl] = registry() if callable(registry) else registry  # type: ignore[assignment]
    if name not in components:
        raise SpecError(f"use = {ref!r}: no component {name!r} in {group}; its components: {', '.join(sorted(components))}")
    return components[name]
