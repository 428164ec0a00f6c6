"""Issue 21 on the pages, over HTTP against real services: the board ranks by DSR and shows PSR, DSR,
the Sharpe ratio's 95 % interval as a bar on one scale and "needs N more days"; the strategy page
shows the significance figures, the owner's record (a deleted strategy counted, the ETag moving with
it) and the short-history warning; ``/methodology`` renders docs/METHODOLOGY.md with its anchors,
and every figure's label links to one of them. Browser-level checks are tests/browser/.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from html import escape
from html.parser import HTMLParser
from types import SimpleNamespace

import httpx
import pytest

from devtools.stack import Stack, wait_until
from libs.infra.web import PAGE_CSP
from services.query_api import formatting
from services.query_api.methodology import SOURCE

from .test_pages import _session, _weekdays

pytestmark = pytest.mark.integration

STEADY, NOISY, FALLING = "SGSTEADY", "SGNOISY", "SGFALL"


def _prices(days: list[date]) -> dict[str, dict[date, float]]:
    """STEADY climbs with little noise (its record is long enough), NOISY drifts up through wide swings
    (it needs more days), FALLING falls (no record is long enough)."""
    out: dict[str, dict[date, float]] = {STEADY: {}, NOISY: {}, FALLING: {}}
    steady = noisy = falling = 100.0
    for i, d in enumerate(days):
        steady *= 1.004 + 0.006 * math.sin(i * 1.7)
        noisy *= 1.0015 + 0.02 * math.sin(i * 2.3)
        falling *= 0.997 + 0.01 * math.cos(i * 1.3)
        out[STEADY][d], out[NOISY][d], out[FALLING][d] = round(steady, 4), round(noisy, 4), round(falling, 4)
    return out


def _at(d: date, hour: int) -> str:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC).isoformat()


@pytest.fixture(scope="module")
def site(stack: Stack):
    today = datetime.now(UTC).date()
    days = _weekdays(today - timedelta(days=160), today)
    prices = _prices(days)
    stack.add_prices([(s, d.isoformat(), c) for s, closes in prices.items() for d, c in closes.items()])
    owner_id, owner_token = _session(stack)
    ids: dict[str, str] = {}

    def create(name: str, symbol: str, visibility: str = "public", owned: bool = False, start: int = 3) -> None:
        sid, key = stack.db.identity.create_strategy(
            name, visibility=visibility, show_positions="live", owner_id=uuid.UUID(owner_id) if owned else None
        )
        ids[name] = str(sid)
        auth = {"Authorization": f"Bearer {key}"}
        d = days[start]
        r = stack.post(
            str(sid),
            "cash",
            {"event_type": "deposit", "amount": 100_000, "occurred_at": _at(d, 13), "external_id": f"dep-{name}"},
            auth,
        )
        assert r.status_code == 201, r.text
        price = prices[symbol][d]
        order = {"symbol": symbol, "side": "buy", "quantity": int(99_000 // price), "price": price}
        r = stack.post(str(sid), "orders", {"orders": [{**order, "executed_at": _at(d, 15)}]}, auth)
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 1, r.text

    create("Steady", STEADY, owned=True)
    create("Noisy", NOISY)
    create("Falling", FALLING)
    create("Hidden", NOISY, visibility="private", owned=True)
    create("Gone", FALLING, owned=True)
    create("Fresh", STEADY, start=len(days) - 4)  # three daily returns: short history
    stack.wait_projected()
    wait_until(
        lambda: all(
            (row := stack.db.ledger.leaderboard_row(uuid.UUID(s))) is not None and row.track_days > 0
            for s in ids.values()
        ),
        60,
        "the leaderboard rows",
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.query_port}", timeout=30)
    owner = httpx.Client(
        base_url=f"http://127.0.0.1:{stack.query_port}", timeout=30, cookies={"access_token": owner_token}
    )
    yield SimpleNamespace(ids=ids, client=client, owner=owner, stack=stack)
    client.close()
    owner.close()


class Cells(HTMLParser):
    """The board's rows: {column: (attributes of the cell, its text)}, plus its svg.ci's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, dict[str, tuple[dict[str, str], str]]]] = []
        self.bars: dict[str, dict[str, dict[str, str]]] = {}
        self.sorted: dict[str, str] = {}
        self.help: dict[str, str] = {}
        self._cell: str | None = None
        self._th: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "th" and "data-col" in a:
            self._th = a["data-col"]
            if "aria-sort" in a:
                self.sorted[a["data-col"]] = a["aria-sort"]
        elif tag == "a" and self._th and "help" in a.get("class", ""):
            self.help[self._th] = a["href"]
        elif tag == "tr" and "data-strategy-id" in a:
            self.rows.append((a["data-strategy-id"], {}))
            self.bars[a["data-strategy-id"]] = {}
        elif tag == "td" and self.rows and "data-col" in a:
            self._cell = a["data-col"]
            self.rows[-1][1][self._cell] = (a, "")
        elif self._cell == "sharpe" and tag in ("svg", "line", "rect", "circle", "polygon"):
            self.bars[self.rows[-1][0]][tag if tag != "polygon" else f"polygon{len(self.bars)}"] = a

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "th":
            self._th = None

    def handle_data(self, data):
        if self._cell and self.rows:
            attrs, text = self.rows[-1][1][self._cell]
            self.rows[-1][1][self._cell] = (attrs, text + data)


