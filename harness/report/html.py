"""report.html: one self-contained, offline resilience report per run.

What it shows: the comparison table (one row per pipeline), the score's terms, per
pipeline the throughput, latency and lag charts with fault windows shaded, every
checker result, and for each violated invariant its examples and the full event chain
of one broken order; then the scenario, seed, versions and the command that reproduces
the run.

Everything from the run is untrusted text (event payloads, DLQ reasons, error messages):
it reaches the page only through ``html.escape``; the embedded JSON sits in a
``type="application/json"`` block with ``<``, ``>`` and ``&`` escaped; a Content Security
Policy allows no network at all and only the report's own script (by hash), so even a
missed escape could not run a script. The templates (HTML skeleton, CSS, JS) live in
``templates/`` beside this module and are inlined. The renderer only reads verdicts.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from string import Template

from harness.checkers.anomaly import KIND_INFO
from harness.checkers.base import CheckResult, Validity
from harness.checkers.counts import DuplicateCounts, read
from harness.expect import Expect, expectations_from_json
from harness.report.charts import Line, line_chart
from harness.report.results import finite
from harness.scenario import INVARIANTS
from harness.score import LAG_BUDGET_S, LATENCY_BUDGET_S, RECOVERY_BUDGET_S, WEIGHTS, Measurements, Score
from harness.scoring import Outcome, PipelineVerdict

__all__ = ["TEMPLATES", "embed_json", "render_report"]

TEMPLATES = Path(__file__).with_name("templates")

_OUTCOME_TEXT = {Outcome.MET: "as expected", Outcome.UNEXPECTED: "UNEXPECTED", Outcome.INCONCLUSIVE: "inconclusive"}
_EXIT_TEXT = {0: "0: all expectations met", 1: "1: an anomaly the scenario did not expect, or did not explain",
              2: "2: inconclusive (vacuous, or a fault not injected)"}
_MAX_CHAIN_ROWS = 200
_MAX_CHAINS = 2  # chains shown per violated invariant; results.json has every example's chain
_MAX_VALUE = 300  # characters of one field (an event payload can be 2000) before it is cut


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def embed_json(document: object) -> str:
    """JSON safe inside <script type="application/json">: no '</script>', no '<!--', no line separators."""
    text = json.dumps(finite(document), separators=(",", ":"), default=str, allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _money(cents: int | None) -> str:
    return "-" if cents is None else f"${cents / 100:,.2f}"


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _badge(text: str, css: str) -> str:
    return f'<span class="badge {_e(css)}">{_e(text)}</span>'


def _score_text(s: Score | None) -> str:
    if s is None:
        return "-"
    if s.value is None:
        return _badge("n/a", "inconclusive")
    return f'<span class="score">{s.value:g}</span>'


def render_report(meta: Mapping[str, object], verdicts: Sequence[PipelineVerdict],
                  measurements: Mapping[str, Measurements], scores: Mapping[str, Score],
                  results: Mapping[str, object], harness_version: str = "dev") -> str:
    script = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
           "base-uri 'none'; form-action 'none'")
    scenario = str(meta.get("scenario") or "scenario")
    expected = _expectations(meta)
    page = Template((TEMPLATES / "report.html").read_text(encoding="utf-8"))
    return page.substitute(
        csp=_e(csp),
        harness_version=_e(harness_version),
        title=_e(f"chaos-harness: {scenario} (seed {meta.get('seed')})"),
        style=(TEMPLATES / "report.css").read_text(encoding="utf-8"),
        heading=_e(f"Resilience report: {scenario}"),
        description=_e(meta.get("description") or ""),
        run_facts=_run_facts(meta, results),
        comparison=_comparison(verdicts, measurements, scores),
        score_terms=_score_terms(verdicts, scores),
        pipelines=_story_and_lag(results) + "\n".join(
            _pipeline_section(v, measurements.get(v.pipeline), scores.get(v.pipeline), expected) for v in verdicts),
        run_details=_run_details(meta),
        generated=_e(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
        results_json=embed_json(_without_chains(results)),
        script=script,
    )


def _story_and_lag(results: Mapping[str, object]) -> str:
    """The case study's "article said / we measured" table and every lag alert, read from results.json."""
    out = []
    story = results.get("story")
    if isinstance(story, Mapping):
        rows = "".join(f"<tr><th>{_e(c.get('what'))}</th><td>{_e(c.get('article'))}</td><td>{_e(c.get('measured'))}</td></tr>"
                       for c in story.get("claims") or () if isinstance(c, Mapping))
        note = f"<p class=muted>{_e(story.get('note'))}</p>" if story.get("note") else ""
        out.append(f'<section id="story"><h2>{_e(story.get("title"))}</h2><table id="story-table"><thead><tr><th></th>'
                   f"<th>the article said</th><th>we measured</th></tr></thead><tbody>{rows}</tbody></table>{note}</section>")
    alerts = [a for p in results.get("pipelines") or () if isinstance(p, Mapping)  # type: ignore[attr-defined]
              for a in p.get("lag_alerts") or () if isinstance(a, Mapping)]
    if alerts:
        def cell(value: object, unit: str = "s") -> str:
            return "-" if value is None else f"{value}{unit}" if unit else str(value)

        rows = "".join(
            f"<tr{' class=bad' if a.get('breached') else ''}><td>{_e(a.get('pipeline'))}</td><td>{_e(a.get('group'))}</td>"
            f"<td class=num>{_e(a.get('threshold'))}</td><td>{'ALERT' if a.get('breached') else 'ok'}</td>"
            f"<td class=num>{_e(cell(a.get('first_breach_s')))}</td><td class=num>{_e(cell(a.get('breached_for_s')))}</td>"
            f"<td class=num>{_e(a.get('peak'))} (p{_e(cell(a.get('peak_partition'), ''))}) at {_e(cell(a.get('peak_at_s')))}</td>"
            f"<td class=num>{_e(cell(a.get('trend_per_s'), '/s'))}</td><td class=num>{_e(cell(a.get('projected_breach_s')))}</td></tr>"
            for a in alerts)
        out.append('<section id="lag-alerts"><h2>Consumer lag alerts</h2><table id="lag-alerts-table"><thead><tr>'
                   "<th>pipeline</th><th>group</th><th class=num>threshold (records)</th><th>state</th>"
                   "<th class=num>first breach</th><th class=num>above for</th><th class=num>peak (partition) at</th>"
                   "<th class=num>trend</th><th class=num>would breach at</th></tr></thead>"
                   f"<tbody>{rows}</tbody></table><p class=muted>Times are seconds after traffic started; the trend is "
                   "the lag's growth over the last 5 s of traffic.</p></section>")
    return "\n".join(out)


