"""The public pages in a real browser, on the demo's strategies: leaderboard, strategy page, /docs."""

from __future__ import annotations

import math
import re
from decimal import Decimal

import httpx
import pytest

from .conftest import DESKTOP, PHONE

CHARTS = ("chart-equity", "chart-drawdown", "chart-rolling", "chart-monthly")
# what each chart drew (server-side SVG paths and the heatmap table): every line's points decoded back
# to values through its panel's y range, and every heatmap cell's value, colour and text
READ_TRACES = """ids => Object.fromEntries(ids.map(id => {
    const node = document.getElementById(id);
    if (node.querySelector('table.heatmap')) {
        const rows = [...node.querySelectorAll('table.heatmap tbody tr')];
        return [id, [{type: 'heatmap', x: node.querySelectorAll('table.heatmap thead th').length - 1, y: rows.length,
            z: rows.map(r => r.querySelectorAll('td').length),
            cells: rows.map(r => [...r.querySelectorAll('td')].map(td => ({
                value: td.dataset.value, text: td.textContent,
                background: getComputedStyle(td).backgroundColor})))}]];
    }
    return [id, [...node.querySelectorAll('.panel')].flatMap(panel => {
        const low = Number(panel.dataset.low), high = Number(panel.dataset.high);
        return [...panel.querySelectorAll('path.line')].map(path => {
            // the path: "M x y" then each point's step from the one before, "l dx dy dx dy ..."
            const numbers = (path.getAttribute('d').match(/-?(?:\\d+(?:\\.\\d*)?|\\.\\d+)/g) || []).map(Number);
            const raw = numbers.length ? [numbers[1]] : [];
            for (let i = 3; i < numbers.length; i += 2) { raw.push(raw[raw.length - 1] + numbers[i]); }
            const ys = raw.map(y => high - y / 1000 * (high - low));
            const box = path.getBoundingClientRect();
            return {type: 'scatter', series: path.dataset.series, label: path.dataset.label,
                    x: ys.length, y: ys.length, first_y: ys.length ? ys[0] : null, values: ys,
                    resolution: (high - low) / 1000, visible: box.width > 100 && box.height > 0};
        });
    })];
}))"""


def _number(raw: str | None) -> float | None:
    if raw in (None, "", "None", "null"):
        return None
    value = float(raw)
    return None if math.isnan(value) else value


def _drawn(what: str, trace: dict, values: list[float | None]) -> None:
    """Every point of the series drawn, each where its value is (within the SVG's resolution)."""
    present = [v for v in values if v is not None]
    assert trace["x"] == trace["y"] == len(present), (what, trace["series"], len(present), trace["x"])
    assert trace["visible"], (what, trace["series"])
    tolerance = trace["resolution"]  # one of the SVG's 1000 units: coordinates keep a tenth of one
    assert all(abs(a - b) <= tolerance for a, b in zip(trace["values"], present, strict=True)), (what, trace["series"])


def _column(page, column: str) -> list[float | None]:
    return [
        _number(v)
        for v in page.locator(f'#leaderboard tbody td[data-col="{column}"]').evaluate_all(
            "cells => cells.map(c => c.getAttribute('data-value'))"
        )
    ]


def _assert_sorted(values: list[float | None], descending: bool, what: str) -> None:
    present = [v for v in values if v is not None]
    assert values[: len(present)] == present, f"{what}: nulls come last"
    assert present == sorted(present, reverse=descending), f"{what}: {values}"


def test_the_leaderboard_sorts_by_a_clicked_column(site, page, watch):
    checks = watch(page)
    page.goto(site.url("/"))
    shown = page.locator("#leaderboard tbody tr").evaluate_all("rows => rows.map(r => r.dataset.strategyId)")
    assert {b["strategy_id"] for b in site.demo["bots"]} <= set(shown), "every demo bot is ranked"
    assert len(shown) >= 5
    for column in ("cagr", "volatility", "max_drawdown", "track_days", "sharpe"):
        for click in (1, 2):  # the first click sorts best first, the second reverses
            before = page.locator("#leaderboard").get_attribute("data-dir")
            page.click(f'#leaderboard thead th[data-col="{column}"] a.sort')
            page.wait_for_url(re.compile(rf"[?&]sort={column}\b"))
            page.wait_for_load_state()
            table = page.locator("#leaderboard")
            assert table.get_attribute("data-sort") == column
            direction = table.get_attribute("data-dir")
            if click == 2:
                assert direction != before, f"clicking {column} again reverses the order"
            header = page.locator(f'#leaderboard thead th[data-col="{column}"]')
            assert header.get_attribute("aria-sort") == ("descending" if direction == "desc" else "ascending")
            _assert_sorted(_column(page, column), direction == "desc", f"{column} {direction}")
            ranks = [
                int(v)
                for v in page.locator('#leaderboard tbody td[data-col="rank"]').evaluate_all(
                    "cells => cells.map(c => c.getAttribute('data-value'))"
                )
            ]
            assert ranks == list(range(1, len(ranks) + 1))
            # the page shows what the JSON endpoint answers for the same view
            rows = page.locator("#leaderboard tbody tr").evaluate_all("rows => rows.map(r => r.dataset.strategyId)")
            data = site.http.get("/p/leaderboard", params={"sort": column, "dir": direction}).json()
            assert rows == [item["strategy_id"] for item in data["items"]], f"{column} {direction}"
    checks.assert_clean("/ (sorting)")


