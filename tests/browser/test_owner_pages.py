"""Owner pages in a real browser: a private strategy, its API keys, and forms no other site can submit.

An account is registered over the JSON API and signed in through the ``/account/login`` form,
as a person would; every "person" is a browser context of its own (own cookies).
"""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tools.processes import free_port

PASSWORD = "correct horse battery staple"


def sign_in(context, site, email: str, password: str = PASSWORD):
    page = context.new_page()
    page.goto(site.url("/account/login"))
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    with page.expect_navigation() as nav:
        page.click("#login-submit")
    if not page.url.rstrip("/").endswith("/account"):
        said = page.locator("#error-detail, #form-error").all_inner_texts()
        raise AssertionError(
            f"signing in through the /account/login form answered {nav.value.status} {said}"
            f" (POST sent with Origin: {nav.value.request.header_value('origin')!r}),"
            f" landing on {page.url}"
        )
    assert page.locator("#logout").count() == 1, "signed in: the page offers to sign out"
    return page


def create_strategy(page, name: str, visibility: str) -> str:
    """Through the "new strategy" form of /account; returns the new strategy's id."""
    page.goto(page.url.split("/account")[0] + "/account")
    page.fill("#new-name", name)
    page.select_option("#new-visibility", visibility)
    page.fill("#new-benchmark", "DEMO-SPY")
    with page.expect_navigation():
        page.click("#create-strategy")
    card = page.locator("li.card", has=page.locator(".strategy-name", has_text=name))
    assert card.count() == 1, f"{name} is listed on /account"
    assert card.locator(".visibility").inner_text().strip() == visibility
    return card.get_attribute("data-strategy-id")


@pytest.fixture(scope="module")
def owner_email(site) -> str:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    r = site.http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email


def test_a_private_page_is_404_to_a_stranger_and_visible_to_its_owner(site, new_context, owner_email, watch):
    owner = sign_in(new_context(), site, owner_email)
    name = f"Private bot {uuid.uuid4().hex[:6]}"
    sid = create_strategy(owner, name, "private")

    # a stranger (no session) sees exactly what an unknown id shows, on the page and in its data
    stranger = new_context().new_page()
    unknown = str(uuid.uuid4())
    seen = {}
    for which, target in (("private", sid), ("unknown", unknown)):
        response = stranger.goto(site.url(f"/s/{target}"))
        assert response.status == 404, (which, response.status)
        assert stranger.locator("#not-found").count() == 1, which
        assert name not in stranger.content()
        seen[which] = stranger.locator("main").inner_text()
        data = httpx.get(site.url(f"/p/strategies/{target}"), timeout=10)
        assert data.status_code == 404, (which, data.text)
        seen[which + " json"] = data.json()
    assert seen["private"] == seen["unknown"] and seen["private json"] == seen["unknown json"]
    # ... nor is it on the leaderboard
    board = site.http.get("/p/leaderboard", params={"min_days": 0}).json()
    assert sid not in {row["strategy_id"] for row in board["items"]}

    # another signed-in person is a stranger too
    other_email = f"other-{uuid.uuid4().hex[:8]}@example.com"
    assert site.http.post("/auth/register", json={"email": other_email, "password": PASSWORD}).status_code == 201
    other = sign_in(new_context(), site, other_email)
    assert other.goto(site.url(f"/s/{sid}")).status == 404

    # the owner's session sees the page, and it renders cleanly
    checks = watch(owner)
    response = owner.goto(site.url(f"/s/{sid}"))
    assert response.status == 200
    assert name in owner.locator("main").inner_text()
    assert "no-store" in response.headers.get("cache-control", "") or "private" in response.headers.get(
        "cache-control", ""
    ), "a private page must not be kept by shared caches"
    owner.wait_for_load_state("networkidle")
    checks.assert_clean(f"/s/{sid} (owner)")


