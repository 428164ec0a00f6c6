"""Accounts, API keys, rate limits and hostile input, against two replicas of each API."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from devtools.stack import Stack

pytestmark = pytest.mark.integration

LIMIT = 60


@pytest.fixture(scope="module")
def replicas(backends, make_database, tmp_path_factory):
    _, nats_url = backends
    s = Stack(
        make_database(),
        nats_url,
        tmp_path_factory.mktemp("replicas"),
        replicas=2,
        BOTRANKS_RATE_LIMIT_PER_MINUTE=str(LIMIT),
        BOTRANKS_SESSION_TTL_S="8",
    )
    s.start()
    s.apis = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in s.command_ports + s.query_ports]
    yield s
    for client in s.apis:
        client.close()
    s.stop()


def account(stack: Stack, email: str | None = None) -> httpx.Client:
    """A signed-in browser session against the first command_api replica."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.command_port}", timeout=30)
    assert client.post("/auth/register", json={"email": email, "password": "correct horse battery"}).status_code == 201
    assert client.post("/auth/login", json={"email": email, "password": "correct horse battery"}).status_code == 200
    return client


def strategy_with_key(session: httpx.Client) -> tuple[str, str, dict[str, str]]:
    sid = session.post("/strategies", json={"name": "bot", "visibility": "public"}).json()["id"]
    created = session.post(f"/strategies/{sid}/api-keys", json={"name": "prod"}).json()
    return sid, created["id"], {"Authorization": f"Bearer {created['plaintext']}"}


