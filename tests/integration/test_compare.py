"""Issue 24, item 3 through the real services: /compare and /p/compare over three public strategies with
known NAVs (deposits and market buys on a small market), checked against an independent computation from
their published NAV CSVs with numpy; a fourth with too short a history; a private one; the errors (400
naming ``ids``, 404 naming the id, alike for private and unknown), the add form's redirect, the ETag, and
the "Compare" links on the board and the strategy page."""

from __future__ import annotations

import csv
import io
import math
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import httpx
import numpy as np
import pytest

from devtools.stack import Stack, wait_until

pytestmark = pytest.mark.integration

BENCH, UP, DOWN = "CMPBENCH", "CMPUP", "CMPDOWN"


def _weekdays(start: date, end: date) -> list[date]:
    return [
        start + timedelta(days=i) for i in range((end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5
    ]


def _at(d: date, hour: int) -> str:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC).isoformat()


@pytest.fixture(scope="module")
def site(stack: Stack):
    today = datetime.now(UTC).date()
    days = _weekdays(today - timedelta(days=120), today)
    prices = {BENCH: {}, UP: {}, DOWN: {}}
    for i, d in enumerate(days):
        prices[BENCH][d] = round(100 * 1.0007**i * (1 + 0.006 * math.sin(i / 2.5)), 4)
        prices[UP][d] = round(50 * 1.002**i * (1 + 0.015 * math.sin(i / 2)), 4)
        prices[DOWN][d] = round(80 * 0.999**i * (1 + 0.02 * math.cos(i / 1.7)), 4)
    stack.add_prices([(s, d.isoformat(), c) for s, closes in prices.items() for d, c in closes.items()])
    ids: dict[str, str] = {}
    keys: dict[str, dict[str, str]] = {}

    def create(name: str, visibility: str = "public", benchmark: str = BENCH) -> None:
        sid, key = stack.db.identity.create_strategy(
            name, benchmark=benchmark, visibility=visibility, show_positions="live"
        )
        ids[name], keys[name] = str(sid), {"Authorization": f"Bearer {key}"}

    def cash(name: str, day: date, amount: int, ref: str) -> None:
        body = {"event_type": "deposit", "amount": amount, "occurred_at": _at(day, 13), "external_id": ref}
        r = stack.post(ids[name], "cash", body, keys[name])
        assert r.status_code == 201, r.text

    def buy(name: str, symbol: str, quantity: int, day: date) -> None:
        order = {"symbol": symbol, "side": "buy", "quantity": quantity, "price": prices[symbol][day],
                 "executed_at": _at(day, 15)}  # fmt: skip
        r = stack.post(ids[name], "orders", {"orders": [order]}, keys[name])
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 1, r.text

    create("Up")
    cash("Up", days[2], 100_000, "up-1")
    buy("Up", UP, 1500, days[2])
    create("Down")
    cash("Down", days[2], 100_000, "down-1")
    buy("Down", DOWN, 1000, days[2])
    cash("Down", days[40], 50_000, "down-2")  # a deposit: no gain in the time-weighted equity
    create("Later")  # starts later: the common dates begin with it
    cash("Later", days[15], 100_000, "later-1")
    buy("Later", BENCH, 900, days[15])
    create("Short", benchmark="")  # too short for a correlation, and no benchmark
    cash("Short", days[-8], 10_000, "short-1")
    buy("Short", UP, 100, days[-8])
    create("Empty")  # public, nothing reported yet
    create("Hidden", visibility="private")
    cash("Hidden", days[2], 100_000, "hidden-1")
    stack.wait_projected()
    wait_until(
        lambda: all(
            (row := stack.db.ledger.leaderboard_row(uuid.UUID(s))) is not None and row.track_days > 0
            for n, s in ids.items()
            if n not in ("Hidden", "Empty")
        ),
        60,
        "the leaderboard rows",
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.query_port}", timeout=60)
    yield SimpleNamespace(ids=ids, keys=keys, client=client, days=days, prices=prices)
    client.close()


def _nav(site, name: str) -> dict[date, tuple[float, float]]:
    """The published NAV: date -> (total_equity, external_flow)."""
    r = site.client.get(f"/p/strategies/{site.ids[name]}/nav.csv")
    assert r.status_code == 200, r.text
    rows = csv.DictReader(io.StringIO(r.text))
    return {date.fromisoformat(x["date"]): (float(x["total_equity"]), float(x["external_flow"] or 0)) for x in rows}


def _index(nav: dict[date, tuple[float, float]]) -> dict[date, float]:
    """By hand: W_0 = 1, W_t = W_{t-1} * NAV_t / (NAV_{t-1} + F_t)."""
    days = sorted(nav)
    out, w = {days[0]: 1.0}, 1.0
    for prev, day in zip(days, days[1:]):
        w *= nav[day][0] / (nav[prev][0] + nav[day][1])
        out[day] = w
    return out


def _compare(site, *names: str) -> dict:
    r = site.client.get("/p/compare", params={"ids": ",".join(site.ids[n] for n in names)})
    assert r.status_code == 200, r.text
    return r.json()


def test_rebased_equity_drawdown_and_correlations_match_an_independent_computation(site):
    names = ("Up", "Down", "Later")
    out = _compare(site, *names)
    navs = {n: _nav(site, n) for n in names}
    common = sorted(set.intersection(*(set(v) for v in navs.values())))
    assert [date.fromisoformat(d) for d in out["common"]["dates"]] == common
    assert out["common"]["days"] == len(common) and out["common"]["first"] == min(navs["Later"]).isoformat()
    assert out["ids"] == [site.ids[n] for n in names] and [s["name"] for s in out["strategies"]] == list(names)
    indexes = {n: _index(navs[n]) for n in names}
    returns = {}
    for n, s in zip(names, out["strategies"]):
        curve = np.array([indexes[n][d] for d in common])
        want = curve / curve[0] * 100
        assert np.allclose(s["equity"], want, rtol=1e-9)
        peak = np.maximum.accumulate(want)
        assert np.allclose(s["drawdown"], (want - peak) / peak, atol=1e-9)
        returns[n] = curve[1:] / curve[:-1] - 1
    # Up holds no flow after its start: its rebased equity is its NAV's ratio (the known NAV: cash + 1500 × UP)
    up_nav = np.array([navs["Up"][d][0] for d in common])
    assert np.allclose(out["strategies"][0]["equity"], up_nav / up_nav[0] * 100, rtol=1e-9)
    d0 = site.days[2]
    cash_left = 100_000 - 1500 * site.prices[UP][d0]
    assert navs["Up"][common[-1]][0] == pytest.approx(
        cash_left + 1500 * site.prices[UP][max(site.prices[UP])], abs=0.01
    )
    # Down's deposit of 50 000 is no 50 % gain
    down = out["strategies"][1]["equity"]
    assert max(abs(b / a - 1) for a, b in zip(down, down[1:])) < 0.1
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            cell = out["correlation"][i][j]
            assert cell["days"] == len(common) - 1 and cell["warning"] is None
            assert cell["value"] == pytest.approx(np.corrcoef(returns[a], returns[b])[0, 1], abs=1e-8)
    # with its own benchmark, on the common dates that have a close, converted (USD: as is)
    bench = {d: c for d, c in site.prices[BENCH].items()}
    for n, s in zip(names, out["strategies"]):
        grid = [d for d in common if d in bench]
        r = np.array([indexes[n][y] / indexes[n][x] - 1 for x, y in zip(grid, grid[1:])])
        b = np.array([bench[y] / bench[x] - 1 for x, y in zip(grid, grid[1:])])
        bc = s["benchmark_correlation"]
        assert bc["symbol"] == BENCH and bc["days"] == len(grid) - 1
        assert bc["value"] == pytest.approx(np.corrcoef(r, b)[0, 1], abs=1e-8)
    assert out["strategies"][2]["benchmark_correlation"]["value"] > 0.9  # Later holds mostly the benchmark


def test_figures_are_the_strategy_pages_own(site):
    out = _compare(site, "Up", "Down")
    for name, s in zip(("Up", "Down"), out["strategies"]):
        summary = site.client.get(f"/p/strategies/{site.ids[name]}").json()
        perf, f = summary["performance"], s["figures"]
        assert f["total_return"] == pytest.approx(perf["total_return"], abs=1e-9)
        assert f["max_drawdown"] == pytest.approx(perf["drawdown"]["max_drawdown"], abs=1e-9)
        assert f["sharpe"] == pytest.approx(perf["sharpe_ratio"], abs=1e-9)
        assert f["dsr"] == pytest.approx(perf["significance"]["dsr"], abs=1e-9)
        assert f["trades"] == perf["trading"]["trades"] and f["track_days"] == perf["days"]
        assert f["base_currency"] == "USD" and f["live_share"] == summary["live_share"]


def test_too_few_common_days_is_null_with_the_reason(site):
    out = _compare(site, "Up", "Short")
    assert 0 < out["common"]["days"] < 21
    cell = out["correlation"][0][1]
    assert cell["value"] is None and "at least 20" in cell["warning"] and cell["days"] == out["common"]["returns"]
    assert out["strategies"][1]["benchmark_correlation"]["warning"] == "no benchmark"
    assert out["strategies"][0]["benchmark_correlation"]["value"] is None  # on these few days, neither
    page = site.client.get("/compare", params={"ids": f"{site.ids['Up']},{site.ids['Short']}"})
    assert page.status_code == 200 and "at least 20" in page.text


def test_errors_name_ids_and_private_is_unknown(site):
    a, b = site.ids["Up"], site.ids["Down"]
    bad = {
        "": "got none",
        "nonsense": "is not a strategy id",
        f"{a},{a}": "twice",
        ",".join(str(uuid.uuid4()) for _ in range(7)): "at most 6",
        f"{a},,{b}": "empty item",
    }
    for raw, fragment in bad.items():
        r = site.client.get("/p/compare", params={"ids": raw})
        assert r.status_code == 400 and "`ids`" in r.json()["detail"] and fragment in r.json()["detail"], raw
        page = site.client.get("/compare", params={"ids": raw})
        assert page.status_code == 400 and "`ids`" in page.text and '<svg class="svg-chart"' not in page.text
    assert site.client.get("/p/compare").status_code == 400
    unknown = str(uuid.uuid4())
    for sid in (site.ids["Hidden"], unknown):
        r = site.client.get("/p/compare", params={"ids": f"{a},{sid}"})
        assert r.status_code == 404 and r.json() == {"detail": f"Strategy not found: {sid} (in `ids`)"}
        page = site.client.get("/compare", params={"ids": f"{sid},{a}"})
        assert page.status_code == 404 and sid in page.text and "Hidden" not in page.text


def test_the_page_draws_svg_without_script_and_the_add_form_redirects(site):
    ids = [site.ids[n] for n in ("Up", "Down", "Later")]
    r = site.client.get("/compare", params={"ids": ",".join(ids)})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert html.count('<svg class="svg-chart"') == 2 and html.count("<polyline") >= 6
    assert "<script" not in html and "plotly" not in html
    assert re.findall(r'<tr data-metric="(\w+)"', html)[:3] == ["total_return", "cagr", "volatility"]
    corr = re.findall(r'<td class="num corr" style="background-color: #[0-9a-f]{6}"[^>]*? data-value="([^"]*)"', html)
    assert len(corr) == 9 + 3 and corr[0] == "1.0"
    assert 'id="compare-add"' in html and f'name="ids" value="{",".join(ids)}"' in html
    # ETag: the same answer is a 304
    again = site.client.get("/compare", params={"ids": ",".join(ids)}, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    # the add form (no script): paste an id or a page address, or pick one
    added = site.client.get("/compare", params={"ids": ids[0], "add": f"http://example.test/s/{ids[1]}", "pick": ""})
    assert added.status_code == 303 and added.headers["location"] == f"/compare?ids={ids[0]},{ids[1]}"
    picked = site.client.get("/compare", params={"pick": ids[2]})
    assert picked.status_code == 303 and picked.headers["location"] == f"/compare?ids={ids[2]}"
    wrong = site.client.get("/compare", params={"ids": ids[0], "add": "not an id"})
    assert wrong.status_code == 400 and "`add`" in wrong.text
    # no ids at all: the empty page with the add form, offering the board's strategies
    empty = site.client.get("/compare")
    assert empty.status_code == 200 and 'id="compare-empty"' in empty.text and 'id="compare-pick"' in empty.text


def test_compare_links_on_the_board_and_the_strategy_page(site):
    board = site.client.get("/", params={"min_days": 0}).text
    for name in ("Up", "Down", "Later"):
        assert f'href="/compare?ids={site.ids[name]}"' in board
    page = site.client.get(f"/s/{site.ids['Up']}").text
    assert f'href="/compare?ids={site.ids["Up"]}"' in page


def test_a_strategy_without_history_is_compared_with_nothing_drawn(site):
    out = _compare(site, "Up", "Empty")
    assert out["common"]["days"] == 0 and "Empty: no NAV history yet" in out["warnings"]
    assert out["strategies"][1]["equity"] is None and out["correlation"][0][1]["value"] is None
    page = site.client.get("/compare", params={"ids": f"{site.ids['Up']},{site.ids['Empty']}"})
    assert page.status_code == 200 and "no NAV history yet" in page.text and "No data" in page.text
