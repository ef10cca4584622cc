"""Did each declared link carry traffic? Watched from the kernel's socket table, not from the target.

A link a target declares but its processes never connect through (they read the wrong
variable, or bypass the proxy) makes every fault on it a silent no-op. Toxiproxy keeps no
connection counts, so the harness samples ``/proc/net/tcp`` for sockets on each proxy's
listen port: an established or recently closed (TIME_WAIT) connection is proof enough.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from harness.infra.topology import Link

__all__ = ["LinkMonitor", "ports_in_use"]

_LISTEN = "0A"
_TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def sockets() -> set[tuple[str, str]]:
    """(local, remote) address pairs of every TCP socket on this machine that is not listening."""
    found: set[tuple[str, str]] = set()
    for table in _TCP_TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 4 and fields[3] != _LISTEN:
                found.add((fields[1], fields[2]))
    return found


def _ports(pair: tuple[str, str]) -> tuple[int, int]:
    return int(pair[0].rsplit(":", 1)[1], 16), int(pair[1].rsplit(":", 1)[1], 16)


def ports_in_use(baseline: set[tuple[str, str]] = frozenset()) -> set[int]:  # type: ignore[assignment]
    """Ports of every TCP socket that is not listening and was not in ``baseline``.

    A connection of an earlier target through the same proxy port lingers in TIME_WAIT for
    a minute; the baseline taken when this target starts keeps it from counting as this one's.
    """
    ports: set[int] = set()
    for pair in sockets() - baseline:
        ports.update(_ports(pair))
    return ports


class LinkMonitor:
    """Samples in the background which links' proxies have carried a connection since it was made.

    Make it before the target starts: sockets that exist at that moment are the baseline.
    """

    INTERVAL_S = 0.5

    def __init__(self, links: Sequence[Link]) -> None:
        self.links = {link.proxy_port: link.name for link in links}
        self.seen: set[str] = set()
        self.baseline = sockets()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="link-monitor", daemon=True)

    def sample(self) -> None:
        in_use = ports_in_use(self.baseline)
        self.seen.update(name for port, name in self.links.items() if port in in_use)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.INTERVAL_S)  # sampling on a period, not waiting for a condition

    def start(self) -> LinkMonitor:
        self._thread.start()
        return self

    def stop(self) -> list[str]:
        """Stop sampling; the declared links that never carried a connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.sample()
        return sorted(set(self.links.values()) - self.seen)
