"""The run folder's history.jsonl: record while running, load for re-analysis.

Format (versioned; ``FORMAT_VERSION`` in ops.py):
  line 1   {"format": "chaos-history", "version": 1, "run_id": ..., "seed": ...}
  then     {"pipeline": P, "op": {index, time, process, type, f, key?, value?, error?}}
  and      {"pipeline": P, "observation": SOURCE, "rows": [...]}
Lines are flushed as written, so a crashed run still leaves its evidence.
"""

from __future__ import annotations

import gc
import json
import json.scanner
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import IO

from harness.errors import UsageError
from harness.history.ops import FORMAT, FORMAT_VERSION, History, Observation, Op, OpType, Scalar

__all__ = ["HistoryWriter", "Recorder", "bulk", "load_histories"]


class HistoryWriter:
    """Appends history lines for every pipeline of a run to one file; thread-safe."""

    def __init__(self, path: Path, run_id: str, seed: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[str] = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self._write({"format": FORMAT, "version": FORMAT_VERSION, "run_id": run_id, "seed": seed})

    def _write(self, record: Mapping[str, object]) -> None:
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def recorder(self, pipeline: str) -> Recorder:
        return Recorder(self, pipeline)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class Recorder:
    """Gives ops their index and time, keeps them in memory and writes them through."""

    def __init__(self, writer: HistoryWriter | None, pipeline: str) -> None:
        self._writer = writer
        self.pipeline = pipeline
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._observations: dict[str, Observation] = {}

    def now(self) -> float:
        return time.monotonic() - self._t0

    def record(self, process: str, type_: OpType, f: str, key: str | None = None,
               value: Mapping[str, Scalar] | None = None, error: str | None = None) -> Op:
        with self._lock:
            # Rounded as stored, so the live verdicts and `chaos analyze` see the very same times.
            op = Op(len(self._ops), round(self.now(), 6), process, type_, f, key, MappingProxyType(dict(value or {})),
                    error)
            self._ops.append(op)
        if self._writer is not None:
            self._writer._write({"pipeline": self.pipeline, "op": op.to_json()})
        return op

    def observe(self, source: str, rows: list[Mapping[str, Scalar]]) -> None:
        obs = Observation(source, tuple(MappingProxyType(dict(r)) for r in rows))
        with self._lock:
            self._observations[source] = obs
        if self._writer is not None:
            self._writer._write({"pipeline": self.pipeline, "observation": source, "rows": [dict(r) for r in rows]})

    def history(self) -> History:
        with self._lock:
            return History(self.pipeline, tuple(self._ops), MappingProxyType(dict(self._observations)))


_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


def _parse(line: str) -> dict[str, object]:
    """One history line: json.loads without its per-call Python wrapper (a third of the load time)."""
    try:
        value, end = _scan(line, 0)
    except StopIteration:
        raise ValueError("no JSON value") from None
    if line[end:].strip() or not isinstance(value, dict):
        raise ValueError("not one JSON object")
    return value


_SHARED = {
    "orders": ("order_id", "status"),
    "topic": ("key", "event_id", "order_id", "type", "correlation_id"),
    "applied": ("consumer", "event_id", "order_id", "type"),
    "effects": ("consumer", "kind", "order_id", "event_id", "correlation_id"),
}
"""Fields whose values repeat across rows (ids, enumerations): one string object each, not one per row."""

_SHARED_OP = ("process", "f", "key")
"""The same for ops: a few process and step names, and order ids that the rows name too. Shared, the
checkers' lookups by these strings hit one object whose hash is already known, not a fresh copy per op."""


def _share(rows: list[dict[str, object]], fields: tuple[str, ...], memo: dict[object, object]) -> None:
    # A million-row history names each order a dozen times: one string object per id instead
    # of one per mention saves about 110 MiB of 1 GiB, for about a fifth of the load time.
    share = memo.setdefault
    for row in rows:
        for f in fields:
            v = row.get(f)
            if v is not None:
                row[f] = share(v, v)


def load_histories(path: Path) -> tuple[Mapping[str, object], dict[str, History]]:
    """Read a history.jsonl back: (header, {pipeline: History})."""
    if not path.exists():
        raise UsageError(f"no history at {path}; pass a run folder written by `chaos run` (it holds history.jsonl)")
    ops: dict[str, list[Op]] = {}
    observations: dict[str, dict[str, Observation]] = {}
    memo: dict[object, object] = {}
    with path.open(encoding="utf-8") as fh, bulk():
        header = json.loads(fh.readline() or "{}")
        if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
            raise UsageError(
                f"{path} is not a {FORMAT} v{FORMAT_VERSION} file (header {header!r}); "
                "it was written by another version of chaos-harness"
            )
        for n, line in enumerate(fh, start=2):
            try:
                record = _parse(line)
            except ValueError:
                # The last line of a killed run may be cut short; anything earlier is corruption.
                if fh.readline() == "":
                    break
                raise UsageError(f"{path}:{n} is not valid JSON; the history is corrupt") from None
            pipeline = record["pipeline"]
            if "op" in record:
                raw = record["op"]
                _share((raw,), _SHARED_OP, memo)  # type: ignore[arg-type]
                ops.setdefault(pipeline, []).append(Op.from_json(raw))  # type: ignore[arg-type]
            else:
                source = record["observation"]
                rows = record["rows"]
                _share(rows, _SHARED.get(source, ()), memo)
                observations.setdefault(pipeline, {})[source] = Observation(source, tuple(map(MappingProxyType, rows)))
    pipelines = list(dict.fromkeys([*ops, *observations]))
    return header, {
        p: History(p, tuple(ops.get(p, ())), MappingProxyType(observations.get(p, {}))) for p in pipelines
    }


@contextmanager
def bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while building or scanning a large history.

    A history of a million rows is a million containers; every generation-2 collection
    walks all of them, which more than doubles the time to load or check it. Nothing in
    a history forms reference cycles, so reference counting frees it all the same.

    On the way out, what was allocated meanwhile (the history, or the indexes checkers
    derived from it) joins the oldest generation directly. Left young, the first
    allocation after the bulk would start a young collection walking every one of those
    objects, then another as they age: 0.2 to 0.5 s for a million-event history, spent
    on objects that live as long as the history does.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _promote_to_oldest()
            gc.enable()


def _promote_to_oldest() -> None:
    # freeze() moves every tracked object to the permanent generation and unfreeze() moves
    # them all back into the oldest one: two list splices, no walk. The next full collection
    # examines them as usual, so a stray cycle is still freed. Objects someone else froze
    # must stay frozen, so then this is skipped.
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
