"""The running infrastructure: Postgres, one KRaft broker and Toxiproxy, up and down as one.

``Infra.start`` starts the three processes, waits for each with an active probe and a
deadline, creates one Toxiproxy proxy per link, and writes a state file so that
`chaos infra status | down`, `chaos run` and the pytest plugin can find it. A failed
start stops whatever did start and raises with the failing service's log tail.

Kafka Connect (with Debezium) is the optional fourth service: ``ensure_connect`` starts it
the first time a cdc pipeline asks, records it in the state file, and later runs on the
same infra reuse it. Non-cdc runs never pay its cold start. The schema registry (Apicurio,
apicurio.py) is started on demand the same way, by ``ensure_schema_registry``, the first time a
target declares it uses one; with a registry of the user's own (``Settings.schema_registry``:
`--schema-registry URL` or CHAOS_SCHEMA_REGISTRY) none is started and that one is used instead.

Starting holds the base port's lock (lock.py) and first checks that every port of the
layout is free (ports.py), so a clash is reported in milliseconds, before any process
starts. Every handle records the processes this process starts in the base port's pid
folder (pids.py); ``stop_leftovers`` stops whatever those records still name.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import Settings
from harness.errors import InfraError, ProcessExited, UsageError, WaitTimeout
from harness.infra import apicurio, connect, kafka, postgres
from harness.infra.install import DEBEZIUM_VERSION, KAFKA_VERSION, TOXIPROXY_VERSION, Installation, locate_registry
from harness.infra.lock import hold_base_port
from harness.infra.pids import Leftovers, record_into, stop_leftovers as _stop_recorded
from harness.infra.ports import ensure_ports_free, port_owner
from harness.infra.process import ManagedProcess, ProcessSpec, pid_alive
from harness.infra.schema_registry import CompatibilityLevel, RegistryClient
from harness.infra.topology import HOST, Link, Topology
from harness.infra.toxiproxy import ToxiproxyClient
from harness.wait import wait_for

__all__ = ["Infra", "ServiceStatus", "stop_leftovers"]

_STATE = "state.json"
READY_TIMEOUT_S = 90.0
CONNECT_READY_TIMEOUT_S = 120.0  # a cold JVM scanning plugins on a busy 2-core machine
REGISTRY_READY_TIMEOUT_S = 90.0  # measured 10-12 s idle; a busy 2-core machine (Connect starting too) takes longer
REGISTRY = "schema-registry"  # its name among the infra's processes (and in `chaos infra status`)
_CORE = ("postgres", "kafka", "toxiproxy")
_ON_DEMAND = ("connect", REGISTRY)


def _wipe_state(state_dir: Path) -> None:
    """Empty the state folder of an earlier infra, except the pid records: they name its leftovers."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for entry in state_dir.iterdir():
        if entry.name == "pids":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def stop_leftovers(settings: Settings) -> Leftovers:
    """Stop every process a pid record of this base port still names (after a harness was killed -9).

    Take the base port's lock first: while a run holds it, its records name its live processes.
    """
    return _stop_recorded(settings.pids_dir)


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    pid: int | None
    alive: bool
    detail: str


