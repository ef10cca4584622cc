"""``SpecTarget``: runs any ``TargetSpec`` as real OS processes on the infra, and reads it back.

  start    build (once per spec and harness process), bind the links to proxies, create the
           run's database (the domain's tables + the spec's own) and topics, start every
           process replica with the ``CHAOS_*`` environment, wait until each is ready and
           every consumer group owns every partition
  restart  a process faulted by kill, clean restart or crash comes back from its declaration;
           it counts as recovered only when its readiness held for ``recovery_grace_s``
  scale    ``add_replicas`` starts more instances of a declared process beside the running
           ones (same command, environment and consumer group; named ``NAME#k``), and
           ``remove_replica`` stops it again (a ``scale`` fault's inject and heal)
  drain    publish backlog (the spec's backlog SQL, or a subclass's) + consumer lag of every group
  observe  the domain pack's sink reads + every record of the event and dead-letter topics

Each run gets its own database and topics (named after the target and the run), so runs
never see each other's data even on one long-lived infra. A subclass may extend the
hooks (``prepare``, ``started``, ``stopping``, ``after_connect_restart``,
``publish_backlog``, ``event_topic``): the reference cdc pipelines do, for their connector.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from confluent_kafka.admin import NewTopic

from harness.errors import SpecError, TargetError, UsageError, WaitTimeout
from harness.history.ops import Scalar
from harness.history.store import Recorder
from harness.infra import kafka, postgres
from harness.infra.group_admin import group_admin
from harness.infra.process import ManagedProcess, ProcessSpec
from harness.infra.stack import Infra
from harness.infra.topology import HOST
from harness.target.domain import Domain, DomainDecl
from harness.target.oracle import Oracle
from harness.target.protocol import Drain, RunContext
from harness.target.readiness import probe
from harness.target.spec import Build, ProcessDecl, TargetSpec, link_env_name
from harness.wait import wait_for
from harness.workload.base import Workload
from harness.workload.rate import RateShape

__all__ = ["SpecTarget", "domain_rows", "run_builds"]

_built: set[tuple[tuple[str, ...], str]] = set()
_build_lock = threading.Lock()


def run_builds(builds: Sequence[Build], log_path: Path) -> None:
    """Run each build command once per harness process; SpecError with its output when one fails."""
    for build in builds:
        key = (build.command, str(build.cwd))
        with _build_lock:
            if key in _built:
                continue
            if shutil.which(build.command[0], path=None) is None and not (build.cwd and (build.cwd / build.command[0]).exists()):
                raise SpecError(f"build.command: {build.command[0]!r} was not found on PATH; install it or fix the command")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as log:
                try:
                    done = subprocess.run(list(build.command), cwd=build.cwd, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                          timeout=build.timeout_s, check=False, stdin=subprocess.DEVNULL)
                except subprocess.TimeoutExpired:
                    raise SpecError(f"build {' '.join(build.command)} took longer than {build.timeout_s:.0f}s; "
                                    f"see {log_path}") from None
            if done.returncode != 0:
                from harness.infra.process import log_tail

                raise SpecError(f"build {' '.join(build.command)} exited {done.returncode} in {build.cwd}; "
                                f"fix the build or the spec's build.command\n{log_tail(log_path, 20)}")
            _built.add(key)


def domain_rows(decl: DomainDecl) -> tuple[list[Mapping[str, Scalar]], list[Mapping[str, Scalar]]]:
    """The domain's declaration as observation rows: ``domain`` (consumers) and ``requires``."""
    consumers: list[Mapping[str, Scalar]] = [
        {"domain": decl.name, "consumer": c.name, "subscribes": ",".join(sorted(c.subscribes)), "effect": c.effect}
        for c in decl.consumers]
    requires: list[Mapping[str, Scalar]] = [
        {"step": r.step, "consumer": r.consumer, "kind": r.kind} for r in decl.requirements]
    return consumers, requires


class _Replica:
    """One running replica of a declared process: its name, its ports and how it was started."""

    def __init__(self, decl: ProcessDecl, name: str, index: int, ports: Mapping[str, int]) -> None:
        self.decl = decl
        self.name = name
        self.index = index
        self.ports = dict(ports)
        self.proc: ManagedProcess | None = None
        self.log_from = 0

    @property
    def port(self) -> int | None:
        return next(iter(self.ports.values()), None)


