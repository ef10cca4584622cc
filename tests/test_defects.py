"""The planted defects of tests/defects (issue 12): each patch still applies, and its header names a real anomaly kind.

bench/defects.py runs `chaos explore` on each patched copy; these patches are the benchmark's
input, so they must not rot as the reference targets change. No infrastructure needed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checkers.anomaly import AnomalyKind

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_defects", ROOT / "bench" / "defects.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
DEFECTS = BENCH.read_defects()


def test_at_least_ten_defects() -> None:
    assert len(DEFECTS) >= 10, [d.name for d in DEFECTS]


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.name for d in DEFECTS])
def test_patch_applies_to_the_current_tree(defect) -> None:
    done = subprocess.run(["git", "apply", "--check", str(defect.patch)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, f"{defect.patch.name} no longer applies: {done.stderr.strip()}; regenerate it"


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.name for d in DEFECTS])
def test_header_names_a_valid_kind_and_the_file_it_changes(defect) -> None:
    assert defect.kind in {k.value for k in AnomalyKind}, f"{defect.name}: unknown anomaly kind {defect.kind!r}"
    changed = subprocess.run(["git", "apply", "--numstat", str(defect.patch)], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, check=True).stdout.split()
    assert defect.where in changed[2::3], f"{defect.name}: header says {defect.where}, the patch changes {changed[2::3]}"
    assert (ROOT / "targets").is_dir() and defect.target in ("direct", "outbox", "cdc", "cdc_outbox")


def test_a_header_without_a_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.patch").write_text("# defect: x\n# target: outbox\n# where: targets/relay.py\ndiff --git a/a b/a\n")
    with pytest.raises(ValueError, match="kind"):
        BENCH.read_defects(tmp_path)


def test_each_patch_changes_few_lines() -> None:
    # "One-line (or few-line) defects": a patch that grows past a handful of lines is no longer a slip.
    for d in DEFECTS:
        added = [ln for ln in d.patch.read_text().splitlines() if ln.startswith("+") and not ln.startswith("+++")]
        assert 1 <= len(added) <= 16, f"{d.name}: {len(added)} added lines"
