"""The checkers' counts are typed records: what a checker emits and what the score and report read must agree.

Score v1 read ``duplicates`` and ``violations``, names no checker emitted, and nothing
noticed. These tests fail when (1) a checker emits a count its record does not declare or
leaves one out, (2) a reader outside harness/checkers indexes ``.counts`` by a string
instead of reading the record, (3) a declared count is read by nothing downstream.
"""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from harness.analysis import checkers
from harness.checkers.base import CheckResult, Validity, run_checker
from harness.checkers.counts import COUNTS_OF, TypedCounts, read
from harness.history.ops import OpType
from harness.testing import HistoryBuilder

ROOT = Path(__file__).resolve().parents[1]
READERS = [ROOT / "harness" / "score.py", ROOT / "harness" / "scoring.py",
           *sorted((ROOT / "harness" / "report").glob("*.py"))]


def _run() -> HistoryBuilder:
    """A run every typed checker can judge: traffic, a fault, lag probes, a drain, a duplicate, an early shipment."""
    h = HistoryBuilder("outbox").consumers("payment", "fulfillment").fault_window(3.0, 5.0)
    h.op("probe", OpType.OK, "clock", at=0.0, epoch_ms=1_000_000)
    h.op("probe", OpType.OK, "workload", at=0.1, clients=4, max_start_late_s=0.01)
    for i in range(8):
        h.flow(f"o{i}", steps=("place", "pay", "ship"), at=float(i))
    for t, lag in ((2.0, 0), (4.0, 7), (6.0, 2), (7.0, 0)):
        h.op("probe", OpType.OK, "lag", at=t, lag=lag, backlog=0)
    h.op("probe", OpType.OK, "drain", at=9.0)
    h.charge("o2", 1000, event_id="o2/2")
    return h


@pytest.mark.parametrize("checker", sorted(COUNTS_OF))
def test_a_checker_emits_exactly_the_counts_its_record_declares(checker: str) -> None:
    kind = COUNTS_OF[checker]
    result = run_checker(next(c for c in checkers(30.0) if c.name == checker), _run().build())
    assert result.validity is not Validity.UNKNOWN, result.message
    emitted = {k for k in result.counts if ":" not in k}  # breakdowns (missing:payment) are not counts of their own
    assert emitted == {f.name for f in fields(kind)}, f"{checker} emits {sorted(emitted)}"
    assert isinstance(read(result, kind), kind)


def test_a_breakdown_without_a_colon_is_refused() -> None:
    from harness.checkers.counts import StatsCounts

    with pytest.raises(ValueError, match="belongs in the record"):
        StatsCounts(invoke=1, ok=1, fail=0, info=0, faults=0, clients=None, max_start_late_s=None).as_counts(extra=1)


def _string_keyed_count_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        target = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            target = node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            target = node.func.value
        if isinstance(target, ast.Attribute) and target.attr == "counts":
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_reader_indexes_counts_by_a_string() -> None:
    bad = [hit for path in READERS for hit in _string_keyed_count_reads(path)]
    assert bad == [], f"read counts through harness.checkers.counts.read(result, Record): {bad}"


def test_the_string_key_scan_would_catch_one(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("def f(r):\n    return r.counts.get('lost'), r.counts['lost_cents']\n")
    assert _string_keyed_count_reads(planted) == ["planted.py:2", "planted.py:2"]


def _attributes_read() -> set[str]:
    names: set[str] = set()
    for path in READERS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
    return names


@pytest.mark.parametrize("kind", sorted(COUNTS_OF.values(), key=lambda k: k.checker), ids=lambda k: k.__name__)
def test_every_declared_count_is_consumed_downstream(kind: type[TypedCounts]) -> None:
    """Each field is read by the score, the verdict or the report, or declared detail (shown in the
    report's per-checker counts line only): adding a count is a decision about who reads it."""
    read_names = _attributes_read()
    unread = [f.name for f in fields(kind) if f.name not in read_names and f.name not in kind.detail]
    assert unread == [], f"{kind.__name__}: {unread} are emitted and read by nothing; consume them or list them in detail"
    stale = [name for name in kind.detail if name not in {f.name for f in fields(kind)}]
    assert stale == [], f"{kind.__name__}.detail names no field: {stale}"


def test_a_result_without_its_record_reads_as_none() -> None:
    from types import MappingProxyType

    from harness.checkers.counts import LossCounts

    assert read(CheckResult("no-lost-effect", "I1", Validity.VALID, "m", MappingProxyType({"lost": 1})),
                LossCounts) is None
    assert read(None, LossCounts) is None
