"""The demo's other sample bots: mean reversion, index buy-and-hold, crypto trend, low-risk income
and concentrated tech, each a deterministic function of the bars."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from botranks_domain.bars import Bar

from ..synthetic import CENT
from .account import Bot
from .market import KO_DIVIDEND_PER_SHARE, SPY_DIVIDEND_YIELD, XOM_DIVIDEND_PER_SHARE, Market

CASH_RATE = Decimal("0.04")  # a year, paid monthly on the cash balance (the low-risk bot)
_REVERSION = ("DEMO-AAPL", "DEMO-MSFT", "DEMO-NVDA", "DEMO-KO", "DEMO-XOM")


def _start(market: Market, first: date | None) -> date | None:
    """The bot's first day: the first US trading day on or after ``first`` (or of the bars)."""
    return next((d for d in market.trading_days if first is None or d >= first), None)


def _run(
    market: Market, slug: str, first: date | None, deposit: Decimal, on_day: Callable[[Bot, date, int | None], None]
) -> list[dict[str, Any]]:
    """Walk every day of the market from the bot's first day: splits applied and closes known,
    the deposit on the first day, then ``on_day(bot, day, trading index or None)``."""
    start = _start(market, first)
    if start is None:
        return []
    bot = Bot(market, slug, f"demo-{slug}")
    for day in market.days:
        if day < start:
            continue
        bot.begin_day(day)
        if day == start:
            bot.cash_event(day, "13:30", "deposit", deposit, "initial deposit")
        on_day(bot, day, market.index_of.get(day))
    return bot.items


def mean_reversion_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Every other Monday (the first trading day of every second ISO week) from July 2022: buy
    the two of AAPL, MSFT, NVDA, KO, XOM that fell most over the last 10 trading days (by more
    than 2 %), 45 % of equity each; otherwise hold cash. 300,000 deposited."""
    market = Market(bars)
    weeks: dict[tuple[int, int], date] = {}
    for d in market.trading_days:
        weeks.setdefault(d.isocalendar()[:2], d)
    checks = {d for d in weeks.values() if d.isocalendar()[1] % 2 == 0}

    def on_day(bot: Bot, day: date, index: int | None) -> None:
        if day not in checks:
            return
        moves = {}
        for s in _REVERSION:
            closes = market.lookback(s, day, 10)
            if closes is not None:
                moves[s] = closes[-1] / closes[0] - 1
        losers = sorted((m, s) for s, m in moves.items() if m < -0.02)[:2]
        bot.rebalance(day, {s: Decimal("0.45") for _, s in losers})

    return _run(market, "meanrev", date(2022, 7, 1), Decimal(300_000), on_day)


def index_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Buy and hold the index: all of 250,000 into SPY on the first day, the quarterly dividend
    (0.35 % of the holding) reinvested the same day."""
    market = Market(bars)
    quarters = market.quarter_days()

    def on_day(bot: Bot, day: date, index: int | None) -> None:
        if index is None:
            return
        if day in quarters and bot.qty["DEMO-SPY"] > 0:
            per_share = (market.closes[day]["DEMO-SPY"] * SPY_DIVIDEND_YIELD).quantize(CENT, ROUND_HALF_UP)
            bot.dividend(day, "DEMO-SPY", per_share)
        if bot.qty["DEMO-SPY"] == 0 or day in quarters:
            # buy with the cash there is (never sell): the holding's weight plus 99.5 % of the cash
            held = bot.qty["DEMO-SPY"] * market.closes[day]["DEMO-SPY"]
            weight = (held + bot.cash * Decimal("0.995")) / bot.equity()
            bot.rebalance(day, {"DEMO-SPY": weight}, min_trade=Decimal(0))

    return _run(market, "index", None, Decimal(250_000), on_day)


def crypto_trend_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Volatile: every Friday, 95 % in BTC when its close is above its 30-day average, else all
    cash (drift under 10 % of equity is left alone). 100,000 deposited in March 2022."""
    market = Market(bars)

    def on_day(bot: Bot, day: date, index: int | None) -> None:
        if day.weekday() != 4 or "DEMO-BTC-USD" not in market.closes[day]:
            return
        closes = market.lookback("DEMO-BTC-USD", day, 29)
        if closes is None:
            return
        above = closes[-1] > sum(closes) / len(closes)
        bot.rebalance(day, {"DEMO-BTC-USD": Decimal("0.95")} if above else {}, min_trade=Decimal("0.10"))

    return _run(market, "crypto", date(2022, 3, 1), Decimal(100_000), on_day)


def income_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Low risk: 25 % KO, 15 % XOM, 10 % SPY, the rest in cash earning 4 % a year (paid monthly);
    rebalanced each quarter, KO and XOM dividends kept as cash. 500,000 deposited."""
    market = Market(bars)
    quarters, months = market.quarter_days(), market.month_starts()
    weights = {"DEMO-KO": Decimal("0.25"), "DEMO-XOM": Decimal("0.15"), "DEMO-SPY": Decimal("0.10")}
    started: list[date] = []

    def on_day(bot: Bot, day: date, index: int | None) -> None:
        if index is None:
            return
        if day in quarters:
            bot.dividend(day, "DEMO-KO", KO_DIVIDEND_PER_SHARE)
            bot.dividend(day, "DEMO-XOM", XOM_DIVIDEND_PER_SHARE)
        if day in months and started and bot.cash > 0:
            interest = (bot.cash * CASH_RATE / 12).quantize(CENT, ROUND_HALF_UP)
            if interest > 0:
                bot.cash_event(day, "12:30", "interest", interest, "interest on cash")
        if not started or day in quarters:
            started.append(day)
            bot.rebalance(day, weights)

    return _run(market, "income", None, Decimal(500_000), on_day)


def tech_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """High risk, concentrated: fully invested in NVDA 60 %, AAPL 25 %, MSFT 14 %, rebalanced
    monthly (first trading day of the month), from January 2023. 200,000 deposited. It holds
    NVDA through its 4-for-1 split (``DEMO_SPLIT``, mid-June 2023): no trade on the ex-date, the
    holding becomes 4x the shares, and the next rebalance trades in post-split units."""
    market = Market(bars)
    months = market.month_starts()
    weights = {"DEMO-NVDA": Decimal("0.60"), "DEMO-AAPL": Decimal("0.25"), "DEMO-MSFT": Decimal("0.14")}
    started: list[date] = []

    def on_day(bot: Bot, day: date, index: int | None) -> None:
        if index is not None and (not started or day in months):
            started.append(day)
            bot.rebalance(day, weights)

    return _run(market, "tech", date(2023, 1, 3), Decimal(200_000), on_day)
