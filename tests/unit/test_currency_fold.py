"""Currencies in the fold (issue 23) against an independent reference, over random rates and streams.

``_reference_nav`` is written from the issue's semantics, not from ``nav.py``: cash in the base
currency moves by q × price × fx(fill day) ± fees; the NAV of a day is cash + Σ q × close × fx(day),
where fx(d) is the last close on or before d of C:AB, else 1 / C:BA (half-even at 18 places), else
the cross through USD. Every amount is exact (no division but the rates'), so the comparison is exact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, localcontext
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botranks_domain.currency import (
    CURRENCIES,
    FxRates,
    MissingRate,
    first_rate_day,
    implied_currency,
    missing_rate,
    needed_rate_symbols,
    quote_currency,
    rate_symbols,
)
from botranks_domain.ledger import LEDGER_CONTEXT
from botranks_domain.nav import LedgerState, PriceBook, derive

from .test_ledger import mk_cash, mk_order

Q18 = D(1).scaleb(-18)
DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(8)]
CURRENCY_OF = {"UST": "USD", "EUS": "EUR", "GBS": "GBP"}


def _inverse(x: D) -> D:
    with localcontext(LEDGER_CONTEXT):
        return (D(1) / x).quantize(Q18, ROUND_HALF_EVEN)


def _ref_rate(rates: dict[str, dict[date, D]], a: str, b: str, day: date) -> D | None:
    """The issue's rule, from the rates' own table."""

    def last(symbol: str) -> D | None:
        days = [d for d in rates.get(symbol, {}) if d <= day]
        return rates[symbol][max(days)] if days else None

    def leg(x: str, y: str) -> D | None:
        if x == y:
            return D(1)
        direct = last(f"C:{x}{y}")
        if direct is not None:
            return direct
        inverse = last(f"C:{y}{x}")
        return None if inverse is None else _inverse(inverse)

    found = leg(a, b)
    if found is not None or "USD" in (a, b):
        return found
    first, second = leg(a, "USD"), leg("USD", b)
    if first is None or second is None:
        return None
    with localcontext(LEDGER_CONTEXT):
        return (first * second).quantize(Q18, ROUND_HALF_EVEN)


def _reference_nav(base, orders, closes, rates) -> list[tuple[date, D]]:
    cash, held = D(0), dict.fromkeys(CURRENCY_OF, D(0))
    out = []
    with localcontext(LEDGER_CONTEXT):
        for day in DAYS:
            for kind, payload in sorted(orders.get(day, []), key=lambda e: e[1]["at"]):
                if kind == "cash":
                    cash += payload["amount"]
                    continue
                if payload["status"] not in ("filled", "partial"):
                    continue
                fx = _ref_rate(rates, CURRENCY_OF[payload["symbol"]], base, day)
                value = payload["qty"] * payload["price"] * fx
                if payload["side"] == "buy":
                    cash -= value + payload["fees"]
                    held[payload["symbol"]] += payload["qty"]
                else:
                    cash += value - payload["fees"]
                    held[payload["symbol"]] -= payload["qty"]
            nav = cash
            for symbol, q in held.items():
                if q:
                    nav += q * closes[symbol][day] * _ref_rate(rates, CURRENCY_OF[symbol], base, day)
            out.append((day, nav))
    return out


money = st.decimals(min_value=D("0.5"), max_value=D("500"), places=2)
rate = st.decimals(min_value=D("0.2"), max_value=D("5"), places=5)
event = st.tuples(
    st.integers(0, len(DAYS) - 1),
    st.sampled_from(sorted(CURRENCY_OF)),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 50),
    money,
    st.decimals(min_value=D(0), max_value=D(5), places=2),
    st.sampled_from(["filled", "filled", "partial", "cancelled", "pending"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(["USD", "EUR", "GBP", "JPY"]),
    events=st.lists(event, min_size=1, max_size=25),
    eurusd=st.lists(rate, min_size=len(DAYS), max_size=len(DAYS)),
    gbp=st.lists(rate, min_size=len(DAYS), max_size=len(DAYS)),
    usdjpy=st.lists(st.decimals(min_value=D(90), max_value=D(160), places=3), min_size=len(DAYS), max_size=len(DAYS)),
    gbp_inverted=st.booleans(),
    gaps=st.sets(st.integers(1, len(DAYS) - 1), max_size=3),
)
def test_cash_and_nav_equal_the_reference_day_by_day(base, events, eurusd, gbp, usdjpy, gbp_inverted, gaps):
    # rates: EURUSD direct, GBP as GBPUSD or USDGBP (an inverse), USDJPY; some days without any rate
    gbp_symbol = "C:USDGBP" if gbp_inverted else "C:GBPUSD"
    rate_rows = {"C:EURUSD": eurusd, gbp_symbol: gbp, "C:USDJPY": usdjpy}
    rates = {
        s: {d: r for d, r in zip(DAYS, rows, strict=True) if DAYS.index(d) not in gaps} for s, rows in rate_rows.items()
    }
    closes = {s: {d: D(100 + 3 * i + len(s)) for i, d in enumerate(DAYS)} for s in CURRENCY_OF}
    by_day: dict[date, list] = {
        DAYS[0]: [("cash", {"amount": D(100000), "at": datetime.combine(DAYS[0], datetime.min.time(), UTC)})]
    }
    ledger_events = [mk_cash("deposit", 100000, at=datetime.combine(DAYS[0], datetime.min.time(), UTC))]
    for n, (i, symbol, side, qty, price, fees, status) in enumerate(events):
        at = datetime.combine(DAYS[i], datetime.min.time(), UTC) + timedelta(hours=1, seconds=n)
        by_day.setdefault(DAYS[i], []).append(
            (
                "order",
                {
                    "at": at,
                    "symbol": symbol,
                    "side": side,
                    "qty": D(qty),
                    "price": price,
                    "fees": fees,
                    "status": status,
                },
            )
        )
        ledger_events.append(mk_order(side, qty, price, fees, symbol=symbol, status=status, at=at))
    ledger_events.sort(key=lambda e: e.effective_at)
    book = PriceBook(
        {
            **{s: sorted(rows.items()) for s, rows in closes.items()},
            **{s: sorted(rows.items()) for s, rows in rates.items()},
        }
    )
    fx = FxRates(book, base, CURRENCY_OF)
    reference_possible = all(
        _ref_rate(rates, CURRENCY_OF[p["symbol"]], base, d) is not None
        for d, items in by_day.items()
        for k, p in items
        if k == "order"
    )
    if not reference_possible:  # the fold refuses what the ingest would have refused
        with pytest.raises(MissingRate):
            derive(LedgerState(), ledger_events, book, "UST", None, DAYS[-1], DAYS[0], None, fx)
        return
    result = derive(LedgerState(), ledger_events, book, "UST", None, DAYS[-1], DAYS[0], None, fx)
    expected = _reference_nav(base, by_day, closes, rates)
    assert [(r.date, r.total_equity) for r in result.nav] == expected


def test_the_rules_names_and_codes():
    assert {"USD", "EUR", "GBP", "JPY", "CHF"} <= CURRENCIES and "XYZ" not in CURRENCIES and "DEM" not in CURRENCIES
    assert implied_currency("C:EURUSD") == "USD" and implied_currency("BTC-EUR") == "EUR"
    assert implied_currency("AAPL") is None and implied_currency("BRK-B") is None
    assert quote_currency("SAP", {"SAP": "EUR"}) == "EUR" and quote_currency("AAPL", {}) == "USD"
    assert rate_symbols("EUR", "GBP") == ["C:EURGBP", "C:GBPEUR", "C:EURUSD", "C:USDEUR", "C:GBPUSD", "C:USDGBP"]
    assert rate_symbols("USD", "USD") == [] and needed_rate_symbols(["AAPL"], "USD", {}) == set()
    book = PriceBook({"C:EURUSD": [(DAYS[1], D("1.1"))], "C:USDGBP": [(DAYS[3], D("0.8"))]})
    fx = FxRates(book, "GBP", {})
    assert fx.rate("EUR", DAYS[0]) is None  # nothing on or before the day
    assert fx.rate("USD", DAYS[3]) == D("0.8") and fx.rate("USD", DAYS[2]) is None
    assert fx.rate("EUR", DAYS[4]) == D("0.88")  # the cross: 1.1 x 0.8
    assert fx.rate("EUR", DAYS[4], "USD") == D("1.1") and fx.rate("USD", DAYS[4], "EUR") == _inverse(D("1.1"))
    firsts = {"C:EURUSD": DAYS[1], "C:USDGBP": DAYS[3]}
    assert first_rate_day("EUR", "GBP", firsts) == DAYS[3] and first_rate_day("EUR", "USD", firsts) == DAYS[1]
    assert first_rate_day("JPY", "USD", firsts) is None
    missing = missing_rate([("SAP", DAYS[2])], "GBP", {"SAP": "EUR"}, firsts)
    assert str(missing) == f"No FX rate for EUR/GBP at {DAYS[2].isoformat()}"
    assert missing_rate([("SAP", DAYS[3])], "GBP", {"SAP": "EUR"}, firsts) is None