def cells(html: str) -> Cells:
    parser = Cells()
    parser.feed(html)
    return parser


def test_the_board_ranks_by_dsr_and_shows_psr_dsr_interval_and_record(site):
    r = site.client.get("/", params={"min_days": 0})
    assert r.status_code == 200
    page = cells(r.text)
    assert page.sorted == {"dsr": "descending"}, "the board opens sorted by DSR"
    rows = site.client.get("/p/leaderboard", params={"min_days": 0}).json()["items"]
    assert [sid for sid, _ in page.rows] == [row["strategy_id"] for row in rows]
    assert site.ids["Hidden"] not in dict(page.rows)
    dsr = [row["dsr"] for row in rows]
    present = [v for v in dsr if v is not None]
    assert present == sorted(present, reverse=True) and dsr[: len(present)] == present, dsr
    assert len(present) >= 3, rows
    scale = formatting.ci_scale((row["sharpe_ci_95"], row["sharpe"]) for row in rows)
    zeros, hints = set(), []
    for row in rows:
        sid = row["strategy_id"]
        shown = dict(page.rows)[sid]
        for column in ("psr", "dsr"):
            attrs, text = shown[column]
            assert attrs["data-value"] == ("" if row[column] is None else str(row[column])), (column, row)
            assert text.strip() == formatting.prob(row[column]), (column, text)
            if row[column] is not None and 0.0005 < row[column] < 0.9995:
                assert text.strip() == f"{row[column] * 100:.1f}%"
        # the Sharpe ratio with its 95 % interval: a bar on the page's one scale, said in words too
        bar = page.bars[sid]
        if row["sharpe_ci_95"] is None:
            assert not bar, row
            continue
        lo, hi = row["sharpe_ci_95"]
        assert shown["sharpe"][1].strip().startswith(formatting.ratio(row["sharpe"])), shown["sharpe"]
        label = f"95% interval of the Sharpe ratio: {formatting.ratio(lo)} to {formatting.ratio(hi)}"
        assert bar["svg"]["aria-label"] == label and bar["svg"]["role"] == "img"
        assert float(shown["sharpe"][0]["data-ci-lo"]) == pytest.approx(lo)
        x_lo, width, mid = float(bar["rect"]["x"]), float(bar["rect"]["width"]), float(bar["circle"]["cx"])
        assert x_lo <= mid <= x_lo + width + 1e-9, bar
        expected = formatting.ci_bar(row["sharpe_ci_95"], row["sharpe"], scale)
        assert expected and x_lo == expected["lo"] and mid == expected["mid"]
        assert bar["svg"]["class"] == f"ci {'pos' if lo > 0 else 'neg' if hi < 0 else 'across'}"
        zeros.add(bar["line"]["x1"])
        # "needs N more days" while the record is shorter than the minimum track record
        hint = formatting.record_hint(row["observations"], row["min_track_record_days"], row["psr"])
        record_text = shown["track_days"][1]
        if hint:
            hints.append(hint["text"])
            assert hint["text"] in record_text, (row, record_text)
        else:
            assert "needs" not in record_text
    assert len(zeros) == 1, "one scale for every bar of the page"
    by_id = {row["strategy_id"]: row for row in rows}
    noisy, falling = by_id[site.ids["Noisy"]], by_id[site.ids["Falling"]]
    assert noisy["min_track_record_days"] > noisy["observations"], noisy
    more = noisy["min_track_record_days"] - noisy["observations"]
    assert f"needs {more:,} more days" in dict(page.rows)[site.ids["Noisy"]]["track_days"][1]
    assert falling["min_track_record_days"] is None and falling["sharpe"] < 0
    assert "needs a positive Sharpe" in dict(page.rows)[site.ids["Falling"]]["track_days"][1]
    steady = by_id[site.ids["Steady"]]
    assert steady["observations"] >= steady["min_track_record_days"] and rows[0]["strategy_id"] == site.ids["Steady"]
    # PSR and DSR sort too (best first, then reversed), and every header links to its methodology section
    for column in ("psr", "dsr"):
        for direction in ("desc", "asc"):
            view = cells(site.client.get("/", params={"min_days": 0, "sort": column, "dir": direction}).text)
            values = [attrs["data-value"] for attrs, _ in (c[column] for _, c in view.rows)]
            numbers = [float(v) for v in values if v]
            assert numbers == sorted(numbers, reverse=direction == "desc"), (column, direction, values)
    anchors = set(_methodology_anchors())
    assert set(page.help) >= {"dsr", "psr", "sharpe", "total_return", "max_drawdown", "track_days", "live_share"}
    for column, href in page.help.items():
        assert href.startswith("/methodology#") and href.split("#")[1] in anchors, (column, href)
    assert page.help["dsr"] == "/methodology#dsr" and page.help["psr"] == "/methodology#significance"
    legend = re.search(r'<dl class="legend" id="leaderboard-legend">(.*?)</dl>', r.text, re.S).group(1)
    assert (
        "Deflated Sharpe Ratio, the board&#39;s order" in legend or "Deflated Sharpe Ratio, the board's order" in legend
    )
    trials = site.stack.db.ledger.trials().count
    assert f"among the {trials:,} strateg" in legend and "ranked by Sharpe" not in r.text.lower()
    assert all(h.split("#")[1] in anchors for h in re.findall(r'href="(/methodology#[^"]+)"', legend))


