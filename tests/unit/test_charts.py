"""The strategy page's server-drawn charts (services/query_api/charts.py) and the page's script weight."""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from services.query_api import assets, charts

COLUMNS = [*charts.MONTHS, "Year"]


def _series(n: int = 400, benchmark: str | None = "SPY") -> SimpleNamespace:
    start = date(2024, 1, 2)
    equity = [100 * (1 + 0.001 * i + 0.05 * math.sin(i / 20)) for i in range(n)]
    return SimpleNamespace(
        dates=[(start + timedelta(days=i)).isoformat() for i in range(n)],
        equity=equity,
        benchmark=[None, None, *[v * 0.9 for v in equity[2:]]] if benchmark else None,
        benchmark_symbol=benchmark,
        drawdown=[-0.2 * abs(math.sin(i / 30)) for i in range(n)],
        rolling_sharpe=[None] * 63 + [math.sin(i / 40) for i in range(n - 63)],
        rolling_volatility=[None] * 63 + [0.1 + 0.02 * math.sin(i / 40) for i in range(n - 63)],
        rolling_window=63,
        monthly={
            "years": ["2024", "2025"],
            "columns": COLUMNS,
            "returns": [[0.01] * 12 + [0.12], [None] * 12 + [-0.1]],
        },
    )


def _ys(d: str) -> list[float]:
    """The y of every point of a path ``M x y l dx dy dx dy ...``."""
    numbers = [float(n) for n in re.findall(r"-?(?:\d+(?:\.\d*)?|\.\d+)", d)]
    ys = [numbers[1]] if numbers else []
    for dy in numbers[3::2]:
        ys.append(ys[-1] + dy)
    return ys


def _decoded(markup: str) -> dict[str, list[float]]:
    """Each path's points turned back into values through its panel's y range."""
    out = {}
    for panel in re.findall(r'<div class="panel" data-low="([^"]+)" data-high="([^"]+)".*?</svg>', markup):
        low, high = float(panel[0]), float(panel[1])
        block = markup[markup.index(f'data-low="{panel[0]}"') :]
        block = block[: block.index("</svg>")]
        for key, d in re.findall(r'<path class="line [^"]*" data-series="([^"]+)"[^>]* d="([^"]*)"', block):
            ys = _ys(d)
            out[key] = [high - y / charts.BOX * (high - low) for y in ys]
    return out


def test_every_point_of_every_line_is_drawn_where_its_value_is():
    s = _series()
    drawn = charts.strategy_charts(s)
    lines = {**_decoded(drawn["equity"]), **_decoded(drawn["drawdown"]), **_decoded(drawn["rolling"])}
    for key in ("equity", "benchmark", "drawdown", "rolling_sharpe", "rolling_volatility"):
        present = [v for v in getattr(s, key) if v is not None]
        assert len(lines[key]) == len(present), key  # gaps skipped and joined, every value drawn
        span = max(present) - min(present)
        assert all(abs(a - b) <= span / 1000 for a, b in zip(lines[key], present, strict=True)), key
    assert lines["equity"][0] == pytest.approx(100, abs=0.1)
    assert 'data-points="400"' in drawn["equity"] and 'data-traces="2"' in drawn["equity"]
    assert '<path class="area loss"' in drawn["drawdown"] and drawn["rolling"].count('class="panel"') == 2


def test_a_range_holds_its_values_with_round_ticks():
    low, high, ticks = charts.y_range([97.3, 131.8])
    assert low < 97.3 and high > 131.8 and 4 <= len(ticks) <= 8
    assert all(low <= t <= high for t in ticks) and ticks[1] - ticks[0] in (5, 10)
    low, high, ticks = charts.y_range([-0.031, -0.001], to_zero=True)
    assert high == 0 and low < -0.031 and ticks[-1] == 0
    assert [charts.tick_label(t, "pct1", ticks[1] - ticks[0]) for t in ticks] == ["−3%", "−2%", "−1%", "0%"]
    assert charts.tick_label(2.5, "num", 0.5) == "2.5" and charts.tick_label(-0.0, "num", 1) == "0"
    assert charts.y_range([5.0, 5.0])[:2] == pytest.approx((4.73, 5.27))  # a flat line still has a range


def test_the_time_axis_ticks_are_round_dates():
    assert charts.x_ticks(date(2020, 1, 2), date(2025, 2, 5)) == [(date(y, 1, 1), str(y)) for y in range(2021, 2026)]
    assert [label for _, label in charts.x_ticks(date(2024, 1, 2), date(2025, 2, 5))] == [
        "Apr 2024",
        "Jul",
        "Oct",
        "Jan 2025",
    ]
    short = charts.x_ticks(date(2024, 1, 2), date(2024, 1, 25))
    assert short[0] == (date(2024, 1, 2), "Jan 2") and len(short) <= 7


def test_the_heatmap_colours_and_writes_every_month():
    drawn = charts.strategy_charts(_series())["monthly"]
    cells = re.findall(r"<td([^>]*)>([^<]*)</td>", drawn)
    assert len(cells) == 2 * 13
    assert cells[0][1] == "1.0%" and "background: #" in cells[0][0]
    assert cells[12][1] == "12.0%" and "background: #15803d" in cells[12][0]  # the largest gain: full green
    assert cells[-1][1] == "−10.0%" and 'data-value="-0.1"' in cells[-1][0]
    assert cells[13] == (' class="none" data-value="" data-label="Jan 2025"', "")  # no return: blank
    assert charts.heat_colour(0.0, 0.1) == ("#f9fafb", False)
    assert [charts.month_text(v) for v in (-0.00004, 0.0, -0.0123, 0.5)] == ["0.0%", "0.0%", "−1.2%", "50.0%"]
    assert charts.heat_colour(-0.1, 0.1) == ("#b91c1c", True) and charts.heat_colour(0.5, 0.1)[0] == "#15803d"


def test_nothing_to_draw_says_so_and_names_are_escaped():
    s = _series(0, None)
    s.monthly = {"years": [], "columns": COLUMNS, "returns": []}
    drawn = charts.strategy_charts(s)
    assert all('data-drawn="empty"' in m for m in drawn.values())
    short = _series(30, "<b>X</b>")
    short.rolling_sharpe = [None] * 30
    drawn = charts.strategy_charts(short)
    assert "Rolling figures need 63 days of returns." in drawn["rolling"]
    assert "<b>X</b>" not in drawn["equity"] and "&lt;b&gt;X&lt;/b&gt;" in drawn["equity"]


def test_the_strategy_page_loads_less_than_1_mb_of_script():
    pages = [assets.TEMPLATES_DIR / "strategy.html", assets.TEMPLATES_DIR / "base.html"]
    scripts = {n for p in pages for n in re.findall(r"asset_url\('([^']+\.js)'\)", p.read_text())}
    assert scripts == {"app.js"}
    weight = sum(len(assets.asset(name).body) for name in scripts)
    assert weight < 20_000  # the hover read-out only: the charts are drawn by the server
    assert "plotly.min.js" not in assets.FILES and assets.asset("charts.css") is not None