def _without_chains(results: Mapping[str, object]) -> object:
    """The embedded copy keeps the report small: chains are replaced by their length (results.json has them)."""
    def strip(example: object) -> object:
        if isinstance(example, Mapping) and isinstance(example.get("chain"), list):
            return {**{k: v for k, v in example.items() if k != "chain"}, "chain_steps": len(example["chain"])}
        return example

    pipelines = []
    for p in results.get("pipelines") or ():  # type: ignore[union-attr, attr-defined]
        p = dict(p)  # type: ignore[arg-type]
        p["results"] = [{**r, "examples": [strip(e) for e in r.get("examples") or ()]} for r in p.get("results") or ()]
        pipelines.append(p)
    return {**results, "pipelines": pipelines}


def _expectations(meta: Mapping[str, object]) -> tuple[Expect, ...]:
    return expectations_from_json(meta.get("expect") or ())  # type: ignore[arg-type]


def _run_facts(meta: Mapping[str, object], results: Mapping[str, object]) -> str:
    code = results.get("exit_code")
    rows = [("seed", meta.get("seed")), ("run", meta.get("run_id")), ("started", meta.get("started_at")),
            ("pipelines", ", ".join(str(p) for p in meta.get("pipelines") or ())),  # type: ignore[union-attr, attr-defined]
            ("exit code", _EXIT_TEXT.get(code, code))]  # type: ignore[arg-type, call-overload]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return (f'<table class="facts">{body}</table>'
            f'<p>Reproduce this run:</p><pre id="reproduce"><code>{_e(meta.get("command") or "")}</code></pre>')


