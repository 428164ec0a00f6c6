"""The embeds of issue 24 (services/query_api/embed.py) over HTTP against real services: the badge
(SVG that parses as XML, the figures /p/strategies/{id} gives, escaped names, ETag/304), the iframe
card (its figures and chart, the only answer that may be framed), 404 for what is not public
(private, also to its owner; unknown; malformed), and the strategy page's copy-paste snippets with
the request's own base URL."""

from __future__ import annotations

import math
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from types import SimpleNamespace

import httpx
import pytest

from devtools.stack import Stack, wait_until
from libs.infra.web import API_CSP, PAGE_CSP
from services.query_api import formatting
from services.query_api.embed import EMBED_CSP

pytestmark = pytest.mark.integration

SYMBOL = "EMBUP"
PASSWORD = "embed-test-password"
HOSTILE = 'Bot <script>alert(1)</script> & "q" ]]> [x] \x01'
SVG_NS = "{http://www.w3.org/2000/svg}"


def _weekdays(start: date, end: date) -> list[date]:
    days, d = [], start
    while d <= end:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


@pytest.fixture(scope="module")
def site(stack: Stack):
    today = datetime.now(UTC).date()
    days = _weekdays(today - timedelta(days=120), today)
    closes = {d: round(50 * 1.002**i * (1 + 0.02 * math.sin(i / 3)), 4) for i, d in enumerate(days)}
    stack.add_prices([(SYMBOL, d.isoformat(), c) for d, c in closes.items()])
    email = f"embed-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.command_port}", timeout=30) as c:
        assert c.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        token = c.post("/auth/login", json={"email": email, "password": PASSWORD}).cookies["access_token"]
    owner = uuid.UUID(str(stack.db.identity.user_id(email)))
    ids = {}
    for label, name, visibility in (
        ("public", "Embed Alpha", "public"),
        ("hostile", HOSTILE, "public"),
        ("private", "Embed Private", "private"),
    ):
        sid, key = stack.db.identity.create_strategy(name, visibility=visibility, owner_id=owner)
        ids[label] = str(sid)
        auth = {"Authorization": f"Bearer {key}"}
        d0 = days[3]
        at = datetime(d0.year, d0.month, d0.day, 15, tzinfo=UTC).isoformat()
        cash = {"event_type": "deposit", "amount": 100_000, "occurred_at": at, "external_id": f"dep-{label}"}
        assert stack.post(str(sid), "cash", cash, auth).status_code == 201
        order = {"symbol": SYMBOL, "side": "buy", "quantity": 1000, "price": closes[d0], "executed_at": at}
        r = stack.post(str(sid), "orders", {"orders": [order]}, auth)
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 1, r.text
    stack.wait_projected()
    wait_until(
        lambda: all(
            (row := stack.db.ledger.leaderboard_row(uuid.UUID(s))) is not None and row.track_days > 0
            for s in ids.values()
        ),
        60,
        "the leaderboard rows",
    )
    empty, _ = stack.db.identity.create_strategy("Embed Empty", visibility="public", owner_id=owner)
    ids["empty"] = str(empty)  # public, nothing reported yet
    base = f"http://127.0.0.1:{stack.query_port}"
    client = httpx.Client(base_url=base, timeout=30)
    mine = httpx.Client(base_url=base, timeout=30, cookies={"access_token": token})
    yield SimpleNamespace(ids=ids, client=client, owner=mine, base=base, port=stack.query_port)
    client.close()
    mine.close()


def _summary(site, sid: str) -> dict:
    r = site.client.get(f"/p/strategies/{sid}")
    assert r.status_code == 200, r.text
    return r.json()


def _badge(site, sid: str) -> tuple[httpx.Response, ET.Element]:
    r = site.client.get(f"/s/{sid}/badge.svg")
    assert r.status_code == 200, r.text
    return r, ET.fromstring(r.content)


def _badge_texts(svg: ET.Element) -> dict[str, str]:
    return {t.get("data-metric"): (t.text or "") for t in svg.iter(f"{SVG_NS}text") if t.get("data-metric")}


