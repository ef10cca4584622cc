"""The interposer: a visible hop between the publisher and the event topic, owned by the harness.

Reordering whole messages needs someone who holds a message back, and Kafka offers no
such place, so a run with a reorder fault changes the topology on purpose:

    publisher --> <topic>.interposer --[interposer, DIRECT listener]--> <topic> --> consumers

The publisher (order service or relay) writes to ``<topic>.interposer``; this forwarder
copies each record to the same partition of ``<topic>`` with its key, value and headers.
It is harness code on the DIRECT listener, never under network chaos, and it is only
there when the scenario has a reorder fault (``RunContext.interposed``), so every other
run keeps the plain topology.

While a reorder fault is active, the interposer holds the first event of up to N
entities that start while it is active and releases each right *after* that entity's
following event: the pair arrives at the consumers swapped (``order.paid`` before
``order.created``). Heal releases anything still held, in its original order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from harness.errors import ChaosError
from harness.infra import kafka
from harness.wait import wait_for

__all__ = ["Interposer", "InterposerState", "ReorderFault", "interposer_topic"]

FETCH_WAIT_MS = 20  # how long the broker may park the interposer's empty fetch (librdkafka's default: 500)


def interposer_topic(topic: str) -> str:
    return f"{topic}.interposer"


@dataclass(frozen=True, slots=True)
class InterposerState:
    """One sample of the interposer: what it still owes the event topic, and what it did so far."""

    unread: int  # on the interposer topic, not yet consumed
    held: int  # consumed and held back by an active reorder fault
    unacked: int  # produced to the event topic, delivery not yet acknowledged
    forwarded: int
    swapped: int

    @property
    def lag(self) -> int:
        return self.unread + self.held + self.unacked

    def describe(self) -> str:
        return (f"interposer lag {self.lag} (unread {self.unread}, held {self.held}, unacked {self.unacked}); "
                f"forwarded {self.forwarded}, swapped {self.swapped}")


class Interposer:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.source = interposer_topic(topic)
        self.sink = topic
        self._lock = threading.Lock()
        self._swap_budget = 0
        self._held: dict[bytes | None, Message] = {}
        self._seen: set[bytes | None] = set()  # keys with an event already consumed: entities under way
        self.swapped = 0
        self.forwarded = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="interposer", daemon=True)
        self._positions: dict[int, int] = {}
        self.held_keys: set[str] = set()  # every entity whose event was ever held back (swapped)

    # ---- control (the Reorder fault) ---------------------------------------------------
    def swap(self, entities: int) -> None:
        with self._lock:
            self._swap_budget = entities

    def release(self) -> None:
        with self._lock:
            self._swap_budget = 0
            held = list(self._held.values())
            self._held.clear()
        for msg in sorted(held, key=lambda m: (m.partition(), m.offset())):
            self._forward(msg)
        self._producer.flush(10.0)

    # ---- the forwarding loop ---------------------------------------------------------
    def start(self) -> None:
        self._producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "linger.ms": 2,
                                   "logger": kafka.quiet_logger()})
        # The fetching consumer only fetches. An idle fetch is parked by the broker for up to
        # fetch.wait.max.ms, and a broker answers one connection's requests in order, so an
        # end-offset query sent on this client's connection queued behind the fetches (seen:
        # 8-52 s for one catch-up sample). A short fetch wait also bounds the hop's own latency.
        self._consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"chaos-interposer-{self.sink}",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": FETCH_WAIT_MS,
                                   "logger": kafka.quiet_logger()})
        # End offsets come from a client of their own that never fetches: one round trip each.
        self._ends_client = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"chaos-interposer-ends-{self.sink}",
                                      "enable.auto.commit": False, "socket.timeout.ms": 5000,
                                      "logger": kafka.quiet_logger()})
        meta = self._ends_client.list_topics(self.source, timeout=10).topics[self.source]
        if meta.error is not None:
            raise ChaosError(f"interposer topic {self.source} is missing: {meta.error}")
        self._partitions = tuple(sorted(meta.partitions))
        self._consumer.assign([TopicPartition(self.source, p, 0) for p in self._partitions])
        self._thread.start()

    def _forward(self, msg: Message) -> None:
        self._producer.produce(self.sink, key=msg.key(), value=msg.value(), headers=msg.headers() or [],
                               partition=msg.partition())
        self.forwarded += 1

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for msg in self._consumer.consume(200, timeout=0.1):
                    if msg.error():
                        continue
                    with self._lock:
                        first = self._held.pop(msg.key(), None)
                        # Only an entity's first event is held: holding one from the middle of its
                        # life (a paid behind its shipped) changed what the swap broke from run to
                        # run (sometimes a dead-lettered shipment, sometimes not) for the same seed.
                        hold = first is None and self._swap_budget > 0 and msg.key() not in self._seen
                        self._seen.add(msg.key())
                        if hold:
                            self._swap_budget -= 1
                            self._held[msg.key()] = msg
                            self.held_keys.add((msg.key() or b"").decode("utf-8", "replace"))
                    if not hold:
                        self._forward(msg)
                        if first is not None:
                            self._forward(first)  # the held event goes out after its successor: swapped
                            self.swapped += 1
                    self._positions[msg.partition()] = msg.offset() + 1
                self._producer.poll(0)
        except Exception as exc:  # noqa: BLE001 - kept and reported by caught_up(); the run turns unknown
            self.error = f"{type(exc).__name__}: {exc}"

    def state(self) -> InterposerState:
        """What is still on its way: records on the interposer topic not yet forwarded, held ones, unacked ones."""
        ends = {p: self._ends_client.get_watermark_offsets(TopicPartition(self.source, p), timeout=5)[1]
                for p in self._partitions}
        with self._lock:
            held = len(self._held)
        unread = sum(max(0, end - self._positions.get(p, 0)) for p, end in ends.items())
        return InterposerState(unread=unread, held=held, unacked=len(self._producer), forwarded=self.forwarded,
                               swapped=self.swapped)

    def lag(self) -> int:
        """Records on the interposer topic not yet forwarded (held ones count as not forwarded)."""
        return self.state().lag

    def caught_up(self, timeout_s: float, report: Callable[[InterposerState], None] = lambda s: None) -> InterposerState:
        """Wait until everything published so far was forwarded (called before drain).

        ``report`` sees every sample (the runner records it in the history and shows it as
        progress), so the time this wait takes is visible where it is spent.
        """
        def observe() -> tuple[bool, InterposerState]:
            if self.error:
                raise ChaosError(f"the interposer failed: {self.error}")
            self._producer.flush(1.0)
            state = self.state()
            report(state)
            return state.lag == 0, state

        return wait_for(observe, timeout_s=timeout_s, what="the interposer to forward everything", interval_s=0.05,
                        fatal=(ChaosError,))

    def stop(self) -> None:
        self._stop.set()
        if not hasattr(self, "_consumer"):
            return  # start() failed before the clients existed
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.release()
        self._consumer.close()
        self._ends_client.close()


@dataclass(slots=True)
class ReorderFault:
    """Swap the next two events of up to ``entities`` entities, through the interposer."""

    interposer: Interposer
    entities: int
    name: str = "reorder"
    target: str = "events"
    _before: int = field(default=0)

    def inject(self) -> None:
        self._before = self.interposer.swapped
        self.interposer.swap(self.entities)

    def effect(self) -> int:
        return self.interposer.swapped - self._before

    def touched(self) -> frozenset[str]:
        return frozenset(self.interposer.held_keys)

    def heal(self) -> None:
        self.interposer.release()
