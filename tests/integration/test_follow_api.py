"""The JSON API of following (issue 24, item 4) against the real command_api: follow, unfollow and list
(paged like GET /strategies), another's private strategy a 404 like an unknown one; webhooks: a receiver on
127.0.0.1 registered on a command_api with BOTRANKS_WEBHOOKS_ALLOW_PRIVATE=1, its secret shown once, the
test event delivered by the notifier (in this process) with a signature that verifies, the delivery log
showing the answer; the same URL refused (422 naming `url`) by a command_api without the setting; another
user's webhook a 404; bad bodies 4xx; the OpenAPI document lists the routes. Nothing leaves loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devtools.stack import ROOT, Stack
from devtools.webhook_receiver import Receiver
from libs.infra.follows import signing
from libs.infra.follows.guard import ALLOW_PRIVATE
from libs.infra.follows.store import MAX_WEBHOOKS
from services.notifier.notifier import Notifier
from tools.processes import free_port, wait_for_port

pytestmark = pytest.mark.integration

PASSWORD = "follow api password"
KINDS = ["order", "drawdown_record", "new_high", "inactive", "ping"]


@pytest.fixture(scope="module")
def private_port(stack: Stack) -> Iterator[int]:
    """A second command_api on the same database whose operator allows private networks (the module's
    ``stack`` has no such setting)."""
    port = free_port()
    with open(stack.home / "command_api_private.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.command_api.main", "--port", str(port)],
            cwd=ROOT,
            env={**stack.env, ALLOW_PRIVATE: "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, 60)
        yield port
    finally:
        process.terminate()
        process.wait(20)


def account(port: int) -> httpx.Client:
    c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    email = f"follower-{uuid.uuid4().hex[:10]}@example.com"
    assert c.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    assert c.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200
    return c


def detail(r: httpx.Response) -> str:
    body = r.json()
    assert set(body) == {"detail"}, body
    return body["detail"]


def test_follow_unfollow_and_the_list(stack: Stack) -> None:
    c, other = account(stack.command_port), account(stack.command_port)
    public = [stack.db.identity.create_strategy(f"Public {i}", visibility="public")[0] for i in range(3)]
    hidden, _ = stack.db.identity.create_strategy("Someone's private", visibility="private")
    own = c.post("/strategies", json={"name": "my private one", "visibility": "private"}).json()["id"]

    r = c.post(f"/following/{public[0]}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["strategy_id"] == str(public[0]) and body["name"] == "Public 0" and body["visibility"] == "public"
    assert body["feed"] == f"/s/{public[0]}/feed.atom" and body["since"]
    assert c.post(f"/following/{public[0]}").json()["since"] == body["since"]  # idempotent
    # another's private strategy is the same 404 as an unknown one (no existence leak)
    for missing in (hidden, uuid.uuid4()):
        r = c.post(f"/following/{missing}")
        assert r.status_code == 404 and detail(r) == f"Strategy {missing} not found"
    assert c.post(f"/following/{own}").status_code == 200  # one's own private strategy
    for sid in public[1:]:
        assert c.post(f"/following/{sid}").status_code == 200

    everything = c.get("/following")
    assert everything.status_code == 200 and everything.headers["x-total-count"] == "4"
    assert "link" not in everything.headers
    ids = [f["strategy_id"] for f in everything.json()]
    assert sorted(ids) == sorted([*map(str, public), own])
    first = c.get("/following", params={"limit": 3})
    assert [f["strategy_id"] for f in first.json()] == ids[:3]
    assert first.headers["link"] == '</following?limit=3&offset=3>; rel="next"'
    second = c.get("/following", params={"limit": 3, "offset": 3})
    assert [f["strategy_id"] for f in second.json()] == ids[3:]
    assert second.headers["link"] == '</following?limit=3&offset=0>; rel="prev"'
    assert other.get("/following").json() == [] and other.get("/following").headers["x-total-count"] == "0"

    r = c.post(f"/following/{public[0]}/unfollow")
    assert r.status_code == 200 and r.json() == {"strategy_id": str(public[0]), "status": "unfollowed"}
    assert c.post(f"/following/{public[0]}/unfollow").status_code == 200  # idempotent
    assert str(public[0]) not in [f["strategy_id"] for f in c.get("/following").json()]

    for params, name in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"offset": -1}, "offset")):
        r = c.get("/following", params=params)
        assert r.status_code == 400 and name in detail(r)
    for path in ("/following/not-a-uuid", "/following/not-a-uuid/unfollow"):
        r = c.post(path)
        assert r.status_code in (404, 405) and detail(r), (path, r.status_code)  # no route takes it
    anonymous = httpx.Client(base_url=f"http://127.0.0.1:{stack.command_port}", timeout=30)
    assert anonymous.get("/following").status_code == 401
    assert anonymous.post(f"/following/{public[1]}").status_code == 401
    assert anonymous.get("/webhooks").status_code == 401


def test_a_webhook_gets_the_test_event_signed_and_logs_the_answer(stack: Stack, private_port: int) -> None:
    c, other = account(private_port), account(private_port)
    with Receiver() as rx:
        r = c.post("/webhooks", json={"url": f"  {rx.url}  "})
        assert r.status_code == 201, r.text
        assert r.headers["cache-control"] == "no-store"
        created = r.json()
        secret, hook = created["secret"], created["id"]
        assert secret.startswith("whsec_") and created["url"] == rx.url and created["events"] == KINDS
        assert "BotRanks-Signature" in created["signature"] and "cannot be retrieved" in created["warning"]

        listed = c.get("/webhooks")
        assert listed.status_code == 200 and secret not in listed.text  # shown once
        assert listed.json() == [{"id": hook, "url": rx.url, "created_at": created["created_at"], "events": KINDS}]
        assert c.get(f"/webhooks/{hook}").json() == listed.json()[0]
        log = c.get(f"/webhooks/{hook}/deliveries")
        assert log.status_code == 200 and log.json() == [] and log.headers["x-total-count"] == "0"

        # another user's webhook is a 404 on every route, like an unknown one
        for r in (
            other.get(f"/webhooks/{hook}"),
            other.get(f"/webhooks/{hook}/deliveries"),
            other.post(f"/webhooks/{hook}/test"),
            other.post(f"/webhooks/{hook}/delete"),
            c.get(f"/webhooks/{uuid.uuid4()}"),
        ):
            assert r.status_code == 404 and detail(r).startswith("Webhook ") and detail(r).endswith(" not found")
        assert other.get("/webhooks").json() == []
        assert c.get("/webhooks/not-a-uuid").status_code == 404
        assert c.post("/webhooks/not-a-uuid/test").status_code in (404, 405)

        queued = c.post(f"/webhooks/{hook}/test")
        assert queued.status_code == 202, queued.text
        ping = queued.json()
        assert ping["webhook_id"] == hook and ping["kind"] == "ping" and ping["state"] == "pending"
        pending = c.get(f"/webhooks/{hook}/deliveries").json()
        assert [(d["event_id"], d["state"], d["attempts"]) for d in pending] == [(ping["event_id"], "pending", 0)]

        notifier = Notifier(stack.db, "http://botranks.test", allow_private=True, timeout_s=2.0)
        deadline = time.monotonic() + 10
        while not rx.requests and time.monotonic() < deadline:
            notifier.deliver_due()
            notifier.drain()
        (got,) = rx.requests
        event = json.loads(got.body)
        assert event["type"] == "ping" and event["id"] == ping["event_id"] and event["webhook_id"] == hook
        assert signing.verify(secret, got.headers[signing.HEADER], got.body)
        assert not signing.verify("whsec_another", got.headers[signing.HEADER], got.body)

        log = c.get(f"/webhooks/{hook}/deliveries")
        assert log.headers["x-total-count"] == "1"
        (entry,) = log.json()
        assert entry["event_id"] == ping["event_id"] and entry["kind"] == "ping"
        assert entry["state"] == "delivered" and entry["attempts"] == 1 and entry["last_status"] == 200
        assert entry["last_ms"] >= 0 and entry["last_error"] is None and entry["last_attempt_at"]
        assert entry["last_response"] is not None

        # the delivery log pages like the other lists
        c.post(f"/webhooks/{hook}/test")
        first = c.get(f"/webhooks/{hook}/deliveries", params={"limit": 1})
        assert first.headers["x-total-count"] == "2" and len(first.json()) == 1
        assert first.headers["link"] == f'</webhooks/{hook}/deliveries?limit=1&offset=1>; rel="next"'
        assert c.get(f"/webhooks/{hook}/deliveries", params={"limit": 0}).status_code == 400

        deleted = c.post(f"/webhooks/{hook}/delete")
        assert deleted.status_code == 200 and deleted.json() == {"id": hook, "status": "deleted"}
        assert c.get(f"/webhooks/{hook}").status_code == 404
        assert c.post(f"/webhooks/{hook}/test").status_code == 404
        assert c.get("/webhooks").json() == []


def test_loopback_is_refused_without_the_setting(stack: Stack, private_port: int) -> None:
    c = account(stack.command_port)
    with Receiver() as rx:
        for url, why in (
            (rx.url, "a loopback address"),
            (f"http://localhost:{free_port()}/in", "resolves to 127.0.0.1, a loopback address"),
            ("http://10.1.2.3/in", "a private address"),
            ("http://0/in", "the unspecified address"),
        ):
            r = c.post("/webhooks", json={"url": url})
            assert r.status_code == 422, r.text
            assert detail(r).startswith("`url`: ") and why in detail(r) and ALLOW_PRIVATE in detail(r)
        assert c.get("/webhooks").json() == [] and rx.requests == []
    # cloud metadata is refused even where private networks are allowed
    r = account(private_port).post("/webhooks", json={"url": "http://169.254.169.254/latest/meta-data/"})
    assert r.status_code == 422 and "cloud metadata" in detail(r) and detail(r).startswith("`url`: ")


def test_bad_bodies_and_the_limit_are_4xx(stack: Stack, private_port: int) -> None:
    c = account(private_port)
    for body, status, named in (
        ({}, 422, "url"),
        ({"url": 5}, 422, "url"),
        ({"url": ""}, 422, "url"),
        ({"url": "ftp://example.com/x"}, 422, "url"),
        ({"url": "https://user:pw@example.com/x"}, 422, "url"),
        ({"url": "http://[::1"}, 422, "url"),
        ({"url": "https://" + "a" * 2000 + ".com/"}, 422, "url"),
        ({"url": "http://127.0.0.1:9/in", "events": ["order"]}, 422, "events"),
        (["http://127.0.0.1:9/in"], 422, ""),
    ):
        r = c.post("/webhooks", json=body)
        assert r.status_code == status, (body, r.text)
        assert named in detail(r), (body, r.text)
    r = c.post("/webhooks", content=b'{"url": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and detail(r)
    r = c.post("/webhooks", content=b"url=http://127.0.0.1:9/in", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and detail(r)
    assert c.get("/webhooks").json() == []  # nothing was written

    urls = [f"http://127.0.0.1:9/hook-{i}" for i in range(MAX_WEBHOOKS)]
    for url in urls:
        assert c.post("/webhooks", json={"url": url}).status_code == 201
    r = c.post("/webhooks", json={"url": "http://127.0.0.1:9/one-too-many"})
    assert r.status_code == 409 and f"At most {MAX_WEBHOOKS} webhooks" in detail(r)
    assert [h["url"] for h in c.get("/webhooks").json()] == urls


def test_the_openapi_document_lists_the_routes(stack: Stack) -> None:
    doc = httpx.get(f"http://127.0.0.1:{stack.command_port}/schema/openapi.json", timeout=30).json()
    expected = {
        "/following": {"get"},
        "/following/{strategy_id}": {"post"},
        "/following/{strategy_id}/unfollow": {"post"},
        "/webhooks": {"get", "post"},
        "/webhooks/{webhook_id}": {"get"},
        "/webhooks/{webhook_id}/delete": {"post"},
        "/webhooks/{webhook_id}/deliveries": {"get"},
        "/webhooks/{webhook_id}/test": {"post"},
    }
    for path, methods in expected.items():
        assert path in doc["paths"], sorted(doc["paths"])
        for method in methods:
            operation = doc["paths"][path][method]
            assert operation["tags"] == ["Accounts"] and operation["security"] == [{"session": []}]
    create = doc["paths"]["/webhooks"]["post"]
    assert set(create["responses"]) >= {"201", "401", "409", "422"}
