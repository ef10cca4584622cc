"""Time-series charts as inline SVG, drawn in Python: no library, no network, no script needed.

A chart is lines over time (seconds since the pipeline started) with the fault windows
shaded behind them. Every piece of text is escaped; the numbers for the hover readout
go into a ``data-series`` attribute (numbers and escaped names only), which the report's
small inline script reads.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.score import Point, Window

__all__ = ["Line", "line_chart"]

WIDTH, HEIGHT = 760, 210
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 26, 30


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    points: Sequence[Point]
    css: str  # "s1", "s2": colour classes defined in report.css


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(1, ticks)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}" if abs(v) >= 0.01 else f"{v:.0e}"


def line_chart(chart_id: str, title: str, unit: str, lines: Sequence[Line], windows: Sequence[Window],
               t_max: float) -> str:
    """One SVG chart. ``t_max`` is the right edge in seconds (shared by a pipeline's charts)."""
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for line in lines for _, v in line.points if v is not None]
    y_max = max(values, default=0.0)
    y_step = _nice_step(y_max * 1.1 if y_max > 0 else 1.0, 4)
    y_top = y_step * max(1, math.ceil((y_max * 1.05) / y_step)) if y_max > 0 else y_step * 4
    t_max = max(t_max, 1.0)

    def x(t: float) -> float:
        return LEFT + pw * min(max(t, 0.0), t_max) / t_max

    def y(v: float) -> float:
        return TOP + ph * (1 - min(v, y_top) / y_top)

    parts = [f'<svg class="chart" id="{_e(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{_e(title)}" data-left="{LEFT}" data-width="{pw}" data-tmax="{t_max:g}" '
             f'data-unit="{_e(unit)}" data-series="{_e(_series_json(lines))}">',
             f"<title>{_e(title)}</title>",
             f'<text class="ctitle" x="{LEFT}" y="16">{_e(title)}</text>']
    for w in windows:
        x0, x1 = x(w.start_s), x(w.end_s if w.end_s is not None else t_max)
        label = w.label + ("" if w.injected else " (injection failed)")
        parts.append(f'<rect class="fault{"" if w.injected else " failed"}" x="{x0:.1f}" y="{TOP}" '
                     f'width="{max(1.0, x1 - x0):.1f}" height="{ph}"><title>{_e(label)}: '
                     f'{w.start_s:.1f}s - {"never healed" if w.end_s is None else f"{w.end_s:.1f}s"}</title></rect>')
    # Axes and grid.
    v = 0.0
    while v <= y_top + 1e-9:
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_e(_fmt(v))}</text>')
        v += y_step
    t_step = _nice_step(t_max, 8)
    t = 0.0
    while t <= t_max + 1e-9:
        parts.append(f'<text class="tick" x="{x(t):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{_e(_fmt(t))}s</text>')
        t += t_step
    parts.append(f'<text class="tick unit" x="8" y="{TOP - 8}">{_e(unit)}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT + pw}" y1="{TOP + ph}" y2="{TOP + ph}"/>'
                 f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + ph}"/>')
    drawn = 0
    for line in lines:
        for segment in _segments(line.points):
            pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in segment)
            if len(segment) == 1:
                (t0, v0), = segment
                parts.append(f'<circle class="{line.css}" cx="{x(t0):.1f}" cy="{y(v0):.1f}" r="2"/>')
            else:
                parts.append(f'<polyline class="line {line.css}" points="{pts}"/>')
            drawn += 1
    if not drawn:
        parts.append(f'<text class="empty" x="{LEFT + pw / 2:.0f}" y="{TOP + ph / 2:.0f}" text-anchor="middle">'
                     "not measured in this run</text>")
    lx: float = LEFT + pw
    for line in reversed(lines):
        label = _e(line.name)
        lx -= 26 + 6.5 * len(line.name)  # ~6.5 px per character at the legend's 11 px
        parts.append(f'<rect class="key {line.css}" x="{lx:.0f}" y="8" width="10" height="10"/>'
                     f'<text class="legend" x="{lx + 13:.0f}" y="17">{label}</text>')
    parts.append(f'<line class="cursor" x1="-10" x2="-10" y1="{TOP}" y2="{TOP + ph}"/>'
                 f'<text class="readout" x="{LEFT + 6}" y="{TOP + 14}"></text>')
    parts.append("</svg>")
    return "".join(parts)


def _segments(points: Sequence[Point]) -> list[list[tuple[float, float]]]:
    out: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for t, v in points:
        if v is None:
            if current:
                out.append(current)
            current = []
        else:
            current.append((t, v))
    if current:
        out.append(current)
    return out


def _series_json(lines: Sequence[Line]) -> str:
    # Numbers only (and our own series names): safe inside an escaped attribute.
    return json.dumps([[line.name, [[t, v] for t, v in line.points]] for line in lines], separators=(",", ":"))
