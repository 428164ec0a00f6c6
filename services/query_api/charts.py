"""The strategy page's charts, drawn on the server as SVG: no chart library, no script needed to see them.

Each line chart is an SVG in a 1000 × 1000 box stretched to its container (``preserveAspectRatio="none"``,
strokes that do not scale), with its axis labels in HTML positioned in per cent, so it fits any width
without distorted text; the x axis is time (a day's distance from the first NAV day). The monthly
returns are an HTML table coloured like a heatmap. ``static/app.js`` (a few kB) adds the hover read-out
from the page's data island; without it the charts are all there. Chart coordinates are floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

BOX = 1000  # the SVG's user units, both ways
NO_DATA = "Not enough history to draw this yet."
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# the heatmap's scale: loss red, white at 0, gain green (the colours plotly drew)
LOSS_RGB, MID_RGB, GAIN_RGB = (0xB9, 0x1C, 0x1C), (0xF9, 0xFA, 0xFB), (0x15, 0x80, 0x3D)


@dataclass(frozen=True)
class Line:
    """One series of a panel: ``key`` names it in the data island (the hover read-out's source)."""

    key: str
    label: str
    values: Sequence[float | None]
    css: str
    area: bool = False  # filled down to 0 (drawdown)


@dataclass(frozen=True)
class Panel:
    """Lines sharing one y axis; ``fmt`` is ``num``, ``pct0`` or ``pct1`` (ticks and read-out)."""

    lines: list[Line]
    fmt: str = "num"
    title: str | None = None
    to_zero: bool = False  # the range includes 0 (drawdown, volatility)


def _nice(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above ``raw``."""
    exp = math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10**exp >= raw * (1 - 1e-12):
            return float(m * 10**exp)
    return float(10 ** (exp + 1))


def y_range(values: Iterable[float], to_zero: bool = False, ticks: int = 5) -> tuple[float, float, list[float]]:
    """The axis' (low, high, ticks) for ``values``: about ``ticks`` round ticks, 4 % of air each side."""
    vs = [v for v in values if math.isfinite(v)]
    lo, hi = (min(vs), max(vs)) if vs else (0.0, 1.0)
    if to_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    air = (hi - lo) * 0.04
    low = lo if to_zero and lo == 0 else lo - air
    high = hi if to_zero and hi == 0 else hi + air
    step = _nice((high - low) / ticks)
    first = math.ceil(low / step - 1e-9)
    marks = [round(k * step, 12) for k in range(first, math.floor(high / step + 1e-9) + 1)]
    return low, high, marks


def tick_label(value: float, fmt: str, step: float) -> str:
    """A y tick: a percentage (``pct*``, of a fraction) or a number, with the decimals its step needs."""
    if fmt.startswith("pct"):
        value, step = value * 100, step * 100
    digits = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    frac = step * 10**digits % 1
    if 1e-6 < frac < 1 - 1e-6:  # 2.5 steps
        digits += 1
    text = f"{value:.{digits}f}".replace("-", "−")
    if text.lstrip("−").strip("0.") == "":
        text = text.lstrip("−")
    return text + ("%" if fmt.startswith("pct") else "")


def x_ticks(first: date, last: date, most: int = 6) -> list[tuple[date, str]]:
    """Round dates between ``first`` and ``last``: month starts every 1, 2, 3, 6, 12, 24 … months, or days."""
    months = (last.year - first.year) * 12 + last.month - first.month
    if months < 2:
        span = (last - first).days
        step = max(1, math.ceil(span / most))
        return [(date.fromordinal(first.toordinal() + k), _day(date.fromordinal(first.toordinal() + k)))
                for k in range(0, span + 1, step)]  # fmt: skip
    step = next((s for s in (1, 2, 3, 6, 12, 24, 60, 120) if months / s <= most), 240)
    out: list[tuple[date, str]] = []
    k = first.year * 12 + first.month  # the first month start after ``first``
    while True:
        year, month = divmod(k, 12)
        tick = date(year, month + 1, 1)
        if tick > last:
            return out
        if tick > first and (month % step == 0 if step <= 12 else month == 0 and year % (step // 12) == 0):
            label = str(year) if step >= 12 else (f"{MONTHS[month]} {year}" if month == 0 or not out else MONTHS[month])
            out.append((tick, label))
        k += 1


def _day(d: date) -> str:
    return f"{MONTHS[d.month - 1]} {d.day}"


def _tenths(t: int) -> str:
    """``t`` tenths of a unit, short: 7 -> ``.7``, -32 -> ``-3.2``, 10 -> ``1``."""
    whole, digit = divmod(abs(t), 10)
    text = (str(whole) if whole or not digit else "") + (f".{digit}" if digit else "")
    return ("-" if t < 0 else "") + text


def _path(xs: Sequence[float], values: Sequence[float | None], low: float, high: float) -> tuple[str, int]:
    """SVG path data (gaps skipped and joined, as plotly's connectgaps) and how many points it has: the
    first point absolute, then each as its step from the one before (``l``), in tenths of a unit."""
    points = [
        (round(x * 10), round((high - v) / (high - low) * BOX * 10))
        for x, v in zip(xs, values, strict=True)
        if v is not None and math.isfinite(v)
    ]
    if not points:
        return "", 0
    parts = [f"M{_tenths(points[0][0])} {_tenths(points[0][1])}"]
    if len(points) > 1:
        parts.append("l")
        steps = []
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            steps += [_tenths(x1 - x0), _tenths(y1 - y0)]
        parts.append(steps[0] + "".join(t if t.startswith("-") else " " + t for t in steps[1:]))
    return "".join(parts), len(points)


def _area(d: str, count: int, xs: Sequence[float], values: Sequence[float | None], low: float, high: float) -> str:
    """The path closed down to 0 (the fill under a drawdown)."""
    present = [x for x, v in zip(xs, values, strict=True) if v is not None and math.isfinite(v)]
    if not count:
        return ""
    zero = (high - 0.0) / (high - low) * BOX
    return f"{d}L{present[-1]:.1f} {zero:.1f}L{present[0]:.1f} {zero:.1f}Z"


def _panel(panel: Panel, xs: Sequence[float], gridlines: Sequence[float]) -> str:
    values = [v for line in panel.lines for v in line.values if v is not None]
    low, high, marks = y_range(values, panel.to_zero)
    step = marks[1] - marks[0] if len(marks) > 1 else (high - low)

    def y_of(v: float) -> float:
        return (high - v) / (high - low) * BOX

    svg = [f'<svg class="lines" viewBox="0 0 {BOX} {BOX}" preserveAspectRatio="none" aria-hidden="true">']
    svg += [f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{BOX}"/>' for x in gridlines]
    svg += [f'<line class="{"zero" if m == 0 else "grid"}" x1="0" x2="{BOX}" y1="{y_of(m):.1f}" y2="{y_of(m):.1f}"/>'
            for m in marks]  # fmt: skip
    for line in panel.lines:
        d, count = _path(xs, line.values, low, high)
        if line.area and count:
            svg.append(f'<path class="area {line.css}" d="{_area(d, count, xs, line.values, low, high)}"/>')
        svg.append(
            f'<path class="line {line.css}" data-series="{line.key}" data-label="{escape(line.label)}"'
            f' data-points="{count}" d="{d}"/>'
        )
    svg.append("</svg>")
    labels = "".join(f'<span style="top: {y_of(m) / 10:.2f}%">{tick_label(m, panel.fmt, step)}</span>' for m in marks)
    title = f'<span class="panel-title">{escape(panel.title)}</span>' if panel.title else ""
    return (
        f'<div class="panel" data-low="{low!r}" data-high="{high!r}" data-format="{panel.fmt}">{title}'
        f'{"".join(svg)}<div class="y-axis" aria-hidden="true">{labels}</div></div>'
    )


def line_chart(chart_id: str, dates: Sequence[str], panels: list[Panel], label: str, legend: bool = False) -> Markup:
    """Panels stacked on one time axis (``dates`` ISO days, the x of every line's values)."""
    days = [date.fromisoformat(d) for d in dates]
    if not days:
        return empty(chart_id, NO_DATA)
    span = max((days[-1] - days[0]).days, 1)
    xs = [(d - days[0]).days / span * BOX for d in days]
    ticks = x_ticks(days[0], days[-1])
    where = [((t - days[0]).days / span * BOX, text) for t, text in ticks]
    body = "".join(_panel(p, xs, [x for x, _ in where]) for p in panels)
    axis = "".join(f'<span style="left: {x / 10:.2f}%">{escape(text)}</span>' for x, text in where)
    keys = ""
    if legend:
        keys = '<div class="legend">' + "".join(
            f'<span class="key {line.css}">{escape(line.label)}</span>' for p in panels for line in p.lines
        ) + "</div>"  # fmt: skip
    return Markup(
        f'<div class="chart plot" id="{chart_id}" data-drawn="true" data-points="{len(days)}"'
        f' data-traces="{sum(len(p.lines) for p in panels)}" role="img" aria-label="{escape(label)}">{keys}'
        f'<div class="panels">{body}</div><div class="x-axis" aria-hidden="true">{axis}</div></div>'
    )


def empty(chart_id: str, text: str) -> Markup:
    """Nothing to draw (yet): say so (``data-drawn="empty"``)."""
    return Markup(f'<div class="chart chart-empty" id="{chart_id}" data-drawn="empty">{escape(text)}</div>')


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def heat_colour(value: float, scale: float) -> tuple[str, bool]:
    """The cell's background for ``value`` on a scale of ±``scale`` (0 white), and whether its text is light."""
    t = max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.0
    colour = _mix(MID_RGB, GAIN_RGB if t >= 0 else LOSS_RGB, abs(t))
    return colour, abs(t) > 0.55


def month_text(value: float) -> str:
    """A heatmap cell's figure: ``−1.2%``, and ``0.0%`` for what rounds to zero either side."""
    text = f"{value * 100:.1f}%"
    return "0.0%" if text == "-0.0%" else text.replace("-", "−")


def heatmap(chart_id: str, monthly: dict, label: str) -> Markup:
    """Years × months (and the year) as a table: each cell coloured by its return (months on one scale, years
    on another), its value written in it."""
    years, columns, rows = monthly["years"], monthly["columns"], monthly["returns"]
    if not years:
        return empty(chart_id, NO_DATA)
    # months and years on scales of their own: a year's +300 % would wash every month out to white
    month_scale = max((abs(v) for row in rows for v in row[:-1] if v is not None), default=0.0)
    year_scale = max((abs(row[-1]) for row in rows if row[-1] is not None), default=0.0)
    head = "".join(
        f'<th scope="col"><span class="long">{escape(c)}</span><span class="short">'
        f"{'Yr' if len(c) > 3 else escape(c[:1])}</span></th>"
        for c in columns
    )
    body = []
    for year, row in zip(years, rows, strict=True):
        cells = []
        for i, (column, v) in enumerate(zip(columns, row, strict=True)):
            scale = year_scale if i == len(columns) - 1 else month_scale
            if v is None:
                cells.append(f'<td class="none" data-value="" data-label="{escape(column)} {escape(year)}"></td>')
                continue
            colour, light = heat_colour(v, scale)
            text = month_text(v)
            cells.append(
                f'<td data-value="{v!r}" style="background: {colour}"{" class=light" if light else ""}'
                f' data-label="{escape(column)} {escape(year)}">{text}</td>'
            )
        body.append(f'<tr><th scope="row">{escape(year)}</th>{"".join(cells)}</tr>')
    return Markup(
        f'<div class="chart chart-monthly" id="{chart_id}" data-drawn="true" data-years="{len(years)}"'
        f' data-points="{len(years) * len(columns)}"><table class="heatmap" aria-label="{escape(label)}">'
        f'<thead><tr><th scope="col"></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def percent_format(values: Iterable[float | None]) -> str:
    """``pct1`` for a shallow series (its ticks need a decimal to differ), else ``pct0``."""
    span = max((abs(v) for v in values if v is not None), default=0.0)
    return "pct1" if span < 0.05 else "pct0"


def strategy_charts(series) -> dict[str, Markup]:
    """The strategy page's four charts from its ``page_data.Series`` (the data island's document)."""
    s = series
    lines = [Line("equity", "Strategy", s.equity, "strategy")]
    if s.benchmark is not None:
        lines.append(Line("benchmark", s.benchmark_symbol or "Benchmark", s.benchmark, "benchmark"))
    equity = line_chart("chart-equity", s.dates, [Panel(lines)], "Equity rebased to 100", legend=True)
    underwater = Line("drawdown", "Drawdown", s.drawdown, "loss", area=True)
    drawdown = line_chart(
        "chart-drawdown",
        s.dates,
        [Panel([underwater], percent_format(s.drawdown), to_zero=True)],
        "Drawdown from the running peak",
    )
    if s.dates and any(v is not None for v in s.rolling_sharpe):
        rolling = line_chart(
            "chart-rolling",
            s.dates,
            [
                Panel([Line("rolling_sharpe", "Sharpe", s.rolling_sharpe, "strategy")], "num", "Sharpe"),
                Panel(
                    [Line("rolling_volatility", "Volatility", s.rolling_volatility, "vol")],
                    percent_format(s.rolling_volatility),
                    "Volatility",
                    to_zero=True,
                ),
            ],
            f"Rolling {s.rolling_window}-day Sharpe and volatility",
        )
    elif s.dates:
        rolling = empty("chart-rolling", f"Rolling figures need {s.rolling_window} days of returns.")
    else:
        rolling = empty("chart-rolling", NO_DATA)
    monthly = heatmap("chart-monthly", s.monthly, "Monthly returns")
    return {"equity": equity, "drawdown": drawdown, "rolling": rolling, "monthly": monthly}
