"""What a scenario needs of a target, checked before any infrastructure starts.

A scenario's faults name links (``relay->kafka``, ``publisher->kafka``), processes
(``consumer.payment``, ``relay#1``), crash points and drift changes; it may also state
needs of its own (``Scenario.needs``: ``process:relay``, ``link:relay->kafka``,
``connect``, ``backlog``, ``schema-registry``). A target that lacks one is refused with exit 4, naming what is
missing and what the target has, so no run is spent on a fault that would be a no-op.
"""

from __future__ import annotations

from harness.errors import UsageError
from harness.faults.spec import INFRA_PROCESSES, Crash, FaultKind, FaultSpec, SchemaDrift, TargetType, kind_info
from harness.target.spec import TargetSpec

__all__ = ["check_capabilities", "missing_capabilities"]


def _process(spec: TargetSpec, name: str) -> str:
    return spec.publisher if name == "publisher" else name


def _fault_needs(fault: FaultSpec, spec: TargetSpec) -> list[str]:
    info = kind_info(fault.kind)
    out: list[str] = []
    names = spec.process_names()
    if info.target is TargetType.LINK:
        client, _, service = fault.target.partition("->")
        link = f"{_process(spec, client)}->{service}"
        if link not in spec.links():
            out.append(f"link {fault.target} ({fault.kind.value}); its links: {', '.join(spec.links())}")
    elif info.target is TargetType.PROCESS:
        name = _process(spec, fault.target)
        base = name.split("#", 1)[0]
        if fault.kind is FaultKind.SLOW_CONSUMER:
            if f"{name}->kafka" not in spec.links():
                out.append(f"a consumer {fault.target} with a kafka link (slow_consumer)")
        elif fault.kind in (FaultKind.REWIND, FaultKind.GROUP_RESET, FaultKind.DLQ_REFUSED):
            if not any(p.consumer and p.name == base for p in spec.processes) or name not in names:
                what = {FaultKind.REWIND: "rewind moves its group's offsets",
                        FaultKind.GROUP_RESET: "group_reset deletes its group's offsets",
                        FaultKind.DLQ_REFUSED: "dlq_refused acts on its dead-letter topic"}[fault.kind]
                out.append(f"a consumer process {fault.target} ({what}); its processes: {', '.join(names)}")
        elif fault.kind is FaultKind.SCALE:
            decl = next((p for p in spec.processes if p.name == name), None)
            if decl is None:
                out.append(f"a process {fault.target} to scale (scale starts more instances of it); its processes: "
                           f"{', '.join(p.name for p in spec.processes)}")
            elif decl.ports:
                out.append(f"a process {fault.target} without ports to scale (a second instance would share "
                           f"{', '.join(decl.ports)})")
        elif name not in names and name not in INFRA_PROCESSES:
            out.append(f"process {fault.target} ({fault.kind.value}); its processes: {', '.join(names)}")
            return out  # its crash points and drift changes follow from that
        elif name == "connect" and not spec.uses_connect:
            out.append("Kafka Connect (connect) in the target: it publishes without a connector")
        if isinstance(fault.params, Crash) and name not in INFRA_PROCESSES:
            points = spec.crash_points().get(base, ())
            if fault.params.point not in points:
                out.append(f"crash point {fault.params.point} in {fault.target}; its points: {', '.join(points) or 'none'}")
        if isinstance(fault.params, SchemaDrift) and fault.params.change not in spec.drift_changes:
            out.append(f"schema drift change {fault.params.change!r} in {fault.target}; "
                       f"the target declares: {', '.join(spec.drift_changes) or 'none'}")
    return out


def _stated_needs(need: str, spec: TargetSpec) -> list[str]:
    kind, _, what = need.partition(":")
    if kind == "process":
        return [] if _process(spec, what) in spec.process_names() else [f"process {what}"]
    if kind == "link":
        client, _, service = what.partition("->")
        return [] if f"{_process(spec, client)}->{service}" in spec.links() else [f"link {what}"]
    if kind == "connect":
        return [] if spec.uses_connect else ["Kafka Connect (a CDC connector)"]
    if kind == "schema-registry":
        # Only a target that declares it gets CHAOS_SCHEMA_REGISTRY_URL: a scenario about schemas on one
        # that never registers any would pass without testing anything.
        return [] if spec.uses_schema_registry else ["a schema registry client (schema_registry = true in the target spec)"]
    if kind == "backlog":
        # A target whose runtime brings its own backlog reading (a custom runtime) is trusted to.
        return [] if spec.backlog_sql is not None or spec.runtime is not None else ["a backlog query ([backlog] sql)"]
    raise UsageError(f"Scenario.needs {need!r}: write process:NAME, link:CLIENT->SERVICE, connect, backlog "
                     "or schema-registry")


def missing_capabilities(faults: tuple[FaultSpec, ...], needs: tuple[str, ...], variant: str,
                         spec: TargetSpec) -> list[str]:
    """Everything the scenario needs that ``spec`` lacks (empty when it can run)."""
    out = [m for f in faults for m in _fault_needs(f, spec)]
    out += [m for n in needs for m in _stated_needs(n, spec)]
    if variant not in spec.variants:
        out.append(f"variant {variant!r}; its variants: {', '.join(spec.variants)}")
    return list(dict.fromkeys(out))


def check_capabilities(scenario_name: str, faults: tuple[FaultSpec, ...], needs: tuple[str, ...], variant: str,
                       spec: TargetSpec) -> None:
    missing = missing_capabilities(faults, needs, variant, spec)
    if missing:
        raise UsageError(f"scenario {scenario_name} cannot run on target {spec.name}: it lacks "
                         + "; ".join(missing) + ". Pick another target or scenario, or declare it in the target spec")
