"""The subscribers' pages (issue 11), over HTTP against real services: the leaderboard (public
strategies only, sorted by the query, filters, bad parameters), the strategy page (charts' containers
and data, formatted figures, the hash chain), what ``show_positions`` lets the public see, private
strategies (404 alike for strangers, visible to the owner's session), ETag/304, static assets'
caching, ``/docs`` offline and the CSV/JSONL downloads. Browser-level checks are tests/browser/.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from types import SimpleNamespace

import httpx
import pytest

from botranks_domain.chain import verify_lines
from botranks_domain.nav import NAV_COLUMNS
from devtools.stack import Stack, wait_until
from libs.infra.web import API_CSP, PAGE_CSP
from services.gateway.routes import target

pytestmark = pytest.mark.integration

PASSWORD = "pages-test-password"
BENCH, UP, DOWN = "PGBENCH", "PGUP", "PGDOWN"


# ---------------------------------------------------------------- fixture: a small market and five bots


def _weekdays(start: date, end: date) -> list[date]:
    days, d = [], start
    while d <= end:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def _prices(days: list[date]) -> dict[str, dict[date, float]]:
    out: dict[str, dict[date, float]] = {BENCH: {}, UP: {}, DOWN: {}}
    for i, d in enumerate(days):
        out[BENCH][d] = round(100 * 1.0008**i * (1 + 0.004 * math.sin(i / 3)), 4)
        out[UP][d] = round(50 * 1.003**i * (1 + 0.01 * math.sin(i / 2)), 4)
        out[DOWN][d] = round(80 * 0.998**i * (1 + 0.012 * math.cos(i / 2)), 4)
    return out


def _session(stack: Stack) -> tuple[str, str]:
    """A user signed in through the JSON API: (user id, session token)."""
    email = f"pages-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.command_port}", timeout=30) as c:
        assert c.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        r = c.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.cookies["access_token"]
    return str(stack.db.identity.user_id(email)), token


def _at(d: date, hour: int) -> str:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC).isoformat()


@pytest.fixture(scope="module")
def site(stack: Stack):
    today = datetime.now(UTC).date()
    days = _weekdays(today - timedelta(days=150), today)
    prices = _prices(days)
    stack.add_prices([(s, d.isoformat(), c) for s, closes in prices.items() for d, c in closes.items()])
    owner_id, owner_token = _session(stack)
    _, stranger_token = _session(stack)
    d0, recent = days[5], days[-8]
    ids: dict[str, str] = {}
    keys: dict[str, dict[str, str]] = {}

    def create(name: str, visibility: str, show: str, owned: bool) -> str:
        sid, key = stack.db.identity.create_strategy(
            name,
            benchmark=BENCH,
            visibility=visibility,
            show_positions=show,
            owner_id=uuid.UUID(owner_id) if owned else None,
        )
        ids[name], keys[name] = str(sid), {"Authorization": f"Bearer {key}"}
        return str(sid)

    def fund(name: str, day: date, amount: int = 100_000) -> None:
        r = stack.post(
            ids[name],
            "cash",
            {"event_type": "deposit", "amount": amount, "occurred_at": _at(day, 13), "external_id": f"dep-{name}"},
            keys[name],
        )
        assert r.status_code == 201, r.text

    def buy(name: str, symbol: str, quantity: int, day: date, executed_at: str | None = None) -> None:
        order = {
            "symbol": symbol,
            "side": "buy",
            "quantity": quantity,
            "price": prices[symbol][day],
            "executed_at": executed_at or _at(day, 15),
        }
        r = stack.post(ids[name], "orders", {"orders": [order]}, keys[name])
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 1, r.text

    # Alpha: public, owned, positions live; rides the rising symbol (reported late: executed weeks ago)
    create("Alpha", "public", "live", owned=True)
    fund("Alpha", d0)
    buy("Alpha", UP, 1000, d0)
    # Beta: public, no owner, publishes nothing; one order reported live (executed a minute ago)
    create("Beta", "public", "none", owned=False)
    fund("Beta", d0)
    now = datetime.now(UTC)
    # priced at the last close: on a weekend or a holiday there is no bar for today
    buy("Beta", DOWN, 100, days[-1], executed_at=(now - timedelta(minutes=1)).isoformat())
    # Gamma: public, only a week of history (below the default 30-day filter)
    create("Gamma", "public", "live", owned=False)
    fund("Gamma", recent)
    buy("Gamma", UP, 500, recent)
    # Delta: public, owned, delayed publication; falls with the other symbol
    create("Delta", "public", "delayed", owned=True)
    fund("Delta", d0)
    buy("Delta", DOWN, 1000, d0)
    # executed a minute ago: hidden by the delayed publication (executed less than 24 h ago)
    buy("Delta", UP, 10, days[-1], executed_at=(now - timedelta(minutes=1)).isoformat())
    # Private: owned, private
    create("Private", "private", "none", owned=True)
    fund("Private", d0)
    buy("Private", UP, 100, d0)

    stack.wait_projected()
    wait_until(
        lambda: all(
            stack.db.ledger.leaderboard_row(uuid.UUID(s)) is not None
            and stack.db.ledger.leaderboard_row(uuid.UUID(s)).track_days > 0
            for s in ids.values()
        ),
        60,
        "the leaderboard rows",
    )
    # Delta's deposit and first order "arrived" three days ago: what its delayed publication may show
    delta = uuid.UUID(ids["Delta"])
    with stack.sql() as curs:
        for table in ("rm_cash_events", "rm_orders", "rm_chain"):
            curs.execute(
                f"UPDATE {table} SET created_at = created_at - interval '3 days' WHERE strategy_id = %s"
                + (" AND seq <= 2" if table == "rm_chain" else " AND symbol = %s" if table == "rm_orders" else ""),
                (delta, DOWN) if table == "rm_orders" else (delta,),
            )
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.query_port}", timeout=30)
    owner = httpx.Client(
        base_url=f"http://127.0.0.1:{stack.query_port}", timeout=30, cookies={"access_token": owner_token}
    )
    stranger = httpx.Client(
        base_url=f"http://127.0.0.1:{stack.query_port}", timeout=30, cookies={"access_token": stranger_token}
    )
    yield SimpleNamespace(
        ids=ids, keys=keys, client=client, owner=owner, stranger=stranger, days=days, prices=prices, stack=stack
    )
    for c in (client, owner, stranger):
        c.close()


# ---------------------------------------------------------------- HTML helpers


class Board(HTMLParser):
    """The leaderboard table: rows (strategy id, {column: data-value}) and header links."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, dict[str, str]]] = []
        self.headers: dict[str, str] = {}
        self.sorted: dict[str, str] = {}
        self._th: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-strategy-id" in a:
            self.rows.append((a["data-strategy-id"], {}))
        elif tag == "td" and self.rows and "data-col" in a:
            self.rows[-1][1][a["data-col"]] = a.get("data-value", "")
        elif tag == "th" and "data-col" in a:
            self._th = a["data-col"]
            if "aria-sort" in a:
                self.sorted[a["data-col"]] = a["aria-sort"]
        elif tag == "a" and self._th and a.get("class") == "sort":
            self.headers[self._th] = a["href"]

    def handle_endtag(self, tag):
        if tag == "th":
            self._th = None