def _comparison(verdicts: Sequence[PipelineVerdict], ms: Mapping[str, Measurements], scores: Mapping[str, Score]) -> str:
    head = ("<tr><th>pipeline</th><th>verdict</th><th class=num>score</th><th class=num>reliability</th>"
            "<th class=num>orders lost<br>(value)</th><th class=num>duplicate effects<br>(value charged twice)</th>"
            "<th class=num>ordering<br>violations</th><th class=num>recovery</th>"
            "<th class=num>p99 latency</th><th class=num>peak lag</th><th class=num>throughput<br>dip in faults</th></tr>")
    rows = []
    for v in verdicts:
        m = ms.get(v.pipeline) or Measurements(v.pipeline)
        s = scores.get(v.pipeline)
        lost_cls = ' bad' if m.lost_orders else ''
        dup_cls = ' bad' if m.duplicate_effects else ''
        recovery = "never" if m.recovered is False else _secs(m.recovery_s)
        if m.dead_processes:
            recovery += f'<br><span class="muted">{m.dead_processes} process(es) dead at the end</span>'
        acked = (f'<br><span class="muted">+{m.acknowledged_then_missing} acknowledged then missing</span>'
                 if m.acknowledged_then_missing else "")
        early = (f'<br><span class="muted">{m.shipped_before_paid} shipped before paid</span>'
                 if m.shipped_before_paid else "")
        lat = _secs(m.latency_p99_s) + (f'<br><span class="muted">{_e(m.latency_kind)}</span>' if m.latency_p99_s is not None else "")
        lag = _n(m.peak_lag) + (f'<br><span class="muted">{m.peak_lag_s:.1f} s of traffic</span>' if m.peak_lag_s is not None else "")
        if m.worst_group is not None and m.worst_group != "all":
            lag += f'<br><span class="muted">worst group: {_e(m.worst_group)}</span>'
        rows.append(
            f"<tr><th><a href=\"#p-{_e(v.pipeline)}\">{_e(v.pipeline)}</a></th>"
            f"<td>{_badge(_OUTCOME_TEXT[v.outcome], v.outcome.value)}<br>{_badge(v.validity.value, v.validity.value)}</td>"
            f"<td class=num>{_score_text(s)}</td><td class=num>{_pct(s.reliability if s else None)}</td>"
            f"<td class='num{lost_cls}'>{_n(m.lost_orders)} <span class=muted>of {_n(m.accepted_orders)}</span>"
            f"<br>{_money(m.lost_cents)}{acked}</td>"
            f"<td class='num{dup_cls}'>{_n(m.duplicate_effects)}<br>{_money(m.duplicate_cents)}</td>"
            f"<td class=num>{_n(m.ordering_violations)}{early}</td><td class=num>{recovery}</td>"
            f"<td class=num>{lat}</td><td class=num>{lag}</td>"
            f"<td class=num>{_pct(m.throughput_dip)}</td></tr>")
    return (f'<div class="wide"><table id="comparison-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'
            '<p class="muted">reliability: share of acknowledged orders that got every required effect. '
            "verdict: the outcome against the scenario's expectations, then what occurred. "
            "peak lag: publish backlog + consumer lag, in records (and in seconds of normal traffic).</p>")


