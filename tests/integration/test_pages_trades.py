"""The strategy page's trades (issue 22), over HTTP against real services: the statistics cards equal
``/performance``'s ``trading`` for every viewer; trade rows (tables, ``trades.csv``) only as
``show_positions`` publishes them (none / delayed 24 h / live; the owner sees all); the CSV's columns
and rows; paging of the closed trades; the ETag moving with a new trade; the board's trade columns.
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from types import SimpleNamespace

import httpx
import pytest

from devtools.stack import Stack, wait_until
from services.query_api.trade_pages import CSV_COLUMNS, TRADES_PAGE_SIZE

pytestmark = pytest.mark.integration

PASSWORD = "trades-pages-password"
SYM, BENCH = "TRPG", "TRPGB"
ROUND_TRIPS = 56  # more than a page of closed trades


def _weekdays(start: date, end: date) -> list[date]:
    return [
        start + timedelta(days=i) for i in range((end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5
    ]


def _at(d: date, hour: int, minute: int = 0) -> str:
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=UTC).isoformat()


def _session(stack: Stack) -> tuple[str, str]:
    email = f"trades-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.command_port}", timeout=30) as c:
        assert c.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        r = c.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.cookies["access_token"]
    return str(stack.db.identity.user_id(email)), token


def _orders(days: list[date], closes: dict[date, float]) -> list[dict]:
    """Round trips on consecutive days (longs and shorts, wins and losses, fees), a flip through zero,
    one trade closed two hours ago and one left open."""
    out = []

    def order(side: str, qty: int, d: date, hour: int, price: float, fees: str = "0", at: str | None = None) -> None:
        out.append({"symbol": SYM, "side": side, "quantity": qty, "price": price, "fees": fees,
                    "executed_at": at or _at(d, hour)})  # fmt: skip

    for i in range(ROUND_TRIPS):
        d = days[2 + i]
        first, second = ("buy", "sell") if i % 3 else ("sell", "buy")
        order(first, 10 + i, d, 14, closes[d], "1.25")
        order(second, 10 + i, d, 16, round(closes[d] * (1.01 if i % 4 else 0.985), 4), "0.75")
    d = days[2 + ROUND_TRIPS]
    order("buy", 100, d, 14, closes[d], "2")
    order("sell", 150, days[3 + ROUND_TRIPS], 14, closes[days[3 + ROUND_TRIPS]], "3")  # flips: closes, opens a short
    order("buy", 50, days[4 + ROUND_TRIPS], 14, closes[days[4 + ROUND_TRIPS]] * 0.99, "1")
    now = datetime.now(UTC)
    last = days[-1]
    order("buy", 7, last, 0, closes[last], at=(now - timedelta(hours=2, minutes=5)).isoformat())
    order("sell", 7, last, 0, round(closes[last] * 1.02, 4), at=(now - timedelta(hours=2)).isoformat())
    order("buy", 30, days[-3], 15, 100 + (len(days) - 3) * 0.1)
    out[-1]["symbol"] = BENCH  # left open (another symbol: the trade of two hours ago closes on its own)
    return out


@pytest.fixture(scope="module")
def site(stack: Stack):
    today = datetime.now(UTC).date()
    days = _weekdays(today - timedelta(days=130), today)
    closes = {d: round(40 * (1 + 0.05 * math.sin(i / 4)) * 1.001**i, 4) for i, d in enumerate(days)}
    stack.add_prices([(SYM, d.isoformat(), c) for d, c in closes.items()])
    stack.add_prices([(BENCH, d.isoformat(), 100 + i * 0.1) for i, d in enumerate(days)])
    owner_id, owner_token = _session(stack)
    ids, keys = {}, {}
    for show in ("none", "delayed", "live"):
        sid, key = stack.db.identity.create_strategy(
            f"Trader {show}", benchmark=BENCH, visibility="public", show_positions=show, owner_id=uuid.UUID(owner_id)
        )
        ids[show], keys[show] = str(sid), {"Authorization": f"Bearer {key}"}
        deposit = {"event_type": "deposit", "amount": 100_000, "occurred_at": _at(days[1], 13), "external_id": "d"}
        assert stack.post(ids[show], "cash", deposit, keys[show]).status_code == 201
        r = stack.post(ids[show], "orders", {"orders": _orders(days, closes)}, keys[show])
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 2 * ROUND_TRIPS + 6, r.text
    stack.wait_projected()
    wait_until(
        lambda: all((row := stack.db.ledger.leaderboard_row(uuid.UUID(s))) and row.trades for s in ids.values()),
        60,
        "the leaderboard rows with their trades",
    )
    base = f"http://127.0.0.1:{stack.query_port}"
    client = httpx.Client(base_url=base, timeout=30)
    owner = httpx.Client(base_url=base, timeout=30, cookies={"access_token": owner_token})
    yield SimpleNamespace(ids=ids, keys=keys, client=client, owner=owner, stack=stack, days=days, closes=closes)
    client.close()
    owner.close()


def _exact(response: httpx.Response):
    return json.loads(response.text, parse_float=Decimal)


def _api_trades(site, show: str) -> list[dict]:
    items, cursor = [], None
    while True:
        r = site.stack.query.get(
            f"/api/v1/strategies/{site.ids[show]}/trades",
            params={"limit": 200, **({"cursor": cursor} if cursor else {})},
            headers=site.keys[show],
        )
        assert r.status_code == 200, r.text
        body = _exact(r)
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


class TradesSection(HTMLParser):
    """The Trades section: every ``data-metric`` and its value, the tables' rows (trade ids)."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, str] = {}
        self.tables: dict[str, list[tuple[str, str]]] = {}
        self.ids: set[str] = set()
        self._in_stats = self._table = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if a.get("id") == "trades-stats":
            self._in_stats = True
        if self._in_stats and "data-metric" in a:
            self.metrics[a["data-metric"]] = a.get("data-value") or ""
        if tag == "table" and a.get("id") in ("closed-trades", "open-trades"):
            self._table = a["id"]
            self.tables[a["id"]] = []
        if tag == "tr" and self._table and "data-trade-id" in a:
            self.tables[self._table].append((a["data-trade-id"], a.get("data-status", "open")))

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        if tag == "section":
            self._in_stats = None


