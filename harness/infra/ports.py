"""Every port of a base port's layout, and whether something else already holds one.

The layout itself lives in topology.py; this module lists it as (port, role) pairs so
that two questions have one answer each: does a base port's layout fit in 1024..65535
(``HIGHEST_OFFSET``), and is any of its ports taken before the infra starts
(``ensure_ports_free``). Without that check a taken port shows up only as a readiness
timeout 60-90 s later, with the wrong program's log. Binding 127.0.0.1 on each port
answers in milliseconds; /proc then names the holder when it can.

A port can also be taken by a client: every outgoing connection uses a port of the
kernel's ephemeral range (32768-60999 by default), and keeps it for up to a minute in
TIME_WAIT after it closes. A base port whose layout overlaps that range collides with
whatever else the machine connects to, so the message says so. A port held only by such a
closed connection is not refused: the kernel frees it within a minute, so the check waits
for it (with that deadline) instead of failing a start that would succeed a moment later.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from pathlib import Path

from harness.errors import PortInUse, WaitTimeout
from harness.infra.pids import MARK_ENV
from harness.infra.topology import POSTGRES_SLOTS, Topology
from harness.wait import wait_for

__all__ = ["HIGHEST_BASE_PORT", "HIGHEST_OFFSET", "LOWEST_BASE_PORT", "Owner", "PortUse", "busy_ports",
           "ensure_ports_free", "ephemeral_range", "layout", "port_owner", "suggest_base_port"]


@dataclass(frozen=True, slots=True)
class PortUse:
    port: int
    role: str


def layout(base_port: int) -> tuple[PortUse, ...]:
    """Every port the topology of ``base_port`` may listen on, with what it is for."""
    topo = Topology(base_port)
    uses = [
        PortUse(topo.toxiproxy_port, "Toxiproxy API"),
        PortUse(topo.postgres_port, "PostgreSQL"),
        PortUse(topo.kafka_direct_port, "Kafka DIRECT listener"),
        PortUse(topo.kafka_controller_port, "Kafka controller"),
        PortUse(topo.connect_rest_port, "Kafka Connect REST"),
        PortUse(topo.schema_registry_port, "schema registry HTTP"),
        PortUse(topo.schema_registry_management_port, "schema registry management"),
        *_link_ports(topo),
    ]
    return tuple(sorted({u.port: u for u in uses}.values(), key=lambda u: u.port))


def _link_ports(topo: Topology) -> list[PortUse]:
    """Every proxy slot and broker listener the broker is configured with, and the process ports."""
    uses = []
    for link in topo.kafka_slots():
        uses += [PortUse(link.proxy_port, f"proxy of Kafka slot {link.slot}"),
                 PortUse(link.upstream_port, f"broker listener of Kafka slot {link.slot}")]
    for slot in range(POSTGRES_SLOTS):
        uses.append(PortUse(topo.postgres_slot(slot, f"slot{slot}").proxy_port, f"proxy of Postgres slot {slot}"))
    uses += [PortUse(port, "port of a target process") for port in topo.process_ports]
    return uses


HIGHEST_OFFSET = max(u.port for u in layout(0))
LOWEST_BASE_PORT = 1024  # below it binding needs root, and system services live there
HIGHEST_BASE_PORT = 65535 - HIGHEST_OFFSET


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the services themselves do: a port whose last connection lingers in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def busy_ports(base_port: int) -> tuple[PortUse, ...]:
    """The ports of the layout that cannot be bound on 127.0.0.1 right now."""
    return tuple(u for u in layout(base_port) if not _bindable(u.port))


_TIME_WAIT = "06"  # the state column of /proc/net/tcp


def _sockets(port: int) -> list[tuple[str, str]]:
    """(state, inode) of every TCP socket whose local port is ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.append((fields[3], fields[9]))
    return found


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


@dataclass(frozen=True, slots=True)
class Owner:
    pid: int
    command: str
    ours: bool  # started by chaos-harness (carries MARK_ENV): a leftover `chaos infra down` stops

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command})"


def _shorten(command: str, limit: int = 120) -> str:
    return command if len(command) <= limit else command[:limit - 3] + "..."


