"""The run folder's history.jsonl: record while running, load for re-analysis.

Format (versioned; ``FORMAT_VERSION`` in ops.py), one JSON object per line:
  line 1   {"format": "chaos-history", "version": 2, "run_id": ..., "seed": ...}
  then     {"pipeline": P, "op": {index, time, process, type, f, key?, value?, error?}}
  and      {"pipeline": P, "observation": SOURCE, "n": ROWS, "columns": {NAME: COLUMN, ...}}
A COLUMN holds every row's value of one field, in row order, in one of two forms:
  {"values": [v0, v1, ...]}                  row i's value is values[i]
  {"dict": [u0, u1, ...], "codes": [c0, ...]}  row i's value is dict[codes[i]] (fields that
                                             repeat a few strings: consumers, types, order ids)
and, when some rows lack the field, "absent": [i, ...] lists those rows (their slot holds null).

Ops are written one line each and reach the file within ``FLUSH_INTERVAL_S`` of being
recorded, so a crashed run still leaves its evidence: a run killed with -9 loses at most the
ops of its last ``FLUSH_INTERVAL_S`` (and at worst leaves its last line cut short, which loading
tolerates, as it did when every op was flushed); anything short of a kill (an exception, SIGINT,
the interpreter exiting) loses nothing. A JSON encoding and a flushed write per op were over a
quarter of the workload driver's CPU per request (issue 14), and a line encoded per op as it was
recorded still a third of it: the writer's flusher encodes each interval's ops together and
writes them in one system call, and recording an op only stamps and keeps it.
Observations are read once, after drain, and each is written, and flushed, as one line when it
is read. Version 1 (still read) stored an observation as {"pipeline", "observation", "rows": [{...}]}:
a dict per row, which made loading a million-event history mostly building dicts (issue 14).
Column by column, a stored history decodes about as fast as the file can be parsed, an order id
that the rows name many times is decoded once, and the checkers' indexes take the columns as
they are (``History.column``).

Loading does not parse the jsonl at all when its columnar form is there: ``history.arrow``
beside it (columnar.py), written at the end of a run and rebuilt from the jsonl whenever it is
absent or does not match it. The jsonl stays the record; the arrow file is derived from it.
"""

from __future__ import annotations

import gc
import itertools
import json
import operator
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import msgspec

from harness.errors import UsageError
from harness.history.ops import EMPTY, FORMAT, FORMAT_VERSION, History, Observation, Op, OpType, Scalar
from harness.history.table import ABSENT, Table

__all__ = ["FLUSH_INTERVAL_S", "HistoryWriter", "Recorder", "bulk", "columnar_path", "encode_observation", "load_histories"]

READABLE_VERSIONS = (1, 2)


def _encode(record: Mapping[str, object]) -> bytes:
    # What JSON cannot hold is stored as its text, and NaN as NaN (which msgspec's decoder does not
    # read: such a line takes the slow way in, see _decode_chunk), exactly as version 1 wrote them.
    return json.dumps(record, separators=(",", ":"), default=str).encode()


_encode_lines = msgspec.json.Encoder().encode_lines
_PLAIN = frozenset({str, int, bool, type(None)})
_value_views = operator.methodcaller("values")
_op_value = operator.attrgetter("value")


def _op_lines(prefix: bytes, pipeline: str, ops: Sequence[Op]) -> bytes:
    """The lines of ``ops`` (each ending in a newline), all of one pipeline whose lines start with ``prefix``.

    Ops whose values hold only strings, ints, booleans and nulls (the workload's, nearly all) are
    encoded by msgspec's C encoder many in one call; it writes what json.dumps would, but it writes
    NaN as null and refuses what JSON cannot hold, so any other op goes the json module's way,
    exactly as version 1 wrote it. The test of which is which runs in C too (map over map): one
    op line encoded in Python, with a struct built for it, was half the recorder's cost per op.
    """
    if not ops:
        return b""
    plain = list(map(_PLAIN.issuperset, map(map, itertools.repeat(type), map(_value_views, map(_op_value, ops)))))
    if all(plain):
        return _plain_lines(prefix, pipeline, ops)
    out: list[bytes] = []
    start = 0
    for i, ok in enumerate(plain):
        if not ok:
            out += (_plain_lines(prefix, pipeline, ops[start:i]), _json_line(pipeline, ops[i]))
            start = i + 1
    out.append(_plain_lines(prefix, pipeline, ops[start:]))
    return b"".join(out)


