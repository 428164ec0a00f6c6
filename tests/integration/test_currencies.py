"""Issue 23 through the real services: a EUR strategy holding USD and EUR instruments through rate moves
(cash, NAV and returns day by day against an independent Decimal reference), a GBP strategy converting
through USD (the cross), the 422 without a rate (nothing stored), a late rate that re-derives the days it
covers, an owner switching the base currency, and a rebuild that writes the same rows."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from botranks_domain.accounts import StrategySettingsIn
from botranks_domain.bars import Bar
from devtools.stack import wait_until
from services.projector.rebuild import rebuild

pytestmark = pytest.mark.integration

D = Decimal
DAYS = [date(2024, 4, d) for d in (8, 9, 10, 11, 12)]
EURUSD = [D("1.10"), D("1.08"), D("1.12"), D("1.05"), D("1.09")]  # one EUR in USD
AAA = [D("50"), D("52"), D("55"), D("51"), D("53")]  # quoted in USD
SAPX = [D("30"), D("31"), D("29.5"), D("30.25"), D("32")]  # quoted in EUR
SPY = [D("500"), D("505"), D("498"), D("510"), D("512")]
Q18 = D(1).scaleb(-18)
Q10 = D(1).scaleb(-10)


def _inverse(x: Decimal) -> Decimal:
    """1 / x, half-even at 18 places: a rate that is not a stored close."""
    return (D(1) / x).quantize(Q18, ROUND_HALF_EVEN)


def _bars(symbol: str, closes: list[Decimal], days: list[date] = DAYS) -> list[Bar]:
    return [Bar(symbol=symbol, date=d, close=c) for d, c in zip(days, closes, strict=True)]


def _order(symbol: str, side: str, qty: int, price: str, day: date, fees: str) -> dict:
    return {
        "symbol": symbol,
        "side": side,
        "quantity": qty,
        "price": price,
        "fees": fees,
        "executed_at": f"{day.isoformat()}T15:00:00Z",
    }


def _strategy(stack, name: str, base: str) -> tuple[str, dict[str, str]]:
    strategy_id, key = stack.db.identity.create_strategy(name, base_currency=base, benchmark="SPYFX")
    return str(strategy_id), {"Authorization": f"Bearer {key}"}


def _nav(stack, sid: str, auth: dict[str, str]) -> dict:
    response = stack.query.get(f"/api/v1/strategies/{sid}/nav", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def _equity(stack, sid: str, auth: dict[str, str]) -> dict[str, Decimal]:
    return {row["date"]: D(str(row["total_equity"])) for row in _nav(stack, sid, auth)["series"]}


@pytest.fixture(scope="module")
def market(stack):
    stack.db.prices.record_currencies({"SAPX": "EUR"}, "test")
    stack.db.prices.write_bars(
        _bars("C:EURUSD", EURUSD) + _bars("AAA", AAA) + _bars("SAPX", SAPX) + _bars("SPYFX", SPY), "test"
    )
    return stack


def test_a_eur_strategy_holding_usd_and_eur_instruments_equals_the_reference(market):
    stack = market
    sid, auth = _strategy(stack, "euro", "EUR")
    deposit = {"event_type": "deposit", "amount": 100000, "occurred_at": f"{DAYS[0].isoformat()}T09:00:00Z"}
    assert stack.post(sid, "cash", deposit, auth).status_code == 201
    orders = [
        _order("AAA", "buy", 100, "50", DAYS[0], "2"),
        _order("SAPX", "buy", 200, "30", DAYS[1], "1"),
        _order("AAA", "sell", 40, "55", DAYS[2], "1.5"),
    ]
    assert stack.post(sid, "orders", {"orders": orders}, stack_auth := auth).status_code == 200
    wait_until(lambda: len(_nav(stack, sid, stack_auth)["series"]) == len(DAYS), 30, "five NAV days")

    # the reference: cash in EUR, USD amounts at 1 / EURUSD of their day (18 places), marks at the day's rate
    usd_eur = [_inverse(x) for x in EURUSD]
    cash = D(100000)
    held = {"AAA": D(0), "SAPX": D(0)}
    expected: dict[str, Decimal] = {}
    for i, day in enumerate(DAYS):
        if i == 0:
            cash -= D(100) * D(50) * usd_eur[0] + D(2)
            held["AAA"] += 100
        if i == 1:
            cash -= D(200) * D(30) + D(1)
            held["SAPX"] += 200
        if i == 2:
            cash += D(40) * D(55) * usd_eur[2] - D("1.5")
            held["AAA"] -= 40
        nav = cash + held["AAA"] * AAA[i] * usd_eur[i] + held["SAPX"] * SAPX[i]
        expected[day.isoformat()] = nav.quantize(Q10, ROUND_HALF_EVEN)
    assert _equity(stack, sid, auth) == expected

    body = _nav(stack, sid, auth)
    assert body["base_currency"] == "EUR"
    state = stack.state(sid, auth)
    assert state["base_currency"] == "EUR"
    assert {p["symbol"]: p["currency"] for p in state["positions"]} == {"AAA": "USD", "SAPX": "EUR"}
    assert D(str(state["nav"]["cash_balance"])) == cash.quantize(Q10, ROUND_HALF_EVEN)

    # the daily time-weighted returns, and what /performance makes of them
    navs = [expected[d.isoformat()] for d in DAYS]
    growth = D(1)
    for prev, now in zip(navs, navs[1:], strict=False):
        growth *= now / prev
    perf = stack.query.get(f"/api/v1/strategies/{sid}/performance", headers=auth).json()
    assert perf["base_currency"] == "EUR" and perf["currencies"] == ["EUR", "USD"]
    assert perf["total_return"] == pytest.approx(float(growth - 1), abs=1e-12)
    # the benchmark (SPYFX, quoted in USD) is compared in euros: its return includes the rate's move
    spy_eur = [c * r for c, r in zip(SPY, usd_eur, strict=True)]
    assert perf["benchmark"]["benchmark_total_return"] == pytest.approx(float(spy_eur[-1] / spy_eur[0] - 1), abs=1e-12)

    # trades: P&L in the instrument's currency, and in the base at the closing fill's rate
    trades = stack.query.get(f"/api/v1/strategies/{sid}/trades", headers=auth).json()["items"]
    aaa = next(t for t in trades if t["symbol"] == "AAA")
    assert aaa["currency"] == "USD" and aaa["status"] == "open"
    # 40 sold at 55 over a 50 basis: 200 USD gross; fees 2 x 40/100 ... all fees are in EUR: converted at each fill
    gross_usd = D(40) * (D(55) - D(50))
    fees_eur = D(2) + D("1.5")
    assert D(str(aaa["realized_pnl_base"])) == (gross_usd * usd_eur[2] - fees_eur).quantize(Q10, ROUND_HALF_EVEN)
    local_fees = (D(2) / usd_eur[0]).quantize(Q18, ROUND_HALF_EVEN) + (D("1.5") / usd_eur[2]).quantize(
        Q18, ROUND_HALF_EVEN
    )
    assert D(str(aaa["realized_pnl"])) == (gross_usd - local_fees).quantize(Q10, ROUND_HALF_EVEN)

    # a rebuild writes the same read models
    before = stack.read_models()
    rebuild(stack.db)
    assert stack.read_models() == before


def test_a_gbp_strategy_converts_a_eur_stock_through_usd(market):
    stack = market
    gbpusd = [D("1.25"), D("1.26"), D("1.24"), D("1.27"), D("1.28")]
    stack.db.prices.write_bars(_bars("C:GBPUSD", gbpusd), "test")
    sid, auth = _strategy(stack, "sterling", "GBP")
    deposit = {"event_type": "deposit", "amount": 50000, "occurred_at": f"{DAYS[0].isoformat()}T09:00:00Z"}
    assert stack.post(sid, "cash", deposit, auth).status_code == 201
    assert (
        stack.post(sid, "orders", {"orders": [_order("SAPX", "buy", 100, "30", DAYS[0], "3")]}, auth).status_code == 200
    )
    wait_until(lambda: len(_nav(stack, sid, auth)["series"]) == len(DAYS), 30, "five NAV days")
    # EUR -> GBP: EUR -> USD (the close of C:EURUSD) x USD -> GBP (1 / C:GBPUSD), half-even at 18 places
    eur_gbp = [(e * _inverse(g)).quantize(Q18, ROUND_HALF_EVEN) for e, g in zip(EURUSD, gbpusd, strict=True)]
    cash = D(50000) - D(100) * D(30) * eur_gbp[0] - D(3)
    expected = {
        d.isoformat(): (cash + 100 * SAPX[i] * eur_gbp[i]).quantize(Q10, ROUND_HALF_EVEN) for i, d in enumerate(DAYS)
    }
    assert _equity(stack, sid, auth) == expected


def test_no_rate_is_a_422_and_nothing_is_stored(market):
    stack = market
    sid, auth = _strategy(stack, "yen", "JPY")
    before = stack.event_count()
    response = stack.post(sid, "orders", {"orders": [_order("AAA", "buy", 1, "50", DAYS[1], "0")]}, auth)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"No FX rate for USD/JPY at {DAYS[1].isoformat()}")
    snapshot = {"positions": [{"symbol": "SAPX", "quantity": 5, "cost_basis": 30}], "taken_at": "2024-04-09T12:00:00Z"}
    response = stack.post(sid, "positions/snapshot", snapshot, auth)
    assert response.status_code == 422 and "No FX rate for EUR/JPY at 2024-04-09" in response.json()["detail"]
    # an order that moves nothing needs no rate; a cash event never does
    pending = {**_order("AAA", "buy", 1, "50", DAYS[1], "0"), "status": "pending"}
    assert stack.post(sid, "orders", {"orders": [pending]}, auth).status_code == 200
    assert stack.event_count() == before + 1


def test_a_late_rate_rederives_the_days_it_covers(market):
    stack = market
    chf_usd = [D("1.15")]  # only the first day: later days are marked at it until more rates come
    stack.db.prices.write_bars(_bars("C:CHFUSD", chf_usd, DAYS[:1]), "test")
    sid, auth = _strategy(stack, "franc", "CHF")
    deposit = {"event_type": "deposit", "amount": 10000, "occurred_at": f"{DAYS[0].isoformat()}T09:00:00Z"}
    assert stack.post(sid, "cash", deposit, auth).status_code == 201
    assert (
        stack.post(sid, "orders", {"orders": [_order("AAA", "buy", 100, "50", DAYS[0], "0")]}, auth).status_code == 200
    )
    wait_until(lambda: len(_nav(stack, sid, auth)["series"]) == len(DAYS), 30, "five NAV days")
    first = _inverse(chf_usd[0])
    cash = D(10000) - D(5000) * first

    def expected(rates: list[Decimal]) -> dict[str, Decimal]:
        return {
            d.isoformat(): (cash + 100 * AAA[i] * rates[i]).quantize(Q10, ROUND_HALF_EVEN) for i, d in enumerate(DAYS)
        }

    assert _equity(stack, sid, auth) == expected([first] * 5)
    later = [D("1.16"), D("1.14")]
    stack.db.prices.write_bars(_bars("C:CHFUSD", later, DAYS[2:4]), "test")  # the 10th and 11th: re-derived
    rates = [first, first, _inverse(later[0]), _inverse(later[1]), _inverse(later[1])]
    wait_until(lambda: _equity(stack, sid, auth) == expected(rates), 30, "the late rates re-mark their days")


def test_switching_the_base_currency_rederives_in_the_new_one(market):
    stack = market
    owner = stack.db.identity.insert_user("fx-owner@example.com", "not-a-real-hash")
    strategy_id, key = stack.db.identity.create_strategy("switch", owner_id=owner.id, benchmark="SPYFX")
    sid, auth = str(strategy_id), {"Authorization": f"Bearer {key}"}
    deposit = {"event_type": "deposit", "amount": 20000, "occurred_at": f"{DAYS[0].isoformat()}T09:00:00Z"}
    assert stack.post(sid, "cash", deposit, auth).status_code == 201
    assert (
        stack.post(sid, "orders", {"orders": [_order("AAA", "buy", 300, "50", DAYS[0], "0")]}, auth).status_code == 200
    )
    wait_until(lambda: len(_nav(stack, sid, auth)["series"]) == len(DAYS), 30, "five NAV days")
    in_usd = stack.query.get(f"/api/v1/strategies/{sid}/nav", headers=auth).json()["series"]
    stack.db.identity.update_strategy(owner.id, strategy_id, StrategySettingsIn(base_currency="EUR"))
    wait_until(lambda: _nav(stack, sid, auth)["base_currency"] == "EUR", 5, "the new base currency")
    wait_until(
        lambda: _equity(stack, sid, auth)[DAYS[1].isoformat()] != D(str(in_usd[1]["total_equity"])), 30, "re-derived"
    )
    in_eur = _nav(stack, sid, auth)["series"]
    # the holding's value is the same in USD times the day's rate (the currency effect); cash and the deposit
    # are amounts in the base currency, so they are read in the new one
    for usd, eur, rate in zip(in_usd, in_eur, EURUSD, strict=True):
        assert D(str(eur["market_value"])) == (D(str(usd["market_value"])) * _inverse(rate)).quantize(
            Q10, ROUND_HALF_EVEN
        )
    assert D(str(in_eur[0]["cash"])) == (D(20000) - D(15000) * _inverse(EURUSD[0])).quantize(Q10, ROUND_HALF_EVEN)


def test_a_base_currency_without_rates_for_the_history_is_refused(market):
    """An owner's change (``accounts.change_strategy``: PATCH /strategies/{id} and the owner page's form): 422
    naming the missing rate, nothing changed."""
    from botranks_domain.errors import NoFxRate
    from services.command_api.accounts import change_strategy as _update

    stack = market
    owner = stack.db.identity.insert_user("fx-refused@example.com", "not-a-real-hash")
    strategy_id, key = stack.db.identity.create_strategy("stays", owner_id=owner.id, benchmark="SPYFX")
    sid, auth = str(strategy_id), {"Authorization": f"Bearer {key}"}
    assert stack.post(sid, "orders", {"orders": [_order("AAA", "buy", 1, "50", DAYS[1], "0")]}, auth).status_code == 200
    wait_until(lambda: stack.db.ledger.first_uses(strategy_id) == {("AAA", DAYS[1])}, 30, "the fill projected")
    with pytest.raises(NoFxRate, match=f"No FX rate for USD/SEK at {DAYS[1].isoformat()}"):
        _update(stack.db, owner.id, strategy_id, StrategySettingsIn(base_currency="SEK"))
    assert stack.db.identity.profile(strategy_id).base_currency == "USD"
    _update(stack.db, owner.id, strategy_id, StrategySettingsIn(base_currency="EUR"))  # EURUSD is loaded
    assert stack.db.identity.profile(strategy_id).base_currency == "EUR"
