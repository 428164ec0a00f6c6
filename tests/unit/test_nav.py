"""Daily NAV derivation: hand-worked examples."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

from botranks_domain.nav import LedgerState, PriceBook, decode_state, derive, encode_state

from .test_ledger import mk_cash, mk_order, mk_snapshot


def at(day: str, hour: int = 15) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


# Mon 2026-01-05 .. Mon 2026-01-12: SPY and AAPL trade on weekdays, BTC-USD every day
WEEKDAYS = ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08", "2026-01-09", "2026-01-12"]
PRICES = PriceBook(
    {
        "SPY": [(date.fromisoformat(d), D(400 + i)) for i, d in enumerate(WEEKDAYS)],
        "AAPL": [(date.fromisoformat(d), D(100 + 2 * i)) for i, d in enumerate(WEEKDAYS)],
        "BTC-USD": [(date(2026, 1, 5 + i), D(40000 + 100 * i)) for i in range(8)],
    }
)


def rows(result):
    return [(r.date.isoformat(), r.cash, r.market_value, r.total_equity, r.external_flow) for r in result.nav]


def test_weekend_deposit_lands_on_monday_and_marks_use_last_close():
    events = [
        mk_cash("deposit", 1000, at("2026-01-05")),
        mk_order("buy", 5, 100, at=at("2026-01-05", 20)),
        mk_cash("deposit", 500, at("2026-01-10")),  # Saturday
    ]
    result = derive(LedgerState(), events, PRICES, "SPY", None, date(2026, 1, 12), date(2026, 1, 5))
    assert rows(result) == [
        ("2026-01-05", D(500), D(500), D(1000), D(1000)),
        ("2026-01-06", D(500), D(510), D(1010), D(0)),
        ("2026-01-07", D(500), D(520), D(1020), D(0)),
        ("2026-01-08", D(500), D(530), D(1030), D(0)),
        ("2026-01-09", D(500), D(540), D(1040), D(0)),
        ("2026-01-12", D(1000), D(550), D(1550), D(500)),  # the Saturday deposit is Monday's flow
    ]
    # checkpoints are sparse: the first event day, then one at least 28 days later
    assert [d.isoformat() for d, _ in result.checkpoints] == ["2026-01-05"]


def test_crypto_holding_adds_weekend_days_and_inception_is_first_event_day():
    events = [
        mk_cash("deposit", 50000, at("2026-01-06")),
        mk_order("buy", 1, 40000, "0", "BTC-USD", at=at("2026-01-09", 12)),
        mk_order("sell", 1, 40300, "0", "BTC-USD", at=at("2026-01-11", 12)),
    ]
    result = derive(LedgerState(), events, PRICES, "SPY", None, date(2026, 1, 12), date(2026, 1, 6))
    days = [r.date.isoformat() for r in result.nav]
    # Saturday is a NAV day (BTC held at its end); Sunday is not (sold that day; SPY has no bar)
    assert days == ["2026-01-06", "2026-01-07", "2026-01-08", "2026-01-09", "2026-01-10", "2026-01-12"]
    assert result.nav[4].total_equity == D(10000) + D(40500)


def test_snapshot_market_value_is_an_external_flow_and_deltas_are_reported():
    events = [mk_cash("deposit", 1000, at("2026-01-05")), mk_snapshot([("AAPL", 10, 90)], at("2026-01-06"))]
    result = derive(LedgerState(), events, PRICES, "SPY", None, date(2026, 1, 7), date(2026, 1, 5))
    assert rows(result)[1] == ("2026-01-06", D(1000), D(1020), D(2020), D(1020))
    assert [(d.symbol, d.snapshot_quantity) for _, d in result.reconciliation] == [("AAPL", D(10))]


def test_resuming_from_a_checkpoint_equals_deriving_at_once():
    events = [
        mk_cash("deposit", 1000, at("2026-01-05")),
        mk_order("buy", 3, 102, at=at("2026-01-06")),
        mk_cash("withdraw", -100, at("2026-01-10")),
        mk_order("sell", 1, 108, at=at("2026-01-12")),
    ]
    whole = derive(LedgerState(), events, PRICES, "SPY", None, date(2026, 1, 12), date(2026, 1, 5))
    first = derive(LedgerState(), events[:2], PRICES, "SPY", None, date(2026, 1, 8), date(2026, 1, 5))
    state = decode_state(encode_state(first.final))
    rest = derive(state, events[2:], PRICES, "SPY", date(2026, 1, 8), date(2026, 1, 12), date(2026, 1, 5))
    assert rows(whole) == rows(first) + rows(rest)
