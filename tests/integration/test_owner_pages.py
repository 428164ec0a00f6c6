"""Owner pages (issue 11): sign in / register / sign out, "my strategies" and API keys as HTML forms.

Two command_api processes on a fresh database (no query_api or projector: nothing here reads a
projection), driven like a browser: GET the form, take its hidden ``_csrf_token``, POST it back
as ``application/x-www-form-urlencoded`` with the cookies the pages set.
"""

from __future__ import annotations

import re
import uuid
from uuid import UUID

import httpx
import pytest

from devtools.stack import Stack
from tools.processes import wait_for_port

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
EVIL = "https://evil.example"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self';"
    " frame-ancestors 'none'"
)
TOKEN_RE = re.compile(r'name="_csrf_token" value="([^"]*)"')
NEW_KEY_RE = re.compile(r'<code id="new-key" class="secret">(fq_live_[A-Za-z0-9_\-]{43})</code>')


@pytest.fixture(scope="module")
def site(backends, make_database, tmp_path_factory):
    _, nats_url = backends
    s = Stack(
        make_database(), nats_url, tmp_path_factory.mktemp("pages"), replicas=2, BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0"
    )
    for i, port in enumerate(s.command_ports):
        s._spawn(f"command_api{i or ''}", "services.command_api.main", "--port", str(port))
    for port in s.command_ports:
        wait_for_port(port, 60)
    yield s
    s.stop()


def browser(stack: Stack, replica: int = 0) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{stack.command_ports[replica]}", timeout=60)


def token(page: httpx.Response) -> str:
    found = TOKEN_RE.findall(page.text)
    assert found and all(t == found[0] for t in found) and len(found[0]) > 64, page.text
    return found[0]


def submit(c: httpx.Client, form_url: str, action: str, fields: dict[str, str], **headers: str) -> httpx.Response:
    """GET the page holding the form, POST the form with its CSRF token (as a browser does)."""
    page = c.get(form_url)
    assert page.status_code == 200, page.text
    return c.post(action, data={**fields, "_csrf_token": token(page)}, headers=headers)


def new_email() -> str:
    return f"page-{uuid.uuid4().hex[:10]}@example.com"


