"""`chaos trace`: the causal chain of one order, as a tree of timed steps.

Built on the order's evidence chain (``harness.checkers.chain``), arranged by cause:

  order                the root: the whole chain
  ├── request          each client request (place, pay, ship, cancel): invoke to reply
  │   ├── commit       the order row as it committed (the orders observation; untimed, shown at the reply)
  │   └── publish      each record on the topic whose correlation id is this request's: topic, partition,
  │       │            offset, publish time, and where at the source it came from: its outbox row id
  │       │            (``outbox_id``) or WAL position (``lsn``), when the publisher sent the provenance
  │       │            headers (``harness.sdk.provenance``); ``None`` when it did not (direct publishing
  │       │            has neither, and neither has a history written before they were recorded)
  │       ├── apply        each consumer's processed-event record for that event
  │       │   └── effect   the side effect it wrote
  │       └── dead-letter  each consumer's DLQ copy, with its reason and convention
  └── ...              a step whose cause is not in the history hangs from the root

Times: ops carry seconds since the run started, observations epoch milliseconds. The run's
``clock`` probe (one op with the epoch at its run time) puts both on epoch milliseconds; a history
without it is placed by its first publish, and the trace says ``clock: estimated``. Each step's gap
is its start minus its parent's end: how long the event waited between stages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from harness.checkers.chain import order_chain
from harness.errors import UsageError
from harness.history.ops import History, OpType, Scalar
from harness.tools._runs import load_run

__all__ = ["PROVENANCE", "Stage", "Step", "Trace", "build_trace", "find_trace"]

_UNLIMITED = 1_000_000

PROVENANCE = ("outbox_id", "lsn")
"""A publish step's source position attributes (``harness.provenance``); ``None`` when not recorded."""
_NO_PROVENANCE = ("no outbox row id or WAL position recorded: the publisher sent no chaos-outbox-id / chaos-lsn "
                  "header (direct publishing has neither; histories from before these were recorded have none)")


class Stage(Enum):
    ORDER = "order"
    REQUEST = "request"
    COMMIT = "commit"
    PUBLISH = "publish"
    APPLY = "apply"
    EFFECT = "effect"
    DEAD_LETTER = "dead-letter"


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    parent: int | None  # index of the parent step; None for the root
    stage: Stage
    name: str
    start_ms: float  # epoch milliseconds
    end_ms: float
    gap_ms: float | None  # start minus the parent's end (None for the root)
    timed: bool  # False when the source has no time of its own (a committed row): placed at its parent's end
    attributes: Mapping[str, Scalar]

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "parent": self.parent, "stage": self.stage.value, "name": self.name,
                "start_ms": round(self.start_ms, 3), "end_ms": round(self.end_ms, 3),
                "gap_ms": None if self.gap_ms is None else round(self.gap_ms, 3), "timed": self.timed,
                "attributes": dict(self.attributes)}


@dataclass(frozen=True, slots=True)
class Trace:
    run_id: str
    pipeline: str
    order_id: str
    correlation_ids: tuple[str, ...]
    clock: str  # "anchored" (the run's clock probe) or "estimated"
    steps: tuple[Step, ...]  # steps[0] is the root; parents come before children

    def to_json(self) -> dict[str, object]:
        return {"run_id": self.run_id, "pipeline": self.pipeline, "order_id": self.order_id,
                "correlation_ids": list(self.correlation_ids), "clock": self.clock,
                "steps": [s.to_json() for s in self.steps]}

    def children(self, index: int) -> list[Step]:
        return [s for s in self.steps if s.parent == index]


def _scalars(row: Mapping[str, object], drop: frozenset[str] = frozenset({"stage", "time"})) -> dict[str, Scalar]:
    return {k: v for k, v in row.items() if k not in drop and (v is None or isinstance(v, (str, int, float, bool)))}


def _anchor(history: History) -> tuple[float, str] | None:
    """Epoch ms at run time 0, from the run's clock probe."""
    for op in history.ops:
        if op.process == "probe" and op.f == "clock" and op.type is OpType.OK and "epoch_ms" in op.value:
            return float(op.value["epoch_ms"]) - op.time_s * 1000, "anchored"  # type: ignore[arg-type]
    return None


@dataclass(slots=True)
class _Draft:
    """A step while the tree is built: an untimed step gets its parent's end when frozen."""

    parent: int | None
    stage: Stage
    name: str
    start: float | None
    end: float | None
    attrs: dict[str, Scalar]
    timed: bool = True


class _Builder:
    def __init__(self) -> None:
        self.rows: list[_Draft] = []

    def add(self, parent: int | None, stage: Stage, name: str, start: float | None, end: float | None,
            attrs: Mapping[str, Scalar], timed: bool = True) -> int:
        self.rows.append(_Draft(parent, stage, name, start, end, dict(attrs), timed))
        return len(self.rows) - 1


