"""Inline SVG charts for the HTML report: no JavaScript, no fonts or files fetched, so a report
opens anywhere, offline, and prints. Two kinds: lines over run time, and a percentile curve
(HdrHistogram's plot: x is 1 / (1 - q) on a log axis, so the tail gets the room).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 920, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 36
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass(frozen=True)
class Line:
    """One series: y per x (None leaves a gap)."""

    name: str
    y: Sequence[float | None]
    dashed: bool = False


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / max(ticks, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _fmt_time(s: float) -> str:
    if s >= 7200:
        return f"{s / 3600:.4g}h"
    if s >= 120:
        return f"{int(s // 60)}:{round(s % 60):02d}"
    return f"{s:g}s"


def _frame(title: str, body: list[str], legend: Sequence[tuple[str, str, bool]]) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f'<text x="{LEFT}" y="16" class="ct">{escape(title)}</text>',
        *body,
    ]
    x = WIDTH - RIGHT
    for name, color, dashed in reversed(legend):
        w = 7 * len(name) + 26
        x -= w
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(
            f'<line x1="{x}" y1="12" x2="{x + 16}" y2="12" stroke="{color}" '
            f'stroke-width="2"{dash}/>'
            f'<text x="{x + 20}" y="16" class="lg">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _polylines(
    xs: Sequence[float],
    lines: Sequence[Line],
    sx: object,
    sy: object,
) -> tuple[list[str], list[tuple[str, str, bool]]]:
    body, legend = [], []
    for k, line in enumerate(lines):
        color = PALETTE[k % len(PALETTE)]
        legend.append((line.name, color, line.dashed))
        runs: list[list[str]] = [[]]
        for x, y in zip(xs, line.y, strict=True):
            if y is None or (isinstance(y, float) and not math.isfinite(y)):
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{sx(x):.1f},{sy(y):.1f}")  # type: ignore[operator]
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        for pts in runs:
            if len(pts) == 1:
                cx, cy = pts[0].split(",")
                body.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            elif pts:
                body.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.6"{dash} '
                    f'points="{" ".join(pts)}"/>'
                )
    return body, legend


def time_chart(
    title: str,
    x_s: Sequence[float],
    lines: Sequence[Line],
    unit: str,
    log_y: bool = False,
    x_fmt: Callable[[float], str] | None = None,
    marks: Sequence[tuple[float, str]] = (),
    phases: Sequence[tuple[float, str]] = (),
    limits: Sequence[tuple[float, str]] = (),
) -> str:
    """Lines over run time (x in seconds since t=0; or any x, labelled by `x_fmt`); y in
    `unit`, linear or log10; `marks`: labelled vertical lines at x (a knee, an event);
    `phases`: where each phase begins (x, name), drawn quietly; `limits`: horizontal lines at
    y (an SLO's threshold, labelled), inside the y range."""
    fmt_x = x_fmt or _fmt_time
    values = [v for ln in lines for v in ln.y if v is not None and math.isfinite(v)]
    if not x_s or not values:
        return f'<p class="empty">{escape(title)}: no data</p>'
    values += [y for y, _ in limits if math.isfinite(y) and (y > 0 or not log_y)]
    x0, x1 = min(x_s), max(x_s)
    x1 = x1 if x1 > x0 else x0 + 1
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if log_y:
        pos = [v for v in values if v > 0]
        lo = 10 ** math.floor(math.log10(min(pos))) if pos else 1.0
        hi = 10 ** math.ceil(math.log10(max(pos))) if pos else 10.0
        hi = hi if hi > lo else lo * 10

        def ty(v: float) -> float:
            return math.log10(max(v, lo))

        y0, y1 = math.log10(lo), math.log10(hi)
        yticks = [10.0**e for e in range(int(y0), int(y1) + 1)]
    else:
        lo, hi = 0.0, max(values) * 1.05 or 1.0
        step = _nice_step(hi)
        hi = math.ceil(hi / step) * step

        def ty(v: float) -> float:
            return v

        y0, y1 = 0.0, hi
        yticks = [i * step for i in range(round(hi / step) + 1)]

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return TOP + ph - (ty(y) - y0) / (y1 - y0) * ph

    body = [f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="pl"/>']
    for t in yticks:
        y = sy(t)
        body.append(
            f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" class="gr"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="ax" text-anchor="end">'
            f"{_fmt_tick(t)}</text>"
        )
    xstep = _nice_step(x1 - x0, 8)
    t = math.ceil(x0 / xstep) * xstep
    while t <= x1 + 1e-9:
        x = sx(t)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + ph}" class="gr"/>'
            f'<text x="{x:.1f}" y="{TOP + ph + 16}" class="ax" text-anchor="middle">'
            f"{fmt_x(t)}</text>"
        )
        t += xstep
    for at, label in phases:
        if x0 < at < x1:
            x = sx(at)
            body.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + ph}" stroke="#7f8c8d" '
                f'stroke-width="1" stroke-dasharray="6 4" class="phase"/>'
                f'<text x="{x + 3:.1f}" y="{TOP + ph - 4}" class="ax">{escape(label)}</text>'
            )
    for level, label in limits:
        if not math.isfinite(level) or (log_y and level <= 0):
            continue
        y = sy(level)
        body.append(
            f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c0392b" '
            f'stroke-width="1.2" stroke-dasharray="2 3" class="limit"/>'
            f'<text x="{LEFT + pw - 4}" y="{y - 4:.1f}" class="ax" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    for at, label in marks:
        x = sx(at)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + ph}" stroke="#c0392b" '
            f'stroke-width="1.5" stroke-dasharray="3 3"/>'
            f'<text x="{x + 4:.1f}" y="{TOP + 12}" class="ax">{escape(label)}</text>'
        )
    body.append(
        f'<text x="14" y="{TOP + ph / 2}" class="ax" transform="rotate(-90 14 {TOP + ph / 2})" '
        f'text-anchor="middle">{escape(unit)}</text>'
    )
    lines_svg, legend = _polylines(x_s, lines, sx, sy)
    return _frame(title, body + lines_svg, legend)