def test_the_badge_is_svg_with_the_figures_the_api_gives(site):
    sid = site.ids["public"]
    perf = _summary(site, sid)["performance"]
    r, svg = _badge(site, sid)
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert svg.tag == f"{SVG_NS}svg" and svg.get("data-strategy-id") == sid
    assert int(svg.get("height")) == 36 and 200 <= int(svg.get("width")) <= 360, "fits a phone"
    texts = _badge_texts(svg)
    assert texts["brand"] == "BotRanks"
    assert texts["total_return"] == f"return {formatting.pct(perf['total_return'])}"
    assert texts["max_drawdown"] == f"max DD {formatting.pct(perf['drawdown']['max_drawdown'])}"
    assert texts["track_days"] == f"{perf['days']:,} days" and perf["days"] > 100
    dsr = perf["significance"]["dsr"]
    if dsr is None:
        assert "dsr" not in texts
    else:
        assert texts["dsr"] == f"DSR {formatting.prob(dsr)}"
    assert texts["chain"] == "chain ✓"
    title = svg.find(f"{SVG_NS}title")
    assert title is not None and title.text.startswith("BotRanks: Embed Alpha: total return ")
    # every text fits its box whatever font draws it
    assert all(t.get("textLength") for t in svg.iter(f"{SVG_NS}text"))
    # nothing to fetch or run
    assert b"<script" not in r.content and b"href" not in r.content and b"@import" not in r.content


def test_a_badge_with_no_dsr_says_nothing_of_it(site):
    _, svg = _badge(site, site.ids["hostile"])
    perf = _summary(site, site.ids["hostile"])["performance"]
    assert ("dsr" in _badge_texts(svg)) == (perf["significance"]["dsr"] is not None)


def test_a_hostile_name_is_escaped_in_the_badge_and_the_card(site):
    sid = site.ids["hostile"]
    r, svg = _badge(site, sid)  # parses: the control character is replaced, the rest escaped
    assert b"<script>" not in r.content
    assert "<script>alert(1)</script>" in svg.find(f"{SVG_NS}title").text
    card = site.client.get(f"/s/{sid}/embed")
    assert card.status_code == 200
    assert "<script" not in card.text
    assert "Bot &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;q&#34; ]]&gt; [x]" in card.text


