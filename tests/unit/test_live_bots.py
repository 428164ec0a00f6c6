"""The demo's live bots, pure: the intraday price, the hourly slots, the prelude and the rules, with
the clock injected (fixed instants: nothing here depends on the day, hour or timezone it runs)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.demo_live.live import last_close
from services.market_data.sample_bots.live_bots import (
    DEPOSIT,
    FUNDED_DAYS,
    LIVE_BOTS,
    LIVE_SYMBOL,
    MARKET_START,
    Holdings,
    balanced_rule,
    dca_rule,
    live_order,
    live_price,
    prelude,
    slot_of,
)
from services.market_data.synthetic import synthetic_bars

NOW = datetime(2025, 3, 12, 9, 41, 27, tzinfo=UTC)
instants = st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))


def _close(day: date) -> Decimal:
    return next(b.close for b in synthetic_bars(MARKET_START, day) if b.symbol == LIVE_SYMBOL and b.date == day)


def test_the_price_meets_each_daily_close_at_20_utc_and_is_the_same_for_everyone():
    for day in (date(2024, 2, 29), date(2025, 3, 12), date(2026, 12, 6)):
        assert live_price(datetime(day.year, day.month, day.day, 20, tzinfo=UTC)) == _close(day)
    assert live_price(NOW) == live_price(NOW.astimezone(timezone(timedelta(hours=-5))))  # one instant, any zone
    assert live_price(NOW) == live_price(NOW.replace(second=3))  # a minute's price
    minutes = [live_price(NOW + timedelta(minutes=i)) for i in range(120)]
    assert len(set(minutes)) > 60 and all(p > 0 for p in minutes)


@settings(max_examples=40, deadline=None)
@given(instants)
def test_a_slot_is_its_hour_and_names_the_order(at):
    slot = slot_of(at)
    assert slot <= at < slot + timedelta(hours=1) and slot.minute == slot.second == 0
    order = live_order(LIVE_BOTS[0], Holdings(DEPOSIT), at)
    assert order is not None and order["external_order_id"] == f"livedca-{slot:%Y%m%dT%H}"
    assert order["executed_at"] == at.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@settings(max_examples=60, deadline=None)
@given(st.decimals(min_value=0, max_value=200_000, places=2), st.decimals(min_value=0, max_value=5, places=4), instants)
def test_the_rules_never_spend_more_cash_or_sell_more_btc_than_there_is(cash, btc, at):
    for rule in (dca_rule, balanced_rule):
        h = Holdings(cash, btc)
        decided = rule(h, live_price(at))
        if decided is not None:
            side, quantity, _ = decided
            assert quantity > 0
            h.apply(side, quantity, live_price(at))
            assert h.cash >= 0 and h.btc >= 0


def test_the_prelude_is_a_late_deposit_and_for_the_backfilled_bot_daily_closes_before_the_first_run():
    dca, balanced = LIVE_BOTS
    items, h = prelude(dca, NOW)
    assert [i["kind"] for i in items] == ["cash"] and h == Holdings(DEPOSIT)
    assert items[0]["payload"]["occurred_at"] == f"{(NOW.date() - timedelta(days=FUNDED_DAYS)).isoformat()}T12:00:00Z"
    items, h = prelude(balanced, NOW)
    orders = items[1]["payload"]["orders"]
    assert 30 < len(orders) <= FUNDED_DAYS and all(o["executed_at"].endswith("T20:00:00Z") for o in orders)
    assert orders[-1]["executed_at"] < NOW.isoformat() and orders[-1]["executed_at"].startswith("2025-03-11")
    assert len({o["external_order_id"] for o in orders}) == len(orders)
    assert prelude(balanced, NOW) == (items, h)  # deterministic
    # half BTC after the last close's rebalance, at that close
    last = Decimal(str(orders[-1]["price"]))
    assert abs(h.btc * last / (h.cash + h.btc * last) - Decimal("0.5")) < Decimal("0.01")


def test_the_last_close_is_today_from_20_utc_on():
    day = date(2025, 3, 12)
    assert last_close(datetime(2025, 3, 12, 19, 59, 59, tzinfo=UTC)) == day - timedelta(days=1)
    assert last_close(datetime(2025, 3, 12, 20, tzinfo=UTC)) == day
    assert last_close(datetime(2025, 3, 12, 15, 30, tzinfo=timezone(timedelta(hours=-5)))) == day  # 20:30 UTC
