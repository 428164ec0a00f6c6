"""Issue 24, item 1 in a real browser: a person registers with a public handle through the form, creates a
public strategy, writes its description and tags in the settings form, reports orders with a key; the
strategy page shows the About block (Markdown rendered, raw HTML as text, links nofollow ugc, derived
markets, tags, the owner's link), the owner's public page lists it, the board finds it by @handle and
filters it by market on a 390 px phone. Screenshots under /tmp/issue24-shots/."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from devtools.stack import wait_until

from .conftest import DESKTOP, PHONE

SHOTS = Path("/tmp/issue24-shots")
PASSWORD = "correct horse battery staple"
DESCRIPTION = (
    "Rotates between **large caps** and *bitcoin* on momentum.\n\n"
    "- rebalanced weekly\n- never levered\n\n"
    "<script>alert('x')</script> Notes: [our write-up](https://example.com/write-up)"
)


@pytest.fixture(scope="module")
def profiled(site, browser):
    """(handle, strategy id, name): registered, created, described and traded through the real site."""
    handle = f"Quant-{uuid.uuid4().hex[:6]}"
    email = f"{handle.lower()}@example.com"
    name = f"Cap rotation {handle[-6:]}"
    context = browser.new_context(viewport=DESKTOP, base_url=site.base)
    page = context.new_page()
    page.goto(site.url("/account/register"))
    page.fill("#register-email", email)
    page.fill("#register-password", PASSWORD)
    page.fill("#register-handle", handle)
    with page.expect_navigation():
        page.click("#register-submit")
    assert page.locator("#handle-link").inner_text() == f"@{handle.lower()}"
    page.fill("#new-name", name)
    page.select_option("#new-visibility", "public")
    page.fill("#new-benchmark", "DEMO-SPY")
    with page.expect_navigation():
        page.click("#create-strategy")
    card = page.locator("li.card", has=page.locator(".strategy-name", has_text=name))
    sid = card.get_attribute("data-strategy-id")
    card.locator("summary").click()
    page.fill(f"#s-{sid}-description", DESCRIPTION)
    page.fill(f"#s-{sid}-tags", "Momentum, large caps, BTC")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "profile-settings-form-1366x900.png"), full_page=True)
    with page.expect_navigation():
        page.click(f"#settings-{sid}-submit")
    assert page.locator("#notice").inner_text() == "Settings saved."
    token = next(c["value"] for c in context.cookies() if c["name"] == "access_token")
    context.close()
    with httpx.Client(base_url=site.base, timeout=30, cookies={"access_token": token}) as owner:
        key = owner.post(f"/strategies/{sid}/api-keys", json={"name": "bot"}).json()["plaintext"]
        auth = {"Authorization": f"Bearer {key}"}
        day = (datetime.now(UTC) - timedelta(days=40)).replace(hour=15, minute=0, second=0, microsecond=0)
        r = owner.post(
            f"/api/v1/strategies/{sid}/cash",
            json={"event_type": "deposit", "amount": 250_000, "occurred_at": (day - timedelta(hours=2)).isoformat()},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        orders = [
            {"symbol": "DEMO-SPY", "side": "buy", "quantity": 200, "price": 400, "executed_at": day.isoformat()},
            {"symbol": "DEMO-BTC-USD", "side": "buy", "quantity": 1, "price": 30_000, "executed_at": day.isoformat()},
        ]
        r = owner.post(f"/api/v1/strategies/{sid}/orders", json={"orders": orders}, headers=auth)
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 2, r.text

    def on_board() -> bool:
        items = site.http.get("/p/leaderboard", params={"q": f"@{handle}", "min_days": 0}).json()["items"]
        return bool(items) and items[0]["markets"] == ["us-equities", "crypto"]

    wait_until(on_board, 90, "the new strategy on the board with its markets")
    return handle.lower(), sid, name


def test_the_strategy_page_shows_the_profile(site, new_context, watch, profiled):
    handle, sid, name = profiled
    page = new_context(viewport=DESKTOP).new_page()
    checks = watch(page)
    page.goto(site.url(f"/s/{sid}"))
    about = page.locator("#about")
    assert about.locator("#description strong").inner_text() == "large caps"
    assert about.locator("#description li").count() == 2
    assert "<script>alert('x')</script>" in about.locator("#description").inner_text()  # shown as text
    assert page.evaluate("() => document.querySelectorAll('#about script').length") == 0
    link = about.locator("#description a")
    assert link.get_attribute("href") == "https://example.com/write-up"
    assert link.get_attribute("rel") == "nofollow ugc noopener"
    assert about.locator("#profile-markets .chip").all_inner_texts() == ["US equities", "Crypto"]
    assert about.locator("#profile-tags .chip").all_inner_texts() == ["momentum", "large-caps", "btc"]
    assert about.locator("#profile-equity").inner_text() == "100k to 1M USD"
    assert about.locator("#profile-currency").inner_text() == "USD"
    assert about.locator("#profile-started").get_attribute("data-value")
    about.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "profile-strategy-about-1366x900.png"))
    with page.expect_navigation():
        about.locator("#profile-owner a").click()
    assert page.url.endswith(f"/u/{handle}")
    assert page.locator("#owner-handle").inner_text() == f"@{handle}"
    assert page.locator("#owner-counts").get_attribute("data-started") == "1"
    assert page.locator(".owner-strategy .name").all_inner_texts() == [name]
    page.screenshot(path=str(SHOTS / "profile-owner-page-1366x900.png"), full_page=True)
    checks.assert_clean("the strategy page and the owner page")


def test_the_board_finds_and_filters_profiles_on_a_phone(site, new_context, watch, profiled):
    handle, sid, name = profiled
    page = new_context(viewport=PHONE).new_page()
    checks = watch(page)
    page.goto(site.url("/?min_days=0"))
    page.fill("#filter-q", f"@{handle}")
    page.select_option("#filter-market", "crypto")
    with page.expect_navigation():
        page.click("#leaderboard-filters button[type=submit]")
    assert f"q=%40{handle}" in page.url and "market=crypto" in page.url  # shareable
    rows = page.locator("#leaderboard tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-strategy-id") == sid
    byline = rows.first.locator(".byline")
    assert byline.is_visible() and f"@{handle}" in byline.inner_text() and "Crypto" in byline.inner_text()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the board is {width} px wide on a {PHONE['width']} px screen"
    page.screenshot(path=str(SHOTS / "profile-board-filtered-390x844.png"), full_page=True)
    page.goto(site.url(f"/?min_days=0&market=forex&q=%40{handle}"))
    assert page.locator("#leaderboard tbody tr").count() == 0 and "trading Forex" in page.inner_text(
        "#leaderboard-empty"
    )
    checks.assert_clean("the filtered board")


def test_the_demo_bots_have_profiles(site, new_context, watch):
    """`botranks demo` describes and tags its bots; their markets are derived from what they trade."""
    bots = {b["name"]: b["strategy_id"] for b in site.demo["bots"]}
    page = new_context(viewport=DESKTOP).new_page()
    checks = watch(page)
    page.goto(site.url(f"/s/{bots['Momentum rotation (demo)']}"))
    about = page.locator("#about")
    assert about.locator("#description strong").first.inner_text() == "sample bot"
    assert about.locator("#profile-tags .chip").all_inner_texts() == ["momentum", "rotation", "monthly"]
    assert about.locator("#profile-markets .chip").all_inner_texts() == ["US equities", "Crypto"]  # BTC too
    page.goto(site.url(f"/s/{bots['Euro balanced (demo)']}"))
    markets = page.locator("#about #profile-markets .chip").all_inner_texts()
    assert "Equities outside the US" in markets and "US equities" in markets  # SAP in EUR, AAPL and KO in USD
    assert page.locator("#about #profile-currency").inner_text() == "EUR"
    page.goto(site.url("/?min_days=0&q=trend-following"))
    names = page.locator("#leaderboard tbody td.name > a").all_inner_texts()
    assert {"Crypto trend (demo)", "Breakout trend (demo)"} <= set(names), names
    checks.assert_clean("the demo bots' profiles")
