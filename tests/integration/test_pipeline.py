"""The pipeline end to end through the real services: HTTP -> event store -> NATS -> projector -> /state."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from uuid import UUID

import pytest

from devtools.stack import wait_until

pytestmark = pytest.mark.integration


def order(symbol="AAPL", side="buy", quantity=100, **extra):
    return {"symbol": symbol, "side": side, "quantity": quantity, **extra}


def test_orders_and_cash_show_in_state(stack):
    sid, auth = stack.new_strategy()
    r = stack.post(
        sid,
        "cash",
        {"event_type": "deposit", "amount": 100000, "external_id": "dep-1", "occurred_at": "2026-01-02T09:00:00Z"},
        auth,
    )
    assert r.status_code == 201 and r.json()["status"] == "created"
    r = stack.post(
        sid,
        "orders",
        {
            "orders": [
                order(quantity=100, price=150.25, fees=1.5, executed_at="2026-01-05T15:00:00Z", external_order_id="o1"),
                order(
                    quantity=40,
                    side="sell",
                    price=160,
                    fees=1,
                    executed_at="2026-01-06T15:00:00Z",
                    external_order_id="o2",
                ),
                order(symbol="msft", quantity=10, price=400, executed_at="2026-01-06T16:00:00Z", status="pending"),
            ]
        },
        auth,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {"accepted": 3, "duplicates": 0}
    first = body["accepted"][0]
    assert set(first) == {
        "id",
        "strategy_id",
        "symbol",
        "side",
        "quantity",
        "price",
        "fees",
        "order_type",
        "status",
        "executed_at",
        "created_at",
        "external_order_id",
        "details",
    }
    assert first["strategy_id"] == sid and first["order_type"] == "market" and first["status"] == "filled"
    assert body["accepted"][2]["symbol"] == "MSFT"
    assert r.headers["BotRanks-Projected"] == "true"
    state = stack.state(sid, auth)  # read-your-writes: no waiting needed
    assert [(p["symbol"], p["quantity"], p["cost_basis"]) for p in state["positions"]] == [("AAPL", 60, 150.25)]
    expected_cash = Decimal(100000) - (100 * Decimal("150.25") + Decimal("1.5")) + (40 * 160 - 1)
    assert Decimal(str(state["nav"]["cash_balance"])) == expected_cash
    assert state["last_order_at"] == "2026-01-06T16:00:00Z"


def test_spec_idempotency_walkthrough(stack):
    sid, auth = stack.new_strategy()
    payload = {"orders": [order(price=189.42, external_order_id="tb-00001")]}
    first = stack.post(sid, "orders", payload, auth).json()
    assert first["counts"] == {"accepted": 1, "duplicates": 0} and first["duplicates"] == []
    second = stack.post(sid, "orders", payload, auth).json()
    assert second["counts"] == {"accepted": 0, "duplicates": 1} and second["accepted"] == []
    assert second["duplicates"][0] == first["accepted"][0]  # the existing row, not a new one
    cash = {"event_type": "dividend", "amount": 12.5, "external_id": "div-1", "related_symbol": "aapl"}
    created = stack.post(sid, "cash", cash, auth)
    assert created.status_code == 201 and created.json()["status"] == "created"
    again = stack.post(sid, "cash", cash, auth)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["event"] == created.json()["event"] and again.json()["event"]["related_symbol"] == "AAPL"
    state = stack.state(sid, auth)
    assert state["positions"][0]["quantity"] == 100
    assert Decimal(str(state["nav"]["cash_balance"])) == Decimal("-18942") + Decimal("12.5")


def test_duplicate_inside_one_batch_and_orders_without_external_id(stack):
    sid, auth = stack.new_strategy()
    r = stack.post(
        sid,
        "orders",
        {
            "orders": [
                order(quantity=1, price=10, external_order_id="x"),
                order(quantity=2, price=10, external_order_id="x"),
                order(quantity=3, price=10),
                order(quantity=3, price=10),
            ]
        },
        auth,
    ).json()
    assert r["counts"] == {"accepted": 3, "duplicates": 1}
    assert r["duplicates"][0]["quantity"] == 1  # the first one won
    assert stack.state(sid, auth)["positions"][0]["quantity"] == 7


def test_concurrent_submissions_of_one_external_id_accept_exactly_one(stack):
    sid, auth = stack.new_strategy()
    payload = {"orders": [order(quantity=5, price=100, external_order_id="race-1")]}
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: stack.post(sid, "orders", payload, auth), range(20)))
    assert all(r.status_code == 200 for r in results)
    counts = [r.json()["counts"] for r in results]
    assert sum(c["accepted"] for c in counts) == 1
    assert sum(c["duplicates"] for c in counts) == 19
    ids = {(r.json()["accepted"] + r.json()["duplicates"])[0]["id"] for r in results}
    assert len(ids) == 1
    stack.wait_projected()
    assert stack.state(sid, auth)["positions"][0]["quantity"] == 5


def test_omitted_price_resolves_from_close_or_rejects_whole_batch(stack):
    sid, auth = stack.new_strategy()
    stack.add_prices([("ZZTEST", "2026-03-02", 42.5)])
    r = stack.post(sid, "orders", {"orders": [order("ZZTEST", quantity=2, executed_at="2026-03-02T15:00:00Z")]}, auth)
    assert r.status_code == 200 and r.json()["accepted"][0]["price"] == 42.5
    before = stack.event_count()
    r = stack.post(
        sid,
        "orders",
        {
            "orders": [
                order("ZZTEST", quantity=1, executed_at="2026-03-02T15:00:00Z"),
                order("ZZTEST", quantity=1, executed_at="2026-03-07T14:00:00Z"),  # a Saturday: no bar
            ]
        },
        auth,
    )
    assert r.status_code == 422
    assert r.json() == {"detail": "No market data available for ZZTEST at 2026-03-07T14:00:00Z (orders[1])"}
    assert stack.event_count() == before


def test_auth_matrix(stack):
    sid, auth = stack.new_strategy()
    other_sid, other_auth = stack.new_strategy("other")
    body = {"orders": [order(price=1)]}
    path = f"/api/v1/strategies/{sid}"
    cases = [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer fq_live_" + "A" * 43}, 401),
        (other_auth, 403),
    ]
    for headers, status in cases:
        assert stack.command.post(path + "/orders", json=body, headers=headers).status_code == status
        assert (
            stack.command.post(path + "/cash", json={"event_type": "fee", "amount": -1}, headers=headers).status_code
            == status
        )
        r = stack.query.get(path + "/state", headers=headers)
        assert r.status_code == status and set(r.json()) == {"detail"}
    unknown = f"/api/v1/strategies/{uuid.uuid4()}"
    assert stack.command.post(unknown + "/orders", json=body, headers=auth).status_code == 404
    assert stack.query.get(unknown + "/state", headers=auth).status_code == 404


@pytest.mark.parametrize(
    "payload, status, needle",
    [
        (b'{"orders": [', 400, "Malformed JSON"),
        (b"", 400, "empty"),
        (b'{"orders": []}', 422, "orders"),
        (b'{"orders": [{"side": "buy", "quantity": 1, "price": 1}]}', 422, "symbol"),
        (b'{"orders": [{"symbol": "A", "side": "hold", "quantity": 1, "price": 1}]}', 422, "orders[0].side"),
        (b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 0, "price": 1}]}', 422, "quantity"),
        (b'{"orders": [{"symbol": "A", "side": "buy", "quantity": -3, "price": 1}]}', 422, "quantity"),
        (b'{"orders": [{"symbol": "A", "side": "buy", "quantity": "NaN", "price": 1}]}', 422, "quantity"),
        (b'{"orders": [{"symbol": "A", "side": "buy", "quantity": NaN, "price": 1}]}', 400, "Malformed"),
        (b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": "Infinity"}]}', 422, "price"),
        (b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": 1, "fees": -1}]}', 422, "fees"),
        (b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": 1, "status": "done"}]}', 422, "status"),
        (
            b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": 1, "executed_at": "yesterday"}]}',
            422,
            "executed_at",
        ),
        (
            b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": 1, "executed_at": "2999-01-01T00:00:00Z"}]}',
            422,
            "future",
        ),
        (b'{"orders": [{"symbol": "A B", "side": "buy", "quantity": 1, "price": 1}]}', 400, "orders[0].symbol"),
        (
            b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": 1, "executed_at": "0001-01-01T00:00:00+01:00"}]}',
            422,
            "executed_at",
        ),
        (
            b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": 1, "executed_at": "1969-12-31T23:59:59Z"}]}',
            422,
            "1970",
        ),
        (b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": 1, "bogus": 1}]}', 422, "bogus"),
        (b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1e16, "price": 1}]}', 422, "quantity"),
        (
            b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": 1, "external_order_id": "a\\u0000"}]}',
            422,
            "external_order_id",
        ),
        (
            b'{"orders": [{"symbol": "A", "side": "buy", "quantity": 1, "price": 1, "details": {"k": "\\u0000"}}]}',
            422,
            "details",
        ),
    ],
)
def test_bad_orders_are_rejected_whole_and_store_nothing(stack, payload, status, needle):
    sid, auth = stack.new_strategy()
    good = b'{"symbol": "A", "side": "buy", "quantity": 1, "price": 1}, '
    if payload.startswith(b'{"orders": [{'):
        payload = payload.replace(b'{"orders": [', b'{"orders": [' + good, 1).replace(b"orders[0]", b"orders[1]")
        needle = needle.replace("orders[0]", "orders[1]")
    before = stack.event_count()
    r = stack.command.post(
        f"/api/v1/strategies/{sid}/orders", content=payload, headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert set(r.json()) == {"detail"} and needle in r.json()["detail"], r.json()
    assert stack.event_count() == before


def test_batch_of_501_is_rejected(stack):
    sid, auth = stack.new_strategy()
    before = stack.event_count()
    r = stack.post(sid, "orders", {"orders": [order(price=1)] * 501}, auth)
    assert r.status_code == 422 and "orders" in r.json()["detail"]
    assert stack.event_count() == before
    assert stack.post(sid, "orders", {"orders": [order(price=1)] * 500}, auth).json()["counts"]["accepted"] == 500


@pytest.mark.parametrize(
    "payload, needle",
    [
        ({"event_type": "deposit", "amount": -5}, "deposit"),
        ({"event_type": "withdraw", "amount": 5}, "withdraw"),
        ({"event_type": "gift", "amount": 5}, "event_type"),
        ({"amount": 5}, "event_type"),
        ({"event_type": "fee", "amount": "NaN"}, "amount"),
    ],
)
def test_bad_cash_events_are_rejected(stack, payload, needle):
    sid, auth = stack.new_strategy()
    before = stack.event_count()
    r = stack.post(sid, "cash", payload, auth)
    assert r.status_code == 422 and needle in r.json()["detail"], r.text
    assert stack.event_count() == before


def test_events_travel_over_jetstream_not_only_by_store_polling(stack):
    """The bus path is live: the stream carries every stored event exactly once, a strategy's events of a
    relay batch in one message on its partition's subject, and the partitions' durable consumers received
    every message."""
    import asyncio

    import msgspec
    from nats.js.errors import NotFoundError

    from botranks_domain.partition import partition_of
    from libs.infra import bus

    sid, auth = stack.new_strategy()
    for i in range(3):
        stack.post(sid, "cash", {"event_type": "deposit", "amount": 1 + i}, auth)
    orders = [{"symbol": "AAPL", "side": "buy", "quantity": 1 + i, "price": 10} for i in range(5)]
    assert stack.post(sid, "orders", {"orders": orders}, auth).status_code in (200, 201, 202)
    with stack.sql() as curs:  # ids have gaps (rolled-back inserts): the stored ones
        stored = [r["notification_id"] for r in curs.execute("SELECT notification_id FROM botranks_events")]
    store_id, partitions = stack.db.events.store_id, stack.db.projection.partitions()
    stream = bus.stream_name(store_id)

    async def on_the_bus() -> tuple[int, int, list[int], list[int]]:
        """(messages the consumers received, messages in the stream, the notification ids they carry, those of
        the last message on the strategy's subject)."""
        nc = await bus.connect(stack.nats_url, "test")
        try:
            js = nc.jetstream()
            delivered = 0
            for p in range(partitions):
                try:
                    info = await js.consumer_info(stream, bus.partition_consumer(store_id, p))
                except NotFoundError:
                    continue
                delivered += info.delivered.consumer_seq
            state = (await js.stream_info(stream)).state
            carried = []
            for seq in range(state.first_seq, state.last_seq + 1):
                message = await js.get_msg(stream, seq)
                carried += [
                    e.notification_id for e in msgspec.json.decode(message.data, type=bus.Notifications).notifications
                ]
            mine = await js.get_last_msg(stream, bus.subject_for(store_id, partition_of(UUID(sid), partitions), sid))
            last = [e.notification_id for e in msgspec.json.decode(mine.data, type=bus.Notifications).notifications]
            return delivered, state.messages, carried, last
        finally:
            await nc.close()

    wait_until(lambda: sorted(asyncio.run(on_the_bus())[2]) == sorted(stored), 20, "every stored event on the bus")
    delivered, messages, carried, last = asyncio.run(on_the_bus())
    assert sorted(carried) == sorted(stored)  # each stored event once: no duplicates, none lost
    assert len(last) == 5 and last == sorted(last)  # the POST of 5 orders: one message, in id order
    wait_until(lambda: asyncio.run(on_the_bus())[0] >= messages, 20, "the consumers to receive every message")
