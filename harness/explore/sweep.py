"""The sweep: one schedule per class of defect the catalogue can reach on a target, run before random search.

A trial costs 15-60 s of real processes, so a ten-minute budget buys a few dozen of them.
Drawn at random from the whole catalogue (18 kinds over a dozen links and processes), the
one schedule that opens a defect's window comes up too rarely: a latency with jitter on
the order service's own database link (``last_id``) is about one fault in two hundred.
Jepsen answers this with nemesis *packages*: a few composed fault patterns, each aimed at
a class of mistake, laid over whatever the system under test has. The sweep is that, laid
over the target's spec (its entrypoint, publisher, consumers, crash points and client
timeouts), never over a known variant:

  redelivery       duplicate recent records into the topic        effects applied twice
  poison           malformed records among real ones              the dead-letter path
  stalled crash    a consumer's database link cut, the consumer   records fetched (offsets
                   killed while its effect is held up             committed) but never applied
  publisher crash  the publisher killed at each of its crash      a step done before the one it
                   points, one after the other                    depends on (marked before sent)
  late commits     the entrypoint's database answers slowly and   rows that commit out of id order
                   unevenly (jitter as large as the delay)
  entrypoint crash the entrypoint killed at each of its crash       a write split over two commits
                   points in turn (when it is not the publisher)  (the outbox row in a second one)
  consumer crashes one consumer killed three times while its       bookkeeping committed apart from
                   database answers slowly (a kill lands between  its effect; state kept only in
                   two commits), then every other consumer once   memory, gone at the restart
  publisher kill   kill -9 of the publisher mid-traffic           read, not yet recorded as sent
  swapped steps    an order's paid and shipped events swapped      a step that cannot apply yet,
                   on the topic (five orders)                     skipped instead of dead-lettered
  refused dead     malformed records while every consumer's        "the DLQ is best effort": a
  letters          dead-letter topic refuses writes (fetch works)  record neither applied nor dead-lettered
  old records      a consumer's group rewound to the topic start  redelivery of long-applied events
  long outage      the publisher's broker link cut for longer     "no delivery report" taken as
                   than two of its delivery timeouts              success
  broker crash     kill -9 of the broker                          unacknowledged writes

A pattern is left out when the kinds asked for (``--faults``) or the target cannot make it
(no consumer with a database link, no crash point on the publisher ...). The sweep is a
pure function of the space, the spec and the session seed (which consumer, workload seeds).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from harness.explore.strategy import FaultSpace, TrialSchedule
from harness.faults.spec import Crash, Duplicate, FaultKind, FaultSpec, Latency, Poison, Reordering, Rewind
from harness.target.spec import TargetSpec

__all__ = ["PATTERNS", "sweep"]

_Pattern = Callable[[FaultSpace, TargetSpec, random.Random], TrialSchedule | None]


def _usable(space: FaultSpace, *faults: FaultSpec) -> bool:
    for f in faults:
        if f.target not in space.places.get(f.kind, ()):
            return False
        if isinstance(f.params, Crash) and f.params.point not in space.crash_points.get(f.target, ()):
            return False
    return True


def _schedule(space: FaultSpace, rng: random.Random, duration_s: int, rate: int,
              *faults: FaultSpec) -> TrialSchedule | None:
    seed = rng.randrange(2**31)
    return TrialSchedule(duration_s, rate, faults, seed) if faults and _usable(space, *faults) else None


def _consumers(spec: TargetSpec) -> tuple[str, ...]:
    return tuple(p.name for p in spec.processes if p.consumer)


def redelivery(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    return _schedule(space, rng, 8, 10, FaultSpec(FaultKind.DUPLICATE, "events", at=0.5, for_s=1.0,
                                                  params=Duplicate(20)))


def poison(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    return _schedule(space, rng, 8, 10, FaultSpec(FaultKind.POISON, "events", at=0.4, for_s=1.0, params=Poison(3)))


def stalled_crash(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    """Hold a consumer's effect up (its database link cut), then kill it halfway through the stall.

    Killed mid-stall, not at the heal: a kill timed for the heal races the consumer's next retry,
    and while the link is down no retry can win (scenarios/consumer_crash.py saw exactly that).
    """
    consumers = [c for c in _consumers(spec) if f"{c}->postgres" in space.places.get(FaultKind.OUTAGE, ())]
    if not consumers:
        return None
    consumer = rng.choice(consumers)
    duration = 16
    stall_at, stall_s, kill_after_s = 0.25, 6.0, 3.0
    # kill -9, or a clean stop when only that is asked for (a consumer that commits on close loses the same)
    stop = next((k for k in (FaultKind.KILL, FaultKind.RESTART) if consumer in space.places.get(k, ())), FaultKind.KILL)
    return _schedule(space, rng, duration, 20,
                     FaultSpec(FaultKind.OUTAGE, f"{consumer}->postgres", at=stall_at, for_s=stall_s),
                     FaultSpec(stop, consumer, at=stall_at + kill_after_s / duration, for_s=1.0))


def publisher_crash(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    """Die at each crash point of the publisher in turn (armed one after the other: one arm per process)."""
    points = space.crash_points.get(spec.publisher, ())
    n = len(points)
    faults = tuple(FaultSpec(FaultKind.CRASH, spec.publisher, at=round(0.2 + 0.6 * i / n, 2), for_s=2.0,
                             params=Crash(point, 1)) for i, point in enumerate(points))
    return _schedule(space, rng, 12, 10, *faults)


def late_commits(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    """150 +/- 150 ms per answer on the entrypoint's database link: transactions commit out of id order."""
    return _schedule(space, rng, 16, 20, FaultSpec(FaultKind.LATENCY, f"{spec.entrypoint}->postgres", at=0.2,
                                                   for_s=8.0, params=Latency(150, 150, "downstream")))


