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
from collections.abc import Mapping, Sequence

from harness.checkers.base import CheckResult, Validity
from harness.expect import Expect, expectations_from_json
from harness.scoring import PipelineVerdict

__all__ = ["junit_xml"]

# Characters XML 1.0 forbids (most C0 controls): an event payload may carry them.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_DETAIL = 4000


def _clean(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", str(text))


def _failure(v: PipelineVerdict, r: CheckResult, expects: Sequence[Expect]) -> str | None:
    """Why this result fails its pipeline's expectations, or None: an anomaly of a kind not expected, an
    expected kind some instance of which nothing injected explains, or a required kind that never showed."""
    if r.invariant is None or r.validity is Validity.UNKNOWN:
        return None
    mine = [e for e in expects if e.pipeline == v.pipeline]
    problems = []
    for t in v.tallies:
        if t.kind.invariant != r.invariant:
            continue
        if not t.expected:
            problems.append(f"unexpected {t.kind.value} x{t.total}")
        elif t.unexplained:
            problems.append(f"{t.unexplained} of {t.total} {t.kind.value} not explained by any injected fault")
    seen = {t.kind for t in v.tallies}
    problems += [f"expected {k.value} did not happen" for e in mine for k in e.anomalies
                 if k.invariant == r.invariant and k not in seen]
    if r.validity is Validity.INVALID and not r.anomalies:
        problems.append("invalid without naming an anomaly")
    return "; ".join(problems) or None


def _expected_text(v: PipelineVerdict, r: CheckResult, expects: Sequence[Expect]) -> str:
    kinds = [k.value for e in expects if e.pipeline == v.pipeline for k in e.kinds if k.invariant == r.invariant]
    return ", ".join(kinds) if kinds else "no anomaly"


def _detail(result: CheckResult) -> str:
    lines = [result.message, "counts: " + json.dumps(dict(result.counts), default=str)]
    for example in result.examples:
        brief = {k: v for k, v in example.items() if k != "chain"}
        lines.append("example: " + json.dumps(brief, default=str))
    text = "\n".join(lines)
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "\n... (cut; see results.json)"


def junit_xml(meta: Mapping[str, object], verdicts: tuple[PipelineVerdict, ...]) -> str:
    scenario = str(meta.get("scenario") or "scenario")
    expects = expectations_from_json(meta.get("expect") or ())  # type: ignore[arg-type]
    root = ET.Element("testsuites", name=_clean(f"chaos-harness {scenario}"))
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for v in verdicts:
        suite = ET.SubElement(root, "testsuite", name=_clean(f"{scenario}.{v.pipeline}"))
        props = ET.SubElement(suite, "properties")
        for name in ("seed", "command", "run_id"):
            ET.SubElement(props, "property", name=name, value=_clean(meta.get(name, "")))
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for r in v.results:
            failed = _failure(v, r, expects)
            want = _expected_text(v, r, expects)
            name = f"{r.invariant} {r.checker}" if r.invariant else r.checker
            case = ET.SubElement(suite, "testcase", classname=_clean(f"chaos.{scenario}.{v.pipeline}"),
                                 name=_clean(name), time="0")
            counts["tests"] += 1
            if r.validity is Validity.UNKNOWN:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=_clean(f"unknown: {r.message}"[:500]))
            elif failed is not None:
                counts["failures"] += 1
                failure = ET.SubElement(case, "failure", type="unexpected-anomaly",
                                        message=_clean(f"{name}: {failed}: {r.message}"[:500]))
                failure.text = _clean(_detail(r))
            out = ET.SubElement(case, "system-out")
            out.text = _clean(f"{r.validity.value} (expected: {want}): {r.message}")
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
