"""history.arrow: the run's history as typed columns in one Arrow IPC file, derived from history.jsonl.

history.jsonl stays the record: append-only, flushed within 50 ms of each op, readable after a crash. Once a
run's observations are complete, the same histories are written beside it as ``history.arrow``,
and loading a run reads that instead: its columns are memory-mapped, not parsed, and Python
objects are made only for the columns something reads (see frame.py). The file is derived and
disposable: it is rebuilt from history.jsonl whenever it is absent, unreadable or stale, so run
folders written before it existed load as before.

Layout: one record batch of one row. Each field is a list holding one whole array (a column's
codes or values, its mask, the string pool, the ops' value texts), so arrays of different
lengths live in one file and each reads back zero-copy. The schema's metadata ``manifest``
(JSON) says which field is which: per pipeline, its ops' fields and each observation's columns
with their kind (frame.py). It also records the jsonl it was derived from (size, modification
and change times, a digest of its first and last MiB): any difference makes the file stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from operator import attrgetter
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.ipc

from harness.history.frame import (
    Column,
    Frame,
    Interner,
    OpsFrame,
    Pool,
    TableFrame,
    encode_column,
)
from harness.history.ops import History, Observation, Op, OpType
from harness.history.table import ABSENT, Table

__all__ = ["COLUMNAR_NAME", "WRITE_ERRORS", "LazyOps", "Stale", "frame_of", "history_of", "read_columnar", "source_stamp", "write_columnar"]

COLUMNAR_NAME = "history.arrow"
MAGIC = "chaos-history-columns"
VERSION = 3
_EDGE = 1 << 20


def source_stamp(jsonl: Path) -> dict[str, object]:
    """What identifies the jsonl a columnar file was derived from; any change in it makes the file stale."""
    st = jsonl.stat()
    digest = hashlib.sha1()
    with jsonl.open("rb") as fh:
        digest.update(fh.read(_EDGE))
        if st.st_size > _EDGE:
            fh.seek(max(_EDGE, st.st_size - _EDGE))
            digest.update(fh.read(_EDGE))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "edges": digest.hexdigest()}


class LazyOps(Sequence[Op]):
    """A pipeline's ops, made into ``Op`` records from the frame the first time any is read."""

    __slots__ = ("_frame", "_ops")

    def __init__(self, frame: Frame) -> None:
        self._frame = frame
        self._ops: tuple[Op, ...] | None = None

    def _all(self) -> tuple[Op, ...]:
        if self._ops is None:
            self._ops = _make_ops(self._frame)
        return self._ops

    @property
    def frame(self) -> Frame:
        """The frame these ops are read from (History checks its own frame against it)."""
        return self._frame

    def __len__(self) -> int:
        return self._frame.ops.n

    def __getitem__(self, i: Any) -> Any:
        return self._all()[i]

    def __iter__(self) -> Any:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(other) == len(self) and tuple(self._all()) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LazyOps({len(self)} ops)"


_OP_TYPES = {t.value: t for t in OpType}


def _make_ops(frame: Frame) -> tuple[Op, ...]:
    o = frame.ops
    strings = frame.pool.strings()
    types = {c: _OP_TYPES[strings[c]] for c in set(o.type.tolist())}
    values = o.all_values()
    get = strings.__getitem__
    return tuple(map(Op, o.index.tolist(), o.time.tolist(), map(get, o.process.tolist()),
                     map(types.__getitem__, o.type.tolist()), map(get, o.f.tolist()), map(get, o.key.tolist()),
                     values, map(get, o.error.tolist())))


_TEXT = json.JSONEncoder(separators=(",", ":"), default=str).encode  # as the jsonl writes values


def frame_of(history: History, interner: Interner | None = None) -> Frame:
    """The history as a frame (its own, when it was loaded from a columnar file)."""
    if history.frame is not None:
        return history.frame
    interner = interner or Interner()
    ops = history.ops
    n = len(ops)
    str_codes = interner.str_codes
    by_key: dict[str, list[Any]] = {}  # each value key's column, ABSENT where an op's value lacks it
    texts = []
    for i, op in enumerate(ops):
        value = op.value
        texts.append(_TEXT(dict(value)) + "\n")
        for k, v in value.items():
            got = by_key.get(k)
            if got is None:
                got = by_key[k] = [ABSENT] * n
            got[i] = v
    values = {k: encode_column(col, interner) for k, col in by_key.items()}
    ops_frame = OpsFrame(
        n, np.fromiter(map(attrgetter("index"), ops), dtype=np.int64, count=n),
        np.fromiter(map(attrgetter("time_s"), ops), dtype=np.float64, count=n),
        str_codes(list(map(attrgetter("process"), ops))), str_codes([op.type.value for op in ops]),
        str_codes(list(map(attrgetter("f"), ops))), str_codes(list(map(attrgetter("key"), ops))),
        str_codes(list(map(attrgetter("error"), ops))), texts, values)
    tables = {source: TableFrame(len(obs.rows), {name: encode_column(col, interner)
                                                 for name, col in obs.rows.raw_columns().items()})
              for source, obs in history.observations.items()}
    return Frame(Pool(interner.strings), ops_frame, MappingProxyType(tables))


def history_of(pipeline: str, frame: Frame) -> History:
    """A History read from ``frame``: ops and columns become Python objects when first read."""
    observations = {source: Observation(source, Table.from_frame(t, frame.pool)) for source, t in frame.tables.items()}
    return History(pipeline, LazyOps(frame), MappingProxyType(observations), frame=frame)