def _section(html: str) -> TradesSection:
    parser = TradesSection()
    parser.feed(html)
    return parser


def _equal(shown: str, value: int | Decimal | None) -> bool:
    """A card's ``data-value`` against /performance's figure read exactly (every fraction a Decimal)."""
    return shown == "" if value is None else Decimal(shown) == value


def test_the_cards_show_performance_trading_for_everyone(site):
    for show, sid in site.ids.items():
        perf = _exact(site.stack.query.get(f"/api/v1/strategies/{sid}/performance", headers=site.keys[show]))
        trading = perf["trading"]
        assert trading["trades"] == ROUND_TRIPS + 3 and trading["open_trades"] == 1
        for viewer in (site.client, site.owner):
            page = viewer.get(f"/s/{sid}")
            assert page.status_code == 200
            shown = _section(page.text).metrics
            assert set(shown) == set(trading), (show, set(shown) ^ set(trading))
            for field, value in trading.items():
                assert _equal(shown[field], value), (show, field, shown[field], value)
        # the page's JSON carries them too, as /performance does
        assert _exact(site.client.get(f"/p/strategies/{sid}"))["performance"]["trading"] == trading


def test_rows_follow_show_positions_and_the_owner_sees_all(site):
    cutoff = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=24)
    for show, sid in site.ids.items():
        trades = _api_trades(site, show)
        ended = sorted(
            (t for t in trades if t["status"] != "open"), key=lambda t: (t["closed_at"], t["opened_at"]), reverse=True
        )
        still_open = [t["id"] for t in trades if t["status"] == "open"]
        public = _section(site.client.get(f"/s/{sid}").text)
        mine = _section(site.owner.get(f"/s/{sid}").text)
        # the owner: every trade, the latest closed first, and the open ones
        assert [i for i, _ in mine.tables["closed-trades"]] == [t["id"] for t in ended[:TRADES_PAGE_SIZE]]
        assert sorted(i for i, _ in mine.tables["open-trades"]) == sorted(still_open)
        if show == "none":
            assert not public.tables and "trades-hidden" in public.ids and "trades-csv" not in public.ids
            assert site.client.get(f"/p/strategies/{sid}/trades.csv").status_code == 403
        elif show == "delayed":
            old = [t["id"] for t in ended if datetime.fromisoformat(t["closed_at"]) < cutoff]
            assert len(old) == len(ended) - 1  # the trade closed two hours ago is not shown yet
            assert [i for i, _ in public.tables["closed-trades"]] == old[:TRADES_PAGE_SIZE]
            assert "open-trades" not in public.tables and "open-trades-hidden" in public.ids
        else:
            assert public.tables == mine.tables
        assert "trades-histogram" in public.ids  # counts only: always shown


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.text)))
    assert tuple(lines[0]) == CSV_COLUMNS
    return [dict(zip(CSV_COLUMNS, line, strict=True)) for line in lines[1:]]


