"""Issue 24, profiles: owners' public handles (at registration or later, unique in any case, never the
email), a strategy's description (Markdown rendered without raw HTML, links nofollow ugc), tags, derived
markets, start date, base currency and equity bracket; the owner's public page; the board's search by
handle and tag and its market, currency and live-share filters. Real command_api, projector, query_api."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from devtools.stack import Stack, wait_until

pytestmark = pytest.mark.integration

PASSWORD = "profiles-test-password"
EQUITY, COIN = "PRFEQ", "PRFCOIN-USD"
DESCRIPTION = (
    "Buys **momentum** in large caps.\n\n"
    "<script>alert('x')</script> <b>bold?</b>\n\n"
    "[Our notes](https://example.com/notes) [bad](javascript:alert(1)) ![pixel](https://example.com/p.png)"
)


def _weekdays(start: date, end: date) -> list[date]:
    return [
        start + timedelta(days=i) for i in range((end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5
    ]


def _at(d: date, hour: int = 15) -> str:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC).isoformat()


def _account(stack: Stack, handle: str | None) -> httpx.Client:
    """A signed-in JSON client of command_api (registered with ``handle``)."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.command_port}", timeout=30)
    email = f"profiles-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD} | ({"handle": handle} if handle else {})
    r = client.post("/auth/register", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["handle"] == (handle.lower() if handle else None)
    r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["handle"] == (handle.lower() if handle else None), r.text
    client.cookies.set("access_token", r.cookies["access_token"])
    return client


@pytest.fixture(scope="module")
def world(stack: Stack):
    today = datetime.now(UTC).date()
    days = _weekdays(today - timedelta(days=150), today)  # a live order needs closes up to its day
    closes = {EQUITY: {}, COIN: {}, "SPY": {}}
    for i, d in enumerate(days):
        closes[EQUITY][d] = round(40 * 1.002**i * (1 + 0.01 * math.sin(i / 3)), 4)
        closes[COIN][d] = round(300 * 1.001**i * (1 + 0.03 * math.cos(i / 2)), 4)
        closes["SPY"][d] = round(400 * 1.0005**i, 4)
    stack.add_prices([(s, d.isoformat(), c) for s, by_day in closes.items() for d, c in by_day.items()])
    tag = uuid.uuid4().hex[:6]
    alice_handle = f"Alice-{tag}"
    alice, bob = _account(stack, alice_handle), _account(stack, None)
    ids: dict[str, str] = {}

    def create(client: httpx.Client, name: str, visibility: str = "public", base: str = "USD") -> str:
        r = client.post("/strategies", json={"name": name, "visibility": visibility, "base_currency": base})
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
        key = stack.db.identity.add_keys(uuid.UUID(ids[name]), ["k"])[0]
        headers = {"Authorization": f"Bearer {key}"}
        r = stack.post(
            ids[name], "cash", {"event_type": "deposit", "amount": 100_000, "occurred_at": _at(days[0], 12)}, headers
        )
        assert r.status_code == 201, r.text
        return ids[name], headers

    def order(sid: str, headers: dict, symbol: str, quantity: int, d: date, executed_at: str | None = None) -> None:
        body = {"orders": [{"symbol": symbol, "side": "buy", "quantity": quantity, "price": closes[symbol][d],
                            "executed_at": executed_at or _at(d)}]}  # fmt: skip
        r = stack.post(sid, "orders", body, headers)
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 1, r.text

    sid, h = create(alice, f"Momentum {tag}")
    order(sid, h, EQUITY, 1000, days[1])
    sid, h = create(alice, f"Coins {tag}")
    order(sid, h, COIN, 100, days[1])
    # reported live: executed a minute ago (priced at the last close the cache has)
    order(sid, h, COIN, 1, days[-1], (datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    sid, h = create(alice, f"Hidden {tag}", visibility="private")
    order(sid, h, EQUITY, 10, days[1])
    sid, h = create(bob, f"Bob's mix {tag}")
    order(sid, h, EQUITY, 500, days[1])
    order(sid, h, COIN, 50, days[2])
    r = alice.patch(
        f"/strategies/{ids[f'Momentum {tag}']}", json={"description": DESCRIPTION, "tags": ["Trend Following", "US"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["trend-following", "us"] and r.json()["owner_handle"] == alice_handle.lower()
    stack.wait_projected()
    query = httpx.Client(base_url=f"http://127.0.0.1:{stack.query_port}", timeout=30)
    wait_until(
        lambda: all(
            (row := stack.db.ledger.leaderboard_row(uuid.UUID(s))) is not None and row.track_days > 0 and row.markets
            for s in ids.values()
        ),
        60,
        "the board rows with their markets",
    )
    yield SimpleNamespace(stack=stack, ids=ids, tag=tag, alice=alice, bob=bob, handle=alice_handle.lower(), query=query)
    for c in (alice, bob, query):
        c.close()


def _board(world, **params) -> list[dict]:
    r = world.query.get("/p/leaderboard", params={"min_days": 0, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_handles_are_unique_in_any_case_and_never_required(world):
    taken = world.handle.upper()
    r = world.bob.put("/me/handle", json={"handle": taken})
    assert r.status_code == 409 and "handle" in r.json()["detail"], r.text
    r = world.bob.put("/me/handle", json={"handle": "admin"})
    assert r.status_code == 422 and "reserved" in r.json()["detail"], r.text
    for bad in ("ab", "1abc", "has space", "x" * 31, "émile"):
        r = world.bob.put("/me/handle", json={"handle": bad})
        assert r.status_code == 422 and "handle" in r.json()["detail"], (bad, r.text)
    assert world.bob.get("/me/").json()["handle"] is None
    r = world.bob.post("/auth/register", json={"email": "other@example.com", "password": PASSWORD, "handle": taken})
    assert r.status_code == 409 and "handle" in r.json()["detail"], r.text
    assert world.stack.db.identity.user_id("other@example.com") is None  # nothing half-written


def test_a_new_handle_reaches_the_board_and_the_owner_page(world):
    bob_mix = world.ids[f"Bob's mix {world.tag}"]
    handle = f"bob-{world.tag}"
    r = world.bob.put("/me/handle", json={"handle": f"@{handle}"[1:]})
    assert r.status_code == 200 and r.json()["handle"] == handle, r.text
    wait_until(
        lambda: world.stack.db.ledger.leaderboard_row(uuid.UUID(bob_mix)).owner_handle == handle, 30, "the new handle"
    )
    assert {row["strategy_id"] for row in _board(world, q=f"@{handle}")} == {bob_mix}
    page = world.query.get(f"/u/{handle.upper()}")
    assert page.status_code == 200 and f"Bob&#39;s mix {world.tag}" in page.text


def test_profile_fields_and_safe_description(world):
    sid = world.ids[f"Momentum {world.tag}"]
    body = world.query.get(f"/p/strategies/{sid}").json()
    profile = body["profile"]
    assert profile["description"] == DESCRIPTION and profile["tags"] == ["trend-following", "us"]
    assert profile["markets"] == [{"code": "us-equities", "label": "US equities"}]
    assert profile["owner_handle"] == world.handle and profile["base_currency"] == "USD"
    assert profile["started"] == body["performance"]["inception_date"]
    # 100k deposited, 1000 × ~40 bought: equity stays between 100k and 1M
    assert profile["equity_bracket"] == "100k to 1M USD"
    coins = world.query.get(f"/p/strategies/{world.ids[f'Coins {world.tag}']}").json()["profile"]
    assert [m["code"] for m in coins["markets"]] == ["crypto"] and coins["description"] == ""
    html = world.query.get(f"/s/{sid}").text
    about = html[html.index('id="about"') : html.index("</section>", html.index('id="about"'))]
    assert "<strong>momentum</strong>" in about
    assert "<script>" not in about and "&lt;script&gt;" in about and "&lt;b&gt;bold?&lt;/b&gt;" in about
    assert '<a href="https://example.com/notes" rel="nofollow ugc noopener">Our notes</a>' in about
    assert "javascript:" not in about.replace("[bad](javascript:alert(1))", "") and "<img" not in about
    assert f'href="/u/{world.handle}"' in about and "US equities" in about and "trend-following" in about


def test_owner_changes_only_their_own_and_bad_fields_name_the_field(world):
    sid = world.ids[f"Momentum {world.tag}"]
    assert world.bob.patch(f"/strategies/{sid}", json={"description": "mine now"}).status_code == 404
    assert world.bob.get(f"/strategies/{sid}").status_code == 404
    for body, field in (
        ({"tags": ["ok", "not a tag!"]}, "tags"),
        ({"tags": [f"t{i}" for i in range(9)]}, "tags"),
        ({"description": "x" * 4001}, "description"),
        ({"description": "nul \x00 here"}, "description"),
        ({"owner": "me"}, "owner"),
    ):
        r = world.alice.patch(f"/strategies/{sid}", json=body)
        assert r.status_code == 422 and field in r.json()["detail"], (body, r.text)
    assert world.alice.get(f"/strategies/{sid}").json()["description"] == DESCRIPTION  # nothing half-written


def test_owner_page_counts_everything_and_lists_only_public(world):
    r = world.query.get(f"/p/owners/{world.handle}")
    assert r.status_code == 200, r.text
    owner = r.json()["owner"]
    assert (owner["started"], owner["public"], owner["private"], owner["deleted"]) == (3, 2, 1, 0)
    names = {s["name"] for s in r.json()["strategies"]}
    assert names == {f"Momentum {world.tag}", f"Coins {world.tag}"}
    assert "email" not in r.text and "@example.com" not in r.text
    html = world.query.get(f"/u/{world.handle}").text
    assert f"Hidden {world.tag}" not in html and f"Coins {world.tag}" in html and 'data-started="3"' in html
    assert world.query.get("/u/nobody-here").status_code == 404
    missing = world.query.get("/p/owners/nobody-here")
    assert missing.status_code == 404 and "detail" in missing.json()


def test_board_search_and_filters_select_exactly_the_matching_rows(world):
    every = _board(world)
    ours = {r["strategy_id"]: r for r in every if world.tag in r["name"]}
    assert len(ours) == 3  # the private one is not on the board

    def ids(**params) -> set[str]:
        return {r["strategy_id"] for r in _board(world, **params) if world.tag in r["name"]}

    assert ids(q=f"@{world.handle}") == {world.ids[f"Momentum {world.tag}"], world.ids[f"Coins {world.tag}"]}
    assert ids(q="trend-follow") == {world.ids[f"Momentum {world.tag}"]}
    for market in ("crypto", "us-equities", "forex"):
        assert ids(market=market) == {s for s, r in ours.items() if market in r["markets"]}
    assert ids(market="crypto") == {world.ids[f"Coins {world.tag}"], world.ids[f"Bob's mix {world.tag}"]}
    assert ids(currency="usd") == set(ours) and ids(currency="EUR") == set()
    for share in (0, 1, 50, 100):
        assert ids(min_live=share) == {
            s for s, r in ours.items() if r["live_share"] is not None and r["live_share"] >= share / 100
        }
    assert ids(min_live=40) == {world.ids[f"Coins {world.tag}"]}  # one of its two orders was live
    body = world.query.get("/p/leaderboard", params={"market": "crypto", "currency": "usd", "min_live": 5}).json()
    assert (body["market"], body["currency"], body["min_live"]) == ("crypto", "USD", 5)
    html = world.query.get("/", params={"market": "crypto", "min_days": 0, "min_live": 40}).text
    assert "market=crypto" in html and "min_live=40" in html and "trading Crypto" in html
    assert f'href="/u/{world.handle}"' in html


@pytest.mark.parametrize(
    ("params", "field"),
    [({"market": "bonds"}, "`market`"), ({"currency": "EURO"}, "`currency`"), ({"min_live": "101"}, "`min_live`"),
     ({"min_live": "most"}, "`min_live`")],
)  # fmt: skip
def test_bad_board_filters_are_400s_naming_the_field(world, params, field):
    r = world.query.get("/p/leaderboard", params=params)
    assert r.status_code == 400 and field in r.json()["detail"], r.text
    assert world.query.get("/", params=params).status_code == 400
