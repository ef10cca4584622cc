"""A found schedule written out as an ordinary scenario module, which `chaos run PATH --seed S` reproduces.

The module is what a person would have written by hand: one ``Scenario`` built from
``FaultSpec`` values with typed parameters, no import of explore. Its docstring carries
the evidence chain: which trial found it, the anomaly kinds, one example anomaly and the
run folder that holds the full history (`chaos trace RUN_DIR --order ID` follows it).
It names no expectation, so the anomaly it reproduces fails the run (exit 1) until the
defect is fixed or the author adds an ``Expect`` that explains it.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from pathlib import Path

from harness.checkers.anomaly import AnomalyKind
from harness.explore.strategy import TrialSchedule
from harness.explore.trial import DRAIN_TIMEOUT_S
from harness.faults.spec import FaultSpec, NoParams

__all__ = ["module_source", "reproduce_command", "write_scenario"]


def _spec_source(f: FaultSpec) -> str:
    params = ""
    if f.params is not None and not isinstance(f.params, NoParams):
        fields = ", ".join(f"{x.name}={getattr(f.params, x.name)!r}" for x in dataclasses.fields(f.params))
        params = f", params={type(f.params).__name__}({fields})"
    return f"FaultSpec(FaultKind.{f.kind.name}, {f.target!r}, at={f.at!r}, for_s={f.for_s!r}{params})"


def _docstring_safe(text: str) -> str:
    # Evidence quotes checker messages and paths: nothing in it may end the docstring or escape.
    return text.replace("\\", "/").replace('"""', "'''")


def module_source(name: str, schedule: TrialSchedule, *, pipeline: str, variant: str,
                  kinds: Sequence[AnomalyKind], evidence: Sequence[str]) -> str:
    param_types = sorted({type(f.params).__name__ for f in schedule.faults
                          if f.params is not None and not isinstance(f.params, NoParams)})
    imports = ", ".join(["FaultKind", "FaultSpec", *param_types])
    found = ", ".join(k.value for k in kinds)
    lines = [
        f'"""Found by chaos explore: {found} on {pipeline} (variant {variant}).',
        "",
        *[f"  {_docstring_safe(e)}" for e in evidence],
        '"""',
        "",
        f"from harness.faults.spec import {imports}",
        "from harness.scenario import Scenario",
        "from harness.workload.rate import Constant",
        "",
        "SCENARIO = Scenario(",
        f"    name={name!r},",
        f"    description={('explore found ' + found + ' under this schedule')!r},",
        f"    pipelines=({pipeline!r},),",
        f"    shape=Constant({float(schedule.rate)!r}),",
        f"    duration_s={float(schedule.duration_s)!r},",
        "    faults=(",
        *[f"        {_spec_source(f)}," for f in schedule.faults],
        "    ),",
        f"    variant={variant!r},",
        f"    drain_timeout_s={DRAIN_TIMEOUT_S!r},",
        ")",
        "",
    ]
    return "\n".join(lines)


def reproduce_command(path: Path, seed: int, target_ref: str, pipeline: str) -> str:
    parts = ["chaos", "run", str(path), "--seed", str(seed)]
    if target_ref != pipeline:  # a target.toml or module:attr: the module names only the target's name
        parts += ["--target", target_ref]
    return shlex.join(parts)


def write_scenario(out_dir: Path, name: str, schedule: TrialSchedule, *, pipeline: str, variant: str,
                   kinds: Sequence[AnomalyKind], evidence: Sequence[str]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.py"
    tmp = path.with_suffix(".py.tmp")
    tmp.write_text(module_source(name, schedule, pipeline=pipeline, variant=variant, kinds=kinds, evidence=evidence))
    tmp.replace(path)  # an interrupted write never leaves half a module where `chaos run` would load it
    return path
