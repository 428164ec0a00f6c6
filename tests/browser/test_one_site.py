"""One site (issue 24): the owner pages wear the public pages' header, navigation, stylesheet and
favicon; a new API key is shown once on the page a POST redirects to (a reload never shows it again
nor creates a key); revoking asks first; the strategy page's orders table pages through every
published order (here: delayed publication, more than 50 orders older than 24 hours).

Desktop (1366×900) and phone (390×844); screenshots under tests/artifacts/ (one-site-*.png).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.stack import wait_until
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_owner_pages import PASSWORD, create_strategy, sign_in

HEADER = """() => {
    const header = document.querySelector('header.site-header');
    const items = [...header.querySelectorAll('nav a, nav button')].map(e => [e.id, e.textContent.trim(),
        e.getAttribute('href')]);
    const css = getComputedStyle(header), body = getComputedStyle(document.body);
    const brand = header.querySelector('a.brand');
    return {items, background: css.backgroundColor, color: css.color, padding: css.padding, display: css.display,
            font: body.fontFamily, brand: [brand.textContent.trim(), brand.getAttribute('href'),
            getComputedStyle(brand).fontWeight],
            icon: document.querySelector('link[rel=icon]')?.getAttribute('href'),
            sheets: [...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.getAttribute('href')),
            loaded: [...document.styleSheets].filter(s => s.href).map(s => new URL(s.href).pathname),
            rules: [...document.styleSheets].reduce((n, s) => n + s.cssRules.length, 0)};
}"""
COMMON = [
    ["nav-leaderboard", "Leaderboard", "/"],
    ["nav-methodology", "Methodology", "/methodology"],
    ["nav-docs", "API docs", "/docs"],
]


def _register(site) -> str:
    email = f"one-site-{uuid.uuid4().hex[:8]}@example.com"
    assert site.http.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    return email


def _same_look(public: dict[str, Any], owner: dict[str, Any]) -> None:
    for key in ("background", "color", "padding", "display", "font", "brand", "icon"):
        assert owner[key] == public[key], (key, owner[key], public[key])
    app_css = [h for h in public["sheets"] if h.startswith("/static/app.css")]
    assert app_css and app_css[0] in owner["sheets"], owner["sheets"]  # the very same stylesheet (one copy)
    assert "/static/app.css" in owner["loaded"] and owner["rules"] > 100  # and it did load (CSP, front door)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_owner_pages_wear_the_public_header_nav_style_and_favicon(site, new_context, watch, artifacts, viewport):
    size = f"{viewport['width']}x{viewport['height']}"
    stranger = new_context(viewport=viewport).new_page()
    checks = watch(stranger)
    stranger.goto(site.url("/"))
    public = stranger.evaluate(HEADER)
    assert public["items"] == [*COMMON, ["nav-account", "My strategies", "/account"]]
    icon = httpx.get(site.url(public["icon"]), timeout=10)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")

    # signed out, an owner page: the same header, "Sign in" where "My strategies" was
    stranger.goto(site.url("/account/login"))
    login = stranger.evaluate(HEADER)
    _same_look(public, login)
    assert login["items"] == [
        *COMMON,
        ["nav-login", "Sign in", "/account/login"],
        ["nav-register", "Create an account", "/account/register"],
    ]
    assert stranger.locator("#nav-login").get_attribute("aria-current") == "page"
    stranger.screenshot(path=str(artifacts / f"one-site-login-{size}.png"))
    checks.assert_clean("/ and /account/login")

    # signed in: the same header and links, plus "Sign out"
    owner = sign_in(new_context(viewport=viewport), site, _register(site))
    checks = watch(owner)
    owner.goto(site.url("/account"))
    mine = owner.evaluate(HEADER)
    _same_look(public, mine)
    assert mine["items"] == [*COMMON, ["nav-account", "My strategies", "/account"], ["logout", "Sign out", None]]
    assert owner.locator("#nav-account").get_attribute("aria-current") == "page"
    # the header fits the viewport (no sideways scrolling on a phone)
    assert owner.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    owner.screenshot(path=str(artifacts / f"one-site-account-{size}.png"))
    owner.wait_for_load_state("networkidle")
    checks.assert_clean("/account (signed in)")
    # every link of the header works from an owner page, and leads to a page with the same header
    for link_id, _, href in COMMON:
        owner.goto(site.url("/account"))
        with owner.expect_navigation():
            owner.click(f"#{link_id}")
        assert owner.url.split("?")[0].rstrip("/") == site.url(href).rstrip("/"), (link_id, owner.url)
        assert owner.locator("header.site-header #nav-account").count() == 1, link_id
    owner.goto(site.url("/account"))
    with owner.expect_navigation():
        owner.click("#logout")
    assert owner.goto(site.url("/account")).url.endswith("/account/login")


def _api_keys(context, site, sid: str) -> list[dict[str, Any]]:
    """The strategy's keys through the JSON API, with the browser's own session."""
    r = context.request.get(site.url(f"/strategies/{sid}/api-keys"))
    assert r.status == 200, r.text()
    return r.json()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_new_key_is_shown_once_and_a_reload_creates_none(site, new_context, watch, artifacts, viewport):
    size = f"{viewport['width']}x{viewport['height']}"
    context = new_context(viewport=viewport)
    owner = sign_in(context, site, _register(site))
    sid = create_strategy(owner, f"Keys once {uuid.uuid4().hex[:6]}", "private")
    checks = watch(owner)
    keys_url = site.url(f"/account/strategies/{sid}/keys")
    owner.goto(keys_url)
    assert _api_keys(context, site, sid) == []
    owner.fill("#key-name", "laptop")
    with owner.expect_navigation() as nav:
        owner.click("#create-key")
    answer = nav.value
    redirect = answer.request.redirected_from
    assert redirect is not None and redirect.method == "POST", "the POST answered with a redirect"
    assert (redirect.response().status if redirect.response() else None) == 303
    assert answer.request.method == "GET" and answer.status == 200
    assert "no-store" in answer.headers.get("cache-control", "")
    [key] = _api_keys(context, site, sid)
    assert owner.url == f"{keys_url}/{key['id']}/new"
    plaintext = owner.locator("#new-key").inner_text().strip()
    assert plaintext.startswith(key["key_prefix"]) and plaintext.startswith("fq_live_") and len(plaintext) > 40
    assert plaintext not in owner.url
    assert "shown" in owner.locator("#new-key-section").inner_text()
    owner.screenshot(path=str(artifacts / f"one-site-new-key-{size}.png"))
    # the key works
    state = httpx.get(
        site.url(f"/api/v1/strategies/{sid}/state"), headers={"Authorization": f"Bearer {plaintext}"}, timeout=10
    )
    assert state.status_code == 200, state.text
    # no cookie is left behind to carry it
    assert not [c for c in context.cookies() if c["name"] == "botranks_new_key"]

    # a reload: a GET again (no resubmission), the plaintext never again, no second key
    reloaded = owner.reload()
    assert reloaded is not None and reloaded.request.method == "GET" and reloaded.status == 200
    assert owner.locator("#new-key").count() == 0 and plaintext not in owner.content()
    assert "shown once" in owner.locator("#key-shown-once").inner_text()
    assert [k["id"] for k in _api_keys(context, site, sid)] == [key["id"]]
    owner.screenshot(path=str(artifacts / f"one-site-new-key-reloaded-{size}.png"))
    # back to the list: the prefix only
    with owner.expect_navigation():
        owner.click("#back-to-keys")
    assert plaintext not in owner.content() and owner.locator(f"#key-{key['id']} code.key-prefix").count() == 1
    owner.go_back()
    assert owner.locator("#new-key").count() == 0 and plaintext not in owner.content()
    assert len(_api_keys(context, site, sid)) == 1
    checks.assert_clean("the new key's page")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_revoking_a_key_asks_first(site, new_context, watch, artifacts, viewport):
    size = f"{viewport['width']}x{viewport['height']}"
    context = new_context(viewport=viewport, java_script_enabled=False)  # no script needed anywhere
    owner = sign_in(context, site, _register(site))
    sid = create_strategy(owner, f"Revoke asks {uuid.uuid4().hex[:6]}", "private")
    keys_url = site.url(f"/account/strategies/{sid}/keys")
    owner.goto(keys_url)
    owner.fill("#key-name", "to-revoke")
    with owner.expect_navigation():
        owner.click("#create-key")
    plaintext = owner.locator("#new-key").inner_text().strip()
    [key] = _api_keys(context, site, sid)
    owner.goto(keys_url)

    def bot_status() -> int:
        return httpx.get(
            site.url(f"/api/v1/strategies/{sid}/state"), headers={"Authorization": f"Bearer {plaintext}"}, timeout=10
        ).status_code

    # "Revoke…" only asks; "Cancel" changes nothing
    with owner.expect_navigation() as nav:
        owner.click(f"#revoke-{key['id']}")
    assert nav.value.request.method == "GET" and owner.url == f"{keys_url}/{key['id']}/revoke"
    assert "Revoke the key" in owner.locator("h1").inner_text() and key["key_prefix"] in owner.content()
    assert "cannot be undone" in owner.locator("#revoke-warning").inner_text()
    owner.screenshot(path=str(artifacts / f"one-site-revoke-confirm-{size}.png"))
    with owner.expect_navigation():
        owner.click("#revoke-cancel")
    assert owner.url == keys_url and bot_status() == 200
    assert [k["revoked_at"] for k in _api_keys(context, site, sid)] == [None]

    # confirming revokes it
    with owner.expect_navigation():
        owner.click(f"#revoke-{key['id']}")
    with owner.expect_navigation():
        owner.click("#revoke-confirm")
    assert owner.url == f"{keys_url}?done=revoked"
    assert owner.locator("#notice").inner_text().strip() == "Key revoked."
    assert owner.locator(f"#key-{key['id']} .key-status").inner_text().startswith("revoked")
    assert owner.locator(f"#revoke-{key['id']}").count() == 0
    assert bot_status() == 401 and _api_keys(context, site, sid)[0]["revoked_at"] is not None
    owner.screenshot(path=str(artifacts / f"one-site-revoked-{size}.png"))


# ---------------------------------------------------------------- the orders table, delayed

OLD_ORDERS = 62  # more than a page of orders executed more than 24 hours ago
RECENT_ORDERS = 2  # executed an hour ago: not published yet


@pytest.fixture(scope="module")
def delayed_strategy(site, browser) -> dict[str, Any]:
    """A public strategy with delayed publication: 62 orders executed 3+ days ago, 2 an hour ago."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        owner = sign_in(context, site, _register(site))
        owner.goto(site.url("/account"))
        name = f"Delayed orders {uuid.uuid4().hex[:6]}"
        owner.fill("#new-name", name)
        owner.select_option("#new-visibility", "public")
        owner.select_option("#new-show-positions", "delayed")
        owner.fill("#new-benchmark", "DEMO-SPY")
        with owner.expect_navigation():
            owner.click("#create-strategy")
        card = owner.locator("li.card", has=owner.locator(".strategy-name", has_text=name))
        sid = card.get_attribute("data-strategy-id")
        assert card.locator(".show-positions").inner_text().strip() == "delayed"
        owner.goto(site.url(f"/account/strategies/{sid}/keys"))
        with owner.expect_navigation():
            owner.click("#create-key")
        key = owner.locator("#new-key").inner_text().strip()
    finally:
        context.close()
    auth = {"Authorization": f"Bearer {key}"}
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=9)
    deposit = {"event_type": "deposit", "amount": 1_000_000, "occurred_at": start.isoformat(), "external_id": "dep"}
    assert httpx.post(site.url(f"/api/v1/strategies/{sid}/cash"), json=deposit, headers=auth, timeout=30).is_success
    orders = []
    for i in range(OLD_ORDERS):
        at = start + timedelta(hours=1 + 2 * (i // 2))  # two orders at each instant: ties break by arrival
        orders.append({"symbol": "DEMO-SPY", "side": "buy", "quantity": 1 + i, "price": 100 + i / 10,
                       "executed_at": at.isoformat(), "external_order_id": f"old-{i:03d}"})  # fmt: skip
    for i in range(RECENT_ORDERS):
        orders.append({"symbol": "DEMO-SPY", "side": "sell", "quantity": 1, "price": 110,
                       "executed_at": (now - timedelta(minutes=60 - i)).isoformat(),
                       "external_order_id": f"new-{i}"})  # fmt: skip
    r = httpx.post(site.url(f"/api/v1/strategies/{sid}/orders"), json={"orders": orders}, headers=auth, timeout=30)
    assert r.status_code == 200 and r.json()["counts"]["accepted"] == OLD_ORDERS + RECENT_ORDERS, r.text

    def projected() -> bool:
        page = httpx.get(site.url(f"/s/{sid}"), timeout=30)
        return page.status_code == 200 and f'data-total="{OLD_ORDERS}"' in page.text

    wait_until(projected, 90, "the orders on the public page")
    listed = httpx.get(site.url(f"/api/v1/strategies/{sid}/orders"), params={"limit": 500}, headers=auth, timeout=30)
    return {"id": sid, "key": key, "orders": listed.json()["items"]}


def _rows(page) -> list[tuple[str, str]]:
    return page.eval_on_selector_all(
        "#orders-table tbody tr", "rows => rows.map(r => [r.dataset.orderId, r.dataset.executedAt])"
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_orders_table_pages_through_every_delayed_order(
    site, new_context, watch, artifacts, viewport, delayed_strategy
):
    size = f"{viewport['width']}x{viewport['height']}"
    sid = delayed_strategy["id"]
    page = new_context(viewport=viewport).new_page()
    checks = watch(page)
    page.goto(site.url(f"/s/{sid}"))
    # the page says what "delayed" means, where the orders are and at the top
    hint = page.locator("#orders-delay").inner_text()
    assert "executed more than 24 hours ago" in hint, hint
    assert "more than 24 hours" in page.locator("#publication-delayed").inner_text()
    assert "executed more than 24 hours ago" in page.locator("#positions-hidden").inner_text()
    cutoff = datetime.fromisoformat(page.locator("#orders-delay").get_attribute("data-cutoff") or "")

    published = [o for o in delayed_strategy["orders"] if datetime.fromisoformat(o["executed_at"]) < cutoff]
    assert len(published) == OLD_ORDERS and len(delayed_strategy["orders"]) == OLD_ORDERS + RECENT_ORDERS
    arrival = {o["id"]: i for i, o in enumerate(delayed_strategy["orders"])}
    expected = [
        o["id"]
        for o in sorted(
            published, key=lambda o: (datetime.fromisoformat(o["executed_at"]), arrival[o["id"]]), reverse=True
        )
    ]
    first = _rows(page)
    assert len(first) == 50 and "page 1 of 2" in page.locator("#orders-pager").inner_text()
    assert f"{OLD_ORDERS} orders" in page.locator("#orders-pager").inner_text()
    assert page.locator("#orders-prev").count() == 0
    page.locator("#orders-pager").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / f"one-site-orders-page1-{size}.png"))
    with page.expect_navigation():
        page.click("#orders-next")
    assert page.url.endswith(f"/s/{sid}?orders_page=2#orders")
    second = _rows(page)
    assert len(second) == OLD_ORDERS - 50 and "page 2 of 2" in page.locator("#orders-pager").inner_text()
    assert page.locator("#orders-next").count() == 0
    assert [i for i, _ in first + second] == expected  # every published order once, latest executed first
    assert all(datetime.fromisoformat(at) < cutoff for _, at in first + second)  # none of the last hour's
    page.locator("#orders-pager").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / f"one-site-orders-page2-{size}.png"))
    with page.expect_navigation():
        page.click("#orders-prev")
    assert _rows(page) == first
    checks.assert_clean(f"/s/{sid} orders pages")