def swapped_steps(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    """Five orders' second and third events swapped on the topic (order.paid behind order.shipped).

    Swapping an entity's first two events (the reorder scenario's default) tests creation; a later
    pair reaches a consumer whose step depends on the one before it, which must wait or dead-letter
    the early one, never skip it. A random draw is such a swap about one fault in sixty (one kind of
    twenty, then position 2 of three).
    """
    return _schedule(space, rng, 12, 20, FaultSpec(FaultKind.REORDER, "events", at=0.3, for_s=4.0,
                                                   params=Reordering(5, position=2)))


def refused_dead_letters(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    """Poison records arrive while every consumer's dead-letter topic refuses writes, then it takes them again."""
    consumers = [c for c in _consumers(spec) if c in space.places.get(FaultKind.DLQ_REFUSED, ())]
    if not consumers:
        return None
    refusals = [FaultSpec(FaultKind.DLQ_REFUSED, c, at=0.3, for_s=4.0) for c in consumers]
    return _schedule(space, rng, 10, 10, *refusals, FaultSpec(FaultKind.POISON, "events", at=0.4, for_s=1.0,
                                                               params=Poison(3)))


def old_records(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    consumers = [c for c in _consumers(spec) if c in space.places.get(FaultKind.REWIND, ())]
    if not consumers:
        return None
    consumer = rng.choice(consumers)
    return _schedule(space, rng, 8, 10, FaultSpec(FaultKind.REWIND, consumer, at=0.6, for_s=1.0, params=Rewind(0)))


def long_outage(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    """Longer than two delivery timeouts: the batch in flight expires, and so does the next one."""
    outage_s = math.ceil(space.delivery_s * 2.4)
    duration = max(8, math.ceil(outage_s / 0.8))
    return _schedule(space, rng, duration, 10,
                     FaultSpec(FaultKind.OUTAGE, f"{spec.publisher}->kafka", at=0.1, for_s=float(outage_s)))


def publisher_kill(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    """kill -9 of the publisher mid-traffic: whatever it had read and not yet recorded as sent goes again."""
    return _schedule(space, rng, 10, 10, FaultSpec(FaultKind.KILL, spec.publisher, at=0.4, for_s=2.0))


def entrypoint_crash(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    """Die at each crash point of the entrypoint in turn; a publishing entrypoint is the publisher crash's."""
    if spec.entrypoint == spec.publisher:
        return None
    points = space.crash_points.get(spec.entrypoint, ())
    n = len(points)
    faults = tuple(FaultSpec(FaultKind.CRASH, spec.entrypoint, at=round(0.2 + 0.6 * i / n, 2), for_s=2.0,
                             params=Crash(point, 1)) for i, point in enumerate(points))
    return _schedule(space, rng, 12, 10, *faults)


SLOW_DB_MS = 300  # each database answer this late: an event's few round trips take about a second


def consumer_crashes(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    """Kill one consumer three times while its database link answers slowly, then every other consumer once.

    Slowed, a consumer spends an event's time in its database round trips, so a kill lands between
    two of its commits about one time in three instead of almost never (Jepsen widens a window the
    same way before it crashes a node); three kills, each after the last restart has rejoined, make
    it likely in one trial. Every restart also drops what a consumer kept only in memory.
    """
    consumers = sorted(c for c in _consumers(spec) if c in space.places.get(FaultKind.KILL, ()))
    slowable = [c for c in consumers if f"{c}->postgres" in space.places.get(FaultKind.LATENCY, ())]
    if not slowable:
        return None
    slow = rng.choice(slowable)
    others = [c for c in consumers if c != slow]
    duration = 20
    # Slowed from 3 s to 17 s; killed at 5, 10 and 15 s: a restart and its group join take ~4 s here.
    faults = [FaultSpec(FaultKind.LATENCY, f"{slow}->postgres", at=0.15, for_s=14.0,
                        params=Latency(SLOW_DB_MS, 0, "downstream"))]
    faults += [FaultSpec(FaultKind.KILL, slow, at=at, for_s=1.0) for at in (0.25, 0.5, 0.75)]
    faults += [FaultSpec(FaultKind.KILL, c, at=round(0.8 + 0.1 * i / max(1, len(others) - 1), 2), for_s=1.0)
               for i, c in enumerate(others)]
    return _schedule(space, rng, duration, 20, *faults)


def broker_crash(space: FaultSpace, spec: TargetSpec, rng: random.Random) -> TrialSchedule | None:
    return _schedule(space, rng, 12, 10, FaultSpec(FaultKind.KILL, "kafka", at=0.3, for_s=3.0))


# Cheapest and most general first: a session's budget may end inside the sweep.
PATTERNS: tuple[tuple[str, _Pattern], ...] = (
    ("redelivery", redelivery), ("poison", poison), ("stalled crash", stalled_crash),
    ("publisher crash", publisher_crash), ("late commits", late_commits),
    # After the patterns the shipped variants need, so each still comes within a session's first five trials.
    ("entrypoint crash", entrypoint_crash), ("consumer crashes", consumer_crashes),
    ("publisher kill", publisher_kill), ("swapped steps", swapped_steps),
    ("refused dead letters", refused_dead_letters), ("old records", old_records),
    ("long outage", long_outage), ("broker crash", broker_crash),
)


def sweep(space: FaultSpace, spec: TargetSpec, seed: int) -> tuple[tuple[str, TrialSchedule], ...]:
    """The patterns this space can make, in order, each with its name."""
    out = []
    for name, pattern in PATTERNS:
        # One generator per pattern: a pattern's schedule (its workload seed too) is the same whichever
        # other patterns the kinds asked for allow, so a variant's session and the correct pipeline's
        # run the very same trial.
        schedule = pattern(space, spec, random.Random(f"{seed}:{name}"))
        if schedule is not None:
            out.append((name, schedule))
    return tuple(out)
