"""The declarative form of a target spec: a TOML file, for pipelines written in any language.

    name = "go_outbox"
    domain = "orders"                 # a domain pack (entry point of chaos.domains) or module:attr
    entrypoint = "app"                # the process the workload sends requests to (ports = ["http"])
    publisher = "relay"               # the process that writes the event topic
    variants = ["correct", "mark_before_ack"]

    [[build]]
    command = ["go", "build", "-o", "bin/", "./cmd/..."]

    [processes.app]
    use = "reference:order_service.outbox"   # a reusable component (entry point group chaos.components)

    [processes.relay]
    command = ["bin/forwarder"]
    links = ["postgres", "kafka"]
    publishes = true
    ready = { log = "forwarder started", timeout_s = 30 }
    stop = { signal = "TERM", grace_s = 10 }
    crash_points = ["relay.after_publish"]

    [backlog]
    sql = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
    ids_sql = "SELECT DISTINCT order_id::text FROM outbox WHERE sent_at IS NULL"

    [timeouts]
    delivery_s = 10

    [budgets]
    redelivery_ratio = 0.01

    [lag_thresholds]                 # alert when a group's lag passes this many records; "*": the rest
    payment = 500
    "*" = 5000

Relative paths (``cwd``, ``command[0]`` when it contains a '/', build folders) are relative
to the TOML file's folder. Every key is checked: an unknown or missing one is a SpecError
(exit 4) naming it and the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import SpecError, UsageError
from harness.lag_alerts import LagThreshold
from harness.target.spec import Budgets, Build, ProcessDecl, Readiness, ReadyKind, StopSpec, TargetSpec, Timeouts

__all__ = ["load_toml"]

_TOP = {"name", "domain", "entrypoint", "publisher", "variants", "partitions", "build", "processes", "backlog",
        "timeouts", "budgets", "schema", "schema_registry", "lag_thresholds", "description"}
_PROCESS = {"use", "command", "links", "cwd", "env", "ready", "stop", "replicas", "ports", "consumer", "crash_points",
            "publishes", "recovery_grace_s"}
_READY = {"http", "tcp", "command", "log", "none", "timeout_s"}

ComponentLookup = Callable[[str], ProcessDecl]


def _keys(where: str, table: Mapping[str, Any], allowed: set[str], required: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(allowed))}")
    missing = [k for k in required if k not in table]
    if missing:
        raise SpecError(f"{where}: missing required key(s) {', '.join(missing)}")


def _typed(where: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float, (int, float)):
        raise SpecError(f"{where} must be {what}, got {value!r}")
    return value


def _strings(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where} must be a list of strings, got {value!r}")
    return tuple(value)


def _ready(where: str, table: Any) -> Readiness:
    _typed(where, table, dict, "a table such as { http = \"http://127.0.0.1:{port}/health\" }")
    _keys(where, table, _READY)
    kinds = [k for k in table if k != "timeout_s"]
    if len(kinds) != 1:
        raise SpecError(f"{where}: give exactly one of http, tcp, command, log, none (got {', '.join(kinds) or 'none'})")
    kind = ReadyKind(kinds[0])
    value: str | tuple[str, ...] = ""
    if kind is ReadyKind.COMMAND:
        value = _strings(f"{where}.command", table["command"])
    elif kind is not ReadyKind.NONE:
        value = str(_typed(f"{where}.{kind.value}", table[kind.value], (str, int), "a string"))
    timeout = float(_typed(f"{where}.timeout_s", table.get("timeout_s", 60), (int, float), "a number of seconds"))
    return Readiness(kind, value, timeout)


def _process(name: str, table: Any, folder: Path, components: ComponentLookup) -> ProcessDecl:
    where = f"processes.{name}"
    _typed(where, table, dict, "a table")
    _keys(where, table, _PROCESS)
    if "use" in table:
        base = components(str(_typed(f"{where}.use", table["use"], str, "a component name")))
        if "command" in table:
            raise SpecError(f"{where}: give either use (a component) or command, not both")
        base = replace(base, name=name)
    else:
        if "command" not in table:
            raise SpecError(f"{where}: missing required key command (or use = \"reference:...\" for a component)")
        base = None
    fields: dict[str, Any] = {}
    if "command" in table:
        fields["command"] = _strings(f"{where}.command", table["command"])
    if "links" in table:
        fields["links"] = _strings(f"{where}.links", table["links"])
    if "cwd" in table:
        fields["cwd"] = (folder / str(_typed(f"{where}.cwd", table["cwd"], str, "a folder"))).resolve()
    elif base is None:
        fields["cwd"] = folder
    if "env" in table:
        env = _typed(f"{where}.env", table["env"], dict, "a table of strings")
        merged = {**(dict(base.env) if base else {}), **{str(k): str(v) for k, v in env.items()}}
        fields["env"] = MappingProxyType(merged)
    if "ready" in table:
        fields["ready"] = _ready(f"{where}.ready", table["ready"])
    if "stop" in table:
        stop = _typed(f"{where}.stop", table["stop"], dict, "a table such as { signal = \"TERM\", grace_s = 10 }")
        _keys(f"{where}.stop", stop, {"signal", "grace_s"})
        fields["stop"] = StopSpec(str(stop.get("signal", "TERM")),
                                  float(_typed(f"{where}.stop.grace_s", stop.get("grace_s", 5), (int, float), "seconds")))
    if "replicas" in table:
        fields["replicas"] = _typed(f"{where}.replicas", table["replicas"], int, "an integer")
    if "ports" in table:
        fields["ports"] = _strings(f"{where}.ports", table["ports"])
    if "consumer" in table:
        fields["consumer"] = str(_typed(f"{where}.consumer", table["consumer"], str, "a consumer name"))
    if "crash_points" in table:
        fields["crash_points"] = _strings(f"{where}.crash_points", table["crash_points"])
    if "publishes" in table:
        fields["publishes"] = _typed(f"{where}.publishes", table["publishes"], bool, "true or false")
    if "recovery_grace_s" in table:
        fields["recovery_grace_s"] = float(_typed(f"{where}.recovery_grace_s", table["recovery_grace_s"],
                                                  (int, float), "seconds"))
    if base is not None:
        return replace(base, **fields)
    return ProcessDecl(name=name, **fields)


def load_toml(path: Path, components: ComponentLookup | None = None) -> TargetSpec:
    """Read and validate a target.toml; SpecError naming the file, the field and the fix."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"target file {path} does not exist; give a path to a target.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _spec(data, path, components)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def _spec(data: dict[str, Any], path: Path, components: ComponentLookup | None = None) -> TargetSpec:
    from harness.target.registry import component

    lookup = components or component
    folder = path.parent.resolve()
    _keys("target", data, _TOP, ("name", "domain", "entrypoint", "publisher", "processes"))
    processes = _typed("processes", data["processes"], dict, "a table of [processes.NAME] tables")
    decls = tuple(_process(str(n), t, folder, lookup) for n, t in processes.items())
    builds = []
    for i, b in enumerate(_typed("build", data.get("build", []), list, "an array of [[build]] tables")):
        _keys(f"build[{i}]", b, {"command", "cwd", "timeout_s"}, ("command",))
        builds.append(Build(_strings(f"build[{i}].command", b["command"]),
                            (folder / str(b.get("cwd", "."))).resolve(),
                            float(_typed(f"build[{i}].timeout_s", b.get("timeout_s", 600), (int, float), "seconds"))))
    backlog = data.get("backlog", {})
    _keys("backlog", _typed("backlog", backlog, dict, "a table"), {"sql", "ids_sql"})
    timeouts = data.get("timeouts", {})
    _keys("timeouts", _typed("timeouts", timeouts, dict, "a table"), {"delivery_s", "session_s"})
    budgets = data.get("budgets", {})
    _keys("budgets", _typed("budgets", budgets, dict, "a table"), {"redelivery_ratio"})
    lag = _typed("lag_thresholds", data.get("lag_thresholds", {}), dict, "a table of group = records")
    thresholds = []
    for group, max_lag in lag.items():
        _typed(f"lag_thresholds.{group}", max_lag, int, "a whole number of records")
        try:
            thresholds.append(LagThreshold(str(group), int(max_lag)))
        except UsageError as exc:
            raise SpecError(f"lag_thresholds.{group}: {exc}") from None
    schema = data.get("schema", {})
    _keys("schema", _typed("schema", schema, dict, "a table"), {"sql", "file"})
    schema_sql = str(schema.get("sql", ""))
    if "file" in schema:
        schema_file = folder / str(schema["file"])
        if not schema_file.is_file():
            raise SpecError(f"schema.file {schema_file} does not exist")
        schema_sql += "\n" + schema_file.read_text()
    return TargetSpec(
        name=str(_typed("name", data["name"], str, "a string")),
        domain=str(_typed("domain", data["domain"], str, "a domain pack name such as \"orders\"")),
        processes=decls,
        entrypoint=str(_typed("entrypoint", data["entrypoint"], str, "a process name")),
        publisher=str(_typed("publisher", data["publisher"], str, "a process name")),
        backlog_sql=str(_typed("backlog.sql", backlog["sql"], str, "an SQL query")) if "sql" in backlog else None,
        pending_sql=str(_typed("backlog.ids_sql", backlog["ids_sql"], str, "an SQL query")) if "ids_sql" in backlog else None,
        partitions=int(_typed("partitions", data.get("partitions", 3), int, "an integer")),
        variants=_strings("variants", data.get("variants", ["correct"])),
        timeouts=Timeouts(**{k: float(_typed(f"timeouts.{k}", v, (int, float), "seconds")) for k, v in timeouts.items()}),
        budgets=Budgets(**{k: float(_typed(f"budgets.{k}", v, (int, float), "a number")) for k, v in budgets.items()}),
        build=tuple(builds),
        schema_sql=schema_sql,
        uses_schema_registry=bool(_typed("schema_registry", data.get("schema_registry", False), bool, "true or false")),
        lag_thresholds=tuple(thresholds),
        origin=f"file {path}",
    )