def test_the_strategy_page_draws_every_chart_with_every_point(site, page, watch, artifacts):
    checks = watch(page)
    for bot in site.demo["bots"]:
        sid = bot["strategy_id"]
        series = site.http.get(f"/p/strategies/{sid}/series").json()
        nav = httpx.get(
            site.url(f"/api/v1/strategies/{sid}/nav"), timeout=30, headers={"Authorization": f"Bearer {bot['api_key']}"}
        ).json()["series"]
        n = len(nav)
        assert n > 252 and series["dates"] == [row["date"] for row in nav], bot["name"]
        years, columns = series["monthly"]["years"], series["monthly"]["columns"]
        assert len(years) >= 2 and len(columns) == 13, series["monthly"]

        page.goto(site.url(f"/s/{sid}"))
        assert page.locator("#strategy-name").inner_text().strip() == bot["name"]
        page.wait_for_function(
            "ids => ids.every(id => document.getElementById(id).dataset.drawn === 'true')", arg=list(CHARTS)
        )
        traces = page.evaluate(READ_TRACES, list(CHARTS))
        what = bot["name"]

        equity = traces["chart-equity"]
        assert len(equity) == 2, (what, equity)  # the strategy and its benchmark
        assert [t["series"] for t in equity] == ["equity", "benchmark"], (what, equity)
        assert equity[1]["label"] == series["benchmark_symbol"], (what, equity)
        assert len(series["equity"]) == n and None not in series["equity"], what
        _drawn(what, equity[0], series["equity"])
        _drawn(what, equity[1], series["benchmark"])
        assert equity[0]["first_y"] == pytest.approx(100, abs=equity[0]["resolution"]), "rebased to 100"
        first_close = next(v for v in series["benchmark"] if v is not None)
        assert first_close == pytest.approx(100), (what, first_close)
        assert equity[1]["first_y"] == pytest.approx(100, abs=equity[1]["resolution"]), "the benchmark too"
        assert [t["series"] for t in traces["chart-drawdown"]] == ["drawdown"], (what, traces)
        _drawn(what, traces["chart-drawdown"][0], series["drawdown"])
        rolling = traces["chart-rolling"]
        assert [t["series"] for t in rolling] == ["rolling_sharpe", "rolling_volatility"], (what, rolling)
        _drawn(what, rolling[0], series["rolling_sharpe"])
        _drawn(what, rolling[1], series["rolling_volatility"])
        heatmap = traces["chart-monthly"]
        assert len(heatmap) == 1 and heatmap[0]["type"] == "heatmap", (what, heatmap)
        assert heatmap[0]["x"] == len(columns) and heatmap[0]["y"] == len(years), (what, heatmap)
        assert heatmap[0]["z"] == [len(columns)] * len(years), (what, heatmap)
        returns = series["monthly"]["returns"]
        scales = [max(abs(v) for row in returns for v in row[:-1] if v is not None)] * 12
        scales.append(max(abs(row[-1]) for row in returns if row[-1] is not None))  # the years: a scale of their own
        for row, cells in zip(returns, heatmap[0]["cells"], strict=True):
            for value, cell, scale in zip(row, cells, scales, strict=True):
                if value is None:
                    assert cell["value"] == "" and cell["text"] == "", (what, cell)
                    continue
                assert float(cell["value"]) == pytest.approx(value), (what, cell, value)
                figure = f"{value * 100:.1f}%"
                assert cell["text"] == ("0.0%" if figure == "-0.0%" else figure.replace("-", "\u2212")), (what, cell)
                red, green, blue = (int(c) for c in re.findall(r"\d+", cell["background"])[:3])
                # red for a loss, green for a gain, white at 0, full colour for the largest (plotly's scale)
                if abs(value) / scale > 0.02:
                    assert (red > green) if value < 0 else (green > red), (what, cell, scale)
                if abs(value) == scale:
                    assert (red, green, blue) == ((185, 28, 28) if value < 0 else (21, 128, 61)), (what, cell)
        for chart in ("chart-equity", "chart-drawdown", "chart-rolling"):
            assert page.locator(f"#{chart}").get_attribute("data-points") == str(n)
        # hovering reads out the day under the pointer and each line's value that day
        page.locator("#chart-equity").scroll_into_view_if_needed()
        box = page.locator("#chart-equity svg.lines").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tip = page.locator("#chart-equity .chart-tip")
        assert tip.is_visible(), what
        lines = tip.inner_text().splitlines()
        day = series["dates"].index(lines[0])
        shown = series["benchmark"][day]
        assert lines[1] == f"Strategy {series['equity'][day]:.2f}", (what, lines)
        assert shown is None or lines[2] == f"{series['benchmark_symbol']} {shown:.2f}", (what, lines)
        if bot is site.demo["bots"][0]:
            page.screenshot(path=str(artifacts / "strategy-charts-hover-1366x900.png"))
        page.mouse.move(0, 0)
        # the figures people read are there, formatted for them
        cards = page.locator("#metrics .card")
        assert cards.count() >= 10
        assert page.locator('#metrics [data-metric="total_return"] .value').inner_text().strip()[0] in "+-−0"
        assert int(page.locator("#chain-events").get_attribute("data-value")) > 0
        # what the owner publishes, and nothing more (delayed: orders executed more than 24 h ago, no positions)
        if bot["show_positions"] == "live":
            state = httpx.get(
                site.url(f"/api/v1/strategies/{sid}/state"),
                timeout=30,
                headers={"Authorization": f"Bearer {bot['api_key']}"},
            ).json()
            held = [p for p in state["positions"] if Decimal(p["quantity"]) != 0]  # a trend follower may be all cash
            assert page.locator("#positions-table tbody tr").count() == len(held), (what, held)
            assert page.locator("#orders-table tbody tr").count() >= 1, what
        elif bot["show_positions"] == "delayed":
            assert page.locator("#positions-hidden").count() == 1 and page.locator("#positions-table").count() == 0
            # "(delayed: those executed more than 24 hours ago, before …)"
            cutoff = page.locator("#orders-delay").inner_text()
            assert "executed more than 24 hours ago, before " in cutoff, (what, cutoff)
            shown = page.locator("#orders-table tbody tr td:first-child").all_inner_texts()
            limit = cutoff.split(", before ")[1].removesuffix(")")
            assert shown and all(day < limit for day in shown), (what, shown, limit)  # 'YYYY-MM-DD HH:MM UTC'
        else:
            assert page.locator("#positions-hidden").count() == 1, what
            assert page.locator("#positions-table, #orders-table tbody tr").count() == 0, what
    checks.assert_clean("/s/{id} of every demo bot")


