"""The strategy page of a strategy in euros (issue 23), over HTTP against the real services: the base
currency is said at the top (with its link to the methodology), every figure in it carries €, and
each price carries its instrument's own currency ($ for a dollar stock, € for a euro one), as
/state and /trades say them."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from devtools.stack import Stack, wait_until
from services.query_api.formatting import amount

pytestmark = pytest.mark.integration

EUR_STOCK, USD_STOCK, FX = "PGCEUR", "PGCUSD", "C:EURUSD"


def _weekdays(start: date, end: date) -> list[date]:
    return [
        start + timedelta(days=i) for i in range((end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5
    ]


def _at(d: date, hour: int) -> str:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC).isoformat()


class Cells(HTMLParser):
    """Every table's rows as (the row's attributes, [(a cell's attributes, its text)])."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[dict, list[tuple[dict, str]]]]] = {}
        self._table: str | None = None
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and "id" in a:
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append((a, []))
        elif tag == "td" and self._table:
            self._cell = a
            self.tables[self._table][-1][1].append((a, ""))

    def handle_data(self, data):
        if self._cell is not None and self._table:
            cells = self.tables[self._table][-1][1]
            cells[-1] = (cells[-1][0], cells[-1][1] + data)

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "table":
            self._table = None


def _rows(html: str, table: str) -> list[tuple[dict, list[tuple[dict, str]]]]:
    parser = Cells()
    parser.feed(html)
    return [row for row in parser.tables[table] if row[1]]


@pytest.fixture(scope="module")
def euro(stack: Stack):
    today = datetime.now(UTC).date()
    days = _weekdays(today - timedelta(days=40), today)
    rows = []
    for i, d in enumerate(days):
        rows += [(EUR_STOCK, d.isoformat(), 40 + i * 0.25), (USD_STOCK, d.isoformat(), 100 + i * 0.5)]
        rows.append((FX, d.isoformat(), 1.08 + i * 0.001))  # one EUR in USD
    stack.add_prices(rows)
    stack.db.prices.record_currencies({EUR_STOCK: "EUR", USD_STOCK: "USD"}, "test")
    sid, key = stack.db.identity.create_strategy(
        f"Euro {uuid.uuid4().hex[:6]}", benchmark="", base_currency="EUR", visibility="public", show_positions="live"
    )
    sid, headers = str(sid), {"Authorization": f"Bearer {key}"}
    d0, d1, d2 = days[2], days[10], days[20]
    r = stack.post(
        sid,
        "cash",
        {"event_type": "deposit", "amount": "1234567.89", "occurred_at": _at(d0, 13), "external_id": "dep"},
        headers,
    )
    assert r.status_code == 201, r.text
    price = dict((s, {}) for s in (EUR_STOCK, USD_STOCK))
    for symbol, d, close in rows:
        if symbol in price:
            price[symbol][d] = close
    orders = [
        {"symbol": EUR_STOCK, "side": "buy", "quantity": 100, "price": price[EUR_STOCK][d0.isoformat()]},
        {"symbol": USD_STOCK, "side": "buy", "quantity": 50, "price": price[USD_STOCK][d0.isoformat()], "fees": 2},
        {"symbol": USD_STOCK, "side": "sell", "quantity": 50, "price": price[USD_STOCK][d1.isoformat()], "fees": 2},
        {"symbol": USD_STOCK, "side": "buy", "quantity": 10, "price": price[USD_STOCK][d2.isoformat()]},
    ]
    for order, d in zip(orders, (d0, d0, d1, d2), strict=True):
        order |= {"executed_at": _at(d, 15), "external_order_id": f"o-{order['symbol']}-{d}"}
        r = stack.post(sid, "orders", {"orders": [order]}, headers)
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 1, r.text
    stack.wait_projected()
    wait_until(lambda: stack.state(sid, headers)["nav"] is not None, 30, "the NAV")
    return sid, headers


def _api(stack: Stack, sid: str, headers: dict, what: str):
    r = stack.query.get(f"/api/v1/strategies/{sid}/{what}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json(parse_float=Decimal)


def test_the_page_says_the_base_currency_and_every_figure_carries_it(stack, euro):
    sid, headers = euro
    page = stack.query.get(f"/s/{sid}")
    assert page.status_code == 200
    html = page.text
    assert 'data-base-currency="EUR"' in html
    badge = re.search(r'<span class="badge currency" id="base-currency" data-value="EUR">(.*?)</span>', html)
    assert badge and badge[1].startswith("Base currency: EUR") and 'href="/methodology#currencies"' in badge[1]

    perf = _api(stack, sid, headers, "performance")
    assert perf["base_currency"] == "EUR"
    for card in ("starting_equity", "ending_equity"):
        shown = re.search(rf'data-metric="{card}"[^>]*>.*?<span class="value[^"]*">(.*?)</span></div>', html)
        text = shown and re.sub(r"<[^>]+>", "", shown[1])  # a break may be allowed after the currency
        assert text == amount(Decimal(str(perf[card])), "EUR"), (card, text)
        assert text.startswith("€")

    # cash events and the NAV table: in euros
    cash = _rows(html, "cash-table")
    assert [cells[2][1] for _, cells in cash] == ["€1,234,567.89"]
    nav = _rows(html, "nav-table")
    assert nav and all(cell.startswith("€") for _, cells in nav for _, cell in cells[1:4])


def test_prices_carry_the_instruments_currency_and_values_the_base(stack, euro):
    sid, headers = euro
    html = stack.query.get(f"/s/{sid}").text
    state = _api(stack, sid, headers, "state")
    held = {p["symbol"]: p for p in state["positions"]}
    assert {s: p["currency"] for s, p in held.items()} == {EUR_STOCK: "EUR", USD_STOCK: "USD"}
    for attrs, cells in _rows(html, "positions-table"):
        symbol = attrs["data-symbol"]
        currency = held[symbol]["currency"]
        assert attrs["data-currency"] == currency
        (_, sym), _, (cost_attrs, cost), (_, close), (_, value), _, (_, pnl) = cells
        assert sym == symbol and cost_attrs["data-currency"] == currency
        assert cost == amount(Decimal(str(held[symbol]["cost_basis"])), currency)
        assert close.startswith({"EUR": "€", "USD": "$"}[currency]) and value.startswith("€")
        assert pnl.lstrip("+−").startswith("€")

    trades = _api(stack, sid, headers, "trades")["items"]
    (closed,) = [t for t in trades if t["status"] == "closed"]
    assert closed["currency"] == "USD" and closed["realized_pnl_base"] is not None
    ((attrs, cells),) = _rows(html, "closed-trades")
    texts = [text for _, text in cells]
    assert attrs["data-trade-id"] == closed["id"]
    base_pnl = Decimal(str(closed["realized_pnl_base"]))
    assert texts[3] == amount(base_pnl, "EUR", True) and cells[3][0]["data-currency"] == "EUR"
    assert texts[7] == amount(Decimal(str(closed["entry_price"])), "USD")  # entry, in dollars
    assert texts[8] == amount(Decimal(str(closed["exit_price"])), "USD")
    assert texts[9] == amount(Decimal(str(closed["fees"])), "EUR")  # fees: in the base currency

    # an order's price in its symbol's currency (known from the positions and trades)
    for _, cells in _rows(html, "orders-table"):
        symbol, price = cells[1][1], cells[4][1]
        assert price.startswith({EUR_STOCK: "€", USD_STOCK: "$"}[symbol]), (symbol, price)


def test_open_trades_entry_prices_carry_the_instruments_currency(stack, euro):
    sid, _ = euro
    html = stack.query.get(f"/s/{sid}").text
    entry = {cells[1][1]: (cells[4][0].get("data-currency"), cells[4][1]) for _, cells in _rows(html, "open-trades")}
    assert entry[USD_STOCK][0] == "USD" and entry[USD_STOCK][1].startswith("$")
    assert entry[EUR_STOCK][0] == "EUR" and entry[EUR_STOCK][1].startswith("€")