class Infra:
    """A handle on running infrastructure. ``owned`` says whether this handle stops it."""

    def __init__(self, settings: Settings, processes: dict[str, ManagedProcess], logs_dir: Path, owned: bool) -> None:
        self.settings = settings
        self.topology = Topology(settings.base_port)
        self.processes = processes
        self.logs_dir = logs_dir
        self.owned = owned
        # Whatever this process starts from now on (infra, targets, restarts) works on this base port, unless
        # it holds another base port's lock: its pid records go where `chaos infra down` for it looks.
        record_into(settings.pids_dir)
        self.toxiproxy = ToxiproxyClient(self.topology.toxiproxy_url)
        self.connect_client = connect.ConnectClient(self.topology)
        self.connect_cold_start_s: float | None = None  # measured when this handle started Connect
        self.registry_cold_start_s: float | None = None  # measured when this handle started the schema registry
        # The links of the target bound last (bind_links), plus the infra's own.
        self.links: dict[str, Link] = {link.name: link for link in self.topology.infra_links()}

    # ---- lifecycle -------------------------------------------------------------------
    @classmethod
    def start(cls, settings: Settings, logs_dir: Path | None = None, *, die_with_parent: bool = True) -> Infra:
        # Held while the processes start, so that no other run or `chaos infra up` starts, or wipes, the
        # same base port meanwhile; a `chaos run` or pytest session that already holds it re-enters.
        with hold_base_port(settings):
            return cls._start(settings, logs_dir, die_with_parent=die_with_parent)

    @classmethod
    def _start(cls, settings: Settings, logs_dir: Path | None, *, die_with_parent: bool) -> Infra:
        topo = Topology(settings.base_port)
        state_dir = settings.state_dir
        if (state_dir / _STATE).exists():
            existing = cls.attach(settings)
            if existing is not None:
                raise InfraError(
                    f"an infra is already running on base port {settings.base_port}; "
                    "use it, or stop it with `chaos infra down`, or pick another CHAOS_BASE_PORT"
                )
        ensure_ports_free(settings.base_port)  # first: a taken port is found in milliseconds, not at a readiness timeout
        inst = Installation.locate(settings)
        _wipe_state(state_dir)
        logs = logs_dir or state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        procs: dict[str, ManagedProcess] = {}
        infra = cls(settings, procs, logs, owned=True)
        try:
            postgres.initdb(inst.postgres_bin, topo.postgres_port, logs / "postgres.log")
            procs["postgres"] = ManagedProcess(
                postgres.spec(inst.postgres_bin, topo.postgres_port, logs / "postgres.log", die_with_parent)
            ).start()
            kafka_home = state_dir / "kafka"
            kafka.format_storage(inst, topo, kafka_home, logs / "kafka.log")
            procs["kafka"] = ManagedProcess(kafka.spec(inst, kafka_home, logs / "kafka.log", die_with_parent)).start()
            procs["toxiproxy"] = ManagedProcess(
                ProcessSpec(
                    name="toxiproxy",
                    argv=[str(inst.toxiproxy_bin), "-host", HOST, "-port", str(topo.toxiproxy_port)],
                    log_path=logs / "toxiproxy.log",
                    die_with_parent=die_with_parent,
                )
            ).start()
            infra._write_state()
            infra._await("toxiproxy", lambda: (True, infra.toxiproxy.version()))
            infra._await("postgres", lambda: postgres.probe(topo.postgres_port))
            infra._await("kafka", lambda: kafka.probe(topo))
            infra.ensure_proxies()
        except BaseException:
            infra.stop()
            raise
        return infra

    def _await(self, name: str, probe: object, timeout_s: float = READY_TIMEOUT_S) -> None:
        proc = self.processes[name]

        def observe() -> tuple[bool, str]:
            if not proc.alive():
                raise ProcessExited(f"{name} exited with code {proc.returncode()} during start-up\n"
                                    f"--- {proc.spec.log_path} ---\n{proc.tail(30)}")
            return probe()  # type: ignore[operator]

        wait_for(observe, timeout_s=timeout_s, what=f"{name} to be ready", interval_s=0.2,
                 evidence=lambda: f"{proc.spec.log_path}:\n{proc.tail(30)}", fatal=(ProcessExited,))

    def ensure_proxies(self, links: Sequence[Link] | None = None) -> None:
        """One proxy per link: the infra's own (Connect's) plus the links of the bound target.

        A proxy on the same listen port under another name (an earlier target's link in that
        slot) is replaced: a slot serves one link at a time.
        """
        wanted = list({link.name: link for link in (*self.topology.infra_links(),
                                                     *(links if links is not None else self.links.values()))}.values())
        wanted_by_name = {link.proxy_name: link for link in wanted}
        listens = {link.proxy_address for link in wanted}
        for proxy in self.toxiproxy.proxies().values():
            want = wanted_by_name.get(proxy.name)
            right = want is not None and proxy.listen == want.proxy_address and proxy.upstream == want.upstream_address
            if not right and (want is not None or proxy.listen in listens):
                self.toxiproxy.delete(proxy.name)
        existing = self.toxiproxy.proxies()
        for link in wanted:
            if link.proxy_name not in existing:
                self.toxiproxy.create(link.proxy_name, link.proxy_address, link.upstream_address)

    def bind_links(self, names: Sequence[str]) -> dict[str, Link]:
        """Give a target's declared links their proxies (``Topology.bind``) and make them the current ones."""
        bound = self.topology.bind(names)
        self.ensure_proxies(bound)
        self.links = {link.name: link for link in (*self.topology.infra_links(), *bound)}
        return dict(self.links)

    def link(self, name: str) -> Link:
        """A link of the infra (Connect's) or of the target bound last; UsageError naming the valid ones."""
        if name in self.links:
            return self.links[name]
        valid = ", ".join(self.links) or "none bound yet"
        raise UsageError(f"unknown link {name!r}; links of this run: {valid}")

    def heal_all(self) -> None:
        """Resume every paused process, restart any dead one, enable every proxy and drop every toxic.

        Idempotent and cheap when nothing is wrong: SIGCONT to a running process is a no-op.
        """
        for proc in self.processes.values():
            proc.resume()
        for name, proc in list(self.processes.items()):
            # A child run on this infra may have restarted it already (its heal): take that one over.
            if not proc.alive() and not (self._adopt_recorded(name) and self.processes[name].alive()):
                self.restart(name)
        self.toxiproxy.reset()

    def restart(self, name: str) -> None:
        """Start ``name`` again from its spec (stopping what is left of it) and wait until it answers."""
        old = self.processes.get(name)
        if old is None:
            raise InfraError(f"no infra process {name!r}; infra processes: {', '.join(self.processes)}")
        old.stop(grace_s=15.0)
        if old.pid is not None:
            # An adopted process is reaped by whoever inherited it; until then its zombie keeps the
            # pid, and Postgres refuses to start while the pid in its lock file exists.
            pid = old.pid
            try:
                wait_for(lambda: (not Path(f"/proc/{pid}").exists(), f"pid {pid} not yet reaped"), timeout_s=5,
                         what=f"the old {name} (pid {pid}) to be reaped", interval_s=0.05)
            except WaitTimeout:
                if name == "postgres":
                    postgres.clear_stale_lock(self.topology.postgres_port, pid)
        self.processes[name] = ManagedProcess(old.spec).start()
        self._write_state()
        topo = self.topology
        probes = {
            "toxiproxy": lambda: (True, self.toxiproxy.version()),
            "postgres": lambda: postgres.probe(topo.postgres_port),
            "kafka": lambda: kafka.probe(topo),
            "connect": self._connect_probe,
            REGISTRY: self._registry_probe,
        }
        timeouts = {"connect": CONNECT_READY_TIMEOUT_S, REGISTRY: REGISTRY_READY_TIMEOUT_S}
        self._await(name, probes.get(name, lambda: (True, "alive")), timeout_s=timeouts.get(name, READY_TIMEOUT_S))
        if name == "toxiproxy":
            self.ensure_proxies()
        if name == REGISTRY:  # in-memory storage: a restarted registry is empty, and 2.x forgets the level
            RegistryClient(self.topology.schema_registry_url).set_compatibility(None, CompatibilityLevel.BACKWARD)
    # ---- Kafka Connect (optional, started on demand) -----------------------------------
    @property
    def connect_running(self) -> bool:
        proc = self.processes.get("connect")
        return proc is not None and proc.alive()

    def ensure_connect(self) -> connect.ConnectClient:
        """Kafka Connect with Debezium, started now if it is not already running; returns its REST client.

        A worker started by a handle that owns the infra dies with it; one started on an attached
        infra (``chaos infra up``) outlives this process, so later runs reuse it, and
        `chaos infra down` stops it.
        """
        if self.connect_running or (self._adopt_recorded("connect") and self.connect_running):
            return self.connect_client
        inst = Installation.locate(self.settings)
        t0 = time.monotonic()
        # A worker of infra this process owns dies with it, like the other services, from whichever
        # thread it is started (ManagedProcess forks off-main-thread starts from one long-lived
        # spawner thread, so PR_SET_PDEATHSIG does not fire when a nemesis thread ends). A worker
        # started on an attached infra must outlive this process: `chaos infra down` stops it.
        tie = self.owned
        proc = ManagedProcess(connect.spec(inst, self.topology, self.settings.state_dir / "connect",
                                           self.logs_dir / "connect.log", die_with_parent=tie)).start()
        self.processes["connect"] = proc
        self._write_state()
        try:
            self._await("connect", self._connect_probe, timeout_s=CONNECT_READY_TIMEOUT_S)
        except BaseException:
            self.stop_connect()
            raise
        self.connect_cold_start_s = time.monotonic() - t0
        return self.connect_client

    def _connect_probe(self) -> tuple[bool, str]:
        plugins = self.connect_client.plugins()
        found = any(p.endswith("PostgresConnector") for p in plugins)
        return found, f"{len(plugins)} connector plugins, Debezium Postgres {'found' if found else 'not found yet'}"

    def kill_connect(self) -> None:
        """SIGKILL the worker: a crash, offsets since the last flush are not committed."""
        proc = self.processes.get("connect")
        if proc is not None:
            proc.kill()

    def stop_connect(self) -> None:
        proc = self.processes.pop("connect", None)
        if proc is not None:
            proc.stop(grace_s=15.0)
            self._write_state()

    # ---- the schema registry (optional, started on demand) ---------------------------------
    @property
    def schema_registry_url(self) -> str:
        """The registry targets are given: the user's own when attached, else the harness's Apicurio."""
        return self.settings.schema_registry or self.topology.schema_registry_url

    def ensure_schema_registry(self) -> RegistryClient:
        """A registry that answers, started now if it is the harness's own and not running; its client.

        With the user's own registry (``Settings.schema_registry``) nothing starts: it must answer
        (InfraError, exit 3, if it does not). Like Connect, a registry started on an attached infra
        outlives this process, and `chaos infra down` stops it.
        """
        client = RegistryClient(self.schema_registry_url)
        if self.settings.schema_registry is not None:
            client.subjects()  # RegistryError (exit 3) names the URL when it does not answer
            return client
        if self.schema_registry_running or (self._adopt_recorded(REGISTRY) and self.schema_registry_running):
            return client
        reg = locate_registry(self.settings)
        t0 = time.monotonic()
        proc = ManagedProcess(apicurio.spec(reg, self.topology, self.logs_dir / f"{REGISTRY}.log",
                                            die_with_parent=self.owned)).start()
        self.processes[REGISTRY] = proc
        self._write_state()
        try:
            self._await(REGISTRY, self._registry_probe, timeout_s=REGISTRY_READY_TIMEOUT_S)
            # The start flag enforces BACKWARD, but Apicurio 2.x still answers GET /config with NONE; a client
            # asking the registry what holds must hear what is enforced.
            client.set_compatibility(None, CompatibilityLevel.BACKWARD)
        except BaseException:
            self.stop_schema_registry()
            raise
        self.registry_cold_start_s = time.monotonic() - t0
        return client

    @property
    def schema_registry_running(self) -> bool:
        proc = self.processes.get(REGISTRY)
        return proc is not None and proc.alive()

    def _registry_probe(self) -> tuple[bool, str]:
        proc = self.processes[REGISTRY]
        # 2.x has no management interface: the major version is read back from the launcher's path.
        major = 2 if any(a.endswith("-runner.jar") for a in proc.spec.argv) else 3
        return apicurio.probe(self.topology, major)

    def stop_schema_registry(self) -> None:
        proc = self.processes.pop(REGISTRY, None)
        if proc is not None:
            proc.stop(grace_s=15.0)
            self._write_state()

    def stop(self) -> None:
        """Stop every process (even half-started ones) and delete data. Safe to call twice."""
        kafka.release_admins(self.topology.kafka_direct)
        for name in (REGISTRY, "connect", "toxiproxy", "kafka", "postgres"):
            proc = self.processes.get(name)
            if proc is not None:
                proc.stop(grace_s=15.0)
        # And what a child run on this infra started that this handle never held: a test's `chaos run`
        # or an explore trial starts Connect or the registry on demand, recorded in this base port's pid
        # folder. A CI session left such a Connect running after pytest had ended.
        _stop_recorded(self.settings.pids_dir)
        shutil.rmtree(postgres.data_dir(self.topology.postgres_port), ignore_errors=True)
        shutil.rmtree(self.settings.state_dir / "kafka", ignore_errors=True)
        shutil.rmtree(self.settings.state_dir / "connect", ignore_errors=True)
        (self.settings.state_dir / _STATE).unlink(missing_ok=True)

    # ---- discovery -------------------------------------------------------------------
    def _write_state(self) -> None:
        state = {
            "base_port": self.settings.base_port,
            "started_at": time.time(),
            "owner_pid": os.getpid(),
            "logs_dir": str(self.logs_dir),
            "versions": self.versions(),
            "processes": {
                name: {"pid": p.pid, "log": str(p.spec.log_path), "argv": list(p.spec.argv),
                       # the rest of the spec, so a later attach can restart the process faithfully
                       "env": dict(p.spec.env), "cwd": str(p.spec.cwd) if p.spec.cwd else None,
                       "user": p.spec.user, "die_with_parent": p.spec.die_with_parent}
                for name, p in self.processes.items()
            },
        }
        (self.settings.state_dir / _STATE).write_text(json.dumps(state, indent=2))

    def _adopt_recorded(self, name: str) -> bool:
        """Take over ``name`` when the state file records it alive under another pid than ours.

        A child run on this infra (explore's trials, a test's `chaos run`) that killed a service
        and restarted it at heal leaves the new one running and recorded; this handle's process
        is the dead one. Starting another would fail on the taken port (Connect exit 2), and the
        restart's probe, answered by the child's, would keep the dead handle: every later kill
        of it "failed to inject"."""
        mine = self.processes.get(name)
        try:
            entry = json.loads((self.settings.state_dir / _STATE).read_text())["processes"][name]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            entry = None
        if entry is not None and pid_alive(int(entry["pid"] or 0)) and (mine is None or mine.pid != entry["pid"]):
            self.processes[name] = _adopt(name, entry)
            return True
        # Later child runs rewrite the state file with their own view, so it may no longer name the
        # worker: whoever of ours holds Connect's REST port is the one.
        if name == "connect" and mine is not None:
            owner = port_owner(self.topology.connect_rest_port)
            if owner is not None and owner.ours and owner.pid != mine.pid and pid_alive(owner.pid):
                self.processes[name] = ManagedProcess.adopt(mine.spec, owner.pid)
                return True
        return False

    @classmethod
    def attach(cls, settings: Settings, *, revive: bool = False) -> Infra | None:
        """The infra already running on this base port, if every process of it is alive.

        ``revive``: also when a core process died (a child run killed the broker and died before
        its heal); the caller's ``heal_all`` then restarts it from the recorded spec.
        """
        path = settings.state_dir / _STATE
        try:
            state = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        procs = {name: _adopt(name, entry) for name, entry in state["processes"].items()}
        if not set(_CORE) <= set(procs) or (not revive and not all(pid_alive(procs[n].pid or 0) for n in _CORE)):
            return None
        for name in _ON_DEMAND:
            if name in procs and not pid_alive(procs[name].pid or 0):
                del procs[name]  # one that died with the run that started it: start a new one when needed
        return cls(settings, procs, Path(state["logs_dir"]), owned=False)

    def status(self) -> list[ServiceStatus]:
        topo = self.topology
        probes = {
            "postgres": lambda: postgres.probe(topo.postgres_port),
            "kafka": lambda: kafka.probe(topo),
            "toxiproxy": lambda: (True, f"version {self.toxiproxy.version()}, {len(self.toxiproxy.proxies())} proxies"),
            "connect": lambda: (True, f"Kafka Connect {self.connect_client.version()}, "
                                      f"{len(self.connect_client.connectors())} connectors"),
            REGISTRY: self._registry_status,
        }
        out = []
        for name, proc in self.processes.items():
            try:
                ok, detail = probes[name]()
            except Exception as exc:  # noqa: BLE001 - a status line reports, it does not raise
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            out.append(ServiceStatus(name, proc.pid, proc.alive() and ok, detail))
        return out

    def _registry_status(self) -> tuple[bool, str]:
        ok, detail = self._registry_probe()
        if not ok:
            return ok, detail
        subjects = RegistryClient(self.topology.schema_registry_url, timeout_s=3.0).subjects()
        return True, f"{self.topology.schema_registry_url}, {len(subjects)} subjects"

    def versions(self) -> dict[str, str]:
        return {"kafka": KAFKA_VERSION, "toxiproxy": TOXIPROXY_VERSION, "postgres": "15", "debezium": DEBEZIUM_VERSION}


def _adopt(name: str, entry: Mapping[str, Any]) -> ManagedProcess:
    """A handle on a recorded process (a state file entry), to probe and stop it by pid."""
    return ManagedProcess.adopt(
        ProcessSpec(name=name, argv=entry["argv"], log_path=Path(entry["log"]), env=entry.get("env") or {},
                    cwd=Path(entry["cwd"]) if entry.get("cwd") else None, user=entry.get("user"),
                    die_with_parent=bool(entry.get("die_with_parent", False))),
        entry["pid"],
    )