def _operations(spec: dict) -> int:
    verbs = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sum(1 for item in spec["paths"].values() for verb in item if verb in verbs)


@pytest.mark.parametrize("path", ["/", "/s/{demo}", "/docs"])
def test_no_console_errors_and_nothing_from_elsewhere(site, page, watch, path):
    path = path.replace("{demo}", site.strategy_id)
    checks = watch(page)
    response = page.goto(site.url(path))
    assert response.status == 200
    if path == "/docs":
        spec = site.http.get("/schema/openapi.json").json()
        assert spec["info"]["title"] == "BotRanks API"
        page.wait_for_selector("#swagger-ui .opblock")
        assert "BotRanks API" in page.locator("#swagger-ui .info .title").inner_text()
        shown = page.locator("#swagger-ui .opblock").count()
        assert shown == _operations(spec) and shown >= 10, (shown, _operations(spec))
    elif path.startswith("/s/"):
        page.wait_for_function(
            "ids => ids.every(id => document.getElementById(id).dataset.drawn === 'true')", arg=list(CHARTS)
        )
    page.wait_for_load_state("networkidle")
    checks.assert_clean(path)
    assert all(u.startswith(site.base) for u in checks.requests if u.startswith("http"))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots(site, new_context, watch, artifacts, viewport):
    context = new_context(viewport=viewport, device_scale_factor=1)
    page = context.new_page()
    checks = watch(page)
    size = f"{viewport['width']}x{viewport['height']}"
    for name, path in (("leaderboard", "/"), ("strategy", f"/s/{site.strategy_id}")):
        page.goto(site.url(path))
        if name == "strategy":
            page.wait_for_function(
                "ids => ids.every(id => document.getElementById(id).dataset.drawn === 'true')", arg=list(CHARTS)
            )
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(artifacts / f"{name}-{size}.png"), full_page=True)
        # nothing wider than the screen: tables scroll inside their own box
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} at {size} is {overflow}px wider than the screen"
    checks.assert_clean(f"screenshots at {size}")
