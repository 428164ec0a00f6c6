"""Issue 21 in a real browser: the board by DSR with its interval bars, the strategy page's
significance figures and owner line, /methodology, and the rolling chart's two stacked panels;
desktop and 390 px screenshots (under the test's tmp dir, copied to /tmp/issue21-shots/)."""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from .conftest import DESKTOP, PHONE

SHOTS = Path("/tmp/issue21-shots")
PASSWORD = "significance browser secret"
CHARTS = ("chart-equity", "chart-drawdown", "chart-rolling", "chart-monthly")
# the rolling chart's two panels (server-drawn SVG, services/query_api/charts.py): each one's y range,
# box and line, and the data it draws (the page's data island)
PANELS = """() => {
    const node = document.getElementById('chart-rolling');
    const box = node.getBoundingClientRect();
    const figure = node.closest('.chart-box').getBoundingClientRect();
    const data = JSON.parse(document.getElementById('series-data').textContent);
    const panels = [...node.querySelectorAll('.panel')];
    const axis = panel => {
        const r = panel.querySelector('svg.lines').getBoundingClientRect();
        const path = panel.querySelector('path.line'), line = path.getBoundingClientRect();
        const ys = data[path.dataset.series].filter(v => v !== null);
        return {range: [Number(panel.dataset.low), Number(panel.dataset.high)], length: r.height, offset: r.top,
                left: r.left, width: r.width, lineTop: line.top, lineBottom: line.bottom,
                min: Math.min(...ys), max: Math.max(...ys), series: path.dataset.series};
    };
    const [sharpe, volatility] = panels.map(axis);
    return {panels: panels.length, sharpe, volatility,
            inside: box.left >= figure.left - 1 && box.right <= figure.right + 1,
            svgWidth: Math.max(...panels.map(p => p.querySelector('svg.lines').getBoundingClientRect().width)),
            width: box.width, sharedX: sharpe.left === volatility.left && sharpe.width === volatility.width};
}"""


@pytest.fixture(scope="module")
def owned(site) -> SimpleNamespace:
    """An owner with three strategies: one public that trades like a demo bot, one private, one deleted."""
    email = f"sig-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=site.base, timeout=30) as c:
        assert c.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        assert c.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200
        made = {}
        for name, visibility in (("Owned copy", "public"), ("Owned private", "private"), ("Owned gone", "public")):
            r = c.post("/strategies", json={"name": name, "visibility": visibility, "benchmark": "DEMO-SPY"})
            assert r.status_code == 201, r.text
            made[name] = r.json()["id"]
        created = c.post(f"/strategies/{made['Owned copy']}/api-keys", json={"name": "copy"})
        assert created.status_code in (200, 201), created.text
        key = {"Authorization": f"Bearer {created.json()['plaintext']}"}
    # copy a demo bot's first order (a real price of its day) so the page has a track record to judge
    bot = site.demo["bots"][0]
    orders = httpx.get(
        site.url(f"/api/v1/strategies/{bot['strategy_id']}/orders"),
        headers={"Authorization": f"Bearer {bot['api_key']}"},
        timeout=30,
    ).json()
    first = orders["items"][0] if isinstance(orders, dict) else orders[0]
    executed = datetime.fromisoformat(first["executed_at"])
    sid = made["Owned copy"]
    deposit = {
        "event_type": "deposit",
        "amount": 1_000_000,
        "occurred_at": (executed - timedelta(hours=2)).isoformat(),
        "external_id": "sig-deposit",
    }
    assert site.http.post(f"/api/v1/strategies/{sid}/cash", json=deposit, headers=key).status_code == 201
    order = {k: first[k] for k in ("symbol", "side", "quantity", "price", "executed_at")}
    r = site.http.post(f"/api/v1/strategies/{sid}/orders", json={"orders": [order]}, headers=key)
    assert r.status_code == 200 and r.json()["counts"]["accepted"] == 1, r.text
    site.cli("strategy", "delete", made["Owned gone"], "--yes")
    return SimpleNamespace(ids=made, email=email)


def _shoot(page, name: str, size: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}-{size}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


