"""junit.xml: one test case per pipeline x checker result, for CI dashboards.

Suites are pipelines (``<scenario>.<pipeline>``); each checker result is a test case
named ``<invariant> <checker>`` (or the checker's name for supporting checkers such as
``stats``). A case fails when its result differs from what the scenario expects (an
invariant broke unexpectedly, or a planted defect went unseen), is skipped when the
result is unknown (vacuous, a fault not injected), and passes otherwise, including a
known-bad pipeline breaking exactly as the scenario says it will. The same rule as
``harness.scoring.judge``; the renderer only reports it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from harness.checkers.base import CheckResult, Validity
from harness.expect import expectations_from_json
from harness.scoring import PipelineVerdict

__all__ = ["junit_xml"]

# Characters XML 1.0 forbids (most C0 controls): an event payload may carry them.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_DETAIL = 4000


def _clean(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", str(text))


def _expected(meta: Mapping[str, object]) -> dict[tuple[str, str], Validity]:
    out = {}
    # Expectations name anomaly kinds now (harness.expect): an invariant a required or allowed kind
    # belongs to may be broken.
    for e in expectations_from_json(meta.get("expect") or ()):  # type: ignore[arg-type]
        for kind in e.allowed:
            out[(e.pipeline, kind.invariant)] = Validity.INVALID
    return out


def _detail(result: CheckResult) -> str:
    lines = [result.message, "counts: " + json.dumps(dict(result.counts), default=str)]
    for example in result.examples:
        brief = {k: v for k, v in example.items() if k != "chain"}
        lines.append("example: " + json.dumps(brief, default=str))
    text = "\n".join(lines)
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "\n... (cut; see results.json)"


def junit_xml(meta: Mapping[str, object], verdicts: tuple[PipelineVerdict, ...]) -> str:
    scenario = str(meta.get("scenario") or "scenario")
    expected = _expected(meta)
    root = ET.Element("testsuites", name=_clean(f"chaos-harness {scenario}"))
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for v in verdicts:
        suite = ET.SubElement(root, "testsuite", name=_clean(f"{scenario}.{v.pipeline}"))
        props = ET.SubElement(suite, "properties")
        for name in ("seed", "command", "run_id"):
            ET.SubElement(props, "property", name=name, value=_clean(meta.get(name, "")))
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for r in v.results:
            want = expected.get((v.pipeline, r.invariant), Validity.VALID) if r.invariant else Validity.VALID
            name = f"{r.invariant} {r.checker}" if r.invariant else r.checker
            case = ET.SubElement(suite, "testcase", classname=_clean(f"chaos.{scenario}.{v.pipeline}"),
                                 name=_clean(name), time="0")
            counts["tests"] += 1
            if r.validity is Validity.UNKNOWN:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=_clean(f"unknown: {r.message}"[:500]))
            elif r.validity is not want:
                counts["failures"] += 1
                failure = ET.SubElement(case, "failure", type=f"{r.validity.value}-expected-{want.value}",
                                        message=_clean(f"{name} {r.validity.value}, expected {want.value}: {r.message}"[:500]))
                failure.text = _clean(_detail(r))
            out = ET.SubElement(case, "system-out")
            out.text = _clean(f"{r.validity.value} (expected {want.value}): {r.message}")
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("skipped", str(counts["skipped"]))
        suite.set("errors", "0")
        suite.set("time", "0")
        for k in totals:
            totals[k] += counts[k]
    for k, n in totals.items():
        root.set(k, str(n))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
