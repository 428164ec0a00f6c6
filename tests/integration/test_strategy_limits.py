"""Bounded accounts (issue 19): at most BOTRANKS_MAX_STRATEGIES_PER_ACCOUNT strategies per account
(409 beyond, also under concurrent creates through two command_api processes), and the account's
strategies a page at a time: ``GET /strategies?limit=&offset=`` and ``/account?page=``.

Two command_api processes on a fresh database with a limit of 5 (nothing here reads a projection).
Strategies past the limit are planted through ``db.identity`` (the operator's path has no limit)
to see the pages of a large account.
"""

from __future__ import annotations

import re
import threading
import uuid
from uuid import UUID

import httpx
import pytest

from devtools.stack import Stack
from tools.processes import wait_for_port

pytestmark = pytest.mark.integration

LIMIT = 5
PASSWORD = "correct horse battery"
TOKEN_RE = re.compile(r'name="_csrf_token" value="([^"]*)"')
CARD_RE = re.compile(r'<li class="card" id="strategy-([0-9a-f-]{36})"')


@pytest.fixture(scope="module")
def site(backends, make_database, tmp_path_factory):
    _, nats_url = backends
    s = Stack(
        make_database(),
        nats_url,
        tmp_path_factory.mktemp("limits"),
        replicas=2,
        BOTRANKS_MAX_STRATEGIES_PER_ACCOUNT=str(LIMIT),
    )
    for i, port in enumerate(s.command_ports):
        s._spawn(f"command_api{i or ''}", "services.command_api.main", "--port", str(port))
    for port in s.command_ports:
        wait_for_port(port, 60)
    yield s
    s.stop()


def signed_in(stack: Stack, replica: int = 0) -> tuple[httpx.Client, UUID]:
    """A new account, signed in through the JSON API (the cookie works for the pages too)."""
    c = httpx.Client(base_url=f"http://127.0.0.1:{stack.command_ports[replica]}", timeout=60)
    email = f"limits-{uuid.uuid4().hex[:10]}@example.com"
    assert c.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    assert c.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200
    return c, stack.db.identity.user_id(email)


def plant(stack: Stack, owner: UUID, n: int) -> list[str]:
    """``n`` strategies for ``owner`` the operator's way (no limit), oldest first."""
    return [
        str(stack.db.identity.create_strategy(f"planted-{i}", owner_id=owner, first_key=False)[0]) for i in range(n)
    ]


def page_form(c: httpx.Client, action: str, fields: dict[str, str], page: str = "/account") -> httpx.Response:
    form = c.get(page)
    assert form.status_code == 200, form.text
    return c.post(action, data={**fields, "_csrf_token": TOKEN_RE.findall(form.text)[0]})


# ---------------------------------------------------------------- the limit


