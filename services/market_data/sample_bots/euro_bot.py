"""The demo's EUR-based sample bot: its cash, fees and equity are in EUR; it trades one EUR stock
(``DEMO-SAP``) and two USD ones (``DEMO-AAPL``, ``DEMO-KO``), paying for a USD stock q x price x the
day's USD -> EUR rate, the very rate the ledger will use (``euro_rates``), so it never spends more
EUR than it holds. Its benchmark stays DEMO-SPY (USD): the ledger converts it into EUR, unhedged."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

from botranks_domain.bars import Bar
from botranks_domain.currency import FxRates, MissingRate
from botranks_domain.ledger import LEDGER_CONTEXT
from botranks_domain.nav import PriceBook

from ..synthetic_fx import EUR_CURRENCIES, EUR_STOCK, FX_SYMBOLS, synthetic_eur_bars, synthetic_eurusd
from .account import Bot
from .market import Market

BASE_CURRENCY = "EUR"
EURO_DEPOSIT = Decimal(100_000)
EURO_START = date(2022, 4, 1)
EURO_WEIGHTS = {EUR_STOCK: Decimal("0.40"), "DEMO-AAPL": Decimal("0.30"), "DEMO-KO": Decimal("0.20")}
#: of equity, kept in cash at every rebalance on top of the 10 % the weights leave
CASH_BUFFER = Decimal("0.005")


def euro_rates(bars: list[Bar]) -> FxRates:
    """Rates into EUR from the FX closes among ``bars`` (``C:EURUSD``, ``C:USDEUR``), computed as the
    ledger computes them (``FxRates``: the last close on or before the day, an inverse rounded
    half-even to 18 places), with the demo's recorded quote currencies (DEMO-SAP: EUR)."""
    closes: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    for bar in bars:
        if bar.symbol in FX_SYMBOLS:
            closes[bar.symbol].append((bar.date, bar.close))
    return FxRates(PriceBook({s: sorted(rows) for s, rows in closes.items()}), BASE_CURRENCY, EUR_CURRENCIES)


def euro_market(bars: list[Bar]) -> list[Bar]:
    """``bars`` with the EUR stock's and the EUR/USD rate's synthetic bars over their date range when
    they hold none (``botranks demo`` passes both in, its rates real ones if the price cache has any)."""
    if not bars:
        return []
    symbols = {b.symbol for b in bars}
    first, last = min(b.date for b in bars), max(b.date for b in bars)
    extra = [] if EUR_STOCK in symbols else synthetic_eur_bars(first, last)
    if not symbols & set(FX_SYMBOLS):
        extra += synthetic_eurusd(first, last)
    return bars + extra


def euro_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """The EUR bot's payloads over ``bars`` (completed by ``euro_market``): 100,000 EUR deposited on
    the first US trading day from April 2022 with a SAP close and a USD -> EUR rate, then monthly (the
    first trading day of each month) 40 % SAP, 30 % AAPL, 20 % KO of equity less a 0.5 % cash buffer."""
    bars = euro_market(bars)
    if not bars:
        return []
    market, fx = Market(bars), euro_rates(bars)

    def rate(symbol: str, day: date) -> Decimal:
        found = fx.of(symbol, day)
        if found is None:
            raise MissingRate(fx.currency_of(symbol), BASE_CURRENCY, day)
        return found

    start = next(
        (
            d
            for d in market.trading_days
            if d >= EURO_START and EUR_STOCK in market.closes[d] and fx.rate("USD", d) is not None
        ),
        None,
    )
    if start is None:
        return []
    months = market.month_starts()
    bot = Bot(market, "euro", "demo-euro", fx=rate)
    for day in market.days:
        if day < start:
            continue
        bot.begin_day(day)
        if day == start:
            bot.cash_event(day, "13:30", "deposit", EURO_DEPOSIT, "initial deposit (EUR)")
        if (day == start or day in months) and EUR_STOCK in market.closes[day]:
            with localcontext(LEDGER_CONTEXT):  # EUR amounts of USD fills: exact, as the ledger's
                bot.rebalance(day, EURO_WEIGHTS, reserve=CASH_BUFFER * bot.equity())
    return bot.items
