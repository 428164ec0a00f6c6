"""The strategy page's orders table (issue 24, "one site"): every published order, 50 a page
(``?orders_page=N``), the latest executed first, as ``show_positions`` publishes them (none: no table;
delayed: those executed more than 24 hours ago, all of them; live and the owner: every order).

Reuses the trades pages' strategies (tests/integration/test_pages_trades.py: 118 orders each, two of
them executed two hours ago).
"""

from __future__ import annotations

from datetime import datetime
from html.parser import HTMLParser

import pytest

from services.query_api.order_pages import ORDERS_PAGE_SIZE
from tests.integration.test_pages_trades import ROUND_TRIPS, site  # noqa: F401 (the module's fixture)

pytestmark = pytest.mark.integration


class OrdersSection(HTMLParser):
    """The orders table's rows (order id, executed at), its pager's links and the delay's cut-off."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self.links: dict[str, str] = {}
        self.cutoff: str | None = None
        self.table: dict[str, str] | None = None
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.ids.add(a.get("id", ""))
        if tag == "table" and a.get("id") == "orders-table":
            self.table = a
        if tag == "tr" and "data-order-id" in a:
            self.rows.append((a["data-order-id"], a["data-executed-at"]))
        if tag == "a" and a.get("id") in ("orders-prev", "orders-next"):
            self.links[a["id"]] = a["href"]
        if a.get("id") == "orders-delay":
            self.cutoff = a["data-cutoff"]


def _orders(html: str) -> OrdersSection:
    parser = OrdersSection()
    parser.feed(html)
    return parser


def _api_orders(site, show: str) -> list[dict]:  # noqa: F811
    """Every order over the API, in arrival order."""
    items, cursor = [], None
    while True:
        r = site.stack.query.get(
            f"/api/v1/strategies/{site.ids[show]}/orders",
            params={"limit": 200, **({"cursor": cursor} if cursor else {})},
            headers=site.keys[show],
        )
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items


def _latest_first(orders: list[dict]) -> list[str]:
    """Executed latest first; ties: the latest reported first (arrival order reversed)."""
    arrival = {o["id"]: i for i, o in enumerate(orders)}
    ranked = sorted(orders, key=lambda o: (datetime.fromisoformat(o["executed_at"]), arrival[o["id"]]), reverse=True)
    return [o["id"] for o in ranked]


def _every_page(client, sid: str) -> tuple[list[OrdersSection], list[str]]:
    pages, tags, page = [], [], 1
    while True:
        r = client.get(f"/s/{sid}", params={"orders_page": page} if page > 1 else {})
        assert r.status_code == 200, r.text
        pages.append(_orders(r.text))
        tags.append(r.headers["etag"])
        nxt = pages[-1].links.get("orders-next")
        if not nxt:
            return pages, tags
        assert nxt == f"?orders_page={page + 1}#orders"
        page += 1
        assert page < 20


def test_the_orders_page_through_every_order_latest_executed_first(site):  # noqa: F811
    expected = _latest_first(_api_orders(site, "live"))
    assert len(expected) == 2 * ROUND_TRIPS + 6 > 2 * ORDERS_PAGE_SIZE
    for viewer in (site.client, site.owner):
        pages, tags = _every_page(viewer, site.ids["live"])
        assert len(pages) == -(-len(expected) // ORDERS_PAGE_SIZE) and len(set(tags)) == len(pages)
        assert [len(p.rows) for p in pages[:-1]] == [ORDERS_PAGE_SIZE] * (len(pages) - 1)
        shown = [i for p in pages for i, _ in p.rows]
        assert shown == expected  # every order once, in a total order: no page overlaps or skips one
        assert pages[0].table and pages[0].table["data-total"] == str(len(expected))
        assert "orders-prev" not in pages[0].links and pages[1].links["orders-prev"] == "?orders_page=1#orders"
    # the owner of a delayed strategy sees every order too
    pages, _ = _every_page(site.owner, site.ids["delayed"])
    assert [i for p in pages for i, _ in p.rows] == _latest_first(_api_orders(site, "delayed"))


def test_delayed_publication_pages_through_the_orders_executed_more_than_24_hours_ago(site):  # noqa: F811
    sid = site.ids["delayed"]
    first = site.client.get(f"/s/{sid}")
    assert "executed more than 24 hours ago" in first.text and 'id="publication-delayed"' in first.text
    assert "those that ended more than 24 hours ago" in first.text  # the closed trades say it too
    cutoff = datetime.fromisoformat(_orders(first.text).cutoff or "")
    every = _api_orders(site, "delayed")
    published = [o for o in every if datetime.fromisoformat(o["executed_at"]) < cutoff]
    assert len(every) - len(published) == 2 and len(published) > 2 * ORDERS_PAGE_SIZE  # two are two hours old
    pages, _ = _every_page(site.client, sid)
    shown = [(i, at) for p in pages for i, at in p.rows]
    assert [i for i, _ in shown] == _latest_first(published)
    assert all(datetime.fromisoformat(at) < cutoff for _, at in shown)
    assert all(p.cutoff == cutoff.isoformat() for p in pages)


def test_no_table_when_nothing_is_published_and_bad_pages(site):  # noqa: F811
    hidden = site.client.get(f"/s/{site.ids['none']}", params={"orders_page": 2})
    assert hidden.status_code == 200 and "orders-table" not in _orders(hidden.text).ids
    sid = site.ids["live"]
    past = site.client.get(f"/s/{sid}", params={"orders_page": 9})
    assert past.status_code == 200 and not _orders(past.text).rows and "Back to the latest orders" in past.text
    for bad in ("0", "x", "-1", "1000001"):
        r = site.client.get(f"/s/{sid}", params={"orders_page": bad})
        assert r.status_code == 400 and "orders_page" in r.text, bad
    # each table pages on its own: the trades' page does not move the orders'
    both = _orders(site.client.get(f"/s/{sid}", params={"trades_page": 2, "orders_page": 2}).text)
    assert both.rows == _orders(site.client.get(f"/s/{sid}", params={"orders_page": 2}).text).rows