def _score_terms(verdicts: Sequence[PipelineVerdict], scores: Mapping[str, Score]) -> str:
    rows = []
    for v in verdicts:
        s = scores.get(v.pipeline)
        if s is None:
            continue
        cells = "".join(f"<td class=num>{'-' if k not in s.penalties else f'-{s.penalties[k]:.1f}'}</td>" for k in WEIGHTS)
        rows.append(f"<tr><th>{_e(v.pipeline)}</th><td>{_badge(s.gate, s.gate)} {_e(s.why)}</td>{cells}"
                    f"<td>{_e(', '.join(s.unmeasured) or '-')}</td><td class=num>{_score_text(s)}</td></tr>")
    head = "".join(f"<th class=num>{_e(k.replace('_', ' '))} (max {w:g})</th>" for k, w in WEIGHTS.items())
    return ("<h3>How the score was reached</h3>"
            "<p class=muted>Safety invariants I1-I5 are gates: any of them broken scores 0; any result unknown "
            f"gives no score. Otherwise 100 minus: recovery time (full at {RECOVERY_BUDGET_S:g} s or never), "
            f"p99 latency (full at {LATENCY_BUDGET_S:g} s), throughput dip during faults (full at 100%), "
            f"peak lag in seconds of normal traffic (full at {LAG_BUDGET_S:g} s). See README, Scoring.</p>"
            f"<table id=\"score-terms\"><thead><tr><th>pipeline</th><th>gate</th>{head}<th>not measured</th>"
            f"<th class=num>score</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _pipeline_section(v: PipelineVerdict, m: Measurements | None, s: Score | None,
                      expected: Sequence[Expect]) -> str:
    p = v.pipeline
    out = [f'<section class="pipeline" id="p-{_e(p)}">',
           f"<h2>{_e(p)} {_badge(_OUTCOME_TEXT[v.outcome], v.outcome.value)} "
           f"<span class=muted>score</span> {_score_text(s)}</h2>"]
    if v.reasons:
        out.append("<ul class=reasons>" + "".join(f"<li>{_e(r)}</li>" for r in v.reasons) + "</ul>")
    if m is not None:
        out.append(_charts(p, m))
    out.append(_results_table(v, expected))
    out.append(_anomaly_table(v))
    for r in v.results:
        if r.validity is Validity.INVALID:
            out.append(_violation(p, r))
    out.append("</section>")
    return "\n".join(out)


def _charts(pipeline: str, m: Measurements) -> str:
    series = [m.throughput, m.errors, m.latency_p50, m.latency_p99, m.consumer_lag, m.publish_backlog]
    t_max = max((pts[-1][0] for pts in series if pts), default=1.0)
    for w in m.windows:
        t_max = max(t_max, w.end_s or w.start_s)
    lat_title = {"end-to-end": "End-to-end latency (request to effect), by request time",
                 "client": "Client latency (request to acknowledgement), by request time"}.get(m.latency_kind, "Latency")
    charts = [
        line_chart(f"chart-{pipeline}-throughput", "Throughput (client ops per second)", "ops/s",
                   [Line("ok", m.throughput, "s1"), Line("fail+unknown", m.errors, "s2")], m.windows, t_max),
        line_chart(f"chart-{pipeline}-latency", lat_title, "seconds",
                   [Line("p50", m.latency_p50, "s1"), Line("p99", m.latency_p99, "s2")], m.windows, t_max),
        line_chart(f"chart-{pipeline}-lag", "Lag (records not yet applied)", "records",
                   [Line("consumer lag", m.consumer_lag, "s1"), Line("publish backlog", m.publish_backlog, "s2")],
                   m.windows, t_max),
    ]
    legend = "; ".join(f"{w.label} {w.start_s:.1f}s-{'never healed' if w.end_s is None else f'{w.end_s:.1f}s'}"
                       for w in m.windows) or "no fault windows"
    return (f'<div class="charts">{"".join(charts)}</div>'
            f'<p class=muted>Shaded: fault windows ({_e(legend)}). Time is seconds since this pipeline started.</p>')


