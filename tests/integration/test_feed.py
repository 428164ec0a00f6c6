"""``/s/{id}/feed.atom`` over HTTP against real services: valid Atom, what each publication rule lets
it list (live: orders as they arrive; delayed: only orders executed more than 24 h ago; none:
no orders), drawdown records from the NAV, private and unknown strategies 404 like their page,
ETag/304."""

from __future__ import annotations

import math
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import feedparser  # test-only dependency: an independent Atom reader
import httpx
import pytest

from devtools.stack import Stack, wait_until
from services.query_api.feed import ATOM

pytestmark = pytest.mark.integration

SYMBOL = "FEEDDOWN"
NS = {"a": ATOM}


def _weekdays(start: date, end: date) -> list[date]:
    return [
        start + timedelta(days=i) for i in range((end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5
    ]


def _at(d: date, hour: int) -> str:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC).isoformat()


@pytest.fixture(scope="module")
def site(stack: Stack):
    today = datetime.now(UTC).date()
    days = _weekdays(today - timedelta(days=60), today)
    closes = {d: round(100 * 0.995**i * (1 + 0.01 * math.sin(i)), 4) for i, d in enumerate(days)}
    stack.add_prices([(SYMBOL, d.isoformat(), c) for d, c in closes.items()])
    email = f"feed-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.command_port}", timeout=30) as c:
        assert c.post("/auth/register", json={"email": email, "password": "feed-test-password"}).status_code == 201
        token = c.post("/auth/login", json={"email": email, "password": "feed-test-password"}).cookies["access_token"]
    owner = stack.db.identity.user_id(email)
    ids: dict[str, str] = {}
    for name, visibility, show in (
        ("live", "public", "live"),
        ("delayed", "public", "delayed"),
        ("none", "public", "none"),
        ("private", "private", "live"),
    ):
        sid, key = stack.db.identity.create_strategy(
            f"Feed {name}", visibility=visibility, show_positions=show, owner_id=owner
        )
        ids[name] = str(sid)
        headers = {"Authorization": f"Bearer {key}"}
        r = stack.post(
            str(sid),
            "cash",
            {"event_type": "deposit", "amount": 100000, "occurred_at": _at(days[0], 13), "external_id": "d"},
            headers,
        )
        assert r.status_code == 201, r.text
        orders = [
            {
                "symbol": SYMBOL,
                "side": "buy",
                "quantity": 500,
                "price": closes[days[0]],
                "executed_at": _at(days[0], 15),
            },
            {
                "symbol": SYMBOL,
                "side": "buy",
                "quantity": 1,
                "price": closes[days[-2]],
                # executed a minute ago: the delayed rule may not show it yet
                "executed_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            },
        ]
        r = stack.post(str(sid), "orders", {"orders": orders}, headers)
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 2, r.text
    stack.wait_projected()
    wait_until(
        lambda: all(stack.db.ledger.leaderboard_row(uuid.UUID(s)) is not None for s in ids.values()), 60, "board rows"
    )
    # every strategy's first order "arrived" three days ago: the delayed rule may show it, not the second
    with stack.sql() as curs:
        curs.execute(
            "UPDATE rm_orders SET created_at = created_at - interval '3 days' WHERE strategy_id = ANY(%s)"
            " AND executed_at < %s",
            ([uuid.UUID(s) for s in ids.values()], datetime(days[1].year, days[1].month, days[1].day, tzinfo=UTC)),
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.query_port}", timeout=30)
    yield ids, client, token
    client.close()


def _entries(body: bytes) -> list[ET.Element]:
    root = ET.fromstring(body)
    assert root.tag == f"{{{ATOM}}}feed"
    for required in ("id", "title", "updated"):
        assert len(root.findall(f"a:{required}", NS)) == 1
    assert root.find("a:link[@rel='self']", NS) is not None
    parsed = feedparser.parse(body)
    assert not parsed.bozo and parsed.version == "atom10", parsed.get("bozo_exception")
    return root.findall("a:entry", NS)


def _kinds(entries: list[ET.Element]) -> list[str]:
    return [e.find("a:category", NS).get("term") for e in entries]


def test_live_lists_every_order_and_the_drawdown_records(site) -> None:
    ids, client, _ = site
    r = client.get(f"/s/{ids['live']}/feed.atom")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    entries = _entries(r.content)
    kinds = _kinds(entries)
    assert kinds.count("order") == 2 and "drawdown_record" in kinds
    stamps = [e.find("a:updated", NS).text for e in entries]
    assert stamps == sorted(stamps, reverse=True) and len(entries) <= 50
    assert all(e.find("a:link", NS).get("href").endswith(f"/s/{ids['live']}") for e in entries)


def test_delayed_lists_only_orders_executed_more_than_a_day_ago(site) -> None:
    ids, client, _ = site
    entries = _entries(client.get(f"/s/{ids['delayed']}/feed.atom").content)
    orders = [e for e in entries if e.find("a:category", NS).get("term") == "order"]
    assert len(orders) == 1 and "500" in orders[0].find("a:title", NS).text


def test_none_lists_no_orders(site) -> None:
    ids, client, _ = site
    kinds = _kinds(_entries(client.get(f"/s/{ids['none']}/feed.atom").content))
    assert "order" not in kinds and "drawdown_record" in kinds


def test_private_and_unknown_are_the_pages_404(site) -> None:
    ids, client, token = site
    for path in (f"/s/{ids['private']}/feed.atom", f"/s/{uuid.uuid4()}/feed.atom", "/s/not-a-uuid/feed.atom"):
        r = client.get(path)
        assert r.status_code == 404 and r.text == client.get(f"/s/{uuid.uuid4()}").text
    with httpx.Client(base_url=client.base_url, timeout=30, cookies={"access_token": token}) as owner:
        r = owner.get(f"/s/{ids['private']}/feed.atom")
    assert r.status_code == 200 and _kinds(_entries(r.content)).count("order") == 2
    assert "private" in r.headers["cache-control"]


def test_etag_and_304(site) -> None:
    ids, client, _ = site
    r = client.get(f"/s/{ids['live']}/feed.atom")
    tag = r.headers["etag"]
    again = client.get(f"/s/{ids['live']}/feed.atom", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
