"""Server-rendered SVG line charts: series in, one ``<figure>`` (an inline ``<svg>`` and an HTML legend)
out, no script. Generic on purpose: x is the position in a list of labels (dates), y any floats; a None
breaks a line. Long series are thinned to ``max_points`` per line keeping each bucket's lowest and
highest point, so a trough or a peak is never dropped."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Okabe-Ito: told apart by most colour-blind readers; each line also has its own dash pattern
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 2", "8 3 2 3", "4 4", "1 3", "10 4")


@dataclass(frozen=True)
class Line:
    """One series: its legend label and its values (one per x label; None: no value there)."""

    label: str
    values: Sequence[float | None]
    color: str = ""
    dash: str | None = None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values covering [low, high] (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        pad = abs(low) * 0.05 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value < high + step * 0.999:
        ticks.append(round(value, 12) + 0.0)  # never -0.0 (a "-0%" label)
        value += step
    return ticks


def thin(values: Sequence[float | None], max_points: int) -> list[tuple[int, float | None]]:
    """``(index, value)`` pairs: all of them when few, else per bucket its lowest and highest point (in
    order) and any None (gaps survive), always the first and the last."""
    n = len(values)
    if n <= max_points:
        return list(enumerate(values))
    size = math.ceil(n / max(max_points // 2, 1))
    out: list[tuple[int, float | None]] = []
    for start in range(0, n, size):
        chunk = [(i, values[i]) for i in range(start, min(start + size, n))]
        present = [(i, v) for i, v in chunk if v is not None]
        keep = {i for i, v in chunk if v is None}
        if present:
            keep.add(min(present, key=lambda p: p[1])[0])
            keep.add(max(present, key=lambda p: p[1])[0])
        out.extend((i, values[i]) for i in sorted(keep))
    if out[0][0] != 0:
        out.insert(0, (0, values[0]))
    if out[-1][0] != n - 1:
        out.append((n - 1, values[n - 1]))
    return out


def _segments(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def _x_tick_indices(n: int, count: int) -> list[int]:
    if n <= 1:
        return [0] if n else []
    count = min(count, n)
    return sorted({round(k * (n - 1) / (count - 1)) for k in range(count)})


def line_chart(
    x_labels: Sequence[str],
    lines: Sequence[Line],
    *,
    title: str,
    y_format: Callable[[float], str] = lambda v: f"{v:g}",
    width: int = 480,
    height: int = 260,
    baseline: float | None = None,
    max_points: int = 300,
    x_ticks: int = 4,
    chart_id: str = "",
) -> Markup:
    """A ``<figure>``: the lines over the x labels, y axis with round ticks, x axis with a few labels,
    an optional ``baseline`` drawn stronger (100 for an index, 0 for a drawdown), and a legend."""
    left, right, top, bottom = 44, 10, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    present = [v for line in lines for v in line.values if v is not None and math.isfinite(v)]
    n = len(x_labels)
    parts = [
        f'<svg class="svg-chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"'
        ' preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if not present or n == 0:
        parts.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" class="empty">No data</text></svg>'
        )
        return Markup(f'<figure class="svg-chart-figure"{_id(chart_id)}>{"".join(parts)}</figure>')
    low, high = min(present), max(present)
    if baseline is not None:
        low, high = min(low, baseline), max(high, baseline)
    ticks = nice_ticks(low, high)
    y_min, y_max = ticks[0], ticks[-1]
    span = (y_max - y_min) or 1.0

    def sx(i: float) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def sy(v: float) -> float:
        return top + plot_h * (1 - (v - y_min) / span)

    parts.append('<g class="grid">')
    for t in ticks:
        y = sy(t)
        strong = ' class="base"' if baseline is not None and abs(t - baseline) < 1e-12 else ""
        parts.append(f'<line{strong} x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_format(t))}</text>')
    if baseline is not None and not any(abs(t - baseline) < 1e-12 for t in ticks):
        y = sy(baseline)
        parts.append(f'<line class="base" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
    for i in _x_tick_indices(n, x_ticks):
        anchor = "start" if i == 0 else "end" if i == n - 1 else "middle"
        parts.append(f'<text x="{sx(i):.1f}" y="{height - 6}" text-anchor="{anchor}">{escape(x_labels[i])}</text>')
    parts.append("</g>")
    for k, line in enumerate(lines):
        color = line.color or PALETTE[k % len(PALETTE)]
        dash = DASHES[k % len(DASHES)] if line.dash is None else line.dash
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        points = [
            (sx(i), None if v is None or not math.isfinite(v) else sy(v)) for i, v in thin(line.values, max_points)
        ]
        parts.append(f'<g class="line" data-series="{k}" stroke="{color}"{dash_attr} fill="none">')
        for run in _segments(points):
            if len(run) == 1:
                x, y = run[0]
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{color}" stroke="none"/>')
            else:
                coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(f'<polyline points="{coords}" vector-effect="non-scaling-stroke"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup(f'<figure class="svg-chart-figure"{_id(chart_id)}>{"".join(parts)}{legend(lines)}</figure>')


def legend(lines: Sequence[Line]) -> Markup:
    """The legend of :func:`line_chart`'s lines: a list of swatches (same colour and dash) and labels."""
    items = []
    for k, line in enumerate(lines):
        color = line.color or PALETTE[k % len(PALETTE)]
        dash = DASHES[k % len(DASHES)] if line.dash is None else line.dash
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        swatch = (
            f'<svg class="swatch" width="24" height="10" viewBox="0 0 24 10" aria-hidden="true">'
            f'<line x1="0" x2="24" y1="5" y2="5" stroke="{color}" stroke-width="2.5"{dash_attr}/></svg>'
        )
        items.append(f"<li>{swatch}{escape(line.label)}</li>")
    return Markup(f'<figcaption><ul class="chart-legend">{"".join(items)}</ul></figcaption>')


def _id(chart_id: str) -> str:
    return f' id="{escape(chart_id)}"' if chart_id else ""