def test_the_strategy_page_says_how_sure_and_who_runs_it(site):
    sid = site.ids["Steady"]
    r = site.client.get(f"/s/{sid}")
    assert r.status_code == 200
    html = r.text
    perf = site.client.get(f"/p/strategies/{sid}").json()["performance"]
    sig = perf["significance"]
    assert sig["psr"] is not None and sig["dsr"] is not None and sig["trials"] >= 3
    section = re.search(r'<section class="block significance" id="significance".*?</section>', html, re.S).group(0)
    for metric, shown in (
        ("psr", formatting.prob(sig["psr"])),
        ("dsr", formatting.prob(sig["dsr"])),
        ("trials", formatting.integer(sig["trials"])),
        ("sharpe_ratio", formatting.ratio(perf["sharpe_ratio"])),
    ):
        assert re.search(
            rf'data-metric="{metric}"[^>]*><span class="label"><a href="/methodology#[a-z-]+">[^<]+</a></span>'
            rf'<span class="value[^"]*">{re.escape(escape(shown))}</span>',
            section,
        ), (metric, shown)
    lo, hi = sig["sharpe_ci_95"]
    assert f"{formatting.ratio(lo)} to {formatting.ratio(hi)}" in section and '<svg class="ci' in section
    assert f"{sig['min_track_record_days']:,} days" in section and "reached:" in section
    anchors = set(_methodology_anchors())
    links = re.findall(r'href="/methodology#([^"]+)"', html)
    assert {"significance", "dsr", "ratios", "return", "risk", "charts"} <= set(links) and set(links) <= anchors
    # the owner's record (Steady, Hidden and Gone), a deletion counted; the ETag moves with it
    record = re.search(r'<p class="meta owner-record" id="owner-record"[^>]*>\s*(.*?)<a', html, re.S).group(1)
    assert " ".join(record.split()) == "Its owner has started 3 strategies here: 2 public, 1 private, 0 deleted."
    tag = r.headers["etag"]
    assert site.client.get(f"/s/{sid}", headers={"If-None-Match": tag}).status_code == 304
    assert site.stack.db.delete_strategy(uuid.UUID(site.ids["Gone"]), grace_s=0) is not None
    again = site.client.get(f"/s/{sid}", headers={"If-None-Match": tag})
    assert again.status_code == 200 and again.headers["etag"] != tag
    record = re.search(r'id="owner-record"[^>]*>\s*(.*?)<a', again.text, re.S).group(1)
    assert " ".join(record.split()) == "Its owner has started 3 strategies here: 1 public, 1 private, 1 deleted."
    # a strategy without an owner has no such line; the board's rank badge says what it ranks by
    assert 'id="owner-record"' not in site.client.get(f"/s/{site.ids['Noisy']}").text
    assert "on the leaderboard (by DSR)" in again.text


