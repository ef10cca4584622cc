"""The border stays open: nothing under harness/ imports targets/ (the reference pipelines plug in
through entry points, like any user's), and the Go crash-point helper stays one file, identical to
the copy the Go example uses."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_harness_imports_nothing_from_targets() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in sorted((ROOT / "harness").rglob("*.py"))
                 for line, name in _imports(path)
                 if name == "targets" or name.startswith("targets.")]
    assert not offenders, "harness/ must learn about pipelines only from their spec:\n" + "\n".join(offenders)


def test_the_ast_check_would_see_an_import(tmp_path: Path) -> None:
    """The test above can fail: a planted import is found in each of its spellings."""
    planted = tmp_path / "planted.py"
    planted.write_text("import targets.reference\nfrom targets.domain import ORDERS\n\ndef f():\n    import targets\n")
    assert sorted(name for _, name in _imports(planted)) == ["targets", "targets.domain", "targets.reference"]


def test_reference_pipelines_come_through_entry_points() -> None:
    from harness.target.registry import available_targets

    found = {t.name: t.origin for t in available_targets()}
    assert {"direct", "outbox", "cdc", "cdc_outbox"} <= set(found)
    assert all("entry point chaos.targets" in found[n] for n in ("direct", "outbox", "cdc", "cdc_outbox"))


def test_the_go_example_uses_the_sdk_crash_point_helper_unchanged() -> None:
    """One file to copy, and the example shows it copied as is (a fix lands in both or fails here)."""
    sdk = ROOT / "harness" / "sdk" / "go" / "crashpoint" / "crashpoint.go"
    copy = ROOT / "examples" / "go_outbox" / "internal" / "crashpoint" / "crashpoint.go"
    assert sdk.read_bytes() == copy.read_bytes()