def test_the_key_page_shows_a_new_key_once_then_only_its_prefix(site, new_context, owner_email):
    owner = sign_in(new_context(), site, owner_email)
    sid = create_strategy(owner, f"Keyed bot {uuid.uuid4().hex[:6]}", "private")
    keys_url = site.url(f"/account/strategies/{sid}/keys")
    owner.goto(keys_url)
    owner.fill("#key-name", "browser-test")
    with owner.expect_navigation() as nav:
        owner.click("#create-key")
    answer = nav.value
    assert answer.status in (200, 201), answer.status
    assert "no-store" in answer.headers.get("cache-control", ""), "the one-time key must not be cached"
    plaintext = owner.locator("#new-key").inner_text().strip()
    assert plaintext.startswith("fq_live_") and len(plaintext) > 40

    # it works: the bot's API answers with it
    state = httpx.get(
        site.url(f"/api/v1/strategies/{sid}/state"), headers={"Authorization": f"Bearer {plaintext}"}, timeout=10
    )
    assert state.status_code == 200, state.text

    # the next visit of the page lists it by its prefix only
    response = owner.goto(keys_url)
    assert response.status == 200
    html = owner.content()
    assert owner.locator("#new-key").count() == 0
    assert plaintext not in html and plaintext[12:] not in html
    row = owner.locator("#keys tbody tr", has_text="browser-test")
    assert row.count() == 1
    prefix = row.locator("code.key-prefix").inner_text().strip().rstrip("…")
    assert len(prefix) >= 8 and plaintext.startswith(prefix) and len(prefix) < len(plaintext) - 20


class _EvilSite:
    """Another origin on this machine (same host, another port: the same *site* for cookies, so
    a SameSite=Lax session cookie rides along) whose page auto-submits a form to ours."""

    def __init__(self, target: str, fields: dict[str, str]) -> None:
        inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
        self.html = (
            f'<!doctype html><title>win a prize</title><form id="f" method="post" action="{target}">'
            f'{inputs}</form><script>document.getElementById("f").submit()</script>'
        ).encode()
        self.port = free_port()
        html = self.html

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> _EvilSite:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def signed_in_owner(site, new_context, owner_email) -> Iterator:
    yield sign_in(new_context(), site, owner_email)


def _listed(page, site, name: str) -> bool:
    page.goto(site.url("/account"))
    return page.locator(".strategy-name", has_text=name).count() > 0


def test_a_cross_site_form_post_is_refused(site, signed_in_owner):
    owner = signed_in_owner
    name = f"evil-{uuid.uuid4().hex[:8]}"
    fields = {"name": name, "visibility": "public", "benchmark": "SPY", "show_positions": "live"}
    with _EvilSite(site.url("/account/strategies"), fields) as evil:
        with owner.expect_response(
            lambda r: r.url == site.url("/account/strategies") and r.request.method == "POST"
        ) as posted:
            owner.goto(evil.url)
        answer = posted.value
        assert answer.status == 403, f"the cross-site POST got {answer.status}"
        owner.wait_for_load_state()
    assert not _listed(owner, site, name), "the forged form created a strategy"


def test_a_same_origin_post_without_the_csrf_token_is_refused(site, signed_in_owner):
    owner = signed_in_owner
    owner.goto(site.url("/account"))
    name = f"no-token-{uuid.uuid4().hex[:8]}"
    status = owner.evaluate(
        """async (name) => (await fetch('/account/strategies', {method: 'POST', credentials: 'same-origin',
              headers: {'Content-Type': 'application/x-www-form-urlencoded'},
              body: new URLSearchParams({name, visibility: 'public', benchmark: 'SPY', show_positions: 'none'})
           })).status""",
        name,
    )
    assert status == 403, f"a POST without the form's token got {status}"
    forged = owner.evaluate(
        """async (name) => (await fetch('/account/strategies', {method: 'POST', credentials: 'same-origin',
              headers: {'Content-Type': 'application/x-www-form-urlencoded'},
              body: new URLSearchParams({name, visibility: 'public', benchmark: 'SPY', show_positions: 'none',
                                         _csrf_token: 'forged-token'})
           })).status""",
        name,
    )
    assert forged == 403, f"a POST with a made-up token got {forged}"
    assert not _listed(owner, site, name)