def board(html: str) -> Board:
    parser = Board()
    parser.feed(html)
    return parser


def local_assets(html: str) -> list[str]:
    """Every src/href of a page but in-page anchors (``#main``); all must be local (no scheme, no //host)."""
    return [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if not u.startswith("#")]


# ---------------------------------------------------------------- the leaderboard


def test_leaderboard_lists_public_strategies_sorted_and_filtered(site):
    ids = site.ids
    r = site.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == PAGE_CSP
    b = board(r.text)
    listed = [sid for sid, _ in b.rows]
    assert set(listed) == {ids["Alpha"], ids["Beta"], ids["Delta"]}  # not Gamma (7 days), not Private
    assert b.sorted == {"dsr": "descending"}  # issue 21: ranked by the Deflated Sharpe Ratio
    assert [cells["rank"] for _, cells in b.rows] == ["1", "2", "3"]
    for name in ("Alpha", "Beta", "Delta"):
        assert f'href="/s/{ids[name]}">{name}</a>' in r.text
    # every column sorts, through its header link; the same header again reverses the order
    for column in (
        "dsr",
        "psr",
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "volatility",
        "track_days",
        "last_activity",
        "live_share",
        "name",
    ):
        assert column in b.headers, column
        first = site.client.get("/" + b.headers[column])
        assert first.status_code == 200, (column, first.text[:300])
        fb = board(first.text)
        assert list(fb.sorted) == [column]
        again = board(site.client.get("/" + fb.headers[column]).text)
        assert list(again.sorted) == [column] and again.sorted[column] != fb.sorted[column]
        _assert_sorted(fb, column)
        _assert_sorted(again, column)
        json_page = site.client.get("/p/leaderboard" + b.headers[column]).json()
        assert [i["strategy_id"] for i in json_page["items"]] == [sid for sid, _ in fb.rows], column
    by_return = board(site.client.get("/?sort=total_return&dir=desc").text)
    values = [float(cells["total_return"]) for _, cells in by_return.rows]
    assert values == sorted(values, reverse=True) and by_return.rows[0][0] == ids["Alpha"]
    assert by_return.headers["total_return"].startswith("?sort=total_return&dir=asc")
    ascending = board(site.client.get("/?sort=total_return&dir=asc").text)
    assert [sid for sid, _ in ascending.rows] == [sid for sid, _ in by_return.rows][::-1]
    by_name = board(site.client.get("/?sort=name&dir=asc").text)
    assert [sid for sid, _ in by_name.rows] == [ids["Alpha"], ids["Beta"], ids["Delta"]]
    # filters: a shorter track record lets Gamma in; "reported live only" keeps Beta alone
    everyone = board(site.client.get("/?min_days=0").text)
    assert {sid for sid, _ in everyone.rows} == {ids[n] for n in ("Alpha", "Beta", "Gamma", "Delta")}
    live = board(site.client.get("/?live_only=1").text)
    assert [sid for sid, _ in live.rows] == [ids["Beta"]]
    assert 'id="filter-live-only" value="1" checked' in site.client.get("/?live_only=1").text
    # numbers for people
    alpha = dict(by_return.rows)[ids["Alpha"]]
    row_html = re.search(rf'<tr data-strategy-id="{ids["Alpha"]}">(.*?)</tr>', by_return_html(site), re.S).group(1)
    assert re.search(r'data-col="total_return"[^>]*>\+\d[\d,]*\.\d%<', row_html), row_html
    assert float(alpha["total_return"]) > 0
    assert re.search(r'data-col="max_drawdown"[^>]*>(−\d[\d,]*\.\d%|0\.0%)<', row_html), row_html


