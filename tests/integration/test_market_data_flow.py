"""Market data end to end: late prices re-mark NAV, the Polygon daemon fills new symbols, the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from botranks_domain.bars import Bar
from devtools.stack import ROOT, wait_until
from services.market_data.polygon import PolygonClient
from services.market_data.service import MarketDataDaemon

pytestmark = pytest.mark.integration

DAYS = [date(2024, 6, 3) + timedelta(days=i) for i in range(14)]
WEEKDAYS = [d for d in DAYS if d.weekday() < 5]


def test_a_late_price_re_marks_nav_from_its_date_on(stack):
    stack.db.prices.write_bars(
        [
            Bar(symbol=s, date=d, close=Decimal(p + i))
            for i, d in enumerate(WEEKDAYS)
            for s, p in (("SPY", 500), ("LATE1", 100))
        ],
        "test",
    )
    sid, auth = stack.new_strategy()
    stack.post(sid, "cash", {"event_type": "deposit", "amount": 10000, "occurred_at": f"{WEEKDAYS[0]}T14:00:00Z"}, auth)
    stack.post(
        sid,
        "orders",
        {"orders": [{"symbol": "LATE1", "side": "buy", "quantity": 10, "executed_at": f"{WEEKDAYS[1]}T15:00:00Z"}]},
        auth,
    )

    def series():
        r = stack.query.get(f"/api/v1/strategies/{sid}/nav", headers=auth).json()["series"]
        return {row["date"]: Decimal(str(row["total_equity"])) for row in r}

    before = series()
    corrected = WEEKDAYS[5]
    stack.db.prices.write_bars([Bar(symbol="LATE1", date=corrected, close=Decimal(200))], "test")  # a correction
    wait_until(lambda: series()[corrected.isoformat()] != before[corrected.isoformat()], 20, "re-marking")
    after = series()
    for d in before:
        if d < corrected.isoformat():
            assert after[d] == before[d]
    assert after[corrected.isoformat()] == before[corrected.isoformat()] + 10 * (200 - (100 + 5))
    assert after[WEEKDAYS[6].isoformat()] == before[WEEKDAYS[6].isoformat()]  # the next close is unchanged


def polygon_transport(requests: list[str]):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v3/reference/tickers/"):  # every stock here is quoted in USD
            return httpx.Response(200, json={"status": "OK", "results": {"currency_name": "usd"}})
        if request.url.path == "/v3/reference/splits":  # SPY split 2-for-1 once, in this made-up world
            ticker = request.url.params["ticker"]
            requests.append(f"splits of {ticker}")
            results = (
                [{"execution_date": "2022-01-10", "split_from": 1, "split_to": 2, "ticker": ticker, "id": "E1"}]
                if ticker == "SPY"
                else []
            )
            return httpx.Response(200, json={"status": "OK", "results": results})
        requests.append(request.url.path)
        ticker = request.url.path.split("/")[4]
        start = date.fromisoformat(request.url.path.split("/")[-2])
        results = [
            {
                "t": int(datetime.combine(start + timedelta(days=i), datetime.min.time(), UTC).timestamp() * 1000),
                "o": 10,
                "h": 11,
                "l": 9,
                "c": 10 + i,
                "v": 1000,
            }
            for i in range(3)
        ]
        return httpx.Response(200, json={"ticker": ticker, "status": "OK", "resultsCount": 3, "results": results})

    return httpx.MockTransport(handler)


def test_polygon_daemon_fetches_history_of_new_symbols_and_benchmarks(stack):
    sid, auth = stack.new_strategy()
    stack.post(sid, "orders", {"orders": [{"symbol": "BTC-USD", "side": "buy", "quantity": 1, "price": 30000}]}, auth)
    stack.wait_projected()
    requests: list[str] = []
    today = date(2026, 1, 10)
    client = PolygonClient("test-key", transport=polygon_transport(requests), sleep=lambda s: None)
    daemon = MarketDataDaemon(stack.db, client, today=lambda: today)
    daemon.tick()
    assert any("/X:BTCUSD/range/1/day/2021-01-10/2026-01-10" in p for p in requests)
    assert any("/SPY/" in p for p in requests)  # the strategy's benchmark
    assert "splits of SPY" in requests and not any("BTC" in p for p in requests if p.startswith("splits"))
    assert [(s.ex_date, s.split_from, s.split_to) for s in stack.db.prices.splits(["SPY", "BTC-USD"])] == [
        (date(2022, 1, 10), 1, 2)
    ]
    with stack.sql() as curs:
        rows = curs.execute("SELECT date, close FROM prices WHERE symbol = 'BTC-USD' ORDER BY date").fetchall()
        assert [(r["date"], r["close"]) for r in rows][:2] == [(date(2021, 1, 10), 10), (date(2021, 1, 11), 11)]
        assert curs.execute("SELECT count(*) AS n FROM price_updates WHERE symbol = 'BTC-USD'").fetchone()["n"] == 1
    requests.clear()
    daemon.tick()  # nothing new, and the daily refresh is not due yet
    assert requests == []


def _demo(stack) -> dict:
    """`botranks demo` against the stack's command_api, as a user runs it; its JSON output."""
    out = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--base-url", f"http://127.0.0.1:{stack.command_port}"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout[out.stdout.index("{") :])