def test_a_short_history_says_so_where_the_figures_are_missing(site):
    sid = site.ids["Fresh"]
    perf = site.client.get(f"/p/strategies/{sid}").json()["performance"]
    assert "short_history" in {w["code"] for w in perf["warnings"]} and perf["sharpe_ratio"] is None
    html = site.client.get(f"/s/{sid}").text
    assert re.search(r'<li data-code="short_history">[^<]+<a href="/methodology#short-history">Why\?</a>', html)
    sharpe = re.search(r'data-metric="sharpe_ratio".*?</div>', html, re.S).group(0)
    assert re.search(r'<span class="value ?">—</span>', sharpe) and 'href="/methodology#short-history"' in sharpe
    assert "fewer than 20 daily returns" in sharpe
    cagr = re.search(r'data-metric="cagr".*?</div>', html, re.S).group(0)
    assert "fewer than 20 daily returns" in cagr
    total = re.search(r'data-metric="total_return".*?</div>', html, re.S).group(0)
    assert "fewer than 20" not in total  # not annualised: it stands


def _methodology_anchors() -> list[str]:
    return re.findall(r"\{#([\w-]+)\}\s*$", SOURCE.read_text(encoding="utf-8"), re.M)


def test_methodology_renders_the_document_with_its_anchors(site):
    r = site.client.get("/methodology")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == PAGE_CSP
    html = r.text
    anchors = _methodology_anchors()
    assert {"significance", "dsr", "leaderboard", "charts", "returns", "ratios", "risk", "short-history"} <= set(
        anchors
    )
    for anchor in anchors:
        assert re.search(rf'<h[23] id="{anchor}">[^<{{]+ <a class="anchor" href="#{anchor}"', html), anchor
    assert "{#" not in html
    article = re.search(r'<article class="prose" id="methodology">(.*)</article>', html, re.S).group(1)
    assert "<h1>Methodology: every figure BotRanks publishes</h1>" in article
    assert "<table" not in article or "<thead>" in article
    assert "<code>min_track_record_days</code>" in article and "<strong>444</strong>" in article
    assert not re.search(r"<(script|style|iframe|img|div|span)\b", article), "no raw HTML in the document"
    assert 'id="nav-methodology"' in html and 'id="footer-methodology"' in html
    # cached like the other static-ish pages
    tag = r.headers["etag"]
    assert "no-cache" in r.headers["cache-control"]
    assert site.client.get("/methodology", headers={"If-None-Match": tag}).status_code == 304
    assert 'href="/methodology"' in site.client.get("/").text


def test_raw_html_in_the_document_stays_text():
    from services.query_api.methodology import render

    doc = render("# T\n\n<script>alert(1)</script>\n\n## A {#a}\n\n| x | y |\n|---|---|\n| 1 | 2 |\n")
    assert "<script>" not in doc.html and "&lt;script&gt;" in doc.html
    assert doc.anchors == ("a",) and '<h2 id="a">A <a class="anchor" href="#a"' in doc.html
    assert "<table>" in doc.html and doc.title == "T"
