"""Snapshots, reconciliation, back-dated events, daily NAV and log listing through the real services."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

pytestmark = pytest.mark.integration

START = date(2025, 3, 3)  # a Monday
WEEKDAYS = [START + timedelta(days=i) for i in range(40) if (START + timedelta(days=i)).weekday() < 5]


@pytest.fixture(scope="module")
def priced(stack):
    """Deterministic closes for SPY, AAPL and MSFT on weekdays of March/April 2025."""
    rows = []
    for i, d in enumerate(WEEKDAYS):
        rows += [
            ("SPY", d.isoformat(), 500 + i),
            ("AAPL", d.isoformat(), 200 + 2 * i),
            ("MSFT", d.isoformat(), 400 - i),
        ]
    stack.add_prices(rows)
    return stack


def ts(d: date, hour: int = 15) -> str:
    return f"{d.isoformat()}T{hour:02d}:00:00Z"


def nav(stack, sid, auth, **params):
    r = stack.query.get(f"/api/v1/strategies/{sid}/nav", params=params, headers=auth)
    assert r.status_code == 200, r.text
    return {row["date"]: row for row in r.json()["series"]}


def test_snapshot_replaces_positions_and_logs_deltas(priced):
    stack = priced
    sid, auth = stack.new_strategy()
    stack.post(sid, "cash", {"event_type": "deposit", "amount": 100000, "occurred_at": ts(WEEKDAYS[0])}, auth)
    stack.post(
        sid,
        "orders",
        {
            "orders": [
                {"symbol": "AAPL", "side": "buy", "quantity": 10, "price": 150, "executed_at": ts(WEEKDAYS[1])},
                {"symbol": "KO", "side": "buy", "quantity": 5, "price": 60, "executed_at": ts(WEEKDAYS[1])},
            ]
        },
        auth,
    )
    r = stack.post(
        sid,
        "positions/snapshot",
        {
            "positions": [
                {"symbol": "AAPL", "quantity": 100, "cost_basis": 189.42},
                {"symbol": "MSFT", "quantity": 30, "cost_basis": 420.10},
            ],
            "log_deltas": True,
        },
        auth,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"upserted": 2, "removed": 1, "reconciliation_entries": 3}
    state = stack.state(sid, auth)
    assert [(p["symbol"], p["quantity"], p["cost_basis"]) for p in state["positions"]] == [
        ("AAPL", 100, 189.42),
        ("MSFT", 30, 420.10),
    ]
    assert Decimal(str(state["nav"]["cash_balance"])) == Decimal(100000 - 1500 - 300)  # snapshots leave cash alone
    log = stack.query.get(f"/api/v1/strategies/{sid}/reconciliation", headers=auth).json()["items"]
    assert {(e["symbol"], e["derived_quantity"], e["snapshot_quantity"]) for e in log} == {
        ("AAPL", 10, 100),
        ("KO", 5, 0),
        ("MSFT", 0, 30),
    }
    r = stack.post(
        sid, "positions/snapshot", {"positions": [{"symbol": "AAPL", "quantity": 100, "cost_basis": 189.42}]}, auth
    )
    assert r.json() == {"upserted": 1, "removed": 1, "reconciliation_entries": 0}


def test_back_dated_order_before_a_snapshot_changes_cash_and_deltas_not_positions(priced):
    stack = priced
    sid, auth = stack.new_strategy()
    stack.post(sid, "cash", {"event_type": "deposit", "amount": 50000, "occurred_at": ts(WEEKDAYS[0])}, auth)
    stack.post(
        sid,
        "positions/snapshot",
        {
            "positions": [{"symbol": "AAPL", "quantity": 100, "cost_basis": 200}],
            "log_deltas": True,
            "taken_at": ts(WEEKDAYS[5]),
        },
        auth,
    )
    stack.post(
        sid,
        "orders",
        {"orders": [{"symbol": "AAPL", "side": "buy", "quantity": 40, "price": 205, "executed_at": ts(WEEKDAYS[2])}]},
        auth,
    )
    state = stack.state(sid, auth)
    assert [(p["symbol"], p["quantity"]) for p in state["positions"]] == [("AAPL", 100)]
    assert Decimal(str(state["nav"]["cash_balance"])) == Decimal(50000 - 40 * 205)
    log = stack.query.get(f"/api/v1/strategies/{sid}/reconciliation", headers=auth).json()["items"]
    assert [(e["symbol"], e["derived_quantity"], e["snapshot_quantity"]) for e in log] == [("AAPL", 40, 100)]


def test_back_dated_order_changes_nav_from_its_date_on_and_nowhere_before(priced):
    stack = priced
    sid, auth = stack.new_strategy()
    stack.post(sid, "cash", {"event_type": "deposit", "amount": 100000, "occurred_at": ts(WEEKDAYS[0], 9)}, auth)
    stack.post(
        sid,
        "orders",
        {"orders": [{"symbol": "AAPL", "side": "buy", "quantity": 100, "executed_at": ts(WEEKDAYS[2])}]},
        auth,
    )  # price from the close
    stack.post(
        sid,
        "orders",
        {"orders": [{"symbol": "MSFT", "side": "buy", "quantity": 10, "executed_at": ts(WEEKDAYS[15])}]},
        auth,
    )
    before = nav(stack, sid, auth)
    assert min(before) == WEEKDAYS[0].isoformat() and max(before) == WEEKDAYS[-1].isoformat()
    day = WEEKDAYS[8]
    r = stack.post(
        sid,
        "orders",
        {
            "orders": [
                {"symbol": "AAPL", "side": "sell", "quantity": 50, "price": 250, "fees": 5, "executed_at": ts(day)}
            ]
        },
        auth,
    )
    assert r.status_code == 200
    after = nav(stack, sid, auth)
    assert after.keys() == before.keys()
    for d in before:
        if d < day.isoformat():
            assert after[d] == before[d], d
        else:
            assert after[d] != before[d], d
    # on the day itself: cash +12495, 50 AAPL fewer at that day's close
    close = Decimal(200 + 2 * 8)
    expected = Decimal(str(before[day.isoformat()]["total_equity"])) + Decimal(12495) - 50 * close
    assert Decimal(str(after[day.isoformat()]["total_equity"])) == expected
    # the series is the same as JSON and CSV, and `from`/`to` filter it
    window = nav(stack, sid, auth, **{"from": WEEKDAYS[3].isoformat(), "to": WEEKDAYS[4].isoformat()})
    assert list(window) == [WEEKDAYS[3].isoformat(), WEEKDAYS[4].isoformat()]
    r = stack.query.get(f"/api/v1/strategies/{sid}/nav", headers={**auth, "Accept": "text/csv"})
    lines = r.text.strip().splitlines()
    assert r.headers["content-type"].startswith("text/csv")
    assert lines[0] == "date,cash,market_value,total_equity,external_flow" and len(lines) == len(after) + 1
    assert lines[1].startswith(WEEKDAYS[0].isoformat() + ",")
    bad = stack.query.get(f"/api/v1/strategies/{sid}/nav", params={"from": "yesterday"}, headers=auth)
    assert bad.status_code == 400 and "`from`" in bad.json()["detail"] and "from_" not in bad.json()["detail"]
    reversed_ = stack.query.get(
        f"/api/v1/strategies/{sid}/nav",
        headers=auth,
        params={"from": WEEKDAYS[4].isoformat(), "to": WEEKDAYS[3].isoformat()},
    )
    assert reversed_.status_code == 400 and "`from`" in reversed_.json()["detail"]


def test_orders_and_cash_list_with_cursor_pagination(stack):
    sid, auth = stack.new_strategy()
    orders = [
        {"symbol": "AAPL", "side": "buy", "quantity": 1, "price": 1, "external_order_id": f"p-{i}"} for i in range(250)
    ]
    stack.post(sid, "orders", {"orders": orders}, auth)
    stack.post(sid, "cash", {"event_type": "deposit", "amount": 10}, auth)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = stack.query.get(f"/api/v1/strategies/{sid}/orders", params=params, headers=auth).json()
        seen += [o["external_order_id"] for o in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == [f"p-{i}" for i in range(250)]
    cash = stack.query.get(f"/api/v1/strategies/{sid}/cash", headers=auth).json()
    assert [c["amount"] for c in cash["items"]] == [10] and cash["next_cursor"] is None
    assert (
        stack.query.get(f"/api/v1/strategies/{sid}/orders", params={"cursor": "zzz"}, headers=auth).status_code == 400
    )
    r = stack.query.get(f"/api/v1/strategies/{sid}/orders", params={"limit": 0}, headers=auth)
    assert r.status_code == 400 and "limit" in r.json()["detail"]


def test_performance_parameters_and_cache_invalidation(priced):
    stack = priced
    sid, auth = stack.new_strategy()
    perf = lambda **p: stack.query.get(f"/api/v1/strategies/{sid}/performance", params=p, headers=auth)  # noqa: E731
    empty = perf().json()
    assert empty["inception_date"] is None and empty["sharpe_ratio"] is None and empty["monthly_returns"] == {}
    stack.post(sid, "cash", {"event_type": "deposit", "amount": 100000, "occurred_at": ts(WEEKDAYS[0], 9)}, auth)
    stack.post(
        sid,
        "orders",
        {"orders": [{"symbol": "AAPL", "side": "buy", "quantity": 100, "executed_at": ts(WEEKDAYS[0])}]},
        auth,
    )
    first = perf().json()
    assert first["inception_date"] == WEEKDAYS[0].isoformat() and first["benchmark"]["symbol"] == "SPY"
    assert first["starting_equity"] == 100000 and first["total_return"] > 0
    assert perf(benchmark="").json()["benchmark"] is None
    assert perf(benchmark="msft").json()["benchmark"]["symbol"] == "MSFT"
    for bad in ("NOPE", "bad symbol!"):
        r = perf(benchmark=bad)
        assert r.status_code == 400 and r.json()["detail"].startswith("Unresolvable benchmark symbol:")
    for bad in ("2", "-1.5", "nan", "inf", "abc"):
        r = perf(risk_free_rate=bad)
        assert r.status_code == 400 and "risk_free_rate" in r.json()["detail"], (bad, r.text)
    assert perf(risk_free_rate="0.045").json()["sharpe_ratio"] != first["sharpe_ratio"]
    stack.post(
        sid,
        "orders",
        {"orders": [{"symbol": "AAPL", "side": "sell", "quantity": 50, "executed_at": ts(WEEKDAYS[5])}]},
        auth,
    )  # the NAV changes: a new answer
    assert perf().json() != first


def test_read_your_writes_can_be_turned_off_per_request_and_a_bad_value_writes_nothing(priced):
    stack = priced
    sid, auth = stack.new_strategy("ryw")
    order = {"symbol": "AAPL", "side": "buy", "quantity": "3", "executed_at": ts(WEEKDAYS[1])}
    bad = stack.post(
        sid,
        "orders",
        {"orders": [{**order, "external_order_id": "bad"}]},
        {**auth, "BotRanks-Read-Your-Writes": "maybe"},
    )
    assert bad.status_code == 400 and "botranks-read-your-writes" in bad.json()["detail"].lower(), bad.text
    r = stack.post(
        sid, "orders", {"orders": [{**order, "external_order_id": "off"}]}, {**auth, "BotRanks-Read-Your-Writes": "off"}
    )
    assert r.status_code == 200 and r.headers["BotRanks-Projected"] == "false", r.text
    r = stack.post(
        sid,
        "cash",
        {"event_type": "deposit", "amount": "1000", "occurred_at": ts(WEEKDAYS[0])},
        {**auth, "BotRanks-Read-Your-Writes": "off"},
    )
    assert r.status_code == 201 and r.headers["BotRanks-Projected"] == "false", r.text
    r = stack.post(
        sid, "orders", {"orders": [{**order, "external_order_id": "on"}]}, {**auth, "BotRanks-Read-Your-Writes": "on"}
    )
    assert r.status_code == 200 and r.headers["BotRanks-Projected"] == "true", r.text
    stack.wait_projected()
    ids = [
        o["external_order_id"]
        for o in stack.query.get(f"/api/v1/strategies/{sid}/orders", headers=auth).json()["items"]
    ]
    assert ids == ["off", "on"]  # the refused request stored nothing