def _results_table(v: PipelineVerdict, expected: Sequence[Expect]) -> str:
    rows = []
    mine = [e for e in expected if e.pipeline == v.pipeline]
    for r in v.results:
        wants = [(k, e.why, k in e.anomalies) for e in mine for k in e.kinds if k.invariant == r.invariant]
        want = ", ".join(f"{k.value}{'' if required else ' (may)'}" for k, _, required in wants) or "no anomaly"
        why = "; ".join(dict.fromkeys(w for _, w, _ in wants))
        rows.append(f"<tr><td>{_e(r.invariant or '-')}</td><td>{_e(r.checker)}</td>"
                    f"<td>{_badge(r.validity.value, r.validity.value)}</td>"
                    f"<td>{_e(want)}{f' <span class=muted>({_e(why)})</span>' if why else ''}</td>"
                    f"<td>{_e(r.message)}</td></tr>")
    checked = {r.invariant for r in v.results}
    missing = [f"{i} {name}" for i, name in INVARIANTS.items() if i not in checked]
    note = f"<p class=muted>Not checked in this run: {_e(', '.join(missing))}.</p>" if missing else ""
    return ("<h3>Invariants</h3><table class=results><thead><tr><th>id</th><th>checker</th><th>occurred</th>"
            f"<th>expected</th><th>evidence</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{note}")


def _anomaly_table(v: PipelineVerdict) -> str:
    """Every anomaly kind seen, with how many an injected fault (or the planted defect) explains,
    and the redelivery the consumers absorbed: shown whether or not anything went wrong."""
    i2 = v.result("exactly-once-effect")
    c = read(i2, DuplicateCounts)
    amp = ""
    if i2 is not None and c is not None:
        windows = ", ".join(f"{k.split(':', 1)[1]} {n}" for k, n in i2.counts.items() if k.startswith("redelivered:"))
        budget = c.redelivery_budget
        amp = (f'<p id="amplification-{_e(v.pipeline)}">Redelivery amplification: {c.redelivered} extra copies on '
               f'the topic ({c.amplification:.3f} per event), {c.absorbed} absorbed by the consumers; '
               f'{c.injected_copies} injected by a fault; by fault window: {_e(windows or "none")}; '
               f'{c.amplification_counted} outside crash recovery ({c.amplification_counted_ratio:.3f} per event). '
               f'{"Budget " + _e(budget) + " per event." if budget is not None else "No budget declared."}</p>')
    if not v.tallies:
        return f"<h3>Anomalies</h3><p>None.</p>{amp}"
    rows = "".join(
        f"<tr><td>{_e(t.kind.value)}</td><td>{_e(t.kind.invariant)}</td><td class=num>{t.total}</td>"
        f"<td class=num>{t.explained}</td><td class='num{' bad' if t.unexplained else ''}'>{t.unexplained}</td>"
        f"<td>{'yes' if t.expected else '<b>no</b>'}</td><td class=muted>{_e(KIND_INFO[t.kind].meaning)}</td></tr>"
        for t in v.tallies)
    causes = ", ".join(f"{_e(c)} {n}" for c, n in sorted(_cause_counts(v).items())) or "none"
    return (f'<h3>Anomalies</h3><table class=results id="anomalies-{_e(v.pipeline)}"><thead><tr><th>kind</th>'
            "<th>inv.</th><th class=num>seen</th><th class=num>explained</th><th class=num>unexplained</th>"
            f"<th>expected</th><th>meaning</th></tr></thead><tbody>{rows}</tbody></table>"
            f"<p class=muted>Explained by: {causes}. {v.explained} explained, {v.unexplained} unexplained.</p>{amp}")


def _cause_counts(v: PipelineVerdict) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in v.attributions:
        if a.cause is not None:
            out[a.cause] = out.get(a.cause, 0) + 1
    return out


def _value(value: object) -> str:
    text = json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)
    if len(text) > _MAX_VALUE:
        return f"{text[:_MAX_VALUE]}... ({len(text) - _MAX_VALUE} more characters in results.json)"
    return text


