"""The interposer: a visible hop between the publisher and the event topic, owned by the harness.

Reordering whole messages needs someone who holds a message back, and Kafka offers no
such place, so a run with a reorder fault changes the topology on purpose:

    publisher --> <topic>.interposer --[interposer, DIRECT listener]--> <topic> --> consumers

The publisher (order service or relay) writes to ``<topic>.interposer``; this forwarder
copies each record to the same partition of ``<topic>`` with its key, value and headers.
It is harness code on the DIRECT listener, never under network chaos, and it is only
there when the scenario has a reorder fault (``RunContext.interposed``), so every other
run keeps the plain topology.

While a reorder fault is active, the interposer holds the ``position``-th event (1-based,
counted per entity from the start of the run) of up to N entities that reach it while the
fault is active, and releases each right *after* the ``distance``-th event of that entity
that follows it: with the defaults (1, 1) the pair arrives at the consumers swapped
(``order.paid`` before ``order.created``); with position 2, ``order.shipped`` before
``order.paid``. Heal releases anything still held, in its original order (behind any of
the entity's events that already overtook it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from harness.errors import ChaosError
from harness.infra import kafka
from harness.wait import wait_for

__all__ = ["Holds", "Interposer", "InterposerState", "ReorderFault", "interposer_topic"]

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


T = TypeVar("T")


@dataclass(slots=True)
class _Held(Generic[T]):
    item: T
    arm: int  # the arm (one reorder fault) that holds it
    left: int  # the entity's later events still to overtake it
    overtaken: int = 0


@dataclass(slots=True)
class _Arm:
    budget: int  # entities it may still hold
    position: int
    distance: int
    keys: set[Hashable] = field(default_factory=set)  # every entity it held back
    swapped: int = 0


class Holds(Generic[T]):
    """Which record to hold back and when to let it go: the interposer's decisions, without Kafka.

    Each reorder fault arms it on its own (``arm`` returns its token), so overlapping faults keep
    their own parameters, budget, swaps and touched entities, and one's heal releases only its own.
    Not thread-safe: the interposer calls it under its own lock.
    """

    def __init__(self) -> None:
        self._arms: dict[int, _Arm] = {}
        self._tokens = 0
        self._counts: dict[Hashable, int] = {}  # entity -> events of it seen since the run started
        self._held: dict[Hashable, _Held[T]] = {}

    def arm(self, entities: int, position: int, distance: int) -> int:
        self._tokens += 1
        self._arms[self._tokens] = _Arm(entities, position, distance)
        return self._tokens

    def route(self, key: Hashable, item: T) -> tuple[list[T], int]:
        """The records to forward now (in order) for one consumed record, and how many swaps that completed."""
        n = self._counts[key] = self._counts.get(key, 0) + 1
        held = self._held.get(key)
        if held is not None:
            held.left -= 1
            held.overtaken += 1
            if held.left > 0:
                return [item], 0
            del self._held[key]
            if held.arm in self._arms:
                self._arms[held.arm].swapped += 1
            return [item, held.item], 1  # the held record goes out after its successors: swapped
        for token, arm in self._arms.items():  # the earliest armed fault that wants this event holds it
            if arm.budget > 0 and n == arm.position:
                arm.budget -= 1
                arm.keys.add(key)
                self._held[key] = _Held(item, token, arm.distance)
                return [], 0
        return [item], 0

    def disarm(self, token: int | None = None) -> tuple[list[T], int]:
        """Stop holding for one arm (all with None): what it still holds (in hold order), and how many of
        those were overtaken at all (out of order, so counted as swapped)."""
        tokens = set(self._arms) if token is None else {token}
        for t in tokens:
            arm = self._arms.get(t)
            if arm is not None:
                arm.budget = 0
        held = [(k, h) for k, h in self._held.items() if h.arm in tokens]
        for k, _ in held:
            del self._held[k]
        overtaken = sum(1 for _, h in held if h.overtaken)
        for _, h in held:
            if h.overtaken and h.arm in self._arms:
                self._arms[h.arm].swapped += 1
        return [h.item for _, h in held], overtaken

    def swapped(self, token: int) -> int:
        return self._arms[token].swapped if token in self._arms else 0

    def keys(self, token: int | None = None) -> set[Hashable]:
        """The entities one arm (every arm with None) held back."""
        arms = self._arms.values() if token is None else [self._arms[token]] if token in self._arms else []
        return {k for arm in arms for k in arm.keys}

    @property
    def held_keys(self) -> set[Hashable]:
        return self.keys()

    def __len__(self) -> int:
        return len(self._held)


class Interposer:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.source = interposer_topic(topic)
        self.sink = topic
        self._lock = threading.Lock()
        self._holds: Holds[Message] = Holds()
        self.swapped = 0
        self.forwarded = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="interposer", daemon=True)
        self._positions: dict[int, int] = {}

    def held_keys(self, token: int | None = None) -> set[str]:
        """The entities one reorder fault (every one with None) held back: what attribution holds it to."""
        with self._lock:
            return {k.decode("utf-8", "replace") if isinstance(k, bytes) else "" for k in self._holds.keys(token)}

    def swapped_by(self, token: int) -> int:
        with self._lock:
            return self._holds.swapped(token)

    # ---- control (the Reorder fault) ---------------------------------------------------
    def swap(self, entities: int, position: int = 1, distance: int = 1) -> int:
        """Arm a hold; returns its token for ``release``, ``held_keys`` and ``swapped_by``."""
        with self._lock:
            return self._holds.arm(entities, position, distance)

    def release(self, token: int | None = None) -> None:
        """Release what one arm (every arm with None) still holds, in original order, and stop it holding."""
        with self._lock:
            held, overtaken = self._holds.disarm(token)
            self.swapped += overtaken  # held behind some, not all, of its successors: still out of order
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
                               partition=kafka.coordinates(msg)[0])
        self.forwarded += 1

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for msg in self._consumer.consume(200, timeout=0.1):
                    if msg.error():
                        continue
                    with self._lock:
                        # By default an entity's first event is held (position 1): holding one from the
                        # middle of its life (a paid behind its shipped) changes what the swap breaks from
                        # run to run (sometimes a dead-lettered shipment, sometimes not), so that is a
                        # parameter a scenario asks for, not what it gets.
                        out, swapped = self._holds.route(msg.key(), msg)
                        self.swapped += swapped
                    for forward in out:
                        self._forward(forward)
                    partition, offset = kafka.coordinates(msg)
                    self._positions[partition] = offset + 1
                self._producer.poll(0)
        except Exception as exc:  # noqa: BLE001 - kept and reported by caught_up(); the run turns unknown
            self.error = f"{type(exc).__name__}: {exc}"

    def state(self) -> InterposerState:
        """What is still on its way: records on the interposer topic not yet forwarded, held ones, unacked ones."""
        ends = {p: self._ends_client.get_watermark_offsets(TopicPartition(self.source, p), timeout=5)[1]
                for p in self._partitions}
        with self._lock:
            held = len(self._holds)
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
    """Hold the ``position``-th event of up to ``entities`` entities behind ``distance`` later ones."""

    interposer: Interposer
    entities: int
    position: int = 1
    distance: int = 1
    name: str = "reorder"
    target: str = "events"
    _token: int | None = field(default=None)  # its own arm of the interposer (overlapping reorders keep theirs)

    def inject(self) -> None:
        self._token = self.interposer.swap(self.entities, self.position, self.distance)

    def effect(self) -> int:
        return 0 if self._token is None else self.interposer.swapped_by(self._token)

    def touched(self) -> frozenset[str]:
        return frozenset() if self._token is None else frozenset(self.interposer.held_keys(self._token))

    def heal(self) -> None:
        if self._token is not None:
            self.interposer.release(self._token)