def _plain_lines(prefix: bytes, pipeline: str, ops: Sequence[Op]) -> bytes:
    if not ops:
        return b""
    try:
        body = _encode_lines(ops)  # '{op}\n{op}\n': JSON has no raw newline inside a line
    except (TypeError, ValueError, UnicodeEncodeError):  # e.g. a lone surrogate in a string
        return b"".join(_json_line(pipeline, op) for op in ops)
    return b"%s%s}\n" % (prefix, body[:-1].replace(b"\n", b"}\n" + prefix))


def _json_line(pipeline: str, op: Op) -> bytes:
    record = {"pipeline": pipeline, "op": op.to_json()}
    try:
        return _encode(record) + b"\n"
    except (TypeError, ValueError):
        # A value the type checker would have refused (a key that is not a string, a value that
        # holds itself): kept as text rather than failing the flusher, which would lose the batch.
        record["op"] = {**op.to_json(), "value": {str(k): str(v) for k, v in op.value.items()}}
        return _encode(record) + b"\n"


FLUSH_INTERVAL_S = 0.05
"""At most this long between recording an op and its line reaching the file (the OS's page cache)."""


class HistoryWriter:
    """Appends history lines for every pipeline of a run to one file; thread-safe.

    Op lines are not made when an op is recorded: a flusher thread takes the ops its recorders
    gathered since the last write, encodes them together and writes them in one system call, at
    most ``FLUSH_INTERVAL_S`` after the first of them was recorded, and at ``close()``; the header
    and observation lines are written at once (after every op recorded before them). Encoding
    each op as it was recorded, one line at a time, was a third of the workload driver's CPU per
    request (issue 14); the recorder now only appends the op it keeps anyway.
    """

    def __init__(self, path: Path, run_id: str, seed: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Unbuffered: a batch of whole lines goes out in one system call, not in buffer-sized pieces.
        self._fh: IO[bytes] = path.open("wb", buffering=0)
        self._lock = threading.Lock()  # taken before any recorder's lock, never after
        self._recorders: list[Recorder] = []
        self._due = threading.Event()  # set when a recorder gains its first op since the last write
        self._closed = threading.Event()
        self._write_line(_encode({"format": FORMAT, "version": FORMAT_VERSION, "run_id": run_id, "seed": seed}))
        # Writes what is pending when the interpreter exits without close() (an exception that
        # escaped the runner, SIGINT); only a kill loses the last interval.
        self._finalizer = weakref.finalize(self, _drain, self._fh, self._recorders, self._lock)
        self._flusher = threading.Thread(target=self._flush_when_due, name="history-flusher", daemon=True)
        self._flusher.start()

    def _write(self, record: Mapping[str, object]) -> None:
        self._write_line(_encode(record))

    def _write_line(self, line: bytes) -> None:
        with self._lock:
            _write_out(self._fh, self._recorders, line + b"\n")  # after the ops before it: the file keeps their order

    def _flush_when_due(self) -> None:
        while not self._closed.is_set():
            self._due.wait()
            # The interval over which ops gather into one write; close() cuts it short.
            self._closed.wait(FLUSH_INTERVAL_S)
            with self._lock:
                self._due.clear()  # before taking the ops: one recorded after this sets it again
                _write_out(self._fh, self._recorders)

    def recorder(self, pipeline: str) -> Recorder:
        rec = Recorder(self, pipeline)
        with self._lock:
            if self._closed.is_set():
                raise ValueError(f"{self.path} is closed: a recorder made after the run's history was closed records nothing")
            self._recorders.append(rec)
        return rec

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            for rec in self._recorders:
                with rec._lock:
                    rec._closed = True  # under its lock: an op is either before this, and written, or refused
        self._due.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join()
        self._finalizer()  # writes what is pending, closes the file; once only


def _write_out(fh: IO[bytes], recorders: Sequence[Recorder], line: bytes = b"") -> None:
    """Under the writer's lock: every recorder's ops not yet written, then ``line``, in one system call;
    a closed file raises."""
    chunks = [_op_lines(rec._prefix, rec.pipeline, rec._unwritten()) for rec in recorders]
    data = memoryview(b"".join(chunks) + line)
    while data:  # a regular file takes it whole; a short write would leave the rest for the next call
        data = data[fh.write(data) or 0:]


def _drain(fh: IO[bytes], recorders: list[Recorder], lock: threading.Lock) -> None:
    with lock:
        _write_out(fh, recorders)
        fh.close()


class Recorder:
    """Gives ops their index and time, keeps them in memory; its writer writes them through."""

    def __init__(self, writer: HistoryWriter | None, pipeline: str) -> None:
        self._writer = writer
        self.pipeline = pipeline
        self._t0_ns = time.monotonic_ns()
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._written = 0  # how many of _ops the writer has taken
        self._closed = False  # the writer is closed: an op recorded now would be lost
        self._observations: dict[str, Observation] = {}
        self._prefix = b'{"pipeline":%s,"op":' % json.dumps(pipeline).encode()  # every op line of this pipeline starts so

    def now(self) -> float:
        return (time.monotonic_ns() - self._t0_ns) / 1e9

    def record(self, process: str, type_: OpType, f: str, key: str | None = None,
               value: Mapping[str, Scalar] | None = None, error: str | None = None) -> Op:
        copy = dict(value) if value else EMPTY
        with self._lock:
            if self._closed:
                raise ValueError(f"{self._writer and self._writer.path} is closed: an op recorded after the run's "
                                 "history was closed is lost")
            ops = self._ops
            # Whole microseconds, as stored, so the live verdicts and `chaos analyze` see the very same
            # times (k / 1e6 is the float nearest k microseconds, what round(t, 6) gave, for less).
            op = Op(len(ops), (time.monotonic_ns() - self._t0_ns) // 1000 / 1e6, process, type_, f, key, copy, error)
            ops.append(op)
            first = len(ops) - self._written == 1
        if first and self._writer is not None:
            self._writer._due.set()  # once per write: Event.set costs a lock and a notify
        return op

    def _unwritten(self) -> list[Op]:
        """The ops the writer has not taken yet, taken now (under the writer's lock)."""
        with self._lock:
            n = len(self._ops)
            new, self._written = self._ops[self._written:n], n
        return new

    def observe(self, source: str, rows: Sequence[Mapping[str, Scalar]]) -> None:
        obs = Observation(source, Table.from_rows(rows))
        with self._lock:
            self._observations[source] = obs
        if self._writer is not None:
            self._writer._write_line(encode_observation(self.pipeline, source, obs.rows))

    def history(self) -> History:
        with self._lock:
            return History(self.pipeline, tuple(self._ops), MappingProxyType(dict(self._observations)))


def encode_observation(pipeline: str, source: str, rows: Sequence[Mapping[str, Scalar]]) -> bytes:
    """One observation line of format version 2 (see the module docstring)."""
    table = Table.from_rows(rows)
    n = len(table)
    return _encode({"pipeline": pipeline, "observation": source, "n": n,
                    "columns": {name: _encode_column(col, n, name in table.sparse)
                                for name, col in table.raw_columns().items()}})


def _encode_column(col: tuple[Any, ...], n: int, sparse: bool) -> dict[str, object]:
    out: dict[str, object] = {}
    if sparse:
        out["absent"] = [i for i, v in enumerate(col) if v is ABSENT]
        col = tuple(None if v is ABSENT else v for v in col)
    distinct = dict.fromkeys(col)
    # Only strings (and nulls) are worth a dictionary, and only they are safe in one: as dict keys
    # 1, 1.0 and True are one key, and the stored value would change type.
    if len(distinct) * 2 <= n and all(v is None or type(v) is str for v in distinct):
        code = {v: i for i, v in enumerate(distinct)}
        out["dict"] = list(distinct)
        out["codes"] = list(map(code.__getitem__, col))
    else:
        out["values"] = col
    return out


class _Column(msgspec.Struct, gc=False):
    values: tuple[Any, ...] | None = None
    strings: list[Any] | None = msgspec.field(default=None, name="dict")
    codes: list[int] | None = None
    absent: list[int] | None = None


class _Line(msgspec.Struct, gc=False):
    """Any line after the header: an op, or an observation (version 2 by columns, version 1 by rows)."""

    pipeline: str
    op: Op | None = None
    observation: str | None = None
    n: int = 0
    columns: dict[str, _Column] | None = None
    rows: list[dict[str, Any]] | None = None


def _table(line: _Line, memo: dict[Any, Any]) -> Table:
    if line.columns is None:
        if line.rows is None:
            raise ValueError("an observation without columns (version 2) or rows (version 1)")
        return Table.from_rows(line.rows)
    n = line.n
    columns: dict[str, tuple[Any, ...]] = {}
    sparse = []
    for name, c in line.columns.items():
        if c.codes is not None and c.strings is not None:
            # One string object per distinct value across every observation of the file: the
            # checkers' lookups by order id then hit an object whose hash is already known.
            strings = list(map(memo.setdefault, c.strings, c.strings))
            col = tuple(map(strings.__getitem__, c.codes))
        elif c.values is not None:
            col = c.values
        else:
            raise ValueError(f"column {name!r} has neither values nor a dict with codes")
        if len(col) != n:
            raise ValueError(f"column {name!r} has {len(col)} values for {n} rows")
        if c.absent:
            held = list(col)
            for i in c.absent:
                held[i] = ABSENT
            col = tuple(held)
            sparse.append(name)
        columns[name] = col
    return Table(columns, n, sparse)


_BLOCK = 1 << 22
_decoder = msgspec.json.Decoder(_Line)


def _chunks(fh: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Whole lines from the current position on, a block at a time: (lines, whether the file ends there).

    Iterating a binary file by line copies a long line in small steps (the 70 MiB topic line of a
    million-event history took a third of a second) and costs a Python step per line; blocks of
    whole lines are decoded in one call each (``decode_lines``). A block is cut at its last
    newline (one copy of up to a block), and a line that runs over the end of a block is joined
    once.
    """
    parts: list[bytes | memoryview] = []  # a line that runs past the end of the block before
    block = fh.read(_BLOCK)
    while block:
        following = fh.read(_BLOCK)
        cut = block.rfind(b"\n") + 1
        if not cut:
            parts.append(block)
        else:
            ends = cut == len(block) and not following
            if parts:
                parts.append(memoryview(block)[:cut])
                yield b"".join(parts), ends
            else:
                yield (block if cut == len(block) else block[:cut]), ends
            parts = [block[cut:]] if cut < len(block) else []
        block = following
    if parts:
        yield b"".join(parts), True


class _Damaged(Exception):
    """A line that cannot be read: where and why."""

    def __init__(self, line: int, why: str) -> None:
        super().__init__(why)
        self.line, self.why = line, why


def _decode_line(raw: bytes) -> _Line:
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError:
        raise
    except ValueError as fault:
        try:  # NaN or Infinity: json writes them (as version 1 did), msgspec does not read them
            record = json.loads(raw)
        except ValueError:
            raise fault from None
        return msgspec.convert(record, _Line)


def _decode_chunk(chunk: bytes, first: int, at_end: bool) -> list[_Line]:
    """The lines of one chunk; on any fault, line by line to say which line it is (``first``: its number)."""
    try:
        return _decoder.decode_lines(chunk)
    except ValueError:  # msgspec's DecodeError is a ValueError
        pass
    lines = chunk.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for k, raw in enumerate(lines):
        if not raw.strip():
            continue  # as decode_lines does
        try:
            out.append(_decode_line(raw))
        except ValueError as e:
            # The last line of a killed run may be cut short (not JSON at all): what came before it
            # stands. Anything earlier, or a whole line of the wrong shape, is corruption.
            cut_short = isinstance(e, msgspec.DecodeError) and not isinstance(e, msgspec.ValidationError)
            if cut_short and at_end and k == len(lines) - 1:
                return out
            raise _Damaged(first + k, str(e)) from None
    return out


def columnar_path(path: Path) -> Path:
    """Where the columnar form of the history at ``path`` lives: beside it, ``history.arrow``."""
    return path.with_suffix(".arrow")


def load_histories(path: Path, columnar: bool = True) -> tuple[Mapping[str, object], dict[str, History]]:
    """Read a history.jsonl back (format version 1 or 2): (header, {pipeline: History}).

    Through its columnar form (``history.arrow`` beside it, harness/history/columnar.py) when that
    is there and was derived from this very file; otherwise from the jsonl, and then the columnar
    form is written for next time (skipped where the folder is read-only). ``columnar=False`` reads
    the jsonl only and writes nothing.
    """
    if not path.exists():
        raise UsageError(f"no history at {path}; pass a run folder written by `chaos run` (it holds history.jsonl)")
    if not columnar:
        return _load_jsonl(path)
    from harness.history.columnar import WRITE_ERRORS, Stale, read_columnar, source_stamp, write_columnar

    arrow = columnar_path(path)
    stamp = source_stamp(path)
    if arrow.exists():
        try:
            return read_columnar(arrow, stamp)
        except Stale:
            pass  # derived from another jsonl, or damaged: the jsonl is the record, so rebuild from it
    header, histories = _load_jsonl(path)
    try:
        write_columnar(arrow, header, histories, stamp)
    except WRITE_ERRORS:
        pass  # a read-only run folder, or text Arrow cannot hold: it loads from the jsonl each time, as before
    return header, histories


def _load_jsonl(path: Path) -> tuple[Mapping[str, object], dict[str, History]]:
    ops: dict[str, list[Op]] = {}
    observations: dict[str, dict[str, Observation]] = {}
    memo: dict[Any, Any] = {}
    n = 1  # the number of the line before the chunk being read
    with path.open("rb") as fh, bulk():
        first = fh.readline()
        try:
            header = json.loads(first or b"{}")
        except ValueError:
            header = {"first line": first[:80].decode(errors="replace")}
        if not isinstance(header, dict) or header.get("format") != FORMAT \
                or header.get("version") not in READABLE_VERSIONS:
            raise UsageError(
                f"{path} is not a {FORMAT} file of version {' or '.join(map(str, READABLE_VERSIONS))} "
                f"(header {header!r}); it was written by another version of chaos-harness"
            )
        try:
            for chunk, at_end in _chunks(fh):
                lines = _decode_chunk(chunk, n + 1, at_end)
                for k, line in enumerate(lines):
                    if line.op is not None:
                        ops.setdefault(line.pipeline, []).append(line.op)
                        continue
                    try:
                        if line.observation is None:
                            raise ValueError("neither an op nor an observation")
                        table = _table(line, memo)
                    except (ValueError, IndexError) as e:
                        raise _Damaged(n + 1 + k, str(e)) from None  # k skips blank lines, if any
                    observations.setdefault(line.pipeline, {})[line.observation] = Observation(line.observation,
                                                                                               table)
                n += chunk.count(b"\n")
        except _Damaged as damaged:
            raise UsageError(f"{path}:{damaged.line} is not a valid history line ({damaged.why}); "
                             "the history is corrupt") from None
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