def registered(stack: Stack, replica: int = 0) -> tuple[httpx.Client, str]:
    c, email = browser(stack, replica), new_email()
    r = submit(c, "/account/register", "/account/register", {"email": email, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/account", r.text
    return c, email


def create_strategy(stack: Stack, c: httpx.Client, name: str, **fields: str) -> str:
    form = {"name": name, "visibility": "private", "benchmark": "SPY", "show_positions": "none", **fields}
    r = submit(c, "/account", "/account/strategies", form)
    assert r.status_code == 303, r.text
    sid = re.fullmatch(r"/account\?done=created#strategy-([0-9a-f-]{36})", r.headers["location"])[1]
    return sid


def key_status(stack: Stack, sid: str, plaintext: str) -> int:
    """What /api/v1 says to the key (the body is deliberately empty: only the key guard matters)."""
    r = browser(stack).post(f"/api/v1/strategies/{sid}/cash", json={}, headers={"Authorization": f"Bearer {plaintext}"})
    return r.status_code


# ---------------------------------------------------------------- the owner's whole path


def test_register_create_configure_keys_revoke_logout(site):
    c = browser(site)
    email = new_email()
    form = c.get("/account/register")
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    assert form.headers["content-security-policy"] == PAGE_CSP
    assert form.headers["cache-control"] == "no-store" and form.headers["x-frame-options"] == "DENY"
    csrf_cookie = form.headers["set-cookie"]
    assert csrf_cookie.startswith("botranks_csrf=") and "HttpOnly" in csrf_cookie and "Path=/account" in csrf_cookie
    assert 'id="register-form"' in form.text and 'name="email"' in form.text and 'name="password"' in form.text

    # the form's answers: errors re-render the form with the status of the JSON API
    short = c.post("/account/register", data={"email": email, "password": "short", "_csrf_token": token(form)})
    assert short.status_code == 422 and 'id="form-error"' in short.text and "12 characters" in short.text
    assert f'value="{email}"' in short.text  # what was typed stays
    r = c.post("/account/register", data={"email": email, "password": PASSWORD, "_csrf_token": token(form)})
    assert r.status_code == 303 and r.headers["location"] == "/account"
    session = r.headers["set-cookie"]
    assert (
        session.startswith("access_token=")
        and "HttpOnly" in session
        and "SameSite=lax" in session.replace("Lax", "lax")
        and "Path=/" in session
    )
    taken = submit(
        browser(site), "/account/register", "/account/register", {"email": email.upper(), "password": PASSWORD}
    )
    assert taken.status_code == 409 and "already exists" in taken.text

    home = c.get("/account")
    assert home.status_code == 200 and 'id="no-strategies"' in home.text and 'id="logout-form"' in home.text
    # the JSON API knows the same session
    assert c.get("/strategies").json() == []

    # sign out, then in again through the login form (on the other replica: the CSRF secret is shared)
    out = c.post("/account/logout", data={"_csrf_token": token(home)})
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert c.get("/account").headers.get("location") == "/account/login"
    other = browser(site, 1)
    other.cookies = c.cookies
    login = c.get("/account/login")
    wrong = other.post(
        "/account/login", data={"email": email, "password": "wrong password!", "_csrf_token": token(login)}
    )
    assert wrong.status_code == 401 and "Invalid email or password" in wrong.text and 'id="login-form"' in wrong.text
    r = other.post("/account/login", data={"email": email, "password": PASSWORD, "_csrf_token": token(login)})
    assert r.status_code == 303 and r.headers["location"] == "/account" and "access_token=" in r.headers["set-cookie"]
    assert other.get("/account/login").headers.get("location") == "/account"  # signed in: no form again

    # create a strategy (show_positions too), then change every setting
    sid = create_strategy(site, other, "Alpha <bot>", show_positions="delayed", benchmark="qqq")
    profile = site.db.identity.profile(UUID(sid))
    assert (profile.name, profile.visibility, profile.benchmark, profile.show_positions) == (
        "Alpha <bot>",
        "private",
        "QQQ",
        "delayed",
    )
    page = other.get("/account")
    assert "Alpha &lt;bot&gt;" in page.text and "Alpha <bot>" not in page.text  # escaped
    assert f'id="strategy-{sid}"' in page.text and f'href="/s/{sid}"' in page.text
    assert f'href="/account/strategies/{sid}/keys"' in page.text and 'id="notice"' not in page.text

    r = submit(
        other,
        "/account",
        f"/account/strategies/{sid}/settings",
        {"name": "Alpha v2", "visibility": "public", "benchmark": "", "show_positions": "live"},
    )
    assert r.status_code == 303 and r.headers["location"] == f"/account?done=saved#strategy-{sid}"
    profile = site.db.identity.profile(UUID(sid))
    assert (profile.name, profile.visibility, profile.benchmark, profile.show_positions) == (
        "Alpha v2",
        "public",
        None,
        "live",
    )
    assert "Settings saved." in other.get(r.headers["location"]).text

    bad = submit(
        other,
        "/account",
        f"/account/strategies/{sid}/settings",
        {"name": "Alpha v3", "visibility": "public", "benchmark": "not a symbol!", "show_positions": "live"},
    )
    assert bad.status_code == 400 and "Invalid symbol" in bad.text and 'value="Alpha v3"' in bad.text
    bad = submit(
        other,
        "/account",
        f"/account/strategies/{sid}/settings",
        {"name": "", "visibility": "public", "benchmark": "", "show_positions": "sometimes"},
    )
    assert bad.status_code == 422 and "show_positions" in bad.text
    assert site.db.identity.profile(UUID(sid)).name == "Alpha v2"  # nothing changed

    # a key: created by a POST that redirects (303) to the key's page, the plaintext riding in a cookie
    # for that page only; the page shows it once and clears the cookie; the list shows the prefix only
    keys_url = f"/account/strategies/{sid}/keys"
    assert 'id="no-keys"' in other.get(keys_url).text
    created = submit(other, keys_url, keys_url, {"name": "prod"})
    assert created.status_code == 303 and created.headers["cache-control"] == "no-store", created.text
    [info] = site.db.identity.list_keys(profile.owner_id, UUID(sid))
    new_url = f"{keys_url}/{info.id}/new"
    assert created.headers["location"] == new_url and "fq_live_" not in created.headers["location"]
    carrier = created.headers["set-cookie"]
    assert carrier.startswith("botranks_new_key=fq_live_") and f"Path={new_url}" in carrier
    assert (
        "HttpOnly" in carrier and "SameSite=Strict" in carrier.replace("strict", "Strict") and "Max-Age=300" in carrier
    )
    assert "Secure" not in carrier  # plain http here; over https (X-Forwarded-Proto of a trusted proxy) it is
    zero = browser(site, 0)  # the same browser (its cookies), answered by the other replica: nothing is kept
    zero.cookies = other.cookies
    shown = zero.get(new_url)
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    [plaintext] = NEW_KEY_RE.findall(shown.text)
    assert carrier.startswith(f"botranks_new_key={plaintext};")
    assert 'botranks_new_key=""' in shown.headers["set-cookie"] and "Max-Age=0" in shown.headers["set-cookie"]
    assert f"Path={new_url}" in shown.headers["set-cookie"]
    prefix = plaintext[:10]
    assert info.key_prefix == prefix and info.last_used_at is None
    again = zero.get(new_url)  # a reload: never the plaintext again, never another key
    assert again.status_code == 200 and plaintext not in again.text and 'id="new-key"' not in again.text
    assert 'id="key-shown-once"' in again.text and "shown once" in again.text
    assert len(site.db.identity.list_keys(profile.owner_id, UUID(sid))) == 1
    # a cookie that is not this key's plaintext (planted, or another key's) is never shown
    zero.cookies.set("botranks_new_key", "fq_live_" + "A" * 43, domain="127.0.0.1", path=new_url)
    assert "fq_live_AAAA" not in zero.get(new_url).text and 'id="key-shown-once"' in zero.get(new_url).text
    listing = other.get(keys_url)
    assert plaintext not in listing.text and plaintext[10:20] not in listing.text
    assert f'class="key-prefix">{prefix}</code>' in listing.text and 'id="new-key"' not in listing.text
    assert f'id="revoke-{info.id}"' in listing.text
    assert "never" in listing.text
    assert key_status(site, sid, plaintext) == 422  # the key passes the guard (the empty body does not)
    assert "never" not in other.get(keys_url).text  # last used, now

    # revoke it: a confirmation page first (a GET changes nothing), then its form's POST
    confirm_url = f"{keys_url}/{info.id}/revoke"
    assert f'href="{confirm_url}"' in listing.text
    confirm = other.get(confirm_url)
    assert confirm.status_code == 200 and 'id="revoke-form"' in confirm.text and "cannot be undone" in confirm.text
    assert f'action="{confirm_url}"' in confirm.text and 'id="revoke-cancel"' in confirm.text
    assert key_status(site, sid, plaintext) == 422  # still live after the confirmation page
    r = submit(other, confirm_url, confirm_url, {})
    assert r.status_code == 303 and r.headers["location"] == f"{keys_url}?done=revoked"
    assert key_status(site, sid, plaintext) == 401
    listing = other.get(r.headers["location"])
    assert (
        "Key revoked." in listing.text
        and "revoked <time" in listing.text
        and f'id="revoke-{info.id}"' not in (listing.text)
    )
    assert 'id="already-revoked"' in other.get(confirm_url).text  # no second form
    assert other.get(f"{keys_url}/{uuid.uuid4()}/revoke").status_code == 404

    # sign out: the session is over on the server, the cookie cleared
    r = submit(other, "/account", "/account/logout", {})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert 'access_token=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert other.get("/account").status_code == 303
    assert other.get("/strategies").status_code == 401


def test_not_signed_in(site):
    c = browser(site)
    sid, kid = uuid.uuid4(), uuid.uuid4()
    for url in (
        "/account",
        f"/account/strategies/{sid}/keys",
        f"/account/strategies/{sid}/keys/{kid}/new",
        f"/account/strategies/{sid}/keys/{kid}/revoke",
    ):
        r = c.get(url)
        assert r.status_code == 303 and r.headers["location"] == "/account/login", url
    csrf = token(c.get("/account/login"))
    for url, fields in (
        ("/account/strategies", {"name": "x", "visibility": "private", "benchmark": "", "show_positions": "none"}),
        (f"/account/strategies/{sid}/settings", {"name": "x"}),
        (f"/account/strategies/{sid}/keys", {"name": "x"}),
        (f"/account/strategies/{sid}/keys/{kid}/revoke", {}),
    ):
        r = c.post(url, data={**fields, "_csrf_token": csrf})
        assert r.status_code == 401 and 'href="/account/login"' in r.text, url
        r = c.post(url, data={**fields, "_csrf_token": csrf}, headers={"Accept": "application/json"})
        assert r.status_code == 401 and r.json() == {"detail": "Sign in first"}
    # a stale cookie is no session either
    c.cookies.set("access_token", "fq_live_" + "x" * 43)
    assert c.get("/account").headers["location"] == "/account/login"


def test_someone_elses_strategy_is_not_found(site):
    owner, _ = registered(site)
    sid = create_strategy(site, owner, "mine")
    stranger, _ = registered(site)
    r = stranger.get(f"/account/strategies/{sid}/keys")
    assert r.status_code == 404 and "not found" in r.text and r.headers["content-security-policy"] == PAGE_CSP
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    r = submit(stranger, "/account", f"/account/strategies/{sid}/keys", {"name": "stolen"})
    assert r.status_code == 404 and "fq_live_" not in r.text
    r = submit(
        stranger,
        "/account",
        f"/account/strategies/{sid}/settings",
        {"name": "taken over", "visibility": "public", "benchmark": "", "show_positions": "live"},
    )
    assert r.status_code == 404
    assert site.db.identity.profile(UUID(sid)).name == "mine"
    assert f"strategy-{sid}" not in stranger.get("/account").text


# ---------------------------------------------------------------- CSRF and cross-site form posts


def test_posts_without_the_csrf_token_are_refused(site):
    c, _ = registered(site)
    sid = create_strategy(site, c, "guarded")
    keys_url = f"/account/strategies/{sid}/keys"
    csrf = token(c.get(keys_url))
    off_by_one = csrf[:-1] + ("1" if csrf.endswith("0") else "0")  # never the token itself (was 1 run in 16)
    form = {"name": "planted", "visibility": "public", "benchmark": "", "show_positions": "live"}
    attempts = [
        ("/account/strategies", form),
        (f"/account/strategies/{sid}/settings", form),
        (keys_url, {"name": "x"}),
        ("/account/logout", {}),
        ("/account/login", {"email": new_email(), "password": PASSWORD}),
        ("/account/register", {"email": new_email(), "password": PASSWORD}),
    ]
    for url, fields in attempts:
        for extra in ({}, {"_csrf_token": ""}, {"_csrf_token": "0" * 128}, {"_csrf_token": off_by_one}):
            r = c.post(url, data={**fields, **extra})
            assert r.status_code == 403, (url, extra, r.text)
            assert r.headers["content-type"].startswith("text/html") and "Reload the page" in r.text
            assert r.headers["content-security-policy"] == PAGE_CSP
        r = c.post(url, data=fields, headers={"Accept": "application/json"})
        assert r.status_code == 403 and r.json() == {"detail": "CSRF token verification failed"}
    # the right token in the form but no CSRF cookie (a forged page cannot set ours): refused too
    bare = httpx.Client(base_url=str(c.base_url), timeout=60, cookies={"access_token": c.cookies["access_token"]})
    assert bare.post(keys_url, data={"name": "x", "_csrf_token": csrf}).status_code == 403
    # nothing happened: still signed in, one strategy, no key
    assert [s["id"] for s in c.get("/strategies").json()] == [sid]
    assert c.get(f"/strategies/{sid}/api-keys").json() == []
    assert site.db.identity.profile(UUID(sid)).name == "guarded"


def test_a_foreign_origin_is_refused_even_with_the_token(site):
    c, _ = registered(site)
    sid = create_strategy(site, c, "origin")
    keys_url = f"/account/strategies/{sid}/keys"
    for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        r = submit(c, keys_url, keys_url, {"name": "x"}, **headers)
        assert r.status_code == 403 and "Cross-site request refused" in r.text, headers
        r = submit(c, keys_url, keys_url, {"name": "x"}, Accept="application/json", **headers)
        assert r.status_code == 403 and r.json() == {"detail": "Cross-site request refused"}
    assert c.get(f"/strategies/{sid}/api-keys").json() == []
    # the site's own origin is fine
    own = f"http://127.0.0.1:{site.command_port}"
    r = submit(c, keys_url, keys_url, {"name": "x"}, Origin=own, **{"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303 and r.headers["location"].endswith("/new")


def test_json_api_keeps_its_curl_flows_and_strict_csp(site):
    """No CSRF token outside /account: the README's curl lines work as before."""
    c, email = httpx.Client(base_url=f"http://127.0.0.1:{site.command_port}", timeout=60), new_email()
    assert c.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    r = c.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200 and r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "botranks_csrf" not in r.headers.get("set-cookie", "")
    sid = c.post("/strategies", json={"name": "curl"}).json()["id"]
    kid = c.post(f"/strategies/{sid}/api-keys", json={"name": "k"}).json()["id"]
    assert c.post(f"/strategies/{sid}/api-keys/{kid}/revoke").status_code == 200
    assert c.post("/auth/logout").status_code == 200
    # the pages are not in the API's schema; their stylesheet is served
    paths = c.get("/schema/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/account")]
    css = c.get("/account/static/account.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "max-age=3600, public"