def test_the_strategy_past_the_limit_is_409_naming_the_limit_and_the_setting(site):
    c, owner = signed_in(site)
    ids = []
    for i in range(LIMIT):
        r = c.post("/strategies", json={"name": f"bot-{i}"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    over = c.post("/strategies", json={"name": "one-too-many"})
    assert over.status_code == 409 and set(over.json()) == {"detail"}, over.text
    detail = over.json()["detail"]
    assert f"at most {LIMIT} strategies" in detail and "BOTRANKS_MAX_STRATEGIES_PER_ACCOUNT" in detail
    assert site.db.identity.count_owned(owner) == LIMIT
    # the owner page says so, and its form answers the same 409 (an HTML page with the detail)
    page = c.get("/account")
    assert 'id="strategy-limit"' in page.text and f'data-total="{LIMIT}"' in page.text
    form = {"name": "by-form", "visibility": "private", "benchmark": "SPY", "show_positions": "none"}
    refused = page_form(c, "/account/strategies", form)
    assert refused.status_code == 409 and "BOTRANKS_MAX_STRATEGIES_PER_ACCOUNT" in refused.text
    assert 'value="by-form"' in refused.text  # what was typed stays in the form
    # a deleted strategy no longer counts; another account has its own allowance
    assert site.db.identity.delete_strategy(UUID(ids[0])) == "bot-0"
    assert c.post("/strategies", json={"name": "after-delete"}).status_code == 201
    assert c.post("/strategies", json={"name": "full-again"}).status_code == 409
    other, _ = signed_in(site, replica=1)
    assert other.post("/strategies", json={"name": "theirs"}).status_code == 201


def test_concurrent_creates_stop_exactly_at_the_limit(site):
    c0, owner = signed_in(site)
    c1 = httpx.Client(base_url=f"http://127.0.0.1:{site.command_ports[1]}", cookies=c0.cookies, timeout=60)
    attempts = 24
    barrier = threading.Barrier(attempts)
    statuses: list[int] = []

    def create(i: int) -> None:
        client = (c0, c1)[i % 2]  # both command_api processes at once
        barrier.wait()
        statuses.append(client.post("/strategies", json={"name": f"race-{i}"}).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [201] * LIMIT + [409] * (attempts - LIMIT), statuses
    assert site.db.identity.count_owned(owner) == LIMIT
    assert len(c0.get("/strategies").json()) == LIMIT


# ---------------------------------------------------------------- the paged list


def test_the_json_list_is_paged_with_a_bounded_page_size(site):
    c, owner = signed_in(site)
    planted = plant(site, owner, 123)
    first = c.get("/strategies")
    assert first.status_code == 200 and first.headers["x-total-count"] == "123"
    assert [s["id"] for s in first.json()] == planted[:100]  # the default page is the largest one
    assert first.headers["link"] == '</strategies?limit=100&offset=100>; rel="next"'
    # follow the next links with a small page: every strategy once, oldest first
    seen, url = [], "/strategies?limit=7"
    while url:
        r = c.get(url)
        assert r.status_code == 200 and len(r.json()) <= 7
        seen += [s["id"] for s in r.json()]
        url = (re.search(r'<([^>]+)>; rel="next"', r.headers.get("link", "")) or [None, None])[1]
    assert seen == planted
    middle = c.get("/strategies", params={"limit": 10, "offset": 20})
    assert [s["id"] for s in middle.json()] == planted[20:30]
    assert 'rel="prev"' in middle.headers["link"] and "offset=10>" in middle.headers["link"]
    past = c.get("/strategies", params={"offset": 500})
    assert past.status_code == 200 and past.json() == [] and "offset=23>" in past.headers["link"]
    for params in ({"limit": 101}, {"limit": 0}, {"limit": "ten"}, {"offset": -1}, {"offset": 10**12}):
        bad = c.get("/strategies", params=params)
        assert bad.status_code == 400 and set(bad.json()) == {"detail"}, (params, bad.text)
        assert f"`{next(iter(params))}`" in bad.json()["detail"], bad.text
    # another account sees none of them
    other, _ = signed_in(site)
    empty = other.get("/strategies")
    assert empty.json() == [] and empty.headers["x-total-count"] == "0" and "link" not in empty.headers


def test_the_account_page_shows_one_page_at_a_time(site):
    c, owner = signed_in(site)
    planted = plant(site, owner, 45)
    pages = {}
    for n in (1, 2, 3):
        r = c.get("/account" if n == 1 else f"/account?page={n}")
        assert r.status_code == 200, r.text
        pages[n] = r.text
    assert [CARD_RE.findall(pages[n]) for n in (1, 2, 3)] == [planted[:20], planted[20:40], planted[40:]]
    assert 'href="/account?page=2" rel="next"' in pages[1] and 'rel="prev"' not in pages[1]
    assert 'href="/account" rel="prev"' in pages[2] and 'href="/account?page=3" rel="next"' in pages[2]
    assert 'href="/account?page=2" rel="prev"' in pages[3] and 'rel="next"' not in pages[3]
    assert "Page 2 of 3" in pages[2] and 'data-total="45"' in pages[2]
    beyond = c.get("/account?page=9")
    assert beyond.status_code == 200 and "There is no page 9" in beyond.text
    assert 'href="/account?page=3" id="page-last"' in beyond.text
    for bad in ("0", "two", "-1"):
        r = c.get(f"/account?page={bad}")
        assert r.status_code == 400 and "`page`" in r.text, bad
    # saving a strategy of page 3 comes back to page 3, where it is
    sid = planted[42]
    fields = {"name": "renamed", "visibility": "public", "benchmark": "QQQ", "show_positions": "live"}
    r = page_form(c, f"/account/strategies/{sid}/settings", fields, page="/account?page=3")
    assert r.status_code == 303 and r.headers["location"] == f"/account?page=3&done=saved#strategy-{sid}"
    shown = c.get(r.headers["location"])
    assert "Settings saved." in shown.text and sid in CARD_RE.findall(shown.text)
    # a settings error is shown on the strategy's own page too
    r = page_form(c, f"/account/strategies/{sid}/settings", {**fields, "visibility": "secret"})
    assert r.status_code == 422 and sid in CARD_RE.findall(r.text) and "Page 3 of 3" in r.text