def test_demo_replays_a_bot_with_state_and_nav_that_agree(stack):
    demo = _demo(stack)
    auth = {"Authorization": f"Bearer {demo['api_key']}"}
    sid = demo["strategy_id"]
    assert demo["replayed"]["orders"] > 100 and demo["prices"]["source"] == "synthetic-demo"
    # the one exception: an instance without any EURUSD rate gets the demo's (its EUR bot needs one)
    assert demo["prices"]["fx"]["synthetic"] is True and demo["prices"]["fx"]["symbol"] == "C:EURUSD"
    with stack.sql() as curs:  # invented prices stay under invented names
        assert (
            curs.execute(
                "SELECT count(*) AS n FROM prices WHERE source = 'synthetic-demo' AND symbol NOT LIKE 'DEMO-%%'"
                " AND symbol <> 'C:EURUSD'"
            ).fetchone()["n"]
            == 0
        )
    state = stack.state(sid, auth)
    series = stack.query.get(f"/api/v1/strategies/{sid}/nav", headers=auth).json()["series"]
    assert len(series) > 3 * 252
    assert series[0]["date"] == "2022-01-03" and series[0]["external_flow"] == 1000000
    last = series[-1]
    assert state["nav"]["total_equity"] == last["total_equity"]
    assert state["nav"]["captured_at"].startswith(last["date"])
    flows = sum(Decimal(str(r["external_flow"])) for r in series)
    assert flows == Decimal(1000000 - 50000)  # the deposit and the withdrawal, nothing else

    # several public sample bots, each with its own fresh key (its whole budget left) and history
    bots = demo["bots"]
    assert len(bots) >= 5 and bots[0]["strategy_id"] == sid and bots[0]["api_key"] == demo["api_key"]
    assert len({b["name"] for b in bots}) == len({b["strategy_id"] for b in bots}) == len(bots)
    assert {b["risk"] for b in bots} == {"low", "medium", "high"}
    with stack.sql() as curs:
        rows = curs.execute(
            "SELECT id::text AS id, visibility, benchmark, show_positions FROM strategies WHERE id = ANY(%s::uuid[])",
            ([b["strategy_id"] for b in bots],),
        ).fetchall()
    assert {r["id"]: (r["visibility"], r["benchmark"], r["show_positions"]) for r in rows} == {
        b["strategy_id"]: ("public", b["benchmark"], b["show_positions"]) for b in bots
    }
    assert {b["show_positions"] for b in bots} == {"none", "delayed", "live"}
    equities = set()
    for bot in bots:
        assert bot["replayed"]["orders"] > 0 and bot["page"].endswith(f"/s/{bot['strategy_id']}")
        response = stack.query.get(
            f"/api/v1/strategies/{bot['strategy_id']}/nav", headers={"Authorization": f"Bearer {bot['api_key']}"}
        )
        assert response.status_code == 200, bot["name"]
        limit, left = (int(response.headers[f"RateLimit-{h}"]) for h in ("Limit", "Remaining"))
        assert left == limit - 1 or bot is bots[0], bot["name"]  # (the first one's key was used above)
        nav = response.json()["series"]
        assert len(nav) > 252, bot["name"]
        equities.add(nav[-1]["total_equity"])
    assert len(equities) == len(bots)  # different rules, different outcomes


