"""The owner pages of following (issue 24, item 4) against real services, driven like a browser
(GET the form, POST it back with its CSRF token): follow a public strategy (another's private one is
a 404), add a webhook (a bad URL is a 422 naming `url`; the secret is shown once, ``no-store``),
"send test event" delivered by the notifier to a receiver on 127.0.0.1 (allowed by the setting, which
command_api applies at registration too: a cloud metadata URL is refused even so) with
a signature that verifies under the secret the page showed, the delivery log, another user's
webhook a 404, delete. Nothing leaves loopback."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest

from devtools.stack import Stack
from devtools.webhook_receiver import Receiver
from libs.infra.follows import signing
from libs.infra.follows.guard import ALLOW_PRIVATE
from services.notifier.notifier import Notifier

pytestmark = pytest.mark.integration

PASSWORD = "follow pages password"
TOKEN_RE = re.compile(r'name="_csrf_token" value="([^"]*)"')
SECRET_RE = re.compile(r'<code id="new-webhook-secret" class="secret">(whsec_[A-Za-z0-9_\-]+)</code>')


@pytest.fixture(scope="module")
def stack(backends, make_database, tmp_path_factory):
    """The services with BOTRANKS_WEBHOOKS_ALLOW_PRIVATE=1: the page refuses a loopback URL without it
    (tests/integration/test_follow_api.py)."""
    _, nats_url = backends
    s = Stack(make_database(), nats_url, Path(tmp_path_factory.mktemp("follow-pages")), **{ALLOW_PRIVATE: "1"})
    s.start()
    yield s
    s.stop()


def browser(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{stack.command_port}", timeout=60)


def submit(c: httpx.Client, form_url: str, action: str, fields: dict[str, str]) -> httpx.Response:
    page = c.get(form_url)
    assert page.status_code == 200, page.text
    return c.post(action, data={**fields, "_csrf_token": TOKEN_RE.findall(page.text)[0]})


def registered(stack: Stack) -> httpx.Client:
    c = browser(stack)
    email = f"follow-{uuid.uuid4().hex[:10]}@example.com"
    r = submit(c, "/account/register", "/account/register", {"email": email, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return c


def test_follow_webhook_test_event_and_the_delivery_log(stack: Stack) -> None:
    public, _ = stack.db.identity.create_strategy("Followed one", visibility="public", show_positions="live")
    hidden, _ = stack.db.identity.create_strategy("Someone's private", visibility="private")
    c, other = registered(stack), registered(stack)

    # the strategy page links here
    page = httpx.get(f"http://127.0.0.1:{stack.query_port}/s/{public}", timeout=30)
    assert f'href="/account/follow/{public}"' in page.text and f'href="/s/{public}/feed.atom"' in page.text

    assert c.get(f"/account/follow/{hidden}").status_code == 404
    r = submit(c, f"/account/follow/{public}", f"/account/follow/{public}", {})
    assert r.status_code == 303 and r.headers["location"] == "/account/following?done=followed"
    following = c.get(r.headers["location"])
    assert f'id="followed-{public}"' in following.text and "You follow this strategy now." in following.text
    assert 'id="already-following"' in c.get(f"/account/follow/{public}").text

    bad = submit(c, "/account/following", "/account/webhooks", {"url": "ftp://example.com/x"})
    assert bad.status_code == 422 and "`url`" in bad.text and 'value="ftp://example.com/x"' in bad.text
    metadata = submit(c, "/account/following", "/account/webhooks", {"url": "http://169.254.169.254/latest"})
    assert metadata.status_code == 422 and "`url`" in metadata.text and "cloud metadata" in metadata.text

    with Receiver() as rx:
        created = submit(c, "/account/following", "/account/webhooks", {"url": rx.url})
        assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
        secret = SECRET_RE.search(created.text)[1]
        hook_id = re.search(r'data-webhook-id="([0-9a-f-]{36})"', created.text)[1]
        assert secret not in c.get("/account/following").text  # shown once

        assert other.get(f"/account/webhooks/{hook_id}").status_code == 404
        r = submit(c, f"/account/webhooks/{hook_id}", f"/account/webhooks/{hook_id}/test", {})
        assert r.status_code == 303 and r.headers["location"] == f"/account/webhooks/{hook_id}?done=test"

        notifier = Notifier(stack.db, "http://botranks.test", allow_private=True, timeout_s=2.0)
        deadline = time.monotonic() + 10
        while not rx.requests and time.monotonic() < deadline:
            notifier.deliver_due()
            notifier.drain()
        (got,) = rx.requests
        assert json.loads(got.body)["type"] == "ping"
        assert signing.verify(secret, got.headers[signing.HEADER], got.body)

        log = c.get(f"/account/webhooks/{hook_id}")
        assert log.status_code == 200 and 'data-state="delivered"' in log.text and "HTTP 200" in log.text
        assert "answered 200" in log.text and " ms" in log.text

    r = submit(c, "/account/following", f"/account/webhooks/{hook_id}/delete", {})
    assert r.status_code == 303 and hook_id not in c.get("/account/following").text
    assert c.get(f"/account/webhooks/{hook_id}").status_code == 404
    r = submit(c, "/account/following", f"/account/follow/{public}/unfollow", {})
    assert r.status_code == 303 and f'id="followed-{public}"' not in c.get("/account/following").text


def test_signed_out(stack: Stack) -> None:
    c = browser(stack)
    r = c.get("/account/following")
    assert r.status_code == 303 and r.headers["location"] == "/account/login"
    assert c.get(f"/account/follow/{uuid.uuid4()}").status_code == 303
