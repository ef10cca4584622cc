"""Synthetic run folders for the report tests: realistic shape and size, no Kafka needed.

``synthetic_run`` writes run.json and history.jsonl for a black_friday-like run: a ramp of
orders, one publisher outage, lag probes, effects with epoch times, topic records, a DLQ,
and the final observations; ``direct`` loses what was placed during the outage, ``cdc``
charges a few orders twice, ``outbox`` is clean. ``hostile=True`` plants script payloads in
an event, a DLQ reason and an error message, where the report must show them as text.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from harness.history.ops import FORMAT, FORMAT_VERSION, History, OpType
from harness.history.store import encode_observation
from harness.testing import HistoryBuilder

__all__ = ["HOSTILE", "synthetic_histories", "synthetic_run"]

HOSTILE = "<script>document.title='pwned';window.__pwned=1</script>"
HOSTILE_ATTR = "<img src=x onerror=\"window.__pwned=2\">"
HOSTILE_JSON = "</script><script>window.__pwned=3</script><!--"
EPOCH0_MS = 1_795_000_000_000


def _pipeline(name: str, orders: int, duration_s: float, fault: tuple[float, float], seed: int,
              hostile: bool) -> History:
    rng = random.Random(seed)
    h = HistoryBuilder(name)
    h.op("probe", OpType.OK, "clock", at=0.0, epoch_ms=EPOCH0_MS)
    h.consumers("payment", "inventory", "notification")
    f0, f1 = fault
    h.fault_window(f0, f1, effect=300, target="relay->kafka" if name != "direct" else "app->kafka")
    topic, applied, effects, dlq, orders_rows = [], [], [], [], []
    position = {"payment": 0, "inventory": 0, "notification": 0}
    next_offset: dict[int, int] = {}
    lost_so_far = 0
    for i in range(orders):
        # A ramp: arrivals denser towards the end, like RampHold.
        t = duration_s * (i / orders) ** 0.8
        oid = f"{name[:1]}{i:06d}-{rng.randrange(16**6):06x}"
        amount = rng.randrange(500, 50_000)
        during = f0 <= t <= f1
        lost = name == "direct" and during
        lost_so_far += lost
        # Hostile text lands in the chains of the first lost orders, which the report shows.
        plant = hostile and lost and lost_so_far in (1, 2)
        client = f"client-{i % 16}"
        lat = 0.004 + rng.random() * (0.4 if during and name == "direct" else 0.02)
        h.op(client, OpType.INVOKE, "place", oid, at=t, amount_cents=amount, customer=f"customer-{i % 1000:03d}")
        h.op(client, OpType.OK, "place", oid, at=t + lat, amount_cents=amount, correlation_id=f"c-{oid}")
        h.op(client, OpType.INVOKE, "pay", oid, at=t + lat + 0.001, amount_cents=amount)
        pay_type = OpType.INFO if plant and lost_so_far == 1 else OpType.OK
        h.op(client, pay_type, "pay", oid, at=t + 2 * lat + 0.001, amount_cents=amount,
             error=HOSTILE_ATTR if pay_type is OpType.INFO else None)
        paid = pay_type is OpType.OK  # the planted unknown-outcome pay did not commit: consistent, not a phantom
        orders_rows.append({"order_id": oid, "customer": f"customer-{i % 1000:03d}", "amount_cents": amount,
                            "status": "paid" if paid else "created", "version": 2 if paid else 1,
                            "correlation_id": f"c-{oid}"})
        # Outbox and cdc publish the outage's backlog after the heal.
        delay = (f1 - t + 2.0 + rng.random() * 3) if during else 0.05 + rng.random() * 0.2
        at_ms = int(EPOCH0_MS + (t + delay) * 1000)
        for seq, etype in ((1, "order.created"), (2, "order.paid")):
            if lost and not (plant and lost_so_far == 2):
                continue
            # Planted text stays inside a valid event: the contract holds, the report must still escape it.
            payload = json.dumps({"event_id": f"e-{oid}-{seq}", "type": etype, "order_id": oid, "seq": seq,
                                  "schema_version": 1, "correlation_id": f"c-{oid}",
                                  "occurred_at": "2026-11-26T20:00:00+00:00",
                                  "customer": HOSTILE_JSON if plant else f"customer-{i % 1000:03d}",
                                  "amount_cents": amount})
            partition = i % 6  # one order, one partition: per-entity order holds
            offset = next_offset.get(partition, 0)
            next_offset[partition] = offset + 1
            topic.append({"partition": partition, "offset": offset, "key": oid, "timestamp_ms": at_ms, "event_id": f"e-{oid}-{seq}",
                          "order_id": oid, "type": etype, "seq": seq, "correlation_id": f"c-{oid}",
                          "schema_version": 1, "payload": payload})
        dead_lettered = plant and lost_so_far == 2  # published, but payment dead-letters its paid event
        if dead_lettered:
            paid_event = topic[-1]
            dlq.append({"consumer": "payment", "partition": 0, "offset": 0, "key": oid, "event_id": f"e-{oid}-2",
                        "order_id": oid, "type": "order.paid", "reason": HOSTILE, "source_topic": "orders",
                        "source_partition": paid_event["partition"], "source_offset": paid_event["offset"]})
        elif lost:
            continue
        for consumer, kind, seq in (("inventory", "reservation", 1), ("notification", "email", 1),
                                    ("payment", "charge", 2)):
            if consumer == "payment" and (pay_type is not OpType.OK or dead_lettered):
                continue
            position[consumer] += 1
            applied.append({"consumer": consumer, "position": position[consumer], "event_id": f"e-{oid}-{seq}",
                            "order_id": oid, "type": "order.paid" if seq == 2 else "order.created", "seq": seq,
                            "applied_at_ms": at_ms + 20})
            effects.append({"consumer": consumer, "kind": kind, "order_id": oid, "event_id": f"e-{oid}-{seq}",
                            "correlation_id": f"c-{oid}", "amount_cents": amount if kind == "charge" else None,
                            "applied_at_ms": at_ms + 20})
            if name == "cdc" and kind == "charge" and during and i % 40 == 0:
                effects.append({**effects[-1], "applied_at_ms": at_ms + 900})  # redelivered, charged twice
    for k in range(int(duration_s) + 10):
        t = float(k)
        backlog = int(max(0.0, min(t, f1) - f0) * 30) if f0 <= t <= f1 + 3 and name != "direct" else 0
        h.op("probe", OpType.OK, "lag", at=t + 0.5, backlog=backlog, lag=rng.randrange(0, 4))
    h.op("probe", OpType.OK, "drain", at=duration_s + 9.8, state="publish backlog 0, consumer lag 0")
    h.observations.update({"orders": orders_rows, "topic": topic, "applied": applied, "effects": effects, "dlq": dlq,
                           "drain": [{"drained": True, "nemesis_errors": None}]})
    return h.build()


def synthetic_histories(orders: int = 2000, duration_s: float = 60.0, hostile: bool = False,
                        pipelines: tuple[str, ...] = ("direct", "outbox", "cdc")) -> dict[str, History]:
    fault = (duration_s * 0.4, duration_s * 0.4 + 12)
    return {p: _pipeline(p, orders, duration_s, fault, seed=n, hostile=hostile) for n, p in enumerate(pipelines)}


def synthetic_run(run_dir: Path, orders: int = 2000, duration_s: float = 60.0, hostile: bool = False,
                  pipelines: tuple[str, ...] = ("direct", "outbox", "cdc")) -> dict[str, History]:
    """Write run.json, history.jsonl and the phase of a finished run as the runner would; returns the histories."""
    run_dir.mkdir(parents=True, exist_ok=True)
    histories = synthetic_histories(orders, duration_s, hostile, pipelines)
    meta = {
        "run_id": "20261126-200000-beef", "scenario": "black_friday",
        "description": "Traffic ramps to its peak; the publisher's link to Kafka goes down mid-sale."
                       + (f" {HOSTILE}" if hostile else ""),
        "seed": 20261126, "command": f"chaos run black_friday --seed 20261126 --duration {duration_s:g}",
        "duration_s": duration_s, "pipelines": list(pipelines),
        "faults": [{"kind": "outage", "link": "publisher->kafka", "at": 0.4, "for_s": 12}],
        "expect": [{"pipeline": "direct", "invariant": "I1", "validity": "invalid",
                    "why": "direct publish loses orders while the broker is unreachable; that is the demonstration"},
                   {"pipeline": "cdc", "invariant": "I2", "validity": "invalid",
                    "why": "the synthetic cdc run charges a few redelivered orders twice"}],
        "versions": {"kafka": "4.3.1", "postgres": "15", "toxiproxy": "2.12.0", "python": "3.11", "chaos-harness": "dev"},
        "machine": {"cpus": 2, "platform": "synthetic"}, "started_at": "2026-11-26T20:00:00+00:00",
        "argv": ["chaos", "run", "black_friday"],
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))
    with (run_dir / "history.jsonl").open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "run_id": meta["run_id"],
                             "seed": meta["seed"]}) + "\n")
        for p, h in histories.items():
            for op in h.ops:
                fh.write(json.dumps({"pipeline": p, "op": op.to_json()}) + "\n")
            for source, obs in h.observations.items():
                fh.write(encode_observation(p, source, obs.rows).decode() + "\n")
    (run_dir / "phase").write_text("complete\n")
    return histories