def _charts_drawn(page) -> None:
    page.wait_for_function(
        "ids => ids.every(id => ['true', 'empty'].includes(document.getElementById(id).dataset.drawn))",
        arg=list(CHARTS),
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_significance_pages_screenshots(site, owned, new_context, watch, tmp_path, viewport):
    context = new_context(viewport=viewport, device_scale_factor=1)
    page = context.new_page()
    checks = watch(page)
    size = f"{viewport['width']}x{viewport['height']}"

    # the board: ordered by DSR, each row's interval bar drawn inside its cell
    page.goto(site.url("/"))
    assert page.locator("#leaderboard").get_attribute("data-sort") == "dsr"
    assert page.locator('#leaderboard thead th[data-col="dsr"]').get_attribute("aria-sort") == "descending"
    bars = page.locator('#leaderboard td[data-col="sharpe"] svg.ci')
    assert bars.count() >= 5
    assert page.locator('#leaderboard thead th[data-col="dsr"] a.help').get_attribute("href") == "/methodology#dsr"
    _shoot(page, "leaderboard", size, tmp_path)

    # a demo strategy (charts) and the owner's copy (owner line), then /methodology
    for name, path in (("strategy", f"/s/{site.strategy_id}"), ("strategy-owned", f"/s/{owned.ids['Owned copy']}")):
        page.goto(site.url(path))
        _charts_drawn(page)
        page.wait_for_load_state("networkidle")
        assert page.locator("#significance [data-metric='psr'] .value").is_visible()
        assert page.locator("#significance a[href='/methodology#dsr']").count() >= 1
        if name == "strategy-owned":
            line = " ".join(page.locator("#owner-record").inner_text().split())
            assert line.startswith("Its owner has started 3 strategies here: 1 public, 1 private, 1 deleted."), line
        else:
            assert page.locator("#owner-record").count() == 0  # the demo's bots have no owner
            panels = page.evaluate(PANELS)
            assert panels["panels"] == 2, panels
            assert (panels["sharpe"]["series"], panels["volatility"]["series"]) == (
                "rolling_sharpe",
                "rolling_volatility",
            )
            for axis in ("sharpe", "volatility"):
                p = panels[axis]
                assert p["length"] > 60, (axis, p)  # a panel of its own, visible
                lo, hi = sorted(p["range"])
                assert lo <= p["min"] and p["max"] <= hi, (axis, p)  # autoranged: no line runs off its panel
                assert p["offset"] - 1 <= p["lineTop"] and p["lineBottom"] <= p["offset"] + p["length"] + 1, (axis, p)
            assert panels["sharpe"]["offset"] + panels["sharpe"]["length"] <= panels["volatility"]["offset"], panels
            assert panels["sharedX"] and panels["inside"], panels  # one time axis under both
            assert panels["svgWidth"] <= panels["width"] + 1, panels
            page.locator("#chart-rolling").scroll_into_view_if_needed()
            assert page.locator("#chart-rolling").is_visible()
        _shoot(page, name, size, tmp_path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} at {size} is {overflow}px wider than the screen"

    page.goto(site.url("/methodology"))
    page.wait_for_load_state("networkidle")
    assert page.locator("#methodology h2#dsr, #methodology h3#dsr").count() == 1
    _shoot(page, "methodology", size, tmp_path)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"/methodology at {size} is {overflow}px wider than the screen"
    # a figure's label on the board lands on its section (on a phone the board is cards: the legend's link)
    page.goto(site.url("/"))
    if viewport == PHONE:
        assert page.locator("#leaderboard thead").is_hidden() and page.locator("#filter-sort").is_visible()
        assert page.locator('#leaderboard tbody tr:first-child td[data-col="dsr"]').is_visible()  # the sorted figure
        page.click('#leaderboard-legend a[href="/methodology#significance"] >> nth=0')
    else:
        page.click('#leaderboard thead th[data-col="psr"] a.help')
    page.wait_for_url("**/methodology#significance")
    assert page.locator("#significance").is_visible()
    checks.assert_clean(f"issue 21 pages at {size}")