class SpecTarget:
    """A ``TargetSpec`` running on the infra (see the module docstring)."""

    def __init__(self, spec: TargetSpec, infra: Infra, ctx: RunContext, domain: Domain) -> None:
        if ctx.variant not in spec.variants:
            raise UsageError(f"target {spec.name} has no variant {ctx.variant!r}; its variants: {', '.join(spec.variants)}")
        self.spec = spec
        self.name = spec.name
        self.infra = infra
        self.ctx = ctx
        self.domain_pack = domain
        self.topo = infra.topology
        suffix = ctx.run_id.replace("-", "_")
        self.database = f"chaos_{self.name}_{suffix}"
        self._topic = self.event_topic()
        # A reorder fault needs an interposer between publishers and the topic: processes that
        # declare ``publishes`` write to it and the harness forwards, swapped.
        self.publish_topic = f"{self._topic}.interposer" if ctx.interposed else self._topic
        self.dlq_topics = {c: f"dlq.{c}.{self.name}.{ctx.run_id}" for c in spec.consumers()}
        self.groups = {c: f"{c}.{self.name}.{ctx.run_id}" for c in spec.consumers()}
        self.oracle = Oracle(self.topo.kafka_direct, ctx.run_id, domain)
        self.schema_registry_url: str | None = None  # set at start when the spec uses a registry
        ports = iter(self.topo.process_ports)
        self._replicas: dict[str, _Replica] = {}
        self._replicas_lock = threading.Lock()
        for decl in spec.processes:
            for i, name in enumerate(decl.replica_names()):
                self._replicas[name] = _Replica(decl, name, i, {p: next(ports) for p in decl.ports})

    # ---- shape -----------------------------------------------------------------------
    def event_topic(self) -> str:
        return f"{self.domain_pack.decl.name}.{self.name}.{self.ctx.run_id}"

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def group(self) -> str:
        # The first consumer's group, in declaration order: what a duplicate fault calls delivered.
        return next(iter(self.groups.values()), f"oracle.{self.ctx.run_id}")

    @property
    def domain(self) -> DomainDecl:
        return self.domain_pack.decl

    def workload(self, recorder: Recorder, shape: RateShape, duration_s: float, seed: int) -> Workload:
        return self.domain_pack.workload(self.base_url, recorder, shape, duration_s, seed)

    @property
    def crashpoints_dir(self) -> Path:
        return self.ctx.logs_dir / f"{self.name}.crashpoints"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self._replicas[self.spec.entrypoint].ports['http']}"

    def links(self) -> Sequence[str]:
        return self.spec.links()

    def resolve_process(self, name: str) -> str:
        return self.spec.publisher if name == "publisher" else name

    def resolve_link(self, link: str) -> str:
        client, sep, service = link.partition("->")
        resolved = f"{self.resolve_process(client)}{sep}{service}"
        if resolved not in self.links():
            raise UsageError(f"target {self.name} has no link {link!r}; its links: {', '.join(self.links())}")
        return resolved

    def processes(self) -> Mapping[str, ManagedProcess]:
        # A snapshot: a scale fault adds and removes replicas from its own thread.
        procs = {name: r.proc for name, r in tuple(self._replicas.items()) if r.proc is not None}
        if self.spec.uses_connect and "connect" in self.infra.processes:
            procs["connect"] = self.infra.processes["connect"]
        return procs

    # ---- lifecycle ---------------------------------------------------------------------
    def _env(self, replica: _Replica) -> dict[str, str]:
        decl = replica.decl
        env = {
            "CHAOS_RUN_ID": self.ctx.run_id,  # marks every process of this run (leak checks look for it)
            "CHAOS_TARGET": self.name,
            "CHAOS_PIPELINE": self.name,
            "CHAOS_VARIANT": self.ctx.variant,
            "CHAOS_PROCESS": replica.name,  # crash points are armed per process (replica)
            "CHAOS_REPLICA": str(replica.index),
            "CHAOS_DATABASE": self.database,
            "CHAOS_TOPIC": self.publish_topic if decl.publishes else self.topic,
            "CHAOS_CRASHPOINTS_DIR": str(self.crashpoints_dir),
            "PYTHONUNBUFFERED": "1",
        }
        if self.schema_registry_url is not None:
            # Confluent's API base URL (SchemaRegistryClient's "url"); subjects follow TopicNameStrategy, <topic>-value.
            env["CHAOS_SCHEMA_REGISTRY_URL"] = self.schema_registry_url
        for service in decl.links:
            link = self.infra.link(f"{decl.name}->{service}")
            env[link_env_name(link.name)] = link.proxy_address
            if service == "postgres":
                env["CHAOS_PG_DSN"] = f"host={HOST} port={link.proxy_port} dbname={self.database} user=postgres"
            else:
                env["CHAOS_KAFKA"] = link.proxy_address
        if decl.consumer:
            env.update(CHAOS_CONSUMER=decl.consumer, CHAOS_GROUP=self.groups[decl.consumer],
                       CHAOS_DLQ_TOPIC=self.dlq_topics[decl.consumer])
        for port_name, port in replica.ports.items():
            env[f"CHAOS_PORT_{port_name.upper()}"] = str(port)
            if port_name == "http":
                env["CHAOS_HTTP_PORT"] = str(port)
        cwd = str(decl.cwd) if decl.cwd else ""
        env.update({k: v.replace("{cwd}", cwd).replace("{python}", sys.executable) for k, v in decl.env.items()})
        return env

    def _argv(self, decl: ProcessDecl) -> list[str]:
        argv = [a.replace("{python}", sys.executable) for a in decl.command]
        exe = argv[0]
        found = shutil.which(exe) if "/" not in exe else exe
        if "/" in exe and decl.cwd is not None and not Path(exe).is_absolute():
            found = str(decl.cwd / exe) if (decl.cwd / exe).exists() else None
        elif "/" in exe and not Path(exe).exists():
            found = None
        if found is None:
            raise SpecError(f"processes.{decl.name}.command: {exe!r} was not found "
                            f"({'in ' + str(decl.cwd) if decl.cwd else 'on PATH'}); build it first or fix the command")
        return argv

    def _spawn(self, replica: _Replica) -> ManagedProcess:
        decl = replica.decl
        log_path = self.ctx.logs_dir / f"{self.name}.{replica.name}.log"
        spec = ProcessSpec(name=replica.name, argv=self._argv(decl), env=self._env(replica), log_path=log_path,
                           cwd=decl.cwd, die_with_parent=True)
        proc = ManagedProcess(spec)
        replica.log_from = proc.log_size()
        replica.proc = proc.start()
        return proc

    def start(self) -> None:
        try:
            run_builds(self.spec.build, self.ctx.logs_dir / f"{self.name}.build.log")
            self.infra.bind_links(self.links())
            self._create_database()
            self._create_topics()
            self.attach_schema_registry()
            self.prepare()
            for replica in self._replicas.values():
                self._spawn(replica)
            self.started()
            self._await_ready(list(self._replicas.values()))
        except BaseException:
            self.stop()
            raise

    def restart(self, name: str) -> None:
        """Start ``name`` again and wait until it has recovered (ready, and still ready after the grace)."""
        name = self.resolve_process(name)
        if name == "connect" and self.spec.uses_connect:
            self.infra.restart("connect")
            self.after_connect_restart()
            return
        replica = self._replicas.get(name)
        if replica is None:
            raise UsageError(f"target {self.name} has no process {name!r}; its processes: "
                             f"{', '.join(self.spec.process_names())}")
        if replica.proc is not None:
            replica.proc.stop(grace_s=replica.decl.stop.grace_s, sig=_signal(replica.decl.stop.signal))
        # ManagedProcess forks restarts from one long-lived thread, so PDEATHSIG stays tied to the harness.
        self._spawn(replica)
        self._await_ready([replica])
        self._hold_ready(replica)

    def add_replicas(self, name: str, count: int) -> tuple[str, ...]:
        """Start ``count`` more instances of process ``name`` together and wait until each is ready and, for
        a consumer, until its own group has assigned every partition again; returns the new replicas' names.

        Only this process's group is awaited: another fault may hold another group empty meanwhile."""
        name = self.resolve_process(name)
        base = self._replicas.get(name)
        if base is None or name != base.decl.name:
            raise UsageError(f"target {self.name} has no process {name!r} to scale; its processes: "
                             f"{', '.join(self.spec.process_names())}")
        decl = base.decl
        if decl.ports:
            raise UsageError(f"{name} listens on ports ({', '.join(decl.ports)}), so a second instance would "
                             "share them; scale a process without ports")
        added: list[_Replica] = []
        with self._replicas_lock:
            taken = {r.index for r in self._replicas.values() if r.decl is decl}
            for index in (i for i in range(1, len(taken) + count + 1) if i not in taken):
                if len(added) == count:
                    break
                replica = _Replica(decl, f"{decl.name}#{index}", index, {})
                self._replicas[replica.name] = replica
                added.append(replica)
        try:
            for replica in added:
                self._spawn(replica)
            self._await_ready(added, groups=(decl.consumer,) if decl.consumer else ())
        except BaseException:
            for replica in added:  # a failed start cleans up before it re-raises: the caller never had them
                self.remove_replica(replica.name, kill=True)
            raise
        return tuple(r.name for r in added)

    def remove_replica(self, name: str, kill: bool = False) -> None:
        """Stop a replica ``add_replicas`` started (SIGKILL with ``kill``, else its clean stop) and forget it."""
        replica = self._replicas.get(name)
        if replica is None:
            return  # never started, or removed already: a heal runs after a failed inject too
        try:
            if replica.proc is not None:
                if kill:
                    replica.proc.kill()
                else:
                    replica.proc.stop(grace_s=replica.decl.stop.grace_s, sig=_signal(replica.decl.stop.signal))
        finally:
            with self._replicas_lock:
                self._replicas.pop(name, None)

    def stop_process(self, name: str) -> None:
        """A clean stop as the spec declares it (a ``restart`` fault's inject; shutdown hooks run)."""
        name = self.resolve_process(name)
        if name == "connect" and self.spec.uses_connect:
            self.infra.processes["connect"].stop(grace_s=15.0)
            return
        replica = self._replicas.get(name)
        if replica is None or replica.proc is None:
            raise UsageError(f"target {self.name} has no running process {name!r}")
        replica.proc.stop(grace_s=replica.decl.stop.grace_s, sig=_signal(replica.decl.stop.signal))

    def _hold_ready(self, replica: _Replica) -> None:
        """Honest recovery: alive and ready for the whole grace period, not at one instant."""
        grace = replica.decl.recovery_grace_s
        if grace <= 0:
            return
        proc = replica.proc
        assert proc is not None
        stop = threading.Event()
        deadline_wait = stop.wait  # a bounded observation window, polled: not a guess at how long something takes
        elapsed = 0.0
        while elapsed < grace:
            if not proc.alive():
                raise TargetError(f"{replica.name} did not recover: it exited with {proc.returncode()} "
                                  f"{elapsed:.1f}s after it was ready\n{proc.tail(20)}")
            ok, seen = probe(replica.decl.ready, proc, port=replica.port, log_from=replica.log_from, cwd=replica.decl.cwd)
            if not ok:
                raise TargetError(f"{replica.name} did not recover: ready, then not ({seen}) within {grace:.1f}s\n"
                                  f"{proc.tail(20)}")
            deadline_wait(0.25)
            elapsed += 0.25

    def stop(self) -> None:
        try:
            self.oracle.close()
            self.stopping()
        finally:
            for replica in reversed(tuple(self._replicas.values())):  # a snapshot: scale adds and removes
                if replica.proc is not None:
                    replica.proc.stop(grace_s=replica.decl.stop.grace_s, sig=_signal(replica.decl.stop.signal))

    def attach_schema_registry(self) -> None:
        """A registry for a spec that uses one: started (or the user's checked) before any process starts,
        since each is handed its URL and may call it at once. A spec that does not declare one costs nothing."""
        if self.spec.uses_schema_registry:
            self.schema_registry_url = self.infra.ensure_schema_registry().base_url

    # ---- hooks for subclasses -----------------------------------------------------------
    def prepare(self) -> None:
        """After the database and topics exist, before any process starts."""

    def started(self) -> None:
        """After every process started, before readiness (a connector is registered here)."""
        if self.spec.uses_connect:
            self.infra.ensure_connect()

    def stopping(self) -> None:
        """Before the processes stop (a connector and its slot are removed here)."""

    def after_connect_restart(self) -> None:
        """After Kafka Connect restarted (a connector must be RUNNING again)."""

    # ---- setup ---------------------------------------------------------------------------
    def _create_database(self) -> None:
        with postgres.connect_direct(self.topo.postgres_port) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        with postgres.connect_direct(self.topo.postgres_port, self.database) as conn:
            conn.execute(self.domain_pack.schema_sql + "\n" + self.spec.schema_sql)

    def _create_topics(self) -> None:
        admin = kafka.admin(self.topo.kafka_direct)
        topics = [NewTopic(self.topic, self.spec.partitions, 1)] + [NewTopic(t, 1, 1) for t in self.dlq_topics.values()]
        if self.publish_topic != self.topic:
            topics.append(NewTopic(self.publish_topic, self.spec.partitions, 1))
        futures = admin.create_topics(topics, operation_timeout=10, request_timeout=15)
        for name, fut in futures.items():
            try:
                fut.result(timeout=20)
            except Exception as exc:  # noqa: BLE001 - re-raised with what to do
                if "already exists" in str(exc).lower():
                    continue  # a topic the connector or a process created first
                raise TargetError(f"could not create topic {name}: {exc}; is Kafka healthy? `chaos infra status`") from exc

    def _await_ready(self, replicas: Sequence[_Replica], groups: Sequence[str] | None = None) -> None:
        """Until each of ``replicas`` is ready and every consumer group (or only those of ``groups``,
        by consumer name) has every partition assigned."""
        groups_admin = group_admin(self.topo.kafka_direct)  # a child process: see harness.infra.group_admin
        awaited = {c: g for c, g in self.groups.items() if groups is None or c in groups}
        pending = {r.name: r for r in replicas}
        started = time.monotonic()

        def observe() -> tuple[bool, str]:
            seen = []
            for replica in list(pending.values()):
                proc = replica.proc
                assert proc is not None
                if not proc.alive():
                    raise TargetError(f"{replica.name} exited with {proc.returncode()} during start:\n{proc.tail(20)}")
                ok, what = probe(replica.decl.ready, proc, port=replica.port, log_from=replica.log_from,
                                 cwd=replica.decl.cwd)
                if ok:
                    pending.pop(replica.name)
                elif time.monotonic() - started > replica.decl.ready.timeout_s:
                    # Each process keeps its own deadline: a quick one is not held to the slowest one's.
                    raise TargetError(f"{replica.name} was not ready within its {replica.decl.ready.timeout_s:g}s "
                                      f"({what}); fix the process or its ready check in the target spec\n"
                                      f"--- {proc.spec.log_path} ---\n{proc.tail(20)}")
                else:
                    seen.append(f"{replica.name}: {what}")
            assigned = {}
            if awaited:
                described = groups_admin.describe(list(awaited.values()), timeout_s=3)
                assigned = {consumer: described[group].partitions for consumer, group in awaited.items()}
            groups_ready = all(n == self.spec.partitions for n in assigned.values())
            return not pending and groups_ready, "; ".join(seen) + f" partitions assigned per consumer={assigned}"

        timeout = max((r.decl.ready.timeout_s for r in replicas), default=60.0)
        try:
            wait_for(observe, timeout_s=timeout, what=f"target {self.name} to be ready", interval_s=0.2,
                     fatal=(TargetError,),
                     evidence=lambda: "\n".join(f"--- {r.name} ({r.proc.spec.log_path}) ---\n{r.proc.tail(10)}"
                                                for r in replicas if r.proc is not None))
        except WaitTimeout as exc:
            raise TargetError(f"{exc}\nfix the process or its ready check in the target spec") from exc

    # ---- oracle reads ----------------------------------------------------------------
    def _sql(self, query: str) -> list[tuple[object, ...]]:
        with postgres.connect_direct(self.topo.postgres_port, self.database) as conn:
            return conn.execute(query).fetchall()

    def publish_backlog(self) -> int:
        """Events committed at the source and not on the topic: the spec's backlog SQL (0 without one)."""
        if self.spec.backlog_sql is None:
            return 0
        return int(self._sql(self.spec.backlog_sql)[0][0])  # type: ignore[call-overload]

    def drain_state(self) -> Drain:
        backlog = self.publish_backlog()
        ends, by_group = self.oracle.ends_and_lag(self.topic, list(self.groups.values()))
        groups = tuple((consumer, tuple(by_group[group].items())) for consumer, group in self.groups.items())
        return Drain(publish_backlog=backlog, consumer_lag=sum(sum(p.values()) for p in by_group.values()),
                     groups=groups, published=sum(ends.values()))

    def observe(self) -> Mapping[str, list[Mapping[str, Scalar]]]:
        sources = dict(self.domain_pack.observe(self._sql))
        declared, requires = domain_rows(self.domain)
        running = set(self.groups)
        if self.spec.pending_sql is not None:
            sources["pending"] = [{"order_id": str(r[0])} for r in self._sql(self.spec.pending_sql)]
        sources.update(
            topic=self.oracle.read_topic(self.topic),
            dlq=[{**r, "consumer": c, "dlq_topic": t} for c, t in self.dlq_topics.items()
                 for r in self.oracle.read_topic(t, dead_letters=True)],
            consumers=[{"consumer": c} for c in self.groups],
            budgets=[{"redelivery_ratio": self.spec.budgets.redelivery_ratio}]
            if self.spec.budgets.redelivery_ratio is not None else [],
            domain=[r for r in declared if r["consumer"] in running],
            requires=[r for r in requires if r["consumer"] in running],
            processes=[{"process": name, "alive": proc.alive(), "returncode": proc.returncode(),
                        "log_tail": None if proc.alive() else proc.tail(10)}
                       for name, proc in self.processes().items()],
        )
        return sources


def _signal(name: str) -> signal.Signals:
    return signal.Signals[f"SIG{name}"]