def _assert_sorted(b: Board, column: str) -> None:
    """The rows follow the header's direction, nulls last either way."""
    raw = [cells[column] for _, cells in b.rows]
    present = [v for v in raw if v != ""]
    assert raw == present + [""] * (len(raw) - len(present)), (column, raw)
    values = present if column in ("name", "last_activity") else [float(v) for v in present]
    assert values == sorted(values, reverse=b.sorted[column] == "descending"), (column, b.sorted, values)


def by_return_html(site) -> str:
    return site.client.get("/?sort=total_return&dir=desc").text


def test_leaderboard_json_pagination_and_bad_parameters(site):
    r = site.client.get("/p/leaderboard", params={"sort": "total_return", "dir": "desc", "min_days": 0})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.headers["content-security-policy"] == API_CSP
    body = r.json()
    assert body["total"] == 4 and body["page"] == 1 and body["pages"] == 1 and body["page_size"] == 50
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4]
    assert site.ids["Private"] not in {i["strategy_id"] for i in body["items"]}
    empty = site.client.get("/?page=2")
    assert empty.status_code == 200 and 'id="leaderboard-empty"' in empty.text and "There is no page 2" in empty.text
    for params in (
        {"sort": "bogus"},
        {"dir": "up"},
        {"min_days": "-1"},
        {"min_days": "many"},
        {"page": "0"},
        {"live_only": "maybe"},
    ):
        bad = site.client.get("/p/leaderboard", params=params)
        assert bad.status_code == 400 and set(bad.json()) == {"detail"}, (params, bad.text)
        page = site.client.get("/", params=params)
        assert page.status_code == 400 and 'id="error"' in page.text, params
        assert page.headers["content-security-policy"] == PAGE_CSP