def build_trace(history: History, order_id: str, run_id: str = "") -> Trace:
    """The trace of ``order_id`` in ``history`` (empty but for its root when the history never names it)."""
    chain = order_chain(history, order_id, limit=_UNLIMITED)
    ops = [s for s in chain if isinstance(s.get("time"), (int, float))]
    rows = [s for s in chain if "time" not in s]
    anchored = _anchor(history)
    if anchored is None:
        # No clock probe (an old history): place the first reply just before the first publish.
        first_pub = min((float(r["timestamp_ms"]) for r in rows if r.get("stage") == "event on topic"  # type: ignore[arg-type]
                         and isinstance(r.get("timestamp_ms"), (int, float))), default=0.0)
        first_op = min((float(s["time"]) for s in ops), default=0.0)  # type: ignore[arg-type]
        anchored = (first_pub - first_op * 1000, "estimated")
    epoch0, clock = anchored

    b = _Builder()
    root = b.add(None, Stage.ORDER, f"order {order_id}", None, None, {"order_id": order_id})
    by_correlation: dict[object, int] = {}
    pending: dict[tuple[object, str], tuple[float, dict[str, object]]] = {}  # (process, f) -> invoke
    for s in ops:
        step, _, kind = str(s["stage"]).partition(" ")
        at = epoch0 + float(s["time"]) * 1000  # type: ignore[arg-type]
        if kind == OpType.INVOKE.value:
            pending[(s.get("process"), step)] = (at, s)
            continue
        start, _invoke = pending.pop((s.get("process"), step), (at, s))
        attrs = _scalars(s)
        attrs["outcome"] = kind
        i = b.add(root, Stage.REQUEST, f"{step} {kind}", start, at, attrs)
        if s.get("correlation_id"):
            by_correlation.setdefault(s["correlation_id"], i)
    for (_process, step), (at, s) in pending.items():  # invoked, never answered (the run ended first)
        b.add(root, Stage.REQUEST, f"{step} unanswered", at, at, {**_scalars(s), "outcome": "unanswered"})

    def request_of(row: Mapping[str, object]) -> int:
        return by_correlation.get(row.get("correlation_id"), root)

    publish_by_event: dict[object, int] = {}
    publish_by_pos: dict[tuple[object, object], int] = {}
    apply_by: dict[tuple[object, object], int] = {}
    for r in rows:
        stage = r.get("stage")
        attrs = _scalars(r)
        if stage == "committed":
            parent = request_of(r)
            t = b.rows[parent].end if parent != root else None
            b.add(parent, Stage.COMMIT, f"commit {r.get('status')} v{r.get('version')}", t, t, attrs, timed=False)
        elif stage == "event on topic":
            t = _ms(r.get("timestamp_ms"))
            # Always both keys, so the JSON says "none recorded" (null) rather than leaving it out.
            for name in PROVENANCE:
                attrs.setdefault(name, None)
            i = b.add(request_of(r), Stage.PUBLISH, f"publish {r.get('type')} seq {r.get('seq')} "
                      f"p{r.get('partition')}@{r.get('offset')}", t, t, attrs)
            publish_by_event.setdefault(r.get("event_id"), i)
            publish_by_pos.setdefault((r.get("partition"), r.get("offset")), i)
    for r in rows:
        stage = r.get("stage")
        attrs = _scalars(r)
        if stage == "applied by consumer":
            t = _ms(r.get("applied_at_ms"))
            i = b.add(publish_by_event.get(r.get("event_id"), root), Stage.APPLY, f"{r.get('consumer')} applied {r.get('type')}", t, t, attrs)
            apply_by.setdefault((r.get("consumer"), r.get("event_id")), i)
        elif stage == "dead-lettered":
            t = _ms(r.get("timestamp_ms"))
            found = publish_by_event.get(r.get("event_id")) if r.get("event_id") is not None else None
            if found is None:
                found = publish_by_pos.get((r.get("source_partition"), r.get("source_offset")), root)
            b.add(found, Stage.DEAD_LETTER, f"{r.get('consumer')} dead-lettered", t, t, attrs)
    for r in rows:
        if r.get("stage") == "effect":
            attrs = _scalars(r)  # its own: the loop above leaves the chain's last row's attributes here
            t = _ms(r.get("applied_at_ms"))
            key = (r.get("consumer"), r.get("event_id"))
            b.add(apply_by.get(key, publish_by_event.get(r.get("event_id"), root)), Stage.EFFECT, f"{r.get('consumer')} {r.get('kind')}", t, t, attrs)
    return _freeze(b, run_id, history.pipeline, order_id, clock)


