"""Issue 22 through the real services: the trades of a strategy's fills (GET /trades), the statistics in
/performance's ``trading``, a back-dated fill that splits a trade in two, paging and filters."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from devtools.stack import wait_until
from services.projector.rebuild import rebuild

pytestmark = pytest.mark.integration

DAYS = [f"2024-03-{d:02d}" for d in (4, 5, 6, 7, 8, 11, 12)]


def _order(side: str, qty: int, price: str, day: str, fees: str = "1") -> dict:
    return {
        "symbol": "TRD",
        "side": side,
        "quantity": qty,
        "price": price,
        "fees": fees,
        "executed_at": f"{day}T15:00:00Z",
    }


def _trades(stack, sid: str, auth: dict[str, str], **params) -> dict:
    response = stack.query.get(f"/api/v1/strategies/{sid}/trades", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_trades_statistics_and_a_back_dated_split(stack):
    stack.add_prices([("TRD", d, 100.0 + i) for i, d in enumerate(DAYS)] + [("SPY", d, 500.0) for d in DAYS])
    sid, auth = stack.new_strategy("trader")
    stack.post(sid, "cash", {"event_type": "deposit", "amount": 100000, "occurred_at": f"{DAYS[0]}T09:00:00Z"}, auth)
    orders = [
        _order("buy", 10, "100", DAYS[0]),
        _order("buy", 10, "110", DAYS[1]),
        _order("sell", 15, "120", DAYS[2]),
        _order("sell", 10, "90", DAYS[3]),  # through zero: closes 5 long, opens 5 short (fee split 0.5 / 0.5)
        _order("buy", 5, "80", DAYS[4]),
        {**_order("buy", 3, "70", DAYS[4]), "status": "cancelled"},  # moves nothing
    ]
    assert stack.post(sid, "orders", {"orders": orders}, auth).status_code in (200, 201)
    wait_until(lambda: len(_trades(stack, sid, auth)["items"]) == 2, 30, "two trades")
    first, second = _trades(stack, sid, auth)["items"]
    assert (first["direction"], first["status"], second["direction"], second["status"]) == (
        "long", "closed", "short", "closed",
    )  # fmt: skip
    assert D(str(first["entry_price"])) == D("105") and D(str(first["exit_price"])) == D("112.5")
    assert D(str(first["quantity_closed"])) == 20 and D(str(first["max_quantity"])) == 20
    assert D(str(first["fees"])) == D("3.5") and D(str(first["realized_pnl"])) == D("146.5")  # 225 - 75 - 3.5
    assert first["fills"] == 4 and first["return"] == pytest.approx(146.5 / (105 * 20))
    assert D(str(second["realized_pnl"])) == D("48.5") and D(str(second["fees"])) == D("1.5")
    assert first["holding_days"] == pytest.approx(3.0)

    perf = stack.query.get(f"/api/v1/strategies/{sid}/performance", headers=auth).json()
    trading = perf["trading"]
    assert (trading["trades"], trading["wins"], trading["losses"], trading["win_rate"]) == (2, 2, 0, 1.0)
    assert D(str(trading["expectancy"])) == D("97.5") and trading["profit_factor"] is None
    assert (trading["long_trades"], trading["short_trades"], trading["max_consecutive_wins"]) == (1, 1, 2)
    assert D(str(trading["realized_pnl"])) == D("195") and D(str(trading["unrealized_pnl"])) == 0

    # a back-dated sell of everything between the two buys: the long trade ends there, the next opens
    late = {**_order("sell", 10, "104", DAYS[0], fees="0"), "executed_at": f"{DAYS[0]}T18:00:00Z"}
    assert stack.post(sid, "orders", {"orders": [late]}, auth).status_code in (200, 201)
    wait_until(lambda: len(_trades(stack, sid, auth)["items"]) == 3, 30, "the long trade split in two")
    items = _trades(stack, sid, auth)["items"]
    # now the sell of 15 goes through zero: it closes the second long and opens a short that is still open
    assert [(t["direction"], t["status"]) for t in items] == [("long", "closed"), ("long", "closed"), ("short", "open")]
    assert D(str(items[0]["realized_pnl"])) == D("39")  # (104 - 100) * 10 - 1
    assert D(str(items[1]["entry_price"])) == D("110") and D(str(items[1]["quantity_closed"])) == 10
    # its fees: the buy's 1 and 10/15 of the crossing sell's 1 (half-even at 18 places), published at 10
    assert D(str(items[1]["fees"])) == D("1.6666666667") and D(str(items[1]["realized_pnl"])) == D("98.3333333333")
    assert D(str(items[2]["quantity_open"])) == 10 and items[2]["closed_at"] is None and items[2]["exit_price"] == 80

    # paging and filters
    page = _trades(stack, sid, auth, limit=2)
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = _trades(stack, sid, auth, limit=2, cursor=page["next_cursor"])
    assert [t["id"] for t in page["items"] + rest["items"]] == [t["id"] for t in items] and rest["next_cursor"] is None
    assert [t["direction"] for t in _trades(stack, sid, auth, status="open")["items"]] == ["short"]
    assert [t["entry_price"] for t in _trades(stack, sid, auth, **{"from": DAYS[1], "to": DAYS[1]})["items"]] == [110]
    for bad in ({"status": "won"}, {"cursor": "x"}, {"from": "yesterday"}, {"symbol": "no way"}):
        response = stack.query.get(f"/api/v1/strategies/{sid}/trades", params=bad, headers=auth)
        assert response.status_code == 400 and "detail" in response.json(), bad

    # the trades are a function of the log (and prices): a rebuild writes the same rows
    def stored() -> list[dict]:
        with stack.sql() as curs:
            return curs.execute("SELECT * FROM rm_trades ORDER BY strategy_id, opened_at, trade_id").fetchall()

    before = stored()
    rebuild(stack.db)
    assert stored() == before and len(before) == 3