def _violation(pipeline: str, r: CheckResult) -> str:
    out = [f'<div class="violation" id="v-{_e(pipeline)}-{_e(r.invariant or r.checker)}">',
           f"<h3>{_e(r.invariant or '')} {_e(r.checker)}: violated</h3><p>{_e(r.message)}</p>"]
    if r.counts:
        out.append("<p class=muted>" + _e(", ".join(f"{k} {v}" for k, v in r.counts.items())) + "</p>")
    if r.examples:
        keys = list(dict.fromkeys(k for ex in r.examples for k in ex if k != "chain"))
        head = "".join(f"<th>{_e(k)}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{_e(_value(ex.get(k, '')))}</td>" for k in keys) + "</tr>"
                       for ex in r.examples)
        out.append(f"<table class=examples><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        for i, ex in enumerate(r.examples[:_MAX_CHAINS]):
            chain = ex.get("chain")
            if not isinstance(chain, list) or not chain:
                continue
            subject = ex.get("order_id") or ex.get("key") or f"example {i + 1}"
            out.append(f"<details{' open' if i == 0 else ''}><summary>Event chain of order {_e(subject)} "
                       f"({len(chain)} steps)</summary>{_chain(chain, ex)}</details>")
    out.append("</div>")
    return "\n".join(out)


def _chain(chain: list[object], example: Mapping[str, object]) -> str:
    rows = []
    for step in chain[:_MAX_CHAIN_ROWS]:
        if not isinstance(step, Mapping):
            rows.append(f"<tr><td></td><td>{_e(_value(step))}</td><td></td></tr>")
            continue
        t = step.get("time")
        rest = "".join(f'<span class="kv">{_e(k)}=<b>{_e(_value(v))}</b></span> ' for k, v in step.items()
                       if k not in ("time", "stage"))
        rows.append(f"<tr><td>{'' if t is None else _e(f'{t}s')}</td><td>{_e(step.get('stage', ''))}</td>"
                    f"<td>{rest}</td></tr>")
    missing = example.get("missing")
    if missing:
        rows.append(f'<tr class="gap"><td></td><td class="bad">missing</td><td>{_e(_value(missing))}</td></tr>')
    cut = f"<p class=muted>{len(chain) - _MAX_CHAIN_ROWS} more steps in results.json</p>" if len(chain) > _MAX_CHAIN_ROWS else ""
    return ("<table class=chain><thead><tr><th>time</th><th>stage</th><th>details</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{cut}")


def _run_details(meta: Mapping[str, object]) -> str:
    out = []
    facts = [("scenario", meta.get("scenario")), ("description", meta.get("description")),
             ("seed", meta.get("seed")), ("duration", f"{meta.get('duration_s')} s of traffic per pipeline"),
             ("run id", meta.get("run_id")), ("started", meta.get("started_at")),
             ("argv", " ".join(str(a) for a in meta.get("argv") or ()))]  # type: ignore[union-attr, attr-defined]
    out.append('<table class="facts">' + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
               + "</table>")
    out.append(f'<p>Reproduce:</p><pre><code>{_e(meta.get("command") or "")}</code></pre>')
    faults = meta.get("faults") or []
    if faults:
        out.append("<h3>Faults</h3><table><thead><tr><th>kind</th><th>link</th><th>at (fraction)</th>"
                   "<th>for</th></tr></thead><tbody>" + "".join(
                       f"<tr><td>{_e(f.get('kind'))}</td><td>{_e(f.get('link'))}</td><td>{_e(f.get('at'))}</td>"
                       f"<td>{_e(f.get('for_s'))} s</td></tr>" for f in faults if isinstance(f, Mapping))  # type: ignore[union-attr, attr-defined]
                   + "</tbody></table>")
    expect = _expectations(meta)
    if expect:
        out.append("<h3>Expectations</h3><table><thead><tr><th>pipeline</th><th>anomalies (required)</th>"
                   "<th>may</th><th>explained by</th><th>why</th></tr></thead><tbody>" + "".join(
                       f"<tr><td>{_e(x.pipeline)}</td><td>{_e(', '.join(k.value for k in x.anomalies))}</td>"
                       f"<td>{_e(', '.join(k.value for k in x.may))}</td><td>{_e(x.by.value)}</td>"
                       f"<td>{_e(x.why)}</td></tr>" for x in expect)
                   + "</tbody></table>")
    for title, key in (("Versions", "versions"), ("Machine", "machine")):
        table = meta.get(key)
        if isinstance(table, Mapping) and table:
            out.append(f"<h3>{title}</h3><table class=facts>" + "".join(
                f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in table.items()) + "</table>")
    return "\n".join(out)
