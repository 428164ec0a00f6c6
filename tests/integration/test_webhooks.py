"""Webhooks end to end against real services (command_api, query_api, projector) and the notifier
in this process: a follower's webhook gets the strategy's new order, signed; a 500 is retried until
a 200; 127.0.0.1 without the setting is refused (nothing sent, retried later); the bounded queue; a
delivery log with the last response. The receiver listens on 127.0.0.1; nothing leaves loopback."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from devtools.stack import Stack
from devtools.webhook_receiver import Receiver
from libs.infra.follows import Follows, signing
from libs.infra.follows.events import ping_event
from services.notifier.notifier import Notifier

pytestmark = pytest.mark.integration

SYMBOL = "HOOKSYM"


def _user(stack: Stack) -> uuid.UUID:
    return stack.db.identity.insert_user(f"hooks-{uuid.uuid4().hex[:8]}@example.com", "x").id


def _strategy(stack: Stack, show: str = "live") -> tuple[uuid.UUID, dict[str, str]]:
    sid, key = stack.db.identity.create_strategy(
        f"Hooked {uuid.uuid4().hex[:6]}", visibility="public", show_positions=show
    )
    return sid, {"Authorization": f"Bearer {key}"}


def _notifier(stack: Stack, allow_private: bool = True) -> Notifier:
    return Notifier(stack.db, "http://botranks.test", allow_private=allow_private, timeout_s=1.0, first_retry_s=0.05)


def _run_until(notifier: Notifier, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notifier.deliver_due()
        notifier.drain()
        if done():
            return
        time.sleep(0.05)
    raise AssertionError("not delivered in time")


@pytest.fixture(scope="module")
def market(stack: Stack):
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=i) for i in range(10, -1, -1)]
    stack.add_prices([(SYMBOL, d.isoformat(), 10.0) for d in days])
    return days


def test_a_follower_gets_a_new_order_signed(stack: Stack, market) -> None:
    follows = Follows(stack.db.datastore)
    sid, key = _strategy(stack)
    r = stack.post(
        str(sid),
        "cash",
        {"event_type": "deposit", "amount": 1000, "occurred_at": f"{market[0]}T12:00:00+00:00", "external_id": "d"},
        key,
    )
    assert r.status_code == 201, r.text
    user = _user(stack)
    with Receiver() as rx:
        follows.follow(user, sid)
        hook, secret = follows.create_webhook(user, rx.url)
        notifier = _notifier(stack)
        order = {
            "symbol": SYMBOL,
            "side": "buy",
            "quantity": 2,
            "price": 10,
            "executed_at": datetime.now(UTC).isoformat(),
        }
        r = stack.post(str(sid), "orders", {"orders": [order]}, key)
        assert r.status_code == 200 and r.json()["counts"]["accepted"] == 1, r.text
        stack.wait_projected()
        assert notifier.scan() >= 1
        assert notifier.scan() == 0  # queued once
        _run_until(notifier, lambda: any(json.loads(q.body)["type"] == "order" for q in rx.requests))
        got = next(q for q in rx.requests if json.loads(q.body)["type"] == "order")
        assert signing.verify(secret, got.headers[signing.HEADER], got.body)
        event = json.loads(got.body)
        assert event["strategy_id"] == str(sid) and event["data"]["symbol"] == SYMBOL
        assert event["url"] == f"http://botranks.test/s/{sid}"
        (entry,) = [d for d in follows.deliveries(user, hook.id) if d.kind == "order"]
        assert entry.state == "delivered" and entry.last_status == 200 and entry.attempts == 1
        assert entry.last_ms is not None and entry.last_response.startswith("answered 200")
        # another user's log is not theirs to read
        with pytest.raises(Exception, match="not found"):
            follows.deliveries(_user(stack), hook.id)


def test_a_500_is_retried_until_a_200(stack: Stack) -> None:
    follows = Follows(stack.db.datastore)
    user = _user(stack)
    with Receiver(statuses=[500, 500, 200]) as rx:
        hook, secret = follows.create_webhook(user, rx.url)
        event_id, body = ping_event(hook.id, "http://botranks.test")
        assert follows.enqueue(hook.id, event_id, None, "ping", body)
        notifier = _notifier(stack)
        _run_until(notifier, lambda: follows.deliveries(user, hook.id)[0].state == "delivered")
        (entry,) = follows.deliveries(user, hook.id)
        assert entry.attempts == 3 and entry.last_status == 200
        assert len(rx.requests) == 3 and len({q.body for q in rx.requests}) == 1
        assert all(signing.verify(secret, q.headers[signing.HEADER], q.body) for q in rx.requests)


def test_loopback_without_the_setting_is_refused(stack: Stack) -> None:
    follows = Follows(stack.db.datastore)
    user = _user(stack)
    with Receiver() as rx:
        hook, _ = follows.create_webhook(user, rx.url)
        event_id, body = ping_event(hook.id, "http://botranks.test")
        follows.enqueue(hook.id, event_id, None, "ping", body)
        notifier = _notifier(stack, allow_private=False)
        _run_until(notifier, lambda: follows.deliveries(user, hook.id)[0].attempts >= 1)
        (entry,) = follows.deliveries(user, hook.id)
        assert entry.state == "pending" and entry.last_status is None  # retried later, with backoff
        assert "refused" in entry.last_error and "loopback" in entry.last_error
        assert rx.requests == []


def test_the_queue_is_bounded_and_deleting_a_webhook_drops_what_is_pending(stack: Stack) -> None:
    follows = Follows(stack.db.datastore)
    user = _user(stack)
    hook, _ = follows.create_webhook(user, "https://hooks.example.com/in")
    ids = [uuid.uuid4() for _ in range(4)]
    assert [follows.enqueue(hook.id, i, None, "ping", "{}", cap=3) for i in ids] == [True, True, True, False]
    assert not follows.enqueue(hook.id, ids[0], None, "ping", "{}", cap=3)
    follows.delete_webhook(user, hook.id)
    assert {d.state for d in follows.deliveries_of(hook.id)} == {"dropped"}
    assert follows.webhooks(user) == []


def test_a_hanging_receiver_does_not_hold_up_the_others(stack: Stack) -> None:
    follows = Follows(stack.db.datastore)
    user = _user(stack)
    with Receiver(hang=True) as slow, Receiver() as fast:
        slow_hook, _ = follows.create_webhook(user, slow.url)
        fast_hook, _ = follows.create_webhook(user, fast.url)
        for hook in (slow_hook, fast_hook):
            event_id, body = ping_event(hook.id, "http://botranks.test")
            follows.enqueue(hook.id, event_id, None, "ping", body)
        notifier = _notifier(stack)
        started = time.monotonic()
        notifier.deliver_due()
        while not fast.requests and time.monotonic() - started < 5:
            time.sleep(0.01)
        assert fast.requests and time.monotonic() - started < 0.9  # not after the slow one's 1 s deadline
        notifier.drain()
