"""chaos-harness: chaos and failure-mode tests for event-driven pipelines.

The data flow is the architecture:

    scenario -> infra -> target -> workload + faults -> history -> checkers -> score -> report

The names below are the public API; everything else is importable but may change.
They load lazily, so ``import harness.errors`` stays cheap and free of import cycles.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ChaosError",
    "CheckResult",
    "Checker",
    "Expect",
    "FaultKind",
    "FaultSpec",
    "History",
    "Infra",
    "RunResult",
    "Scenario",
    "Settings",
    "ProcessDecl",
    "Target",
    "TargetSpec",
    "Validity",
    "analyze_run_dir",
    "load_scenario",
    "run_scenario",
]

_WHERE = {
    "ChaosError": "harness.errors",
    "CheckResult": "harness.checkers.base",
    "Checker": "harness.checkers.base",
    "Validity": "harness.checkers.base",
    "Expect": "harness.scenario",
    "Scenario": "harness.scenario",
    "load_scenario": "harness.scenario",
    "FaultKind": "harness.faults.spec",
    "FaultSpec": "harness.faults.spec",
    "History": "harness.history.ops",
    "Infra": "harness.infra.stack",
    "RunResult": "harness.runner",
    "run_scenario": "harness.runner",
    "Settings": "harness.config",
    "Target": "harness.target",
    "TargetSpec": "harness.target",
    "ProcessDecl": "harness.target",
    "analyze_run_dir": "harness.analysis",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}; its public names: {', '.join(__all__)}")


def __dir__() -> list[str]:
    return sorted(__all__)