class _Fields:
    """Collects the one-row fields of the record batch and hands out their numbers."""

    def __init__(self) -> None:
        self.arrays: list[pa.Array] = []

    def add(self, values: pa.Array) -> int:
        self.arrays.append(pa.LargeListArray.from_arrays(pa.array([0, len(values)], pa.int64()), values))
        return len(self.arrays) - 1

    def np(self, a: npt.NDArray[Any]) -> int:
        return self.add(pa.array(a))


def write_columnar(path: Path, header: Mapping[str, object], histories: Mapping[str, History],
                   stamp: Mapping[str, object]) -> None:
    """Write ``histories`` as a columnar file at ``path`` (atomically: a temporary file renamed)."""
    # One pool per file: histories read from one columnar file share theirs; otherwise every
    # history is encoded into one interner, and the pool is what it holds after the last one.
    loaded = {id(h.frame.pool): h.frame.pool for h in histories.values() if h.frame is not None}
    if len(loaded) == 1 and all(h.frame is not None for h in histories.values()):
        pool = next(iter(loaded.values()))
        frames = {p: h.frame for p, h in histories.items() if h.frame is not None}
    else:
        interner = Interner()
        encoded = {p: frame_of(_plain(h), interner) for p, h in histories.items()}
        pool = Pool(interner.strings)
        frames = {p: Frame(pool, f.ops, f.tables) for p, f in encoded.items()}
    fields = _Fields()
    pipelines = []
    for p, fr in frames.items():
        o = fr.ops
        ops = {"n": o.n, "index": fields.np(o.index), "time": fields.np(o.time), "process": fields.np(o.process),
               "type": fields.np(o.type), "f": fields.np(o.f), "key": fields.np(o.key), "error": fields.np(o.error),
               "texts": fields.add(pa.array(o.texts, pa.large_string()) if isinstance(o.texts, list) else o.texts),
               "values": [_column(name, c, fields) for name, c in o.values.items()]}
        tables = []
        for source, t in fr.tables.items():
            cols = [_column(name, c, fields) for name, c in t.columns.items()]
            tables.append({"source": source, "n": t.n, "columns": cols})
        pipelines.append({"name": p, "ops": ops, "tables": tables})
    strings = pool.strings()[:len(pool)]
    pool_field = fields.add(pa.array(strings, pa.large_string()))
    vocabulary: dict[str, int] = {}
    for fr in frames.values():
        vocabulary.update(fr.vocabulary())
    manifest = {"format": MAGIC, "version": VERSION, "header": dict(header), "source": dict(stamp),
                "pool": pool_field, "vocabulary": vocabulary, "pipelines": pipelines}
    batch = pa.record_batch(fields.arrays, names=[f"f{i}" for i in range(len(fields.arrays))])
    schema = batch.schema.with_metadata({"manifest": json.dumps(manifest, default=str)})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as out:
            out.write_batch(batch.replace_schema_metadata(schema.metadata))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _column(name: str, c: Column, fields: _Fields) -> dict[str, object]:
    return {"name": name, "kind": c.kind, "values": fields.np(c.values),
            "mask": None if c.mask is None else fields.np(c.mask)}


def _plain(history: History) -> History:
    return History(history.pipeline, tuple(history.ops), history.observations)


def _read_column(c: Mapping[str, Any], np_: Any) -> Column:
    return Column(c["kind"], np_(c["values"]), None if c["mask"] is None else np_(c["mask"]))


WRITE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, TypeError, pa.ArrowException)
"""Why a columnar file may not be written (a read-only folder, text Arrow cannot hold such as a lone
surrogate): the run folder then loads from its jsonl, as before the columnar form existed."""


class Stale(Exception):
    """The columnar file does not match its jsonl (or is not one): rebuild it from the jsonl."""


def read_columnar(path: Path, stamp: Mapping[str, object] | None) -> tuple[dict[str, object], dict[str, History]]:
    """(jsonl header, {pipeline: History}) from a columnar file; Stale if it was derived from another jsonl."""
    try:
        source = pa.memory_map(str(path), "r")
        reader = pa.ipc.open_file(source)
        manifest = json.loads((reader.schema.metadata or {})[b"manifest"])
        if manifest.get("format") != MAGIC or manifest.get("version") != VERSION:
            raise Stale(f"{path} is not a {MAGIC} file of version {VERSION}")
        if stamp is not None and manifest.get("source") != dict(stamp):
            raise Stale(f"{path} was derived from another history.jsonl")
        batch = reader.get_batch(0)

        def arr(i: int) -> Any:
            return batch.column(i).values

        def np_(i: int) -> npt.NDArray[Any]:
            return arr(i).to_numpy(zero_copy_only=True)

        pool = Pool(arr(manifest["pool"]))
        histories: dict[str, History] = {}
        for p in manifest["pipelines"]:
            o = p["ops"]
            ops = OpsFrame(o["n"], np_(o["index"]), np_(o["time"]), np_(o["process"]), np_(o["type"]),
                           np_(o["f"]), np_(o["key"]), np_(o["error"]), arr(o["texts"]),
                           {c["name"]: _read_column(c, np_) for c in o["values"]})
            tables = {t["source"]: TableFrame(t["n"], {c["name"]: _read_column(c, np_) for c in t["columns"]})
                      for t in p["tables"]}
            frame = Frame(pool, ops, MappingProxyType(tables), dict(manifest["vocabulary"]))
            histories[p["name"]] = history_of(p["name"], frame)
    except Stale:
        raise
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, pa.ArrowException) as e:
        # Not a file this version wrote whole (cut short, damaged, another layout): the jsonl is the record.
        raise Stale(f"{path} cannot be read ({type(e).__name__}: {e})") from None
    return dict(manifest["header"]), histories
