"""Through the real command_api: what a client sent is what is stored, read back from /orders, /cash,
/state and the event store (/events): no symbol changed by Unicode case rules, no timestamp rounded
into the next day, month or year."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

NANOS = "2025-12-31T23:59:59.9999999Z"
STORED = "2025-12-31T23:59:59.999999Z"


def _events(stack, sid, auth) -> list[dict]:
    r = stack.query.get(f"/api/v1/strategies/{sid}/events", headers=auth)
    assert r.status_code == 200, r.text
    return [json.loads(line)["event"] for line in r.text.splitlines()]


def test_nanosecond_timestamps_are_stored_cut_to_microseconds(stack):
    sid, auth = stack.new_strategy()
    r = stack.post(
        sid,
        "cash",
        {
            "event_type": "deposit",
            "amount": 1000,
            "occurred_at": "2025-12-31T23:59:59.123456789Z",
            "external_id": "dep",
        },
        auth,
    )
    assert r.status_code == 201, r.text
    assert r.json()["event"]["occurred_at"] == "2025-12-31T23:59:59.123456Z"
    r = stack.post(
        sid,
        "orders",
        {
            "orders": [
                {
                    "symbol": "aapl",
                    "side": "buy",
                    "quantity": 1,
                    "price": 100,
                    "executed_at": NANOS,
                    "external_order_id": "o1",
                },
                # a Go client's RFC3339Nano with an offset: 2026-01-01T04:59:59.999999999+05:00 is 23:59:59.999999999Z
                {
                    "symbol": "brk.b",
                    "side": "buy",
                    "quantity": 2,
                    "price": 50,
                    "executed_at": "2026-01-01T04:59:59.999999999+05:00",
                    "external_order_id": "o2",
                },
            ]
        },
        auth,
    )
    assert r.status_code == 200, r.text
    assert [(o["symbol"], o["executed_at"]) for o in r.json()["accepted"]] == [("AAPL", STORED), ("BRK.B", STORED)]
    r = stack.post(
        sid,
        "positions/snapshot",
        {
            "positions": [
                {"symbol": "aapl", "quantity": 1, "cost_basis": 100},
                {"symbol": "brk.b", "quantity": 2, "cost_basis": 50},
            ],
            "taken_at": "2025-12-31T23:59:59.99999999Z",
        },
        auth,
    )
    assert r.status_code == 200, r.text

    orders = stack.query.get(f"/api/v1/strategies/{sid}/orders", headers=auth).json()["items"]
    assert [(o["symbol"], o["executed_at"]) for o in orders] == [("AAPL", STORED), ("BRK.B", STORED)]
    cash = stack.query.get(f"/api/v1/strategies/{sid}/cash", headers=auth).json()["items"]
    assert [c["occurred_at"] for c in cash] == ["2025-12-31T23:59:59.123456Z"]
    stored = _events(stack, sid, auth)
    assert [e["cash"]["occurred_at"] for e in stored if "cash" in e] == ["2025-12-31T23:59:59.123456Z"]
    assert [e["order"]["executed_at"] for e in stored if "order" in e] == [STORED, STORED]
    assert [e["snapshot"]["taken_at"] for e in stored if "snapshot" in e] == [STORED]
    assert [(p["symbol"], p["quantity"]) for p in stack.state(sid, auth)["positions"]] == [("AAPL", 1), ("BRK.B", 2)]


@pytest.mark.parametrize("symbol", ["ß", "ı", "ſ", " AAPL", "AAPL\n"])
def test_a_symbol_that_case_rules_would_change_is_400_naming_the_field_and_stores_nothing(stack, symbol):
    sid, auth = stack.new_strategy()
    before = stack.event_count()
    r = stack.post(
        sid,
        "orders",
        {
            "orders": [
                {"symbol": "AAPL", "side": "buy", "quantity": 1, "price": 1, "executed_at": "2025-06-02T15:00:00Z"},
                {"symbol": symbol, "side": "buy", "quantity": 1, "price": 1, "executed_at": "2025-06-02T15:00:00Z"},
            ]
        },
        auth,
    )
    assert r.status_code == 400 and set(r.json()) == {"detail"} and "orders[1].symbol" in r.json()["detail"], r.text
    r = stack.post(
        sid,
        "cash",
        {"event_type": "dividend", "amount": 1, "related_symbol": symbol, "occurred_at": "2025-06-02T15:00:00Z"},
        auth,
    )
    assert r.status_code == 400 and "related_symbol" in r.json()["detail"], r.text
    r = stack.post(sid, "positions/snapshot", {"positions": [{"symbol": symbol, "quantity": 1, "cost_basis": 1}]}, auth)
    assert r.status_code == 400 and "positions[0].symbol" in r.json()["detail"], r.text
    assert stack.event_count() == before
    assert stack.query.get(f"/api/v1/strategies/{sid}/orders", headers=auth).json()["items"] == []