def test_demo_performance_equals_the_pure_function_of_its_nav(stack):
    import polars as pl

    from botranks_domain.performance import compute_performance
    from botranks_domain.significance import Trials

    demo = _demo(stack)
    auth, sid = {"Authorization": f"Bearer {demo['api_key']}"}, demo["strategy_id"]
    series = stack.query.get(f"/api/v1/strategies/{sid}/nav", headers=auth).json()["series"]
    nav = pl.DataFrame(
        {
            "date": [date.fromisoformat(r["date"]) for r in series],
            "total_equity": [float(r["total_equity"]) for r in series],
            "external_flow": [float(r["external_flow"]) for r in series],
        }
    )
    with stack.sql() as curs:
        rows = curs.execute(
            "SELECT date, close FROM prices WHERE symbol = 'DEMO-SPY' AND date BETWEEN %s AND %s ORDER BY date",
            (nav["date"][0], nav["date"][-1]),
        ).fetchall()
        counted = curs.execute("SELECT trials, sharpe_std FROM rm_trials").fetchone()
    bench = pl.DataFrame({"date": [r["date"] for r in rows], "close": [float(r["close"]) for r in rows]})
    trials = Trials(counted["trials"], counted["sharpe_std"])  # the demo's strategies with 30+ daily returns
    assert trials.count >= 2
    for rate in (0.0, 0.045):
        expected = json.loads(json.dumps(compute_performance(nav, bench, "DEMO-SPY", rate, trials), default=str))
        got = stack.query.get(
            f"/api/v1/strategies/{sid}/performance", params={"risk_free_rate": rate}, headers=auth
        ).json()
        assert got.pop("strategy_id") == sid
        assert got.pop("trading")["trades"] >= 0  # the trades' statistics: not a function of the NAV alone
        assert (got.pop("base_currency"), got.pop("currencies")) == ("USD", ["USD"])  # the strategy's, not the NAV's
        assert got == expected
    assert got["benchmark"]["symbol"] == "DEMO-SPY" and got["sharpe_ratio"] is not None
    assert len(got["monthly_returns"]) >= 36 and set(got["yearly_returns"]) >= {"2022", "2023", "2024", "2025"}


def test_a_second_demo_adds_no_bot_and_sends_only_what_is_new(stack):
    """Issue 24: `botranks demo` again finds its bots by name and sends nothing already stored."""
    from services.market_data.sample_bots import SAMPLE_BOTS

    first = _demo(stack)  # the module's earlier tests may have run it already: then this one finds its bots too
    with stack.sql() as curs:
        before = curs.execute("SELECT count(*) AS n FROM strategies").fetchone()["n"]
    again = _demo(stack)
    assert again["existed"] == len(SAMPLE_BOTS)
    assert [b["strategy_id"] for b in again["bots"]] == [b["strategy_id"] for b in first["bots"]]
    assert all(b["replayed"]["orders"] == 0 for b in again["bots"]), [b["replayed"] for b in again["bots"]]
    with stack.sql() as curs:
        assert curs.execute("SELECT count(*) AS n FROM strategies").fetchone()["n"] == before