def _ms(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _freeze(b: _Builder, run_id: str, pipeline: str, order_id: str, clock: str) -> Trace:
    rows = b.rows
    # Untimed steps sit at their parent's end (resolved in order: parents come first); the root spans everything.
    times = [t for r in rows for t in (r.start, r.end) if t is not None]
    lo, hi = (min(times), max(times)) if times else (0.0, 0.0)
    rows[0].start, rows[0].end = lo, hi
    steps: list[Step] = []
    for i, r in enumerate(rows):
        parent = r.parent
        timed = r.start is not None and r.timed
        start = r.start if r.start is not None else steps[parent].end_ms if parent is not None else lo
        end = r.end if r.start is not None and r.end is not None else start
        gap = None if parent is None or parent == 0 else start - steps[parent].end_ms
        # (parent 0: the root's end is the last step, so a gap to it says nothing)
        steps.append(Step(i, parent, r.stage, r.name, start, end, gap, timed, r.attrs))
    correlations = tuple(sorted({str(s.attributes["correlation_id"]) for s in steps
                                 if s.stage is Stage.REQUEST and s.attributes.get("correlation_id")}))
    return Trace(run_id, pipeline, order_id, correlations, clock, tuple(steps))


def _order_for_correlation(history: History, correlation_id: str) -> str | None:
    for op in history.ops:
        if op.key and op.value.get("correlation_id") == correlation_id:
            return op.key
    for source in ("orders", "topic", "effects", "dlq"):
        for row in history.observed(source):
            if row.get("correlation_id") == correlation_id and row.get("order_id"):
                return str(row["order_id"])
    return None


def _knows(history: History, order_id: str) -> bool:
    return any(op.key == order_id for op in history.ops) or any(
        r.get("order_id") == order_id for s in ("orders", "topic") for r in history.observed(s))


def _example(histories: Mapping[str, History]) -> str:
    for h in histories.values():
        for op in h.client_ops():
            if op.key:
                return f"`--order {op.key}` ({h.pipeline})"
    return "an order id from the run's results.json examples"


def find_trace(run_dir: Path, *, order_id: str | None = None, correlation_id: str | None = None,
               pipeline: str | None = None) -> Trace:
    """The trace of one order of a stored run, named by its id or by one of its correlation ids."""
    if (order_id is None) == (correlation_id is None):
        raise UsageError("give exactly one of --order ID or --correlation ID")
    histories = load_run(run_dir, pipeline)
    found: dict[str, str] = {}  # pipeline -> order id
    for name, h in histories.items():
        if order_id is not None:
            if _knows(h, order_id):
                found[name] = order_id
        else:
            hit = _order_for_correlation(h, correlation_id)  # type: ignore[arg-type]
            if hit is not None:
                found[name] = hit
    what = f"order {order_id}" if order_id is not None else f"correlation id {correlation_id}"
    if not found:
        raise UsageError(f"{what} is not in {run_dir.name} (pipelines: {', '.join(sorted(histories))}); "
                         f"pass one the run recorded, e.g. {_example(histories)}")
    if len(found) > 1:
        raise UsageError(f"{what} is in pipelines {', '.join(sorted(found))} of {run_dir.name}; "
                         "pick one with --pipeline NAME")
    name, order = next(iter(found.items()))
    run_id = run_dir.name
    return build_trace(histories[name], order, run_id)


def render_lines(trace: Trace) -> Sequence[str]:
    """The trace as indented text lines: time since the order's first step, gap from the parent, step, detail."""
    t0 = trace.steps[0].start_ms if trace.steps else 0.0
    depth: dict[int, int] = {}
    lines = [f"order {trace.order_id} ({trace.pipeline}, run {trace.run_id}); clock {trace.clock}; "
             f"correlation ids: {', '.join(trace.correlation_ids) or 'none'}",
             f"{'t+ms':>10} {'gap ms':>9}  step"]

    def walk(step: Step, level: int) -> None:
        depth[step.index] = level
        gap = "" if step.gap_ms is None else f"{step.gap_ms:9.1f}"
        when = f"{step.start_ms - t0:10.1f}" + ("" if step.timed else "?")
        lines.append(f"{when:>10} {gap:>9}  {'  ' * level}{step.name}{_detail(step)}")
        for child in sorted(trace.children(step.index), key=lambda s: (s.start_ms, s.index)):
            walk(child, level + 1)

    if trace.steps:
        walk(trace.steps[0], 0)
    if any(s.stage is Stage.PUBLISH and _source(s) is None for s in trace.steps):
        lines.append(f"({_NO_PROVENANCE})")
    return lines


def _source(step: Step) -> str | None:
    """Where a published record came from at its source, as the detail text shows it."""
    outbox_id, lsn = (step.attributes.get(f) for f in PROVENANCE)
    parts = ([f"outbox row {outbox_id}"] if outbox_id is not None else []) + ([f"LSN {lsn}"] if lsn is not None else [])
    return ", ".join(parts) or None


def _detail(step: Step) -> str:
    a = step.attributes
    if step.stage is Stage.REQUEST:
        extra = a.get("error") or a.get("correlation_id") or ""
        return f"  ({step.end_ms - step.start_ms:.1f} ms; {extra})" if extra else f"  ({step.end_ms - step.start_ms:.1f} ms)"
    if step.stage is Stage.PUBLISH:
        return f"  event {a.get('event_id')}; {_source(step) or 'source position not recorded'}"
    if step.stage is Stage.EFFECT:
        return f"  amount {a.get('amount_cents')}, correlation {a.get('correlation_id')}"
    if step.stage is Stage.DEAD_LETTER:
        return f"  reason: {a.get('reason')} [{a.get('convention', 'chaos')}]"
    if step.stage is Stage.COMMIT:
        return "  (untimed: shown at the request's reply)"
    return ""