def test_register_login_logout_and_session_expiry(replicas):
    c = httpx.Client(base_url=f"http://127.0.0.1:{replicas.command_port}", timeout=30)
    email = f"Mixed-{uuid.uuid4().hex[:6]}@Example.com"
    r = c.post("/auth/register", json={"email": email, "password": "a-long-enough-secret"})
    assert (
        r.status_code == 201 and set(r.json()) == {"id", "email", "created_at", "handle"} and r.json()["handle"] is None
    )
    assert c.post("/auth/register", json={"email": email.lower(), "password": "another-long-secret"}).status_code == 409
    short = c.post("/auth/register", json={"email": "x" + email, "password": "short"})
    assert short.status_code == 422 and "password" in short.json()["detail"]
    assert (
        c.post("/auth/register", json={"email": "not-an-email", "password": "a-long-enough-secret"}).status_code == 422
    )
    assert c.post("/auth/login", json={"email": email, "password": "wrong-password!!"}).status_code == 401
    assert c.post("/auth/login", json={"email": "nobody@example.com", "password": "x" * 12}).status_code == 401
    assert c.get("/strategies").status_code == 401
    r = c.post("/auth/login", json={"email": email.upper(), "password": "a-long-enough-secret"})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "access_token=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie and "Max-Age=8" in cookie
    behind_tls = c.post(
        "/auth/login", json={"email": email, "password": "a-long-enough-secret"}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "Secure" in behind_tls.headers["set-cookie"]
    c.cookies.set("access_token", r.cookies["access_token"])
    assert c.get("/strategies").json() == []
    assert c.post("/strategies", json={"name": "nul\u0000name"}).status_code == 422
    sid = c.post("/strategies", json={"name": "mine", "visibility": "private", "benchmark": "qqq"}).json()
    assert sid["benchmark"] == "QQQ" and sid["base_currency"] == "USD"
    assert [s["id"] for s in c.get("/strategies").json()] == [sid["id"]]
    token = r.cookies["access_token"]
    assert c.post("/auth/logout").status_code == 200
    c.cookies.set("access_token", token)  # the old cookie is dead server-side
    assert c.get("/strategies").status_code == 401
    fresh = account(replicas, email=f"exp-{uuid.uuid4().hex[:6]}@example.com")
    assert fresh.get("/strategies").status_code == 200
    time.sleep(8.5)
    assert fresh.get("/strategies").status_code == 401  # expired


def test_api_key_lifecycle_and_revocation_reaches_every_replica_within_a_second(replicas):
    owner = account(replicas)
    sid, kid, auth = strategy_with_key(owner)
    created_keys = owner.get(f"/strategies/{sid}/api-keys").json()
    assert [k["id"] for k in created_keys] == [kid]
    assert set(created_keys[0]) == {"id", "name", "key_prefix", "created_at", "last_used_at", "revoked_at"}
    assert created_keys[0]["key_prefix"].startswith("fq_live_") and len(created_keys[0]["key_prefix"]) == 10
    for api in replicas.apis:
        path = f"/api/v1/strategies/{sid}/" + ("state" if api.base_url.port in replicas.query_ports else "cash")
        r = (
            api.get(path, headers=auth)
            if "state" in path
            else api.post(path, json={"event_type": "deposit", "amount": 1}, headers=auth)
        )
        assert r.status_code == (200 if "state" in path else 201), r.text
    assert owner.get(f"/strategies/{sid}/api-keys").json()[0]["last_used_at"] is not None
    revoked = owner.post(f"/strategies/{sid}/api-keys/{kid}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = owner.post(f"/strategies/{sid}/api-keys/{kid}/revoke")  # idempotent
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    started = time.monotonic()
    for api in replicas.apis:
        if api.base_url.port in replicas.query_ports:
            assert api.get(f"/api/v1/strategies/{sid}/state", headers=auth).status_code == 401
        else:
            assert api.post(f"/api/v1/strategies/{sid}/orders", json={"orders": []}, headers=auth).status_code == 401
    assert time.monotonic() - started < 1.0
    stranger = account(replicas)
    assert stranger.get(f"/strategies/{sid}/api-keys").status_code == 403
    assert stranger.post(f"/strategies/{sid}/api-keys", json={"name": "x"}).status_code == 403
    assert stranger.post(f"/strategies/{sid}/api-keys/{kid}/revoke").status_code == 403
    assert stranger.get(f"/strategies/{uuid.uuid4()}/api-keys").status_code == 404
    anonymous = httpx.Client(base_url=owner.base_url)
    assert anonymous.post(f"/strategies/{sid}/api-keys", json={"name": "x"}).status_code == 401
    assert owner.post(f"/strategies/{sid}/api-keys/{uuid.uuid4()}/revoke").status_code == 404


def test_rate_limit_is_a_sliding_window_shared_by_all_replicas(replicas):
    owner = account(replicas)
    sid, _, auth = strategy_with_key(owner)
    other = {
        "Authorization": "Bearer " + owner.post(f"/strategies/{sid}/api-keys", json={"name": "b"}).json()["plaintext"]
    }
    statuses, expected = [], []
    for i in range(LIMIT):
        api = replicas.apis[i % 4]
        if api.base_url.port in replicas.query_ports:
            r = api.get(f"/api/v1/strategies/{sid}/state", headers=auth)
            expected.append(200)
        else:
            r = api.post(f"/api/v1/strategies/{sid}/cash", json={"event_type": "fee", "amount": -1}, headers=auth)
            expected.append(201)  # a new cash event each time
        statuses.append(r.status_code)
    assert statuses == expected
    assert r.headers["RateLimit-Limit"] == str(LIMIT) and r.headers["RateLimit-Remaining"] == "0"
    over = replicas.apis[2].get(f"/api/v1/strategies/{sid}/state", headers=auth)
    assert over.status_code == 429
    assert over.json() == {"detail": f"Rate limit exceeded: {LIMIT} requests per 60s"}
    assert 1 <= int(over.headers["Retry-After"]) <= 60 and over.headers["RateLimit-Remaining"] == "0"
    assert replicas.apis[3].get(f"/api/v1/strategies/{sid}/state", headers=other).status_code == 200  # independent


ENDPOINTS = [
    ("command", "POST", "orders", {"orders": [{"symbol": "AAPL", "side": "buy", "quantity": 1, "price": 1}]}),
    ("command", "POST", "cash", {"event_type": "deposit", "amount": 5}),
    ("command", "POST", "positions/snapshot", {"positions": []}),
    ("query", "GET", "state", None),
    ("query", "GET", "nav", None),
    ("query", "GET", "orders", None),
    ("query", "GET", "cash", None),
    ("query", "GET", "reconciliation", None),
]


@pytest.mark.parametrize("side, method, path, body", ENDPOINTS)
def test_401_403_404_for_every_ledger_endpoint(replicas, side, method, path, body):
    owner = account(replicas)
    sid_a, _, key_a = strategy_with_key(owner)
    sid_b, _, _ = strategy_with_key(owner)
    api = replicas.command if side == "command" else replicas.query

    def call(sid, headers):
        return api.request(method, f"/api/v1/strategies/{sid}/{path}", json=body, headers=headers)

    assert call(sid_a, {}).status_code == 401
    assert call(sid_a, {"Authorization": "Bearer fq_live_" + "x" * 43}).status_code == 401
    assert call(sid_a, {"Authorization": key_a["Authorization"].replace("Bearer", "Token")}).status_code == 401
    assert call(sid_b, key_a).status_code == 403  # a key of A cannot read or write B
    assert call(uuid.uuid4(), key_a).status_code == 404
    ok = call(sid_a, key_a)
    assert ok.status_code == (201 if (method, path) == ("POST", "cash") else 200), ok.text
    for name in ("x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy"):
        assert name in ok.headers


def test_hostile_input(replicas):
    owner = account(replicas)
    sid, _, auth = strategy_with_key(owner)
    url = f"/api/v1/strategies/{sid}/orders"
    order = {"symbol": "AAPL", "side": "buy", "quantity": 1, "price": 10}
    big = replicas.command.post(
        url,
        content=b'{"orders": [' + b" " * (1024 * 1024 + 10) + b"]}",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert big.status_code == 413 and set(big.json()) == {"detail"}
    cases = [
        ({**order, "symbol": "A" * 21}, "symbol"),
        ({**order, "external_order_id": "x" * 129}, "external_order_id"),
        ({**order, "details": {"blob": "x" * 17000}}, "details"),
        ({**order, "price": 2e15}, "price"),
        ({**order, "fees": "Infinity"}, "fees"),
        ({**order, "quantity": True}, "quantity"),
        ({**order, "order_type": "iceberg"}, "order_type"),
    ]
    before = replicas.event_count()
    for bad, field in cases:
        r = replicas.command.post(url, json={"orders": [order, order, bad]}, headers=auth)
        assert r.status_code == 422, (bad, r.text)
        assert field in r.json()["detail"] and "orders[2]" in r.json()["detail"], r.json()
    assert replicas.event_count() == before
    r = replicas.command.post(
        url,
        json={
            "orders": [
                {**order, "executed_at": "2026-01-05T10:00:00-05:00"},
                {**order, "executed_at": "2026-01-05T15:00:01"},
            ]
        },
        headers=auth,
    )
    assert [o["executed_at"] for o in r.json()["accepted"]] == ["2026-01-05T15:00:00Z", "2026-01-05T15:00:01Z"]


def test_keys_and_passwords_never_reach_the_logs(replicas):
    owner = account(replicas)
    sid, _, auth = strategy_with_key(owner)
    replicas.command.post(f"/api/v1/strategies/{sid}/cash", json={"event_type": "deposit", "amount": 1}, headers=auth)
    replicas.query.get(f"/api/v1/strategies/{sid}/state", headers=auth)
    key = auth["Authorization"].split()[1]
    for log in replicas.home.glob("*.log"):
        text = log.read_text()
        assert key not in text and "correct horse battery" not in text
