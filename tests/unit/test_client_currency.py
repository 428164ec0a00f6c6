"""botranks_client and its commands with currencies (issue 23), against a fake API
(httpx.MockTransport): ``base_currency`` on /state, /nav and /performance, ``currencies`` on
/performance, ``currency`` on positions and trades, ``realized_pnl_base`` on trades. Each is read
when the server sends it and defaults (USD, no base P&L) when an older server does not; the tables
name the currency of each money figure; ``--json`` and ``--csv`` carry the fields as sent."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from decimal import Decimal
from uuid import UUID

import httpx
import msgspec
import pytest

from botranks_client import AsyncClient, Client
from botranks_client.cli import common
from botranks_client.cli.trades import CSV_COLUMNS
from tools import cli

STRATEGY = UUID("0b5c7f1e-4a55-4c27-9d0e-0d1f2a3b4c5d")
EXACT = msgspec.json.Encoder(decimal_format="number")
NEW = ("base_currency", "currencies", "currency", "realized_pnl_base")


def _state(new: bool) -> dict:
    position = {
        "id": "4b1c2a8e-0d7e-5f6a-9b8c-7d6e5f4a3b2c",
        "strategy_id": str(STRATEGY),
        "symbol": "SAP.DE",
        "quantity": Decimal("10"),
        "cost_basis": Decimal("120.5"),
        "updated_at": "2026-04-20T15:00:00Z",
    }
    nav = {
        "total_equity": Decimal("100000.10"),
        "cash_balance": Decimal("98795.10"),
        "market_value": Decimal("1205.00"),
        "captured_at": "2026-04-20T15:00:00Z",
    }
    body = {"strategy_id": str(STRATEGY), "positions": [position], "nav": nav, "last_order_at": None}
    if new:
        body["base_currency"] = "EUR"
        position["currency"] = "GBP"
    return body


def _nav(new: bool) -> dict:
    row = {
        "date": "2026-04-20",
        "cash": Decimal("98795.10"),
        "market_value": Decimal("1205.00"),
        "total_equity": Decimal("100000.10"),
        "external_flow": Decimal("100000"),
    }
    return {"strategy_id": str(STRATEGY), "series": [row], **({"base_currency": "EUR"} if new else {})}


def _performance(new: bool) -> dict:
    body = {
        "strategy_id": str(STRATEGY),
        "inception_date": "2026-04-20",
        "latest_date": "2026-04-21",
        "days": 2,
        "years": 0.005,
        "starting_equity": Decimal("100000.10"),
        "ending_equity": Decimal("100100.25"),
        "total_return": 0.001,
        "cagr": None,
        "volatility_annualized": None,
        "downside_volatility_annualized": None,
        "sharpe_ratio": None,
        "sortino_ratio": None,
        "calmar_ratio": None,
        "drawdown": {"max_drawdown": 0.0, "max_drawdown_duration_days": 0, "current_drawdown": 0.0},
        "monthly_returns": {"2026-04": 0.001},
        "yearly_returns": {"2026": 0.001},
        "benchmark": None,
        "warnings": [],
    }
    if new:
        body |= {"base_currency": "EUR", "currencies": ["EUR", "GBP", "USD"]}
    return body


def _trade(new: bool) -> dict:
    body = {
        "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "symbol": "SAP.DE",
        "direction": "long",
        "status": "closed",
        "opened_at": "2026-04-20T14:00:00Z",
        "closed_at": "2026-04-21T14:00:00Z",
        "quantity_open": Decimal(0),
        "max_quantity": Decimal("10"),
        "entry_price": Decimal("120.5"),
        "exit_price": Decimal("130.5"),
        "quantity_closed": Decimal("10"),
        "fees": Decimal("1.25"),
        "realized_pnl": Decimal("98.75"),
        "return": 0.0819,
        "holding_days": 1.0,
        "fills": 2,
    }
    if new:
        body |= {"currency": "GBP", "realized_pnl_base": Decimal("115.123456789012345678")}
    return body


def _handler(new: bool, seen: list[str] | None = None):
    bodies = {
        "state": _state(new),
        "nav": _nav(new),
        "performance": _performance(new),
        "trades": {"items": [_trade(new)], "next_cursor": None},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        what = request.url.path.rsplit("/", 1)[-1]
        if seen is not None:
            seen.append(what)
        return httpx.Response(200, content=EXACT.encode(bodies[what]), headers={"Content-Type": "application/json"})

    return handle


def _client(new: bool, seen: list[str] | None = None) -> Client:
    return Client("http://botranks.test", "fq_live_test", STRATEGY, transport=httpx.MockTransport(_handler(new, seen)))


# ---------------------------------------------------------------- the typed reads


def test_the_reads_carry_the_currencies_a_server_sends():
    with _client(new=True) as c:
        state, nav, perf, trades = c.state(), c.nav(), c.performance(), list(c.trades())
    assert state.base_currency == "EUR" and state.positions[0].currency == "GBP"
    assert nav.base_currency == "EUR"
    assert (perf.base_currency, perf.currencies) == ("EUR", ["EUR", "GBP", "USD"])
    (trade,) = trades
    assert trade.currency == "GBP" and trade.realized_pnl == Decimal("98.75")
    assert trade.realized_pnl_base == Decimal("115.123456789012345678")  # exact: never through a float


def test_an_older_server_without_them_still_decodes_as_usd():
    with _client(new=False) as c:
        state, nav, perf, (trade,) = c.state(), c.nav(), c.performance(), list(c.trades())
    assert state.base_currency == "USD" and state.positions[0].currency == "USD"
    assert nav.base_currency == "USD" and perf.base_currency == "USD" and perf.currencies == ["USD"]
    assert trade.currency == "USD" and trade.realized_pnl_base is None
    assert state.nav.total_equity == Decimal("100000.10")


def test_fields_a_newer_server_adds_are_ignored():
    body = {**_state(True), "fx_source": "ecb", "positions": [{**_state(True)["positions"][0], "isin": "DE0007164600"}]}

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=EXACT.encode(body), headers={"Content-Type": "application/json"})

    with Client("http://botranks.test", "fq_live_test", STRATEGY, transport=httpx.MockTransport(handle)) as c:
        assert c.state().positions[0].currency == "GBP"


def test_the_async_client_reads_them_too():
    async def run():
        transport = httpx.MockTransport(_handler(True))
        async with AsyncClient("http://botranks.test", "fq_live_test", STRATEGY, transport=transport) as c:
            return await c.state(), await c.performance(), [t async for t in c.trades()]

    state, perf, trades = asyncio.run(run())
    assert state.base_currency == "EUR" and perf.currencies == ["EUR", "GBP", "USD"]
    assert trades[0].realized_pnl_base == Decimal("115.123456789012345678")


# ---------------------------------------------------------------- the commands


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setattr(cli, "configure_logging", lambda *args, **kwargs: None)
    monkeypatch.setenv("FQ_API_KEY", "fq_live_test")
    monkeypatch.setenv("FQ_STRATEGY_ID", str(STRATEGY))
    monkeypatch.setenv("BOTRANKS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("COLUMNS", "200")  # rich: one line per row, nothing folded
    client_log = logging.getLogger("botranks_client")
    level, handlers = client_log.level, list(client_log.handlers)
    yield monkeypatch
    client_log.setLevel(level)
    client_log.handlers[:] = handlers


def _serve(monkeypatch, new: bool) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(common, "make_client", lambda conn, **options: _client(new, seen))
    return seen


def _lines(text: str) -> list[str]:
    return [" ".join(line.replace("│", " ").replace("┃", " ").split()) for line in text.splitlines()]


def test_state_names_the_base_currency_and_each_positions_own(env, capsys):
    _serve(env, new=True)
    cli.main(["state"])
    lines = _lines(capsys.readouterr().out)
    assert "Symbol Quantity Cost basis Currency Updated" in lines
    assert any(line.startswith("SAP.DE 10 120.5 GBP 2026-04-20") for line in lines), lines
    assert "Base currency EUR" in lines and "Total equity (EUR) 100,000.10" in lines
    assert "Cash (EUR) 98,795.10" in lines and "Market value (EUR) 1,205.00" in lines


def test_state_json_is_the_api_body(env, capsys):
    _serve(env, new=True)
    cli.main(["state", "--json"])
    body = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert body["base_currency"] == "EUR" and body["positions"][0]["currency"] == "GBP"
    assert body["nav"]["total_equity"] == Decimal("100000.10")


def test_performance_says_what_it_converted(env, capsys):
    _serve(env, new=True)
    cli.main(["performance"])
    lines = _lines(capsys.readouterr().out)
    assert "Base currency EUR (converted from GBP, USD)" in lines
    assert "Equity (EUR) 100,000.10 → 100,100.25" in lines
    cli.main(["performance", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert (body["base_currency"], body["currencies"]) == ("EUR", ["EUR", "GBP", "USD"])


def test_an_older_server_is_shown_in_usd(env, capsys):
    _serve(env, new=False)
    cli.main(["performance"])
    lines = _lines(capsys.readouterr().out)
    assert "Base currency USD" in lines and "Equity (USD) 100,000.10 → 100,100.25" in lines
    cli.main(["trades"])
    lines = _lines(capsys.readouterr().out)
    assert any("SAP.DE USD long closed 10 120.5000 130.5000 98.75" in line for line in lines), lines


def test_nav_titles_carry_the_currency_and_the_csv_stays_the_servers(env, capsys):
    _serve(env, new=True)
    cli.main(["nav"])
    lines = _lines(capsys.readouterr().out)
    assert "Date Cash (EUR) Market value (EUR) Total equity (EUR) External flow (EUR)" in lines
    cli.main(["nav", "--csv"])
    assert capsys.readouterr().out == (
        "date,cash,market_value,total_equity,external_flow\n2026-04-20,98795.10,1205.00,100000.10,100000\n"
    )
    cli.main(["nav", "--json"])
    assert json.loads(capsys.readouterr().out)["base_currency"] == "EUR"


def test_trades_show_the_instruments_currency_and_the_pnl_in_the_base(env, capsys):
    seen = _serve(env, new=True)
    cli.main(["trades"])
    lines = _lines(capsys.readouterr().out)
    header = next(line for line in lines if line.startswith("Opened"))
    assert header == "Opened Closed Symbol Currency Side Status Max qty Entry Exit P&L (EUR) Return Days"
    row = next(line for line in lines if "SAP.DE" in line)
    assert "SAP.DE GBP long closed 10 120.5000 130.5000 115.12 +8.19% 1.0" in row
    assert seen == ["trades", "state"]  # the base currency: one more read, for the table only

    seen.clear()
    cli.main(["trades", "--json"])
    (line,) = capsys.readouterr().out.splitlines()
    # as the API sends it: decimals as exact JSON numbers (like every other --json); the new fields are there
    assert json.loads(line, parse_float=Decimal) == json.loads(
        msgspec.json.Encoder(decimal_format="number").encode(_trade(True)), parse_float=Decimal
    )
    assert '"currency":"GBP"' in line and '"realized_pnl_base":115.123456789012345678' in line
    cli.main(["trades", "--csv"])
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert tuple(rows[0]) == CSV_COLUMNS and set(NEW[2:]) < set(CSV_COLUMNS)
    got = dict(zip(rows[0], rows[1], strict=True))
    assert got["currency"] == "GBP" and got["realized_pnl_base"] == "115.123456789012345678"
    assert got["realized_pnl"] == "98.75" and got["return"] == "0.0819"
    assert seen == ["trades", "trades"]  # JSON and CSV need no base currency


def test_trades_csv_from_an_older_server_leaves_the_base_pnl_empty(env, capsys):
    _serve(env, new=False)
    cli.main(["trades", "--csv"])
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    got = dict(zip(rows[0], rows[1], strict=True))
    assert (got["currency"], got["realized_pnl_base"]) == ("USD", "")