def port_owner(port: int) -> Owner | None:
    """The process holding ``port``, if /proc says (another user's sockets may be hidden from us)."""
    wanted = {f"socket:[{inode}]" for _, inode in _sockets(port) if inode != "0"}
    if not wanted:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                try:
                    if fd.readlink().as_posix() in wanted:
                        return _owner(proc)
                except OSError:
                    continue
        except OSError:
            continue  # gone meanwhile, or not ours to look into
    return None


def _owner(proc: Path) -> Owner:
    try:
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        command = "?"
    try:
        ours = any(v.startswith(MARK_ENV.encode() + b"=") for v in (proc / "environ").read_bytes().split(b"\0"))
    except OSError:
        ours = False
    return Owner(int(proc.name), _shorten(command) or "?", ours)


def _overlaps_ephemeral(base_port: int) -> bool:
    low, high = ephemeral_range()
    return base_port <= high and base_port + HIGHEST_OFFSET >= low


def suggest_base_port(base_port: int) -> int:
    """A nearby base port whose whole layout is free now, outside the ephemeral range if one is."""
    candidates = [c for step in range(1, 33) for c in (base_port + 1000 * step, base_port - 1000 * step)
                  if LOWEST_BASE_PORT <= c <= HIGHEST_BASE_PORT]
    candidates.sort(key=_overlaps_ephemeral)  # stable: the nearest clear of client ports first
    for candidate in candidates:
        if not busy_ports(candidate):
            return candidate
    return 20000


TIME_WAIT_S = 65.0  # the kernel keeps a closed connection's port for 60 s (TCP_TIMEWAIT_LEN)


def _lingering(port: int) -> bool:
    """Held only by closed connections in TIME_WAIT: free within a minute, whoever they were."""
    sockets = _sockets(port)
    return bool(sockets) and all(state == _TIME_WAIT for state, _ in sockets)


def ensure_ports_free(base_port: int) -> None:
    """Raise PortInUse naming the first taken port of the layout, its role and, if /proc says, its holder.

    Ports held only by connections in TIME_WAIT are waited for (at most a minute) rather than refused.
    """
    busy = busy_ports(base_port)
    if busy and all(_lingering(u.port) for u in busy):

        def settled() -> tuple[bool, tuple[PortUse, ...]]:
            left = busy_ports(base_port)
            # Done when all are free, or one is held by something that will not go away by itself.
            return not left or not all(_lingering(u.port) for u in left), left

        try:
            busy = wait_for(settled, timeout_s=TIME_WAIT_S, interval_s=0.5,
                            what=f"ports {', '.join(str(u.port) for u in busy)} to leave TIME_WAIT")
        except WaitTimeout:
            busy = busy_ports(base_port)
    if not busy:
        return
    first = busy[0]
    owner = port_owner(first.port)
    sockets = _sockets(first.port)
    if owner is not None:
        who = f"by {owner.describe()}"
    elif sockets and all(state == _TIME_WAIT for state, _ in sockets):
        who = "by a closed connection in TIME_WAIT (the kernel frees it within a minute)"
    else:
        who = "by a process /proc does not show us"
    more = f" ({len(busy) - 1} more port(s) of the layout are taken too)" if len(busy) > 1 else ""
    if _overlaps_ephemeral(base_port):
        low, high = ephemeral_range()
        more += (f"; this layout overlaps the ephemeral ports {low}-{high} that outgoing connections use, "
                 "so any client on this machine can take its ports")
    if owner is not None and owner.ours:
        fix = (f"it was started by chaos-harness and left behind; stop it with "
               f"`CHAOS_BASE_PORT={base_port} chaos infra down`")
    elif owner is not None:
        fix = f"stop that program, or choose other ports, e.g. CHAOS_BASE_PORT={suggest_base_port(base_port)}"
    else:
        fix = f"choose other ports, e.g. CHAOS_BASE_PORT={suggest_base_port(base_port)}"
    raise PortInUse(f"port {first.port} ({first.role}; base port {base_port} + {first.port - base_port}) "
                    f"is in use {who}{more}; {fix}")