def percentile_chart(title: str, quantiles: Sequence[float], lines: Sequence[Line]) -> str:
    """Value (ms) against percentile, x = log10(1 / (1 - q)); q = 1 (the max) drawn last."""
    tail = [q for q in quantiles if q < 1.0]
    if not tail:
        return f'<p class="empty">{escape(title)}: no data</p>'
    xmax = math.log10(1.0 / (1.0 - max(tail))) + 0.5

    def xpos(q: float) -> float:
        return xmax if q >= 1.0 else math.log10(1.0 / (1.0 - q))

    xs = [xpos(q) for q in quantiles]
    values = [v for ln in lines for v in ln.y if v is not None]
    if not values:
        return f'<p class="empty">{escape(title)}: no data</p>'
    hi = max(values) * 1.05 or 1.0
    step = _nice_step(hi)
    hi = math.ceil(hi / step) * step
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + x / xmax * pw

    def sy(y: float) -> float:
        return TOP + ph - y / hi * ph

    body = [f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="pl"/>']
    for i in range(round(hi / step) + 1):
        y = sy(i * step)
        body.append(
            f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" class="gr"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="ax" text-anchor="end">'
            f"{_fmt_tick(i * step)}</text>"
        )
    for label, q in (
        ("0%", 0.0),
        ("90%", 0.9),
        ("99%", 0.99),
        ("99.9%", 0.999),
        ("99.99%", 0.9999),
        ("99.999%", 0.99999),
        ("max", 1.0),
    ):
        x = sx(xpos(q))
        if xpos(q) > xmax + 1e-9:
            continue
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + ph}" class="gr"/>'
            f'<text x="{x:.1f}" y="{TOP + ph + 16}" class="ax" text-anchor="middle">{label}</text>'
        )
    body.append(
        f'<text x="14" y="{TOP + ph / 2}" class="ax" transform="rotate(-90 14 {TOP + ph / 2})" '
        f'text-anchor="middle">ms</text>'
    )
    lines_svg, legend = _polylines(xs, lines, sx, sy)
    return _frame(title, body + lines_svg, legend)