def test_the_csv_has_every_field_of_the_trades_it_may_show(site):
    cutoff = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=24)
    for show in ("delayed", "live"):
        sid = site.ids[show]
        trades = _api_trades(site, show)
        r = site.client.get(f"/p/strategies/{sid}/trades.csv")
        assert r.headers["content-disposition"] == f'attachment; filename="trades-{sid}.csv"'
        assert r.headers["etag"] and "no-cache" in r.headers["cache-control"]
        assert (
            site.client.get(f"/p/strategies/{sid}/trades.csv", headers={"If-None-Match": r.headers["etag"]}).status_code
            == 304
        )
        rows = _csv(r)
        if show == "delayed":
            trades = [t for t in trades if t["closed_at"] and datetime.fromisoformat(t["closed_at"]) < cutoff]
        assert [row["id"] for row in rows] == [t["id"] for t in trades]  # in the order opened, as the API
        for row, t in zip(rows, trades, strict=True):
            for c in CSV_COLUMNS:
                if c == "holding_days" and t["status"] == "open":
                    continue  # measured up to now
                value = t[c]
                if value is None:
                    assert row[c] == "", (c, row)
                elif isinstance(value, Decimal):
                    assert Decimal(row[c]) == value, (c, row[c], value)
                elif isinstance(value, (int, float)):
                    assert float(row[c]) == float(value), (c, row[c], value)
                else:
                    assert row[c] == str(value) or datetime.fromisoformat(row[c]) == datetime.fromisoformat(value)
    owned = _csv(site.owner.get(f"/p/strategies/{site.ids['none']}/trades.csv"))
    assert len(owned) == len(_api_trades(site, "none"))


def test_closed_trades_are_paged(site):
    sid = site.ids["live"]
    ended = [t for t in _api_trades(site, "live") if t["status"] != "open"]
    ended.sort(key=lambda t: (t["closed_at"], t["opened_at"]), reverse=True)
    assert len(ended) > TRADES_PAGE_SIZE
    first = site.client.get(f"/s/{sid}")
    second = site.client.get(f"/s/{sid}", params={"trades_page": 2})
    assert second.status_code == 200 and second.headers["etag"] != first.headers["etag"]
    shown = [i for i, _ in _section(second.text).tables["closed-trades"]]
    assert shown == [t["id"] for t in ended[TRADES_PAGE_SIZE : 2 * TRADES_PAGE_SIZE]]
    assert 'href="?trades_page=2#trades"' in first.text and 'href="?trades_page=1#trades"' in second.text
    past = site.client.get(f"/s/{sid}", params={"trades_page": 9})
    assert past.status_code == 200 and "closed-trades" not in _section(past.text).tables
    assert "Back to the latest trades" in past.text
    for bad in ("0", "x", "-1"):
        r = site.client.get(f"/s/{sid}", params={"trades_page": bad})
        assert r.status_code == 400 and "trades_page" in r.text


def test_the_etag_moves_with_a_new_trade(site):
    sid, key = site.ids["live"], site.keys["live"]
    before = site.client.get(f"/s/{sid}")
    tag = before.headers["etag"]
    assert site.client.get(f"/s/{sid}", headers={"If-None-Match": tag}).status_code == 304
    csv_tag = site.client.get(f"/p/strategies/{sid}/trades.csv").headers["etag"]
    d = site.days[-2]
    price = site.closes[d]
    orders = [
        {"symbol": SYM, "side": "buy", "quantity": 3, "price": price, "executed_at": _at(d, 17)},
        {"symbol": SYM, "side": "sell", "quantity": 3, "price": price * 1.5, "executed_at": _at(d, 18)},
    ]
    assert site.stack.post(sid, "orders", {"orders": orders}, key).status_code == 200
    site.stack.wait_projected()
    wait_until(lambda: site.client.get(f"/s/{sid}").headers["etag"] != tag, 30, "the page's ETag to move")
    after = site.client.get(f"/s/{sid}")
    assert site.client.get(f"/s/{sid}", headers={"If-None-Match": tag}).status_code == 200
    assert int(_section(after.text).metrics["trades"]) == int(_section(before.text).metrics["trades"]) + 1
    assert site.client.get(f"/p/strategies/{sid}/trades.csv").headers["etag"] != csv_tag


def test_the_board_shows_and_sorts_by_the_trade_columns(site):
    page = site.client.get("/", params={"min_days": 0, "sort": "win_rate"})
    assert page.status_code == 200
    for col in ("trades", "win_rate", "profit_factor"):
        assert f'data-col="{col}"' in page.text
    assert page.text.count('href="/methodology#trades"') >= 4  # three headers and the legend
    assert 'aria-sort="descending"' in page.text.split('data-col="win_rate"')[1].split(">")[0]
    board = site.client.get("/p/leaderboard", params={"min_days": 0, "sort": "profit_factor"}).json()["items"]
    for row in board:
        if row["strategy_id"] in site.ids.values():
            show = next(s for s, i in site.ids.items() if i == row["strategy_id"])
            trading = site.stack.query.get(
                f"/api/v1/strategies/{row['strategy_id']}/performance", headers=site.keys[show]
            ).json()["trading"]
            assert (row["trades"], row["win_rate"], row["profit_factor"]) == (
                trading["trades"], trading["win_rate"], trading["profit_factor"]
            )  # fmt: skip
    methodology = site.client.get("/methodology").text
    assert 'id="trades"' in methodology