def test_badge_headers_cache_and_framing(site):
    sid = site.ids["public"]
    r, _ = _badge(site, sid)
    assert r.headers["content-security-policy"] == API_CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache"
    tag = r.headers["etag"]
    again = site.client.get(f"/s/{sid}/badge.svg", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    # the owner's session changes nothing: an embed is what everybody sees
    assert site.owner.get(f"/s/{sid}/badge.svg").content == r.content


class Card(HTMLParser):
    """The card: its links, figures ({metric: data-value}), polylines and scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.figures: dict[str, str | None] = {}
        self.polylines: list[str] = []
        self.scripts = 0
        self.name = ""
        self._in_name = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a":
            self.links.append(a)
            self._in_name = a.get("id") == "embed-name"
        elif tag == "div" and "data-metric" in a:
            self.figures[a["data-metric"]] = a.get("data-value")
        elif tag == "polyline":
            self.polylines.append(a["points"] or "")
        elif tag in ("script", "link", "img", "iframe", "object", "embed"):
            self.scripts += 1

    def handle_data(self, data):
        if self._in_name:
            self.name += data

    def handle_endtag(self, tag):
        if tag == "a":
            self._in_name = False


def _close(shown: str | None, value: float | int | None) -> bool:
    if value is None:
        return shown in ("", None)
    return shown is not None and math.isclose(float(shown), float(value), rel_tol=1e-9, abs_tol=1e-12)


def test_the_card_shows_the_name_chart_and_figures(site):
    sid = site.ids["public"]
    body = _summary(site, sid)
    perf = body["performance"]
    r = site.client.get(f"/s/{sid}/embed")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    card = Card()
    card.feed(r.text)
    assert card.name == "Embed Alpha"
    name = next(link for link in card.links if link.get("id") == "embed-name")
    assert name["href"] == f"/s/{sid}" and name["target"] == "_blank" and name["rel"] == "noopener"
    assert all(link["target"] == "_blank" and "noopener" in (link["rel"] or "") for link in card.links)
    assert card.scripts == 0, "the card loads nothing and runs nothing"
    assert len(card.polylines) == 1 and len(card.polylines[0].split()) > 50
    assert _close(card.figures["total_return"], perf["total_return"])
    assert _close(card.figures["cagr"], perf["cagr"])
    assert _close(card.figures["max_drawdown"], perf["drawdown"]["max_drawdown"])
    assert _close(card.figures["sharpe_ratio"], perf["sharpe_ratio"])
    assert _close(card.figures["dsr"], perf["significance"]["dsr"])
    assert _close(card.figures["days"], perf["days"])
    assert f'data-events="{body["chain"]["events"]}"' in r.text and body["chain"]["events"] >= 2
    assert formatting.pct(perf["total_return"]) in r.text


def test_only_the_card_may_be_framed(site):
    sid = site.ids["public"]
    r = site.client.get(f"/s/{sid}/embed")
    assert r.headers["content-security-policy"] == EMBED_CSP
    assert "frame-ancestors *" in EMBED_CSP and "script-src" not in EMBED_CSP
    assert EMBED_CSP.startswith("default-src 'none';")
    assert "x-frame-options" not in r.headers
    assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
    again = site.client.get(f"/s/{sid}/embed", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    for path in ("/", f"/s/{sid}", "/methodology", f"/s/{uuid.uuid4()}/embed", f"/p/strategies/{sid}"):
        other = site.client.get(path)
        assert other.headers["x-frame-options"] == "DENY", path
        assert other.headers["content-security-policy"] in (PAGE_CSP, API_CSP), path
        assert "frame-ancestors 'none'" in other.headers["content-security-policy"], path


def test_what_is_not_public_is_the_strategy_pages_404(site):
    unknown = site.client.get(f"/s/{uuid.uuid4()}")
    assert unknown.status_code == 404
    private = site.ids["private"]
    assert site.owner.get(f"/s/{private}").status_code == 200  # its owner sees its page...
    for sid in (private, str(uuid.uuid4()), "not-a-uuid", "x" * 100):
        for suffix in ("badge.svg", "embed"):
            for client in (site.client, site.owner):  # ...but never an embed of it
                r = client.get(f"/s/{sid}/{suffix}")
                assert r.status_code == 404, (sid, suffix)
                assert r.text == unknown.text, "the same page as an unknown strategy's"
                assert r.headers["content-security-policy"] == PAGE_CSP


class Snippets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.areas: dict[str, str] = {}
        self.preview: str | None = None
        self._area: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "textarea" and (a.get("id") or "").startswith("embed-"):
            assert "readonly" in a
            self._area = a["id"]
            self.areas[self._area] = ""
        elif tag == "img" and a.get("id") == "embed-badge-preview":
            self.preview = a["src"]

    def handle_data(self, data):
        if self._area:
            self.areas[self._area] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._area = None


def _snippets(r: httpx.Response) -> Snippets:
    assert r.status_code == 200, r.text
    parsed = Snippets()
    parsed.feed(r.text)
    return parsed


def test_the_strategy_page_has_the_snippets_with_absolute_urls(site):
    sid = site.ids["public"]
    shown = _snippets(site.client.get(f"/s/{sid}"))
    base = site.base
    assert shown.preview == f"/s/{sid}/badge.svg"
    assert (
        shown.areas["embed-badge-markdown"] == f"[![BotRanks: Embed Alpha]({base}/s/{sid}/badge.svg)]({base}/s/{sid})"
    )
    assert shown.areas["embed-badge-html"] == (
        f'<a href="{base}/s/{sid}"><img src="{base}/s/{sid}/badge.svg" alt="BotRanks record of Embed Alpha"'
        ' height="36"></a>'
    )
    iframe = shown.areas["embed-card-html"]
    assert iframe.startswith(f'<iframe src="{base}/s/{sid}/embed" title="BotRanks record of Embed Alpha"')
    # another name of the same server: its own URLs, not a cached page's
    other = _snippets(site.client.get(f"/s/{sid}", headers={"Host": f"localhost:{site.port}"}))
    assert f"http://localhost:{site.port}/s/{sid}/embed" in other.areas["embed-card-html"]
    # the snippets of a hostile name stay one pasteable, escaped element
    hostile = site.ids["hostile"]
    code = _snippets(site.client.get(f"/s/{hostile}")).areas
    assert code["embed-badge-markdown"].startswith(r'[![BotRanks: Bot <script>alert(1)</script> & "q" \]\]> \[x\]')
    assert (
        'alt="BotRanks record of Bot &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;q&#34;'
        in code["embed-badge-html"]
    )
    assert re.fullmatch(
        r'<a href="[^"<>]+"><img src="[^"<>]+" alt="[^"<>]+" height="36"></a>', code["embed-badge-html"]
    )


def test_a_private_strategy_page_offers_no_snippets(site):
    r = site.owner.get(f"/s/{site.ids['private']}")
    assert r.status_code == 200
    assert 'id="embed-snippets"' not in r.text


def test_a_strategy_with_nothing_reported_yet(site):
    sid = site.ids["empty"]
    _, svg = _badge(site, sid)
    texts = _badge_texts(svg)
    assert texts["total_return"] == "return —" and texts["chain"] == "chain —" and texts["track_days"] == "0 days"
    card = site.client.get(f"/s/{sid}/embed")
    assert card.status_code == 200
    assert 'id="embed-no-chart"' in card.text and "<polyline" not in card.text
