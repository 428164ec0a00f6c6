"""Following in a real browser against ``botranks up`` + ``botranks demo``: the strategy page's
"Follow" and "Atom feed" links, following, a cloud metadata URL refused (422 naming `url`), adding a
webhook at a receiver on 127.0.0.1 (``botranks up`` runs with ``BOTRANKS_WEBHOOKS_ALLOW_PRIVATE=1``
here, conftest.py) with its secret shown once, "send test event" delivered by the notifier that
``botranks up`` runs, signed, and the delivery log showing the answer; desktop and phone screenshots,
nothing wider than the screen. Nothing leaves loopback."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from devtools.webhook_receiver import Receiver
from libs.infra.follows import signing

from .conftest import DESKTOP, PHONE

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def follower(site) -> str:
    email = f"follower-{uuid.uuid4().hex[:8]}@example.com"
    r = site.http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email


def sign_in(context, site, email: str):
    page = context.new_page()
    page.goto(site.url("/account/login"))
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    with page.expect_navigation():
        page.click("#login-submit")
    assert page.locator("#logout").count() == 1
    return page


def fits(page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"{page.url} is {width[0]} px wide on a {width[1]} px screen"


def test_follow_add_a_webhook_and_send_a_test_event(site, new_context, follower, watch, artifacts):
    page = sign_in(new_context(), site, follower)
    seen = watch(page)
    page.goto(site.url(f"/s/{site.strategy_id}"))
    feed = page.locator("#feed-link")
    assert feed.get_attribute("href") == f"/s/{site.strategy_id}/feed.atom"
    assert site.http.get(feed.get_attribute("href")).headers["content-type"].startswith("application/atom+xml")
    with page.expect_navigation():
        page.click("#follow-link")
    with page.expect_navigation():
        page.click("#follow")
    assert page.locator(f"#followed-{site.strategy_id}").count() == 1
    assert page.locator("#notice").inner_text() == "You follow this strategy now."

    seen.assert_clean("following")
    page.fill("#webhook-url", "http://169.254.169.254/latest/meta-data/")
    with page.expect_navigation() as nav:
        page.click("#create-webhook")
    assert nav.value.status == 422
    refused = page.locator("#form-error").inner_text()
    assert refused.startswith("`url`") and "cloud metadata" in refused
    page.screenshot(path=str(artifacts / "follow-webhook-refused-desktop.png"), full_page=True)
    assert seen.failed == [f"422 POST {site.url('/account/webhooks')}"]  # the refusal, and nothing else
    seen.failed.clear()
    seen.console.clear()  # the browser's own line about that 422

    with Receiver() as rx:
        page.fill("#webhook-url", rx.url)
        with page.expect_navigation() as nav:
            page.click("#create-webhook")
        assert nav.value.status == 201
        secret = page.locator("#new-webhook-secret").inner_text()
        assert secret.startswith("whsec_")
        page.screenshot(path=str(artifacts / "follow-webhook-created-desktop.png"), full_page=True)
        fits(page)
        hook = page.locator("li.webhook").first.get_attribute("data-webhook-id")

        with page.expect_navigation():
            page.click(f"#webhook-log-{hook}")
        assert page.locator("#no-deliveries").count() == 1
        with page.expect_navigation():
            page.click("#send-test")
        assert "Test event queued" in page.locator("#notice").inner_text()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = page.locator("tr.delivery").first
            if row.count() and row.get_attribute("data-state") == "delivered":
                break
            time.sleep(0.5)
            page.reload()
        row = page.locator("tr.delivery").first
        assert row.get_attribute("data-state") == "delivered" and "HTTP 200" in row.inner_text()
        (got,) = rx.requests
        assert json.loads(got.body)["type"] == "ping"
        assert signing.verify(secret, got.headers[signing.HEADER], got.body)
    page.screenshot(path=str(artifacts / "follow-webhook-log-desktop.png"), full_page=True)
    fits(page)
    seen.assert_clean("following pages")
    assert secret not in page.content()

    phone = new_context(viewport=PHONE)
    mobile = sign_in(phone, site, follower)
    for path, name in (("/account/following", "following"), (f"/account/webhooks/{hook}", "webhook-log")):
        mobile.goto(site.url(path))
        mobile.screenshot(path=str(artifacts / f"follow-{name}-phone.png"), full_page=True)
        fits(mobile)
    assert DESKTOP["width"] == 1366