# ---------------------------------------------------------------- the strategy page


def _island(html: str) -> dict:
    raw = re.search(r'<script type="application/json" id="series-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(raw)


def test_strategy_page_has_the_charts_and_their_data(site):
    sid = site.ids["Alpha"]
    r = site.client.get(f"/s/{sid}")
    assert r.status_code == 200 and r.headers["content-security-policy"] == PAGE_CSP
    html = r.text
    for chart in ("chart-equity", "chart-drawdown", "chart-rolling", "chart-monthly"):
        assert f'id="{chart}"' in html, chart
    data = _island(html)
    nav = site.stack.db.ledger.nav_series(uuid.UUID(sid)).series
    assert len(data["dates"]) == len(nav) == len(data["equity"]) == len(data["benchmark"]) == len(data["drawdown"])
    assert data["dates"][0] == nav[0].date.isoformat() and data["equity"][0] == 100
    assert data["benchmark_symbol"] == BENCH and data["benchmark"][0] == 100
    assert all(v <= 0 for v in data["drawdown"]) and min(data["drawdown"]) < 0
    assert data["rolling_window"] == 63
    assert data["rolling_sharpe"][61] is None and data["rolling_sharpe"][-1] is not None
    assert f'data-points="{len(nav)}"' in html
    years = data["monthly"]["years"]
    assert years and data["monthly"]["columns"][-1] == "Year"
    assert all(len(row) == 13 for row in data["monthly"]["returns"])
    # the same data as JSON, and the /performance figures as cards
    assert site.client.get(f"/p/strategies/{sid}/series").json() == data
    summary = site.client.get(f"/p/strategies/{sid}").json()
    perf = summary["performance"]
    shown = f"+{perf['total_return'] * 100:,.1f}%"
    assert re.search(
        rf'data-metric="total_return"[^>]*><span class="label"><a href="/methodology#return">Total return</a></span>'
        rf'<span class="value pos">{re.escape(shown)}</span>',
        html,
    ), shown
    assert f"{perf['ending_equity']:,.2f}" in html  # thousands separators
    assert summary["strategy"]["name"] == "Alpha" and summary["viewer"] == "public"
    assert "owner_id" not in summary["strategy"]
    # live-reporting share (Alpha's order was reported weeks after its execution), the hash chain
    assert 'id="live-share" data-value="0.0"' in html and "Reported live: 0%" in html
    chain = site.stack.db.ledger.chain(uuid.UUID(sid))
    assert chain.events == 2 and f'<code id="chain-digest">{chain.digest}</code>' in html
    assert summary["chain"]["digest"] == chain.digest and len(summary["chain"]["days"]) == len(chain.days)
    assert 'id="chain-days"' in html
    # assets are local and load
    for url in local_assets(html):
        assert url.startswith("/") and not url.startswith("//"), url
        if url.startswith("/static/"):
            assert site.client.get(url).status_code == 200, url


def test_a_strategy_without_history_has_a_page_too(site):
    sid, _ = site.stack.db.identity.create_strategy(
        "Fresh", benchmark=BENCH, visibility="public", show_positions="live"
    )
    r = site.client.get(f"/s/{sid}")
    assert r.status_code == 200 and "No NAV history yet." in r.text and "No NAV yet" in r.text
    assert _island(r.text)["dates"] == [] and 'id="chain-events" data-value="0"' in r.text
    summary = site.client.get(f"/p/strategies/{sid}").json()
    assert summary["performance"]["total_return"] is None and summary["chain"] == {
        "events": 0,
        "digest": None,
        "days": [],
    }
    assert summary["positions"]["positions"] == [] and summary["recent_orders"] == []
    csv_rows = site.client.get(f"/p/strategies/{sid}/nav.csv").text.splitlines()
    assert csv_rows == [",".join(NAV_COLUMNS)]


def test_nav_csv_and_events_downloads(site):
    sid = site.ids["Alpha"]
    r = site.client.get(f"/p/strategies/{sid}/nav.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    nav = site.stack.db.ledger.nav_series(uuid.UUID(sid)).series
    assert tuple(rows[0]) == NAV_COLUMNS and len(rows) == len(nav) + 1
    assert rows[-1][0] == nav[-1].date.isoformat()
    assert f'href="/p/strategies/{sid}/nav.csv"' in site.client.get(f"/s/{sid}").text
    events = site.client.get(f"/p/strategies/{sid}/events.jsonl")
    assert events.status_code == 200 and events.headers["content-type"].startswith("application/jsonl")
    count, head = verify_lines(events.content.splitlines())
    chain = site.stack.db.ledger.chain(uuid.UUID(sid))
    assert (count, head) == (chain.events, chain.digest)
    # the key holder reads the events through the API too
    api = site.client.get(f"/api/v1/strategies/{sid}/events", headers=site.keys["Alpha"])
    assert api.status_code == 200 and api.content == events.content
    assert site.client.get(f"/api/v1/strategies/{sid}/events").status_code == 401


def test_show_positions_decides_what_the_public_sees(site):
    ids = site.ids
    # live: positions with weights and unrealized P&L, orders and cash
    alpha = site.client.get(f"/s/{ids['Alpha']}").text
    assert 'id="positions-table"' in alpha and f'data-symbol="{UP}"' in alpha
    assert 'id="orders-table"' in alpha and 'id="cash-table"' in alpha and 'id="events-jsonl"' in alpha
    summary = site.client.get(f"/p/strategies/{ids['Alpha']}").json()
    [position] = summary["positions"]["positions"]
    last = site.prices[UP][site.days[-1]]
    cost = site.prices[UP][site.days[5]]
    assert position["last_close"] == pytest.approx(last)
    assert position["unrealized_pnl"] == pytest.approx(1000 * (last - cost))
    assert 0 < position["weight"] <= 1
    # none: nothing but the figures; events refused (a key of the strategy may read them)
    beta = site.client.get(f"/s/{ids['Beta']}").text
    assert 'id="positions-hidden"' in beta and 'id="positions-table"' not in beta
    assert 'id="orders-table"' not in beta and 'id="events-jsonl"' not in beta
    summary = site.client.get(f"/p/strategies/{ids['Beta']}").json()
    assert summary["positions"] is None and summary["recent_orders"] is None and summary["recent_cash"] is None
    refused = site.client.get(f"/p/strategies/{ids['Beta']}/events.jsonl")
    assert refused.status_code == 403 and set(refused.json()) == {"detail"}
    keyed = site.client.get(f"/p/strategies/{ids['Beta']}/events.jsonl", headers=site.keys["Beta"])
    assert keyed.status_code == 200 and verify_lines(keyed.content.splitlines())[0] == 2
    wrong_key = site.client.get(f"/p/strategies/{ids['Beta']}/events.jsonl", headers=site.keys["Alpha"])
    assert wrong_key.status_code == 403
    # delayed: orders and cash older than 24 h, no positions; the owner sees everything
    delta = site.client.get(f"/s/{ids['Delta']}").text
    assert "Positions hidden (delayed)" in delta and 'id="positions-table"' not in delta
    public = site.client.get(f"/p/strategies/{ids['Delta']}").json()
    assert public["publication"] == "delayed" and public["positions"] is None
    assert [o["symbol"] for o in public["recent_orders"]] == [DOWN]
    assert len(public["recent_cash"]) == 1
    lines = site.client.get(f"/p/strategies/{ids['Delta']}/events.jsonl").content.splitlines()
    assert verify_lines(lines)[0] == 2
    mine = site.owner.get(f"/p/strategies/{ids['Delta']}").json()
    assert mine["viewer"] == "owner" and mine["publication"] == "live"
    assert sorted(o["symbol"] for o in mine["recent_orders"]) == sorted([DOWN, UP])
    assert len(mine["positions"]["positions"]) == 2
    assert verify_lines(site.owner.get(f"/p/strategies/{ids['Delta']}/events.jsonl").content.splitlines())[0] == 3
    assert 'id="positions-table"' in site.owner.get(f"/s/{ids['Delta']}").text


def test_private_strategy_is_not_found_except_for_its_owner(site):
    sid = site.ids["Private"]
    unknown = str(uuid.uuid4())
    pages = [site.client.get(f"/s/{x}") for x in (sid, unknown, "not-a-uuid")]
    pages.append(site.stranger.get(f"/s/{sid}"))
    assert {p.status_code for p in pages} == {404}
    assert len({p.text for p in pages}) == 1 and 'id="not-found"' in pages[0].text
    assert pages[0].headers["content-security-policy"] == PAGE_CSP
    for suffix in ("", "/series", "/nav.csv", "/events.jsonl"):
        answers = [site.client.get(f"/p/strategies/{x}{suffix}") for x in (sid, unknown, "nope")]
        answers.append(site.stranger.get(f"/p/strategies/{sid}{suffix}"))
        answers.append(site.client.get(f"/p/strategies/{sid}{suffix}", headers=site.keys["Alpha"]))
        assert {a.status_code for a in answers} == {404}, suffix
        assert len({a.content for a in answers}) == 1 and answers[0].json() == {"detail": "Strategy not found"}
        assert {
            frozenset((k, v) for k, v in a.headers.items() if k not in ("date", "content-length")) for a in answers[:2]
        } and answers[0].headers.get("etag") is None
    mine = site.owner.get(f"/s/{sid}")
    assert mine.status_code == 200 and "Your strategy" in mine.text and 'id="positions-hidden"' not in mine.text
    assert "private" in mine.headers["cache-control"]
    assert site.owner.get(f"/p/strategies/{sid}/series").status_code == 200
    assert site.owner.get(f"/p/strategies/{sid}/nav.csv").status_code == 200
    assert site.client.get(f"/p/strategies/{sid}/events.jsonl", headers=site.keys["Private"]).status_code == 200
    assert sid not in site.owner.get("/?min_days=0").text  # never on the board, not even for its owner


# ---------------------------------------------------------------- caching


def test_etags_and_not_modified(site):
    sid = site.ids["Alpha"]
    for url in (
        "/",
        "/?sort=name&dir=asc",
        "/p/leaderboard",
        f"/s/{sid}",
        f"/p/strategies/{sid}",
        f"/p/strategies/{sid}/series",
        f"/p/strategies/{sid}/nav.csv",
        f"/p/strategies/{sid}/events.jsonl",
        "/docs",
        "/methodology",
    ):
        first = site.client.get(url)
        tag = first.headers["etag"]
        assert first.status_code == 200 and tag.startswith('"'), url
        assert "no-cache" in first.headers["cache-control"], url
        again = site.client.get(url, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag, url
        assert site.client.get(url, headers={"If-None-Match": '"other", W/' + tag}).status_code == 304
        assert site.client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    # the viewer is part of the tag, and so is the NAV: a new event is a new ETag
    public_tag = site.client.get(f"/s/{sid}").headers["etag"]
    assert site.owner.get(f"/s/{sid}").headers["etag"] != public_tag
    series_tag = site.client.get(f"/p/strategies/{sid}/series").headers["etag"]
    board_tag = site.client.get("/p/leaderboard").headers["etag"]
    r = site.stack.post(
        sid, "cash", {"event_type": "deposit", "amount": 5, "external_id": "etag-probe"}, site.keys["Alpha"]
    )
    assert r.status_code == 201
    site.stack.wait_projected()
    wait_until(
        lambda: site.client.get(f"/p/strategies/{sid}/series").headers["etag"] != series_tag, 20, "a new series ETag"
    )
    assert site.client.get(f"/s/{sid}", headers={"If-None-Match": public_tag}).status_code == 200
    wait_until(lambda: site.client.get("/p/leaderboard").headers["etag"] != board_tag, 30, "a new leaderboard ETag")


def test_static_assets_are_versioned_and_cached(site):
    html = site.client.get(f"/s/{site.ids['Alpha']}").text
    urls = [u for u in local_assets(html) if u.startswith("/static/")]
    assert not any("plotly" in u for u in urls)  # the charts are drawn by the server (charts.py)
    assert any(u.startswith("/static/app.js?v=") for u in urls)
    assert any(u.startswith("/static/app.css?v=") for u in urls)
    assert any(u.startswith("/static/charts.css?v=") for u in urls)
    js_url = next(u for u in urls if "app.js" in u)
    r = site.client.get(js_url, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-encoding"] == "gzip" and b"#series-data" in r.content[:400]
    assert site.client.get(js_url, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert site.client.get("/static/plotly.min.js").status_code == 404
    plain = site.client.get("/static/app.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.headers["cache-control"] == "public, max-age=300"  # unversioned: short
    assert site.client.get("/static/nothing.js").status_code == 404
    assert site.client.get("/static/..%2Fpages.py").status_code == 404


def test_docs_render_offline(site):
    r = site.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-security-policy"] == PAGE_CSP
    urls = local_assets(r.text)
    assert 'data-spec-url="/schema/openapi.json"' in r.text
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    scripts = re.findall(r'<script src="([^"]+)"', r.text)
    assert [s.split("?")[0] for s in scripts] == [
        "/static/swagger-ui-bundle.js",
        "/static/swagger-ui-standalone-preset.js",
        "/static/docs.js",
    ]
    assert "<script>" not in r.text  # no inline script: the CSP would refuse it
    for url in urls:
        if url.startswith("/static/"):
            asset = site.client.get(url)
            assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"], url
    init = site.client.get(scripts[-1]).text
    assert "SwaggerUIBundle" in init and "validatorUrl: null" in init
    paths = site.client.get("/schema/openapi.json").json()["paths"]  # the HTML pages stay out (/p/ is JSON)
    assert "/" not in paths and not any(p.startswith(("/s/", "/static/", "/docs")) for p in paths), list(paths)


def test_gateway_routes_pages_to_query_api():
    for path in (
        "/",
        "/methodology",
        "/s/abc",
        "/p/leaderboard",
        "/p/strategies/x/series",
        "/static/app.js",
        "/docs",
        "/api/v1/strategies/x/state",
    ):
        assert target("GET", path) == "query", path
    for method, path in (
        ("GET", "/account"),
        ("GET", "/account/login"),
        ("POST", "/"),
        ("POST", "/auth/login"),
        ("GET", "/strategies"),
        ("GET", "/sx"),
        ("GET", "/docs/x"),
    ):
        assert target(method, path) == "command", (method, path)
